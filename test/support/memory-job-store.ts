/**
 * An in-memory job store with the semantics of DynamoJobStore (adapters/dynamodb-job-store.ts):
 * every state change is one compare-and-set on the status (and, for a leased job, the lease
 * holder); jobs go in and come out as deep copies, so callers can never change stored state by
 * mutating what they hold. test/contract/job-store.contract.ts checks both stores alike.
 */
import { ConflictError, LeaseLostError, ValidationError } from '../../core/errors';
import type { Job, JobStatus } from '../../core/job';
import { applyPlan, LEASED_STATUSES, type TransitionPlan } from '../../core/transitions';
import type { ApiJobStore, CreateResult, ListQuery, Page } from '../../lambdas/api/ports';

/** What both job stores offer: the API's port plus the sweeper's and the agent's extra calls. */
export interface JobStore extends ApiJobStore {
  /** Jobs in one status, oldest change (updatedAt) first. */
  listByStatus(status: JobStatus, limit: number, nextToken?: string): Promise<Page<Job>>;
  /** Extends the lease of `holder` on a leased job; LeaseLostError for anyone else. */
  renewLease(jobId: string, holder: string, expiresAt: number): Promise<Job>;
}

/** A position in a sorted listing: the sort key and id of the last item returned. */
interface Cursor {
  sort: string;
  jobId: string;
}

const copy = <T>(value: T): T => structuredClone(value);

function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify({ m: cursor.sort, j: cursor.jobId })).toString('base64url');
}

function decodeCursor(token: string): Cursor {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const { m, j } = value as Record<string, unknown>;
      if (typeof m === 'string' && typeof j === 'string') return { sort: m, jobId: j };
    }
  } catch {
    // reported below
  }
  throw new ValidationError('nextToken: not a token this API returned; start again without it');
}

function compare(a: Cursor, b: Cursor): number {
  if (a.sort !== b.sort) return a.sort < b.sort ? -1 : 1;
  if (a.jobId !== b.jobId) return a.jobId < b.jobId ? -1 : 1;
  return 0;
}

/** One page of `jobs` ordered by `key`, after the position `nextToken` names. */
function page(
  jobs: Job[],
  key: (job: Job) => string,
  direction: 'ascending' | 'descending',
  limit: number,
  nextToken: string | undefined,
): Page<Job> {
  const sign = direction === 'ascending' ? 1 : -1;
  const cursorOf = (job: Job): Cursor => ({ sort: key(job), jobId: job.jobId });
  const sorted = [...jobs].sort((a, b) => sign * compare(cursorOf(a), cursorOf(b)));
  // An empty token means "from the start", as it does for the DynamoDB store.
  const after = nextToken ? decodeCursor(nextToken) : undefined;
  const rest = after ? sorted.filter((job) => sign * compare(cursorOf(job), after) > 0) : sorted;
  const items = rest.slice(0, Math.max(limit, 0));
  const last = items.at(-1);
  return last && rest.length > items.length
    ? { items: items.map(copy), nextToken: encodeCursor(cursorOf(last)) }
    : { items: items.map(copy) };
}

export class MemoryJobStore implements JobStore {
  private readonly jobs = new Map<string, Job>();

  async create(job: Job): Promise<CreateResult> {
    const existing = this.jobs.get(job.jobId);
    if (existing) return { created: false, job: copy(existing) };
    this.jobs.set(job.jobId, copy(job));
    return { created: true, job: copy(job) };
  }

  async get(jobId: string): Promise<Job | undefined> {
    const job = this.jobs.get(jobId);
    return job ? copy(job) : undefined;
  }

  async listByOwner(owner: string, query: ListQuery): Promise<Page<Job>> {
    const mine = [...this.jobs.values()].filter(
      (job) => job.owner === owner && (query.status === undefined || job.status === query.status),
    );
    // The table's byOwner/byOwnerStatus indexes sort by `${createdAt}#${jobId}`, read newest first.
    return page(mine, (job) => `${job.createdAt}#${job.jobId}`, 'descending', query.limit, query.nextToken);
  }

  async listByStatus(status: JobStatus, limit: number, nextToken?: string): Promise<Page<Job>> {
    const inStatus = [...this.jobs.values()].filter((job) => job.status === status);
    return page(inStatus, (job) => job.updatedAt, 'ascending', limit, nextToken);
  }

  async apply(plan: TransitionPlan): Promise<Job> {
    const job = this.jobs.get(plan.jobId);
    const holds = plan.expectHolder === undefined || job?.lease?.holder === plan.expectHolder;
    if (!job || job.status !== plan.from || !holds) {
      const message = plan.expectHolder
        ? `job ${plan.jobId}: ${plan.from} → ${plan.to} refused, the job is no longer ${plan.from} under lease of ${plan.expectHolder}`
        : `job ${plan.jobId}: ${plan.from} → ${plan.to} refused, the job is no longer ${plan.from}`;
      throw plan.expectHolder ? new LeaseLostError(message) : new ConflictError(message);
    }
    // Like the DynamoDB update, a field the plan leaves undefined keeps its stored value.
    const set = Object.fromEntries(
      Object.entries(plan.set).filter(([, v]) => v !== undefined),
    ) as Partial<Job>;
    const next = applyPlan(job, { ...plan, set });
    this.jobs.set(plan.jobId, copy(next));
    return copy(next);
  }

  async markDispatched(jobId: string, at: Date): Promise<void> {
    const job = this.jobs.get(jobId);
    // Already claimed or cancelled (or unknown): the dispatch mark no longer matters.
    if (job?.status !== 'QUEUED') return;
    job.dispatchedAt = at.toISOString();
  }

  async requestCancel(jobId: string, at: Date): Promise<Job> {
    const job = this.jobs.get(jobId);
    if (!job || !LEASED_STATUSES.includes(job.status)) {
      throw new ConflictError(`job ${jobId} is not running; nothing to cancel`);
    }
    job.cancelRequested = true;
    job.updatedAt = at.toISOString();
    return copy(job);
  }

  async renewLease(jobId: string, holder: string, expiresAt: number): Promise<Job> {
    const job = this.jobs.get(jobId);
    if (!job || !LEASED_STATUSES.includes(job.status) || !job.lease || job.lease.holder !== holder) {
      throw new LeaseLostError(`job ${jobId}: lease of ${holder} is gone`);
    }
    job.lease = { ...job.lease, expiresAt };
    return copy(job);
  }
}
