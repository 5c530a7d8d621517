import { InvalidTransitionError } from './errors';
import type { HistoryEntry, Job, JobError, JobStatus } from './job';

/**
 * The job state machine. RUNNING/UPLOADING → QUEUED is the way back for a job whose agent lost
 * its lease or handed it back; every other edge moves forward.
 */
const ALLOWED: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  QUEUED: ['RUNNING', 'CANCELLED', 'FAILED'],
  RUNNING: ['UPLOADING', 'QUEUED', 'FAILED', 'CANCELLED', 'TIMED_OUT'],
  UPLOADING: ['REGISTERING', 'SUCCEEDED', 'QUEUED', 'FAILED', 'CANCELLED'],
  REGISTERING: ['SUCCEEDED', 'FAILED'],
  SUCCEEDED: ['EXPIRED'],
  FAILED: [],
  CANCELLED: [],
  TIMED_OUT: [],
  EXPIRED: [],
};

export const TERMINAL_STATUSES: readonly JobStatus[] = [
  'SUCCEEDED',
  'FAILED',
  'CANCELLED',
  'TIMED_OUT',
  'EXPIRED',
];

/** Statuses in which an agent holds a lease on the job. */
export const LEASED_STATUSES: readonly JobStatus[] = ['RUNNING', 'UPLOADING'];

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return ALLOWED[from].includes(to);
}

export function allowedTransitions(from: JobStatus): readonly JobStatus[] {
  return ALLOWED[from];
}

export interface TransitionRequest {
  to: JobStatus;
  /** Why, in words a person can act on; stored in the history and, for failures, the error. */
  reason?: string;
  error?: JobError;
  /** The lease holder making the change, for transitions out of a leased status. */
  holder?: string;
  /** Fields the caller sets along with the status (artifact, images, lease…). */
  set?: Partial<
    Pick<
      Job,
      | 'artifact'
      | 'images'
      | 'lease'
      | 'attempts'
      | 'handBacks'
      | 'startedAt'
      | 'dispatchedAt'
      | 'registration'
    >
  >;
  /** Clear the lease (leaving a leased status). */
  clearLease?: boolean;
}

/**
 * What a store must write for one transition: the expected current state (and lease holder) to
 * compare against, and the new field values. Pure; the store turns it into one conditional write.
 */
export interface TransitionPlan {
  jobId: string;
  owner: string;
  from: JobStatus;
  to: JobStatus;
  expectHolder?: string;
  set: Partial<Job>;
  remove: Array<keyof Job>;
  history: HistoryEntry;
}

export function planTransition(job: Job, request: TransitionRequest, now: Date): TransitionPlan {
  const { to } = request;
  if (!canTransition(job.status, to)) {
    throw new InvalidTransitionError(
      `job ${job.jobId} is ${job.status} and cannot become ${to} (allowed: ${ALLOWED[job.status].join(', ') || 'none'})`,
    );
  }
  const at = now.toISOString();
  const set: Partial<Job> = { ...request.set, status: to, updatedAt: at };
  const remove: Array<keyof Job> = [];
  // EXPIRED is terminal too, but the job finished when it succeeded: keep that time.
  if (isTerminal(to) && !job.finishedAt) {
    set.finishedAt = at;
  }
  if (request.error) set.error = request.error;
  const leaving = LEASED_STATUSES.includes(job.status) && !LEASED_STATUSES.includes(to);
  if (request.clearLease || leaving) {
    remove.push('lease');
    delete set.lease;
  }
  if (to === 'QUEUED') {
    // A requeued job needs a new message; until it is sent the sweeper treats it as undispatched.
    remove.push('dispatchedAt');
    delete set.dispatchedAt;
  }
  const expectHolder = LEASED_STATUSES.includes(job.status)
    ? (request.holder ?? job.lease?.holder)
    : undefined;
  const history: HistoryEntry = {
    status: to,
    at,
    attempt: request.set?.attempts ?? job.attempts,
    ...(request.reason ? { reason: request.reason } : {}),
    ...(request.holder ? { by: request.holder } : {}),
  };
  return {
    jobId: job.jobId,
    owner: job.owner,
    from: job.status,
    to,
    ...(expectHolder ? { expectHolder } : {}),
    set,
    remove,
    history,
  };
}

/** Applies a plan to an in-memory job (used by in-memory stores and by tests). */
export function applyPlan(job: Job, plan: TransitionPlan): Job {
  const next: Job = { ...job, ...plan.set, history: [...job.history, plan.history] };
  for (const key of plan.remove) delete next[key];
  return next;
}
