import type { KilnConfig, PoolConfig } from './config';
import { ValidationError } from './errors';
import type { Job, JobSpec } from './job';

/**
 * Picks the pool for a job: the named one, or the first pool of the job's architecture whose
 * labels include all of the job's. Refuses at once, naming the pools, a job no pool can serve.
 */
export function resolvePool(spec: JobSpec, config: Pick<KilnConfig, 'pools'>): PoolConfig {
  const describe = () => config.pools.map((p) => `${p.name} (${p.arch})`).join(', ');
  const labels = spec.labels ?? {};
  const matchesLabels = (p: PoolConfig) => Object.entries(labels).every(([k, v]) => p.labels[k] === v);
  if (spec.pool !== undefined) {
    const pool = config.pools.find((p) => p.name === spec.pool);
    if (!pool) throw new ValidationError(`pool: no pool named "${spec.pool}"; the pools are ${describe()}`);
    if (pool.arch !== spec.arch && !spec.allowEmulation) {
      throw new ValidationError(
        `pool: "${pool.name}" runs ${pool.arch}, the job is ${spec.arch}; the pools are ${describe()}`,
      );
    }
    if (!matchesLabels(pool)) {
      throw new ValidationError(
        `labels: pool "${pool.name}" does not carry all of the job's labels; the pools are ${describe()}`,
      );
    }
    return pool;
  }
  const native = config.pools.filter((p) => p.arch === spec.arch && matchesLabels(p));
  // Emulation only when asked for and only when no native pool fits: it is an order of magnitude slower.
  const candidates = native.length > 0 || !spec.allowEmulation ? native : config.pools.filter(matchesLabels);
  const [first] = candidates;
  if (!first) {
    throw new ValidationError(
      `no pool runs ${spec.arch} jobs with labels ${JSON.stringify(labels)}; the pools are ${describe()}`,
    );
  }
  return first;
}

export interface NewJobContext {
  jobId: string;
  owner: string;
  pool: string;
  requestHash: string;
  idempotencyKey?: string;
  defaultTimeoutSeconds: number;
  now: Date;
}

export function newJob(spec: JobSpec, ctx: NewJobContext): Job {
  const at = ctx.now.toISOString();
  return {
    ...spec,
    jobId: ctx.jobId,
    owner: ctx.owner,
    pool: ctx.pool,
    timeoutSeconds: spec.timeoutSeconds ?? ctx.defaultTimeoutSeconds,
    targets: spec.targets ?? [],
    labels: spec.labels ?? {},
    status: 'QUEUED',
    createdAt: at,
    updatedAt: at,
    attempts: 0,
    handBacks: 0,
    requestHash: ctx.requestHash,
    ...(ctx.idempotencyKey ? { idempotencyKey: ctx.idempotencyKey } : {}),
    images: [],
    history: [{ status: 'QUEUED', at, attempt: 0, reason: 'submitted' }],
  };
}

/** The public view of a job: internal bookkeeping stays out of API responses. */
export function jobView(
  job: Job,
): Omit<Job, 'requestHash' | 'lease' | 'idempotencyKey'> & { leaseHolder?: string } {
  const { requestHash: _h, lease, idempotencyKey: _k, ...rest } = job;
  return lease ? { ...rest, leaseHolder: lease.holder } : rest;
}
