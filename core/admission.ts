import type { Job, JobStatus } from './job';
import { PRIORITIES } from './job';

/** The fleet-wide semaphore that caps concurrent auto rebuilds. */
export const AUTO_BUILDS = 'auto-builds';

export function autoHolder(jobId: string): string {
  return `job:${jobId}`;
}

export function jobIdOfHolder(holder: string): string | undefined {
  return holder.startsWith('job:') ? holder.slice(4) : undefined;
}

/** While a job is in one of these, it holds its auto slot (queued in SQS, running or uploading). */
const HOLDING: readonly JobStatus[] = ['QUEUED', 'RUNNING', 'UPLOADING'];

export function holdsAutoSlot(job: Pick<Job, 'status'> | undefined): boolean {
  return job !== undefined && HOLDING.includes(job.status);
}

/** Auto rebuilds waiting for a slot: undispatched, QUEUED, not cancelled. */
export function isWaitingAuto(job: Job): boolean {
  return job.buildType === 'auto' && job.status === 'QUEUED' && !job.dispatchedAt && !job.cancelRequested;
}

/** Admission order: higher priority first, then first come, first served. */
export function admissionOrder(waiting: readonly Job[]): Job[] {
  return [...waiting].sort(
    (a, b) =>
      PRIORITIES.indexOf(a.priority) - PRIORITIES.indexOf(b.priority) ||
      a.createdAt.localeCompare(b.createdAt) ||
      a.jobId.localeCompare(b.jobId),
  );
}
