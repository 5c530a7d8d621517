import type { Job, JobError, JobStatus } from './job';

/** EventBridge `source` and `detail-type` of every job event. */
export const JOB_EVENT_SOURCE = 'kiln.jobs';
export const JOB_EVENT_DETAIL_TYPE = 'Kiln Job State Change';

/**
 * The detail of a job event: one per transition, carrying what a subscriber needs to route it
 * (type, pool, outcome) without reading the job. `sequence` orders a job's events.
 */
export interface JobEvent {
  version: 1;
  jobId: string;
  owner: string;
  name?: string;
  buildType: Job['buildType'];
  priority: Job['priority'];
  arch: Job['arch'];
  pool: string;
  status: JobStatus;
  previousStatus?: JobStatus;
  /** Position of this transition in the job's history, from 0 (QUEUED). */
  sequence: number;
  attempt: number;
  at: string;
  reason?: string;
  /** Set on FAILED, TIMED_OUT. */
  error?: JobError;
  artifact?: Job['artifact'];
  images?: Job['images'];
}

/** The event for the job's latest transition. */
export function jobEventOf(job: Job): JobEvent {
  const sequence = job.history.length - 1;
  const entry = job.history[sequence];
  const previous = sequence > 0 ? job.history[sequence - 1] : undefined;
  return {
    version: 1,
    jobId: job.jobId,
    owner: job.owner,
    ...(job.name ? { name: job.name } : {}),
    buildType: job.buildType,
    priority: job.priority,
    arch: job.arch,
    pool: job.pool,
    status: job.status,
    ...(previous ? { previousStatus: previous.status } : {}),
    sequence,
    attempt: entry?.attempt ?? job.attempts,
    at: entry?.at ?? job.updatedAt,
    ...(entry?.reason ? { reason: entry.reason } : {}),
    ...(job.error && (job.status === 'FAILED' || job.status === 'TIMED_OUT') ? { error: job.error } : {}),
    ...(job.status === 'SUCCEEDED' && job.artifact ? { artifact: job.artifact } : {}),
    ...(job.status === 'SUCCEEDED' && job.images.length > 0 ? { images: job.images } : {}),
  };
}
