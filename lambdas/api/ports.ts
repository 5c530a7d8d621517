import type { Artifact, Job, JobStatus, Priority } from '../../core/job';
import type { TransitionPlan } from '../../core/transitions';

export interface Page<T> {
  items: T[];
  nextToken?: string;
}

export interface ListQuery {
  status?: JobStatus;
  limit: number;
  nextToken?: string;
}

export type CreateResult = { created: true; job: Job } | { created: false; job: Job };

/** What the API needs from the jobs table. */
export interface ApiJobStore {
  /** Writes a new job unless one with the same id exists, in which case it returns that one. */
  create(job: Job): Promise<CreateResult>;
  get(jobId: string): Promise<Job | undefined>;
  listByOwner(owner: string, query: ListQuery): Promise<Page<Job>>;
  /** Jobs in one status, oldest change first (sweeper, pools view). */
  listByStatus(status: JobStatus, limit: number, nextToken?: string): Promise<Page<Job>>;
  /** Applies a transition as one compare-and-set write; throws ConflictError/LeaseLostError. */
  apply(plan: TransitionPlan): Promise<Job>;
  /** Records that the job's message was sent (only while still QUEUED). */
  markDispatched(jobId: string, at: Date): Promise<void>;
  /** Flags a leased job for cancellation; the agent holding it sees the flag on its next heartbeat. */
  requestCancel(jobId: string, at: Date): Promise<Job>;
}

/** Sends a job's message to the queue of its pool and priority. */
export interface JobDispatcher {
  dispatch(job: Pick<Job, 'jobId' | 'pool' | 'priority'>): Promise<void>;
}

export interface LogChunk {
  attempt: number;
  seq: number;
  text: string;
}

export interface LogReader {
  /** One attempt's chunks from `fromSeq` on, at most `max`, contiguous; stops at the first missing one. */
  readChunks(jobId: string, attempt: number, fromSeq: number, max: number): Promise<LogChunk[]>;
}

export interface ArtifactLinks {
  presignDownload(artifact: Artifact, expiresInSeconds: number): Promise<string>;
}

export interface QueueDepth {
  /** Messages waiting to be received. */
  visible: number;
  /** Messages received and not yet deleted (jobs being claimed or run). */
  inFlight: number;
}

/** Queue depth of a pool's class queue, for the pools view. */
export interface QueueStats {
  depth(pool: string, priority: Priority): Promise<QueueDepth>;
}
