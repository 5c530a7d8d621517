import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from '../../core/job';
import type { JobBody } from '../../local/client';
import { type E2EStack, scriptJob, startE2EStack, X86 } from '../support/local';

/** The HTTP API against the emulators, through the same handlers a Lambda runs; no agents. */
describe('HTTP API', () => {
  let stack: E2EStack;

  const countJobs = async () => {
    const out = await stack.clients.documents.send(
      new ScanCommand({ TableName: stack.state.tableName, Select: 'COUNT' }),
    );
    return out.Count ?? 0;
  };

  beforeAll(async () => {
    stack = await startE2EStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('submit → 202 QUEUED with defaults, get → the job, and one message on the pool queue', async () => {
    const before = await stack.queueDepth(X86);
    const res = await stack.alice.submit(scriptJob('true'));
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      status: 'QUEUED',
      buildType: 'explicit',
      priority: 'normal',
      pool: X86,
    });
    expect(res.body.jobId).toMatch(/^j-[0-9a-f]{32}$/);
    const got = await stack.alice.get(res.body.jobId);
    expect(got.status).toBe(200);
    expect(got.body.owner).toBe(stack.state.principals.alice);
    expect(got.body).not.toHaveProperty('requestHash');
    expect(await stack.queueDepth(X86)).toBe(before + 1);
  });

  it('owner isolation: B gets 404 for A’s job, cannot cancel it, and does not list it', async () => {
    const { body: job } = await stack.alice.submit(scriptJob('true'));
    expect((await stack.bob.get(job.jobId)).status).toBe(404);
    expect((await stack.bob.cancel(job.jobId)).status).toBe(404);
    expect((await stack.bob.request('GET', `/jobs/${job.jobId}/logs`)).status).toBe(404);
    expect((await stack.bob.request('GET', `/jobs/${job.jobId}/artifact`)).status).toBe(404);
    const listed = await stack.bob.request<{ items: JobBody[] }>('GET', '/jobs?limit=100');
    expect(listed.body.items.map((j) => j.jobId)).not.toContain(job.jobId);
    expect((await stack.alice.get(job.jobId)).body.status).toBe('QUEUED');
  });

  it('Idempotency-Key: same key and body → same job; same key, other body → 409; nothing else written', async () => {
    const body = scriptJob('echo one');
    const first = await stack.alice.submit(body, 'release-42');
    const jobs = await countJobs();
    const depth = await stack.queueDepth(X86);
    const again = await stack.alice.submit({ ...body }, 'release-42');
    expect(again.status).toBe(202);
    expect(again.body.jobId).toBe(first.body.jobId);
    const other = await stack.alice.submit(scriptJob('echo two'), 'release-42');
    expect(other.status).toBe(409);
    expect(other.body).toMatchObject({ error: { code: 'IDEMPOTENCY_KEY_REUSED' } });
    expect(await countJobs()).toBe(jobs);
    expect(await stack.queueDepth(X86)).toBe(depth);
    // Keys are per caller: bob's identical key makes bob's own job.
    const bobs = await stack.bob.submit(body, 'release-42');
    expect(bobs.status).toBe(202);
    expect(bobs.body.jobId).not.toBe(first.body.jobId);
  });

  it.each([
    ['wrong type', { ...scriptJob('true'), arch: 64 }, 'arch'],
    ['unknown field', { ...scriptJob('true'), colour: 'red' }, 'colour'],
    [
      'missing field',
      { arch: 'x86_64', recipe: { builder: 'script', script: 'true', artifact: 'a' } },
      'format',
    ],
    ['unknown builder', { ...scriptJob('true'), recipe: { builder: 'packer' } }, 'builder'],
    ['unknown pool', { ...scriptJob('true'), pool: 'gpu' }, 'general-x86_64'],
    ['labels no pool has', { ...scriptJob('true'), labels: { gpu: 'a100' } }, 'general-aarch64'],
  ])('bad input (%s) → 400 naming the problem, nothing written', async (_case, body, mention) => {
    const before = await countJobs();
    const res = await stack.alice.submit(body);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: { code: 'VALIDATION_FAILED' } });
    expect(JSON.stringify(res.body)).toContain(mention);
    expect(await countJobs()).toBe(before);
  });

  it('malformed JSON → 400; oversized body → 413; no credentials → 401', async () => {
    const bad = await stack.alice.request('POST', '/jobs', '{"arch":', {
      'content-type': 'application/json',
    });
    expect(bad.status).toBe(400);
    const big = scriptJob('x'.repeat(LIMITS.maxBodyBytes + 10));
    const res = await stack.alice.submit(big);
    expect(res.status).toBe(413);
    expect(res.body).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
    const anonymous = await fetch(`${stack.state.apiUrl}/jobs`);
    expect(anonymous.status).toBe(401);
  });

  it('list: newest first, paginated with nextToken, filtered by status', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1)
      ids.push((await stack.bob.submit({ ...scriptJob('true'), arch: 'aarch64', name: `p${i}` })).body.jobId);
    await stack.bob.cancel(ids[1] as string);
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await stack.bob.request<{ items: JobBody[]; nextToken?: string }>(
        'GET',
        `/jobs?limit=2${token ? `&nextToken=${encodeURIComponent(token)}` : ''}`,
      );
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.items.map((j) => j.jobId));
      token = page.body.nextToken;
    } while (token);
    const mine = seen.filter((id) => ids.includes(id));
    expect(mine).toEqual([...ids].reverse());
    const cancelled = await stack.bob.request<{ items: JobBody[] }>('GET', '/jobs?status=CANCELLED');
    expect(cancelled.body.items.map((j) => j.jobId)).toEqual([ids[1]]);
    expect((await stack.bob.request('GET', '/jobs?status=DONE')).status).toBe(400);
    expect((await stack.bob.request('GET', '/jobs?limit=0')).status).toBe(400);
    expect((await stack.bob.request('GET', '/jobs?nextToken=garbage')).status).toBe(400);
  });

  it('a queued job: logs are empty and incomplete, the artifact is 409; unknown ids 404, malformed ids 400', async () => {
    const { body: job } = await stack.alice.submit(scriptJob('true'));
    const logs = await stack.alice.logs(job.jobId);
    expect(logs.status).toBe(200);
    expect(logs.body).toMatchObject({ text: '', complete: false });
    expect((await stack.alice.artifact(job.jobId)).status).toBe(409);
    expect((await stack.alice.get(`j-${'0'.repeat(32)}`)).status).toBe(404);
    expect((await stack.alice.get('not-a-job')).status).toBe(400);
  });

  it('GET /pools shows each pool’s queue depth per class, builds running, capacity and the auto cap', async () => {
    const before = await stack.alice.request<{
      pools: Array<{ name: string; queues: Record<string, { visible: number }> }>;
    }>('GET', '/pools');
    const armBefore = before.body.pools.find((p) => p.name === 'general-aarch64')?.queues.high?.visible ?? 0;
    await stack.alice.submit({ ...scriptJob('true'), arch: 'aarch64', priority: 'high' });
    await stack.alice.submit({ ...scriptJob('true'), arch: 'aarch64', priority: 'high' });
    const res = await stack.bob.request<{
      pools: Array<{
        name: string;
        arch: string;
        capacity: { min: number; max: number };
        building: number;
        queues: Record<string, { visible: number; inFlight: number }>;
      }>;
      autoBuilds: { cap: number; inUse: number; waiting: number };
    }>('GET', '/pools');
    expect(res.status).toBe(200);
    expect(res.body.pools.map((p) => p.name)).toEqual(['general-x86_64', 'general-aarch64']);
    const arm = res.body.pools.find((p) => p.name === 'general-aarch64');
    expect(arm?.queues.high?.visible).toBe(armBefore + 2);
    expect(Object.keys(arm?.queues ?? {})).toEqual(['high', 'normal', 'low']);
    expect(arm).toMatchObject({ arch: 'aarch64', capacity: { min: 0, max: 10 }, building: 0 });
    expect(res.body.autoBuilds.cap).toBe(5);
    expect((await fetch(`${stack.state.apiUrl}/pools`)).status).toBe(401);
  });
});
