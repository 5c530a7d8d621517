import { createHash, randomUUID } from 'node:crypto';
import type { KilnConfig } from '../../core/config';
import { ConflictError, IdempotencyKeyReusedError, NotFoundError, ValidationError } from '../../core/errors';
import {
  JOB_STATUSES,
  type Job,
  type JobStatus,
  LIMITS,
  PRIORITIES,
  type Priority,
  parseJobSpec,
} from '../../core/job';
import { jobView, newJob, resolvePool } from '../../core/submission';
import { isTerminal, LEASED_STATUSES, planTransition } from '../../core/transitions';
import type { ApiJobStore, ArtifactLinks, JobDispatcher, LogReader, QueueDepth, QueueStats } from './ports';

export interface Caller {
  /** The caller's IAM principal ARN (locally: the principal a bearer token stands for). */
  principal: string;
}

export interface JobServiceDeps {
  store: ApiJobStore;
  dispatcher: JobDispatcher;
  logs: LogReader;
  links: ArtifactLinks;
  config: Pick<KilnConfig, 'pools' | 'admins' | 'defaultTimeoutSeconds' | 'autoBuildCap'>;
  clock: () => Date;
  /** Admits auto rebuilds under the fleet-wide cap; without it they are dispatched like any job. */
  admission?: { admit(job: Job, now: Date): Promise<boolean> };
  /** Queue depths for the pools view. */
  queueStats?: QueueStats;
  /** Auto-build slots in use, for the pools view. */
  autoSlots?: { read(): Promise<{ count: number }> };
  /** Reports a failed enqueue; the job stays recorded and the sweeper sends it later. */
  onDispatchError?: (jobId: string, error: unknown) => void;
}

export type JobView = ReturnType<typeof jobView>;

const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{1,128}$/;
const MAX_LOG_CHUNKS_PER_CALL = 50;
const ARTIFACT_URL_SECONDS = 15 * 60;

/** Stable JSON: object keys sorted, so equal specs hash equally whatever the key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * With an Idempotency-Key the job id is derived from (owner, key), so a replay hits the same
 * record and a single conditional put decides who created it: no separate idempotency table.
 */
function jobIdFor(owner: string, idempotencyKey: string | undefined): string {
  if (idempotencyKey === undefined) return `j-${randomUUID().replaceAll('-', '')}`;
  return `j-${sha256Hex(`${owner}\u0000${idempotencyKey}`).slice(0, 32)}`;
}

export function parseStatusFilter(value: string | undefined): JobStatus | undefined {
  if (value === undefined || value === '') return undefined;
  if ((JOB_STATUSES as readonly string[]).includes(value)) return value as JobStatus;
  throw new ValidationError(`status: "${value}" is not a job status; use one of ${JOB_STATUSES.join(', ')}`);
}

export function parseLimit(value: string | undefined, fallback = 20): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > LIMITS.maxListLimit) {
    throw new ValidationError(`limit: must be a whole number from 1 to ${LIMITS.maxListLimit}`);
  }
  return n;
}

export class JobService {
  constructor(private readonly deps: JobServiceDeps) {}

  private visible(job: Job | undefined, caller: Caller, jobId: string): Job {
    // Someone else's job is reported exactly like a missing one, so ids cannot be probed.
    if (!job || (job.owner !== caller.principal && !this.deps.config.admins.includes(caller.principal))) {
      throw new NotFoundError(`job ${jobId} not found`);
    }
    return job;
  }

  async submit(
    caller: Caller,
    body: unknown,
    idempotencyKey?: string,
  ): Promise<{ job: JobView; replayed: boolean }> {
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw new ValidationError(
        'Idempotency-Key: 1 to 128 characters of letters, digits, ".", "_", ":", "-"',
      );
    }
    const spec = parseJobSpec(body);
    const pool = resolvePool(spec, this.deps.config);
    const requestHash = sha256Hex(canonical(spec));
    const job = newJob(spec, {
      jobId: jobIdFor(caller.principal, idempotencyKey),
      owner: caller.principal,
      pool: pool.name,
      requestHash,
      ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
      defaultTimeoutSeconds: this.deps.config.defaultTimeoutSeconds,
      now: this.deps.clock(),
    });
    const result = await this.deps.store.create(job);
    if (!result.created) {
      if (result.job.requestHash !== requestHash) {
        throw new IdempotencyKeyReusedError(
          `Idempotency-Key "${idempotencyKey}" was used for job ${result.job.jobId} with a different body; use a new key for a new job`,
        );
      }
      return { job: jobView(result.job), replayed: true };
    }
    try {
      if (job.buildType === 'auto' && this.deps.admission) {
        // Over the cap it waits undispatched; the gate admits it when a slot frees.
        await this.deps.admission.admit(job, this.deps.clock());
      } else {
        await this.deps.dispatcher.dispatch(job);
        await this.deps.store.markDispatched(job.jobId, this.deps.clock());
      }
    } catch (error) {
      // The job is durably QUEUED without `dispatchedAt`; the sweeper enqueues it.
      this.deps.onDispatchError?.(job.jobId, error);
    }
    return { job: jobView(job), replayed: false };
  }

  async get(caller: Caller, jobId: string): Promise<JobView> {
    return jobView(this.visible(await this.deps.store.get(jobId), caller, jobId));
  }

  async list(
    caller: Caller,
    query: { status?: string; limit?: string; nextToken?: string },
  ): Promise<{ items: JobView[]; nextToken?: string }> {
    const status = parseStatusFilter(query.status);
    const page = await this.deps.store.listByOwner(caller.principal, {
      limit: parseLimit(query.limit),
      ...(status ? { status } : {}),
      ...(query.nextToken ? { nextToken: query.nextToken } : {}),
    });
    return page.nextToken
      ? { items: page.items.map(jobView), nextToken: page.nextToken }
      : { items: page.items.map(jobView) };
  }

  async cancel(caller: Caller, jobId: string): Promise<JobView> {
    const job = this.visible(await this.deps.store.get(jobId), caller, jobId);
    const reason = `cancelled by ${caller.principal}`;
    if (job.status === 'QUEUED') {
      try {
        return jobView(
          await this.deps.store.apply(planTransition(job, { to: 'CANCELLED', reason }, this.deps.clock())),
        );
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        // Claimed meanwhile: cancel it as a running job below.
        return this.cancel(caller, jobId);
      }
    }
    if (LEASED_STATUSES.includes(job.status)) {
      return jobView(await this.deps.store.requestCancel(jobId, this.deps.clock()));
    }
    if (isTerminal(job.status)) throw new ConflictError(`job ${jobId} already finished as ${job.status}`);
    throw new ConflictError(`job ${jobId} is ${job.status}; registration in progress cannot be cancelled`);
  }

  /**
   * Build output so far. The cursor is `attempt.seq`: each attempt's output is kept apart, and a
   * reader follows them in order.
   */
  async logs(caller: Caller, jobId: string, cursor: string | undefined) {
    const job = this.visible(await this.deps.store.get(jobId), caller, jobId);
    let attempt = 1;
    let seq = 0;
    if (cursor !== undefined && cursor !== '') {
      const match = /^(\d{1,3})\.(\d{1,8})$/.exec(cursor);
      if (!match) throw new ValidationError('cursor: pass back the nextCursor of a previous response');
      attempt = Number(match[1]);
      seq = Number(match[2]);
    }
    const parts: string[] = [];
    let budget = MAX_LOG_CHUNKS_PER_CALL;
    while (budget > 0 && attempt <= Math.max(job.attempts, 1)) {
      const chunks = await this.deps.logs.readChunks(jobId, attempt, seq, budget);
      for (const c of chunks) parts.push(c.text);
      seq += chunks.length;
      budget -= chunks.length;
      // This attempt has no more output yet: move on only once a later attempt exists (the current
      // one may still be writing).
      if (budget > 0) {
        if (attempt >= job.attempts) break;
        attempt += 1;
        seq = 0;
      }
    }
    const finished = isTerminal(job.status) || job.status === 'REGISTERING';
    return {
      jobId,
      status: job.status,
      text: parts.join(''),
      nextCursor: `${attempt}.${seq}`,
      // Output may still arrive until the job leaves the build stages.
      complete: budget > 0 && finished,
    };
  }

  async artifact(caller: Caller, jobId: string) {
    const job = this.visible(await this.deps.store.get(jobId), caller, jobId);
    if (!job.artifact) throw new ConflictError(`job ${jobId} has no artifact (status ${job.status})`);
    const now = this.deps.clock();
    const url = await this.deps.links.presignDownload(job.artifact, ARTIFACT_URL_SECONDS);
    return {
      jobId,
      url,
      expiresAt: new Date(now.getTime() + ARTIFACT_URL_SECONDS * 1000).toISOString(),
      ...job.artifact,
    };
  }

  /**
   * Why a job waits: per pool, each class's queue depth, the jobs building now, capacity bounds,
   * and fleet-wide the auto rebuilds waiting for a slot. Counts are fleet-wide, not per caller.
   */
  async pools() {
    const building = new Map<string, number>();
    let autoWaiting = 0;
    for (const status of ['RUNNING', 'UPLOADING', 'QUEUED'] as const) {
      let nextToken: string | undefined;
      do {
        const page = await this.deps.store.listByStatus(status, 100, nextToken);
        for (const job of page.items) {
          if (status === 'QUEUED') {
            if (job.buildType === 'auto' && !job.dispatchedAt) autoWaiting += 1;
          } else {
            building.set(job.pool, (building.get(job.pool) ?? 0) + 1);
          }
        }
        nextToken = page.nextToken;
      } while (nextToken);
    }
    const stats = this.deps.queueStats;
    const pools = await Promise.all(
      this.deps.config.pools.map(async (pool) => {
        const queues: Partial<Record<Priority, QueueDepth>> = {};
        if (stats) {
          for (const priority of PRIORITIES) queues[priority] = await stats.depth(pool.name, priority);
        }
        return {
          name: pool.name,
          arch: pool.arch,
          labels: pool.labels,
          capacity: { min: pool.minCapacity, max: pool.maxCapacity, buildsPerInstance: pool.concurrency },
          queues,
          building: building.get(pool.name) ?? 0,
        };
      }),
    );
    const slots = this.deps.autoSlots ? await this.deps.autoSlots.read() : undefined;
    return {
      pools,
      autoBuilds: { cap: this.deps.config.autoBuildCap, inUse: slots?.count ?? 0, waiting: autoWaiting },
    };
  }
}
