import type { DynamoJobStore } from '../../adapters/dynamodb-job-store';
import type { SfnRegistrations } from '../../adapters/step-functions';
import { ConflictError, LeaseLostError } from '../../core/errors';
import type { JobStatus } from '../../core/job';
import type { SweepPolicy } from '../../core/lease';
import { decideSweep } from '../../core/lease';
import {
  artifactLocation,
  decideRegistration,
  type RegistrationPolicy,
  type RegistrationTarget,
  registrationExecutionName,
  registrationInput,
} from '../../core/registration';
import { planTransition } from '../../core/transitions';
import type { JobDispatcher } from '../api/ports';
import { type AutoGateDeps, runAutoGate } from '../gate/auto-gate';

export type SweeperStore = Pick<
  DynamoJobStore,
  'listByStatus' | 'apply' | 'markDispatched' | 'replaceRegistration'
>;

/** What the sweeper needs to restart registrations whose execution died. */
export interface RegistrationRecovery {
  registrations: Pick<SfnRegistrations, 'start' | 'status'>;
  policy: RegistrationPolicy;
  target: RegistrationTarget;
}

export interface SweepDeps {
  store: SweeperStore;
  dispatcher: JobDispatcher;
  policy: SweepPolicy;
  /** Upper bound on jobs looked at per status per run, so one run stays short. */
  maxJobsPerStatus: number;
  /** Absent where no register workflow is deployed. */
  registration?: RegistrationRecovery;
  /** Admits waiting auto rebuilds and frees finished ones' slots; absent where there is no cap. */
  autoGate?: AutoGateDeps;
}

export interface SweepReport {
  dispatched: string[];
  requeued: string[];
  failed: string[];
  cancelled: string[];
  registrationsRestarted: string[];
  autoAdmitted: string[];
  /** Jobs another writer changed while the sweeper looked at them. */
  skipped: number;
}

const SWEPT: readonly JobStatus[] = ['QUEUED', 'RUNNING', 'UPLOADING'];

/**
 * The safety net behind "no job is lost": sends jobs whose enqueue never happened (a crash
 * between the job write and the send) and recovers jobs whose agent vanished with the lease.
 */
export async function sweep(deps: SweepDeps, now: Date): Promise<SweepReport> {
  const report: SweepReport = {
    dispatched: [],
    requeued: [],
    failed: [],
    cancelled: [],
    registrationsRestarted: [],
    autoAdmitted: [],
    skipped: 0,
  };
  for (const status of SWEPT) {
    let seen = 0;
    let nextToken: string | undefined;
    do {
      const page = await deps.store.listByStatus(status, 100, nextToken);
      nextToken = page.nextToken;
      for (const job of page.items) {
        seen += 1;
        const decision = decideSweep(job, now, deps.policy);
        try {
          if (decision.action === 'dispatch') {
            await deps.dispatcher.dispatch(job);
            await deps.store.markDispatched(job.jobId, now);
            report.dispatched.push(job.jobId);
          } else if (decision.action === 'requeue') {
            const queued = await deps.store.apply(
              planTransition(job, { to: 'QUEUED', reason: decision.reason }, now),
            );
            await deps.dispatcher.dispatch(queued);
            await deps.store.markDispatched(queued.jobId, now);
            report.requeued.push(job.jobId);
          } else if (decision.action === 'cancel') {
            await deps.store.apply(planTransition(job, { to: 'CANCELLED', reason: decision.reason }, now));
            report.cancelled.push(job.jobId);
          } else if (decision.action === 'fail') {
            await deps.store.apply(
              planTransition(
                job,
                {
                  to: 'FAILED',
                  reason: decision.reason,
                  error: { code: 'AGENT_LOST', message: decision.reason },
                },
                now,
              ),
            );
            report.failed.push(job.jobId);
          }
        } catch (error) {
          if (error instanceof ConflictError || error instanceof LeaseLostError) report.skipped += 1;
          else throw error;
        }
      }
    } while (nextToken && seen < deps.maxJobsPerStatus);
  }
  if (deps.registration) await sweepRegistrations(deps, deps.registration, now, report);
  if (deps.autoGate) report.autoAdmitted.push(...(await runAutoGate(deps.autoGate, now)).admitted);
  return report;
}

async function sweepRegistrations(
  deps: SweepDeps,
  recovery: RegistrationRecovery,
  now: Date,
  report: SweepReport,
) {
  let seen = 0;
  let nextToken: string | undefined;
  do {
    const page = await deps.store.listByStatus('REGISTERING', 100, nextToken);
    nextToken = page.nextToken;
    for (const job of page.items) {
      seen += 1;
      const current = job.registration;
      const status = current ? await recovery.registrations.status(current.executionName) : 'MISSING';
      const decision = decideRegistration(job, status, now, recovery.policy);
      try {
        if (decision.action === 'start' && job.artifact) {
          const executionName = registrationExecutionName(job.jobId, decision.attempt);
          await deps.store.replaceRegistration(
            job.jobId,
            current?.executionName,
            { executionName, attempt: decision.attempt, startedAt: now.toISOString() },
            now,
          );
          const input = registrationInput(job, artifactLocation(job.artifact.uri), recovery.target, now);
          await recovery.registrations.start(executionName, input);
          report.registrationsRestarted.push(job.jobId);
        } else if (decision.action === 'fail' || (decision.action === 'start' && !job.artifact)) {
          const reason = decision.action === 'fail' ? decision.reason : 'registering without an artifact';
          await deps.store.apply(
            planTransition(
              job,
              { to: 'FAILED', reason, error: { code: 'REGISTER_FAILED', message: reason } },
              now,
            ),
          );
          report.failed.push(job.jobId);
        }
      } catch (error) {
        if (error instanceof ConflictError || error instanceof LeaseLostError) report.skipped += 1;
        else throw error;
      }
    }
  } while (nextToken && seen < deps.maxJobsPerStatus);
}
