import { describe, expect, it } from 'vitest';
import type { PoolConfig } from '../../core/config';
import { ValidationError } from '../../core/errors';
import { type JobSpec, parseJobSpec } from '../../core/job';
import { jobView, newJob, resolvePool } from '../../core/submission';

function pool(name: string, arch: PoolConfig['arch'], labels: Record<string, string> = {}): PoolConfig {
  return { name, arch, instanceTypes: ['c7i.large'], minCapacity: 0, maxCapacity: 4, concurrency: 1, labels };
}

const POOLS: PoolConfig[] = [
  pool('x86-general', 'x86_64'),
  pool('x86-gpu', 'x86_64', { gpu: 'true', team: 'ml' }),
  pool('arm-general', 'aarch64'),
  pool('arm-big', 'aarch64', { size: 'big' }),
];
const CONFIG = { pools: POOLS };
const POOL_LIST = 'x86-general (x86_64), x86-gpu (x86_64), arm-general (aarch64), arm-big (aarch64)';

function spec(
  arch: JobSpec['arch'],
  extra: { pool?: string; labels?: Record<string, string>; allowEmulation?: boolean } = {},
): JobSpec {
  return parseJobSpec({
    arch,
    format: 'raw',
    recipe: { builder: 'script', script: 'make', artifact: 'image.raw' },
    ...extra,
  });
}

describe('resolvePool: a job it can place', () => {
  it.each([
    ['a named pool of the right arch', spec('x86_64', { pool: 'x86-gpu' }), 'x86-gpu'],
    [
      'a named pool whose labels include the job labels',
      spec('x86_64', { pool: 'x86-gpu', labels: { gpu: 'true' } }),
      'x86-gpu',
    ],
    ['a named pool of aarch64', spec('aarch64', { pool: 'arm-big' }), 'arm-big'],
    ['the first x86_64 pool when nothing is asked', spec('x86_64'), 'x86-general'],
    ['the first aarch64 pool when nothing is asked', spec('aarch64'), 'arm-general'],
    ['the pool carrying a subset label', spec('x86_64', { labels: { gpu: 'true' } }), 'x86-gpu'],
    [
      'the pool carrying all requested labels',
      spec('x86_64', { labels: { gpu: 'true', team: 'ml' } }),
      'x86-gpu',
    ],
    ['an aarch64 pool by label', spec('aarch64', { labels: { size: 'big' } }), 'arm-big'],
  ])('%s', (_what, s, expected) => {
    const chosen = resolvePool(s, CONFIG);
    expect(chosen.name).toBe(expected);
    expect(chosen).toBe(POOLS.find((p) => p.name === expected));
  });

  it.each([
    [
      'a native pool still wins when emulation is allowed',
      spec('aarch64', { allowEmulation: true }),
      'arm-general',
    ],
    [
      'an x86_64 pool, under emulation, when asked for and no aarch64 pool fits',
      spec('aarch64', { allowEmulation: true, labels: { gpu: 'true' } }),
      'x86-gpu',
    ],
    [
      'a named pool of the other arch, when emulation is allowed',
      spec('aarch64', { pool: 'x86-general', allowEmulation: true }),
      'x86-general',
    ],
  ])('emulation: %s', (_what, s, expected) => {
    expect(resolvePool(s, CONFIG).name).toBe(expected);
  });

  it('never places an aarch64 job on an x86_64 pool without allowEmulation', () => {
    expect(() => resolvePool(spec('aarch64', { labels: { gpu: 'true' } }), CONFIG)).toThrow(ValidationError);
    expect(() => resolvePool(spec('aarch64', { pool: 'x86-general' }), CONFIG)).toThrow(
      /runs x86_64, the job is aarch64/,
    );
  });

  it('picks the first matching pool in config order', () => {
    const reversed = { pools: [...POOLS].reverse() };
    expect(resolvePool(spec('x86_64'), reversed).name).toBe('x86-gpu');
    expect(resolvePool(spec('aarch64'), reversed).name).toBe('arm-big');
  });
});

describe('resolvePool: a job no pool can serve', () => {
  it.each([
    ['an unknown named pool', spec('x86_64', { pool: 'nope' }), 'pool: no pool named "nope"'],
    [
      'a named pool of the other arch',
      spec('x86_64', { pool: 'arm-general' }),
      'pool: "arm-general" runs aarch64, the job is x86_64',
    ],
    [
      'a named pool without the job label',
      spec('x86_64', { pool: 'x86-general', labels: { gpu: 'true' } }),
      'labels: pool "x86-general"',
    ],
    [
      'a named pool with another label value',
      spec('x86_64', { pool: 'x86-gpu', labels: { gpu: 'false' } }),
      'labels: pool "x86-gpu"',
    ],
    ['labels no pool carries', spec('x86_64', { labels: { gpu: 'false' } }), 'no pool runs x86_64 jobs'],
    [
      'labels only the other arch carries',
      spec('aarch64', { labels: { gpu: 'true' } }),
      'no pool runs aarch64 jobs',
    ],
    [
      'labels split across pools',
      spec('x86_64', { labels: { gpu: 'true', size: 'big' } }),
      'no pool runs x86_64 jobs',
    ],
  ])('refuses %s with a 400 that names the pools', (_what, s, mentions) => {
    let caught: unknown;
    try {
      resolvePool(s, CONFIG);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    const e = caught as ValidationError;
    expect(e.httpStatus).toBe(400);
    expect(e.message).toContain(mentions);
    expect(e.message).toContain(`the pools are ${POOL_LIST}`);
  });

  it('refuses an aarch64 job when only x86_64 pools exist', () => {
    expect(() => resolvePool(spec('aarch64'), { pools: [pool('only', 'x86_64')] })).toThrow(
      /no pool runs aarch64 jobs .*the pools are only \(x86_64\)/,
    );
  });
});

describe('newJob and jobView', () => {
  const now = new Date('2033-01-02T03:04:05.000Z');
  const ctx = {
    jobId: 'j-1',
    owner: 'arn:aws:iam::111122223333:user/carol',
    pool: 'x86-general',
    requestHash: 'hash-1',
    defaultTimeoutSeconds: 1800,
    now,
  };

  it('builds a QUEUED job with defaults filled in and one history entry', () => {
    const job = newJob(spec('x86_64'), ctx);
    expect(job).toMatchObject({
      jobId: 'j-1',
      owner: ctx.owner,
      pool: 'x86-general',
      status: 'QUEUED',
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      timeoutSeconds: 1800,
      targets: [],
      labels: {},
      attempts: 0,
      handBacks: 0,
      images: [],
      requestHash: 'hash-1',
      history: [{ status: 'QUEUED', at: now.toISOString(), attempt: 0, reason: 'submitted' }],
    });
    expect(job).not.toHaveProperty('idempotencyKey');
    expect(job).not.toHaveProperty('dispatchedAt');
  });

  it('keeps the timeout the job asked for and its idempotency key', () => {
    const s = parseJobSpec({
      arch: 'x86_64',
      format: 'raw',
      recipe: { builder: 'script', script: 'make', artifact: 'image.raw' },
      timeoutSeconds: 120,
    });
    const job = newJob(s, { ...ctx, idempotencyKey: 'key-1' });
    expect(job.timeoutSeconds).toBe(120);
    expect(job.idempotencyKey).toBe('key-1');
  });

  it('jobView hides the request hash, idempotency key and lease, showing only the holder', () => {
    const job = {
      ...newJob(spec('x86_64'), { ...ctx, idempotencyKey: 'k' }),
      lease: { holder: 'agent-7', expiresAt: 1 },
    };
    const view = jobView(job);
    expect(view).not.toHaveProperty('requestHash');
    expect(view).not.toHaveProperty('idempotencyKey');
    expect(view).not.toHaveProperty('lease');
    expect(view.leaseHolder).toBe('agent-7');
    expect(jobView(newJob(spec('x86_64'), ctx))).not.toHaveProperty('leaseHolder');
  });
});
