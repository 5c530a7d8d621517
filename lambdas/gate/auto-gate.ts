import type { DynamoJobStore } from '../../adapters/dynamodb-job-store';
import type { DynamoSemaphore } from '../../adapters/dynamodb-semaphore';
import {
  AUTO_BUILDS,
  admissionOrder,
  autoHolder,
  holdsAutoSlot,
  isWaitingAuto,
  jobIdOfHolder,
} from '../../core/admission';
import type { Job } from '../../core/job';
import type { JobDispatcher } from '../api/ports';

export interface AutoGateDeps {
  store: Pick<DynamoJobStore, 'get' | 'listByStatus' | 'markDispatched'>;
  dispatcher: JobDispatcher;
  semaphore: Pick<DynamoSemaphore, 'acquire' | 'release' | 'read'>;
  cap: number;
}

/**
 * Auto rebuilds can swamp the fleet, so they reach their queue only while they hold one of `cap`
 * fleet-wide slots. A job over the cap waits in the jobs table (QUEUED, not dispatched), where it
 * burns no SQS receives and so no retries; the gate admits it when a slot frees.
 */
export async function admit(deps: AutoGateDeps, job: Job, now: Date): Promise<boolean> {
  if (!(await deps.semaphore.acquire(AUTO_BUILDS, autoHolder(job.jobId), deps.cap, now))) return false;
  await deps.dispatcher.dispatch(job);
  await deps.store.markDispatched(job.jobId, now);
  return true;
}

export interface GateReport {
  released: string[];
  admitted: string[];
  waiting: number;
}

/** Frees the slots of auto jobs that left the build stages, then admits waiting ones in order. */
export async function runAutoGate(deps: AutoGateDeps, now: Date): Promise<GateReport> {
  const report: GateReport = { released: [], admitted: [], waiting: 0 };
  const { holders } = await deps.semaphore.read(AUTO_BUILDS);
  for (const holder of holders) {
    const jobId = jobIdOfHolder(holder);
    const job = jobId ? await deps.store.get(jobId) : undefined;
    if (!holdsAutoSlot(job) && (await deps.semaphore.release(AUTO_BUILDS, holder)))
      report.released.push(holder);
  }
  const waiting: Job[] = [];
  let nextToken: string | undefined;
  do {
    const page = await deps.store.listByStatus('QUEUED', 100, nextToken);
    waiting.push(...page.items.filter(isWaitingAuto));
    nextToken = page.nextToken;
  } while (nextToken);
  const ordered = admissionOrder(waiting);
  for (const job of ordered) {
    if (!(await admit(deps, job, now))) break;
    report.admitted.push(job.jobId);
  }
  report.waiting = ordered.length - report.admitted.length;
  return report;
}
