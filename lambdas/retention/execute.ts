import { ConflictError } from '../../core/errors';
import { isDeletion, type RetentionAction, type RetentionPlan } from '../../core/retention';
import { planTransition } from '../../core/transitions';
import { messageOf } from './inventory';
import type { RetentionPorts } from './ports';

export type StepOutcome = 'deleted' | 'gone' | 'expired' | 'failed' | 'skipped';

export interface StepResult {
  action: RetentionAction;
  outcome: StepOutcome;
  /** Why it failed or was skipped. */
  message?: string;
}

export interface ExecutionReport {
  steps: StepResult[];
  /** Deletions done, counting those already done by an earlier run ("gone"). */
  deleted: number;
  failed: number;
  /** Steps not tried: a step before them in their group failed, or the job changed meanwhile. */
  skipped: number;
  jobsExpired: number;
  /** The signal stopped the run before every step was tried; the next run finishes the work. */
  aborted: boolean;
}

export interface ExecuteOptions {
  now: Date;
  /** Checked before every step: a Lambda near its timeout, or a test simulating a crash. */
  signal?: AbortSignal;
}

/**
 * Applies a plan step by step, in its order. A step that fails stops the rest of its group (an
 * image that will not deregister keeps its snapshots, its artifact and its job), never the other
 * groups. "Already gone" counts as done, so a run repeated after a crash finishes quietly.
 */
export async function executePlan(
  plan: RetentionPlan,
  ports: RetentionPorts,
  options: ExecuteOptions,
): Promise<ExecutionReport> {
  const report: ExecutionReport = {
    steps: [],
    deleted: 0,
    failed: 0,
    skipped: 0,
    jobsExpired: 0,
    aborted: false,
  };
  const stopped = new Set<string>();
  for (const action of plan.actions) {
    if (options.signal?.aborted) {
      report.aborted = true;
      break;
    }
    if (stopped.has(action.group)) {
      report.skipped += 1;
      report.steps.push({ action, outcome: 'skipped', message: 'an earlier step of its group failed' });
      continue;
    }
    let result: StepResult;
    try {
      result = await step(action, ports, options.now);
    } catch (error) {
      result = { action, outcome: 'failed', message: messageOf(error) };
    }
    report.steps.push(result);
    if (result.outcome === 'failed' || result.outcome === 'skipped') stopped.add(action.group);
    if (result.outcome === 'failed') report.failed += 1;
    if (result.outcome === 'skipped') report.skipped += 1;
    if (isDeletion(action) && (result.outcome === 'deleted' || result.outcome === 'gone'))
      report.deleted += 1;
    if (result.outcome === 'expired') report.jobsExpired += 1;
  }
  return report;
}

async function step(action: RetentionAction, ports: RetentionPorts, now: Date): Promise<StepResult> {
  switch (action.kind) {
    case 'deregister-image': {
      // The mark goes first: if this run dies after the deregistration, the next one knows the
      // snapshots left behind are its own unfinished work, however young they are.
      await ports.images.markExpiring(action.region, [action.imageId, ...action.snapshotIds], now);
      return { action, outcome: await ports.images.deregisterImage(action.region, action.imageId) };
    }
    case 'delete-snapshot':
      return { action, outcome: await ports.images.deleteSnapshot(action.region, action.snapshotId) };
    case 'delete-artifact':
      return { action, outcome: await ports.artifacts.delete(action.key) };
    case 'expire-job':
      return expireJob(action, ports, now);
  }
}

async function expireJob(
  action: Extract<RetentionAction, { kind: 'expire-job' }>,
  ports: RetentionPorts,
  now: Date,
): Promise<StepResult> {
  const job = await ports.jobs.get(action.jobId);
  if (!job) return { action, outcome: 'gone', message: 'the job record is gone' };
  if (job.status === 'EXPIRED') return { action, outcome: 'gone', message: 'already EXPIRED' };
  if (job.status !== 'SUCCEEDED') {
    return { action, outcome: 'skipped', message: `the job is ${job.status}, not SUCCEEDED` };
  }
  try {
    await ports.jobs.apply(
      planTransition(job, { to: 'EXPIRED', reason: `retention: ${action.detail}` }, now),
    );
    return { action, outcome: 'expired' };
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    // Another run got there first, or the job changed: look again rather than guess.
    const again = await ports.jobs.get(action.jobId);
    if (again?.status === 'EXPIRED') return { action, outcome: 'gone', message: 'EXPIRED by another run' };
    return { action, outcome: 'skipped', message: `the job is ${again?.status ?? 'gone'}, not SUCCEEDED` };
  }
}
