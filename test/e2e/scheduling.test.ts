import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobBody } from '../../local/client';
import { ARM, type E2EStack, scriptJob, startE2EStack, X86 } from '../support/local';

const quick = (extra: Record<string, unknown>) => scriptJob('head -c 1024 /dev/urandom > image.raw', extra);

function startOf(job: JobBody): number {
  return Date.parse(job.history.find((h) => h.status === 'RUNNING')?.at ?? '');
}

/** Intervals in which a job was building: from each RUNNING to the next status out of the build stages. */
function buildIntervals(job: JobBody): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let from: number | undefined;
  for (const h of job.history) {
    const at = Date.parse(h.at);
    if (h.status === 'RUNNING') from = at;
    else if (from !== undefined && h.status !== 'UPLOADING') {
      out.push([from, at]);
      from = undefined;
    }
  }
  return out;
}

function peakOverlap(intervals: Array<[number, number]>): number {
  const points = intervals.flatMap(([a, b]) => [
    [a, 1],
    [b, -1],
  ]);
  points.sort((x, y) => (x[0] as number) - (y[0] as number) || (x[1] as number) - (y[1] as number));
  let now = 0;
  let peak = 0;
  for (const [, d] of points) {
    now += d as number;
    peak = Math.max(peak, now);
  }
  return peak;
}

describe('priorities: one agent, a backlog of every class', () => {
  let stack: E2EStack;
  beforeAll(async () => {
    stack = await startE2EStack({ registration: false });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('starts follow priority, and the lowest class still gets its minimum share', async () => {
    const ids: Record<string, string[]> = { high: [], normal: [], low: [] };
    for (let i = 0; i < 20; i += 1) {
      for (const priority of ['low', 'normal', 'high'] as const) {
        ids[priority]?.push(
          (await stack.alice.submit(quick({ priority, name: `${priority}-${i}` }))).body.jobId,
        );
      }
    }
    stack.fleet.spawn(X86);
    const jobs = await Promise.all(
      Object.values(ids)
        .flat()
        .map((id) => stack.alice.waitFor(id, undefined, 120_000)),
    );
    expect(jobs.every((j) => j.status === 'SUCCEEDED')).toBe(true);
    const starts = [...jobs].sort((a, b) => startOf(a) - startOf(b)).map((j) => j.priority as string);
    // Saturated while every class still had work queued: up to the first class to run out.
    const lastOf = (p: string) => starts.lastIndexOf(p);
    const saturated = starts.slice(0, Math.min(lastOf('high'), lastOf('normal'), lastOf('low')) + 1);
    expect(saturated.length).toBeGreaterThanOrEqual(20);
    expect(starts.slice(0, 5)).toEqual(['high', 'high', 'high', 'high', 'high']);
    const share = (p: string) => saturated.filter((s) => s === p).length / saturated.length;
    expect(share('high')).toBeGreaterThan(share('normal'));
    expect(share('normal')).toBeGreaterThanOrEqual(0.2);
    expect(share('low')).toBeGreaterThanOrEqual(0.1);
  }, 150_000); // 60 builds on one agent, one after another: longer than the default timeout on a busy machine
});

describe('auto rebuilds are capped fleet-wide; pools and architectures', () => {
  let stack: E2EStack;
  beforeAll(async () => {
    stack = await startE2EStack({ registration: false, config: { autoBuildCap: 3 } });
    for (let i = 0; i < 5; i += 1) stack.fleet.spawn(X86);
    stack.fleet.spawn(ARM);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('50 auto jobs with a cap of 3: at most and at peak exactly 3 build at once; explicit jobs keep starting', async () => {
    const build = 'sleep 0.4\nhead -c 1024 /dev/urandom > image.raw';
    const autos = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        stack.alice
          .submit(scriptJob(build, { buildType: 'auto', name: `rebuild-${i}` }))
          .then((r) => r.body.jobId),
      ),
    );
    const explicit = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        stack.alice.submit(scriptJob(build, { name: `explicit-${i}` })).then((r) => r.body.jobId),
      ),
    );
    const autoJobs = await Promise.all(autos.map((id) => stack.alice.waitFor(id, undefined, 180_000)));
    const explicitJobs = await Promise.all(explicit.map((id) => stack.alice.waitFor(id, undefined, 180_000)));
    expect(autoJobs.map((j) => j.status)).toEqual(autoJobs.map(() => 'SUCCEEDED'));
    expect(explicitJobs.map((j) => j.status)).toEqual(explicitJobs.map(() => 'SUCCEEDED'));
    expect(peakOverlap(autoJobs.flatMap(buildIntervals))).toBe(3);
    // Explicit jobs did not wait behind the auto backlog: all started before the last auto job did.
    const lastAutoStart = Math.max(...autoJobs.map(startOf));
    for (const job of explicitJobs) expect(startOf(job)).toBeLessThan(lastAutoStart);
    expect(autoJobs.every((j) => j.attempts === 1)).toBe(true);
  }, 200_000); // its own waits allow 180 s

  it('an aarch64 job starts only on the aarch64 pool’s agent; a job no pool serves is refused naming the pools', async () => {
    const { body } = await stack.alice.submit({ ...quick({}), arch: 'aarch64' });
    const done = await stack.alice.waitFor(body.jobId);
    expect(done.status).toBe('SUCCEEDED');
    expect(done.pool).toBe(ARM);
    const armAgents = stack.fleet.list(ARM).map((a) => a.agentId);
    expect(armAgents.length).toBe(1);
    const claimedBy = done.history.filter((h) => h.status === 'RUNNING').map((h) => h.by);
    expect(claimedBy).toEqual(armAgents);
    const refused = await stack.alice.submit({ ...quick({}), labels: { gpu: 'a100' } });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toContain('general-x86_64 (x86_64)');
    expect(JSON.stringify(refused.body)).toContain('general-aarch64 (aarch64)');
  });
});
