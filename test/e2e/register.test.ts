import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { StopExecutionCommand } from '@aws-sdk/client-sfn';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEc2Client, makeSfnClient } from '../../adapters/clients';
import { IMPORT_SLOTS } from '../../infra/definitions';
import { readSemaphore } from '../../lambdas/register/reaper';
import type { JobBody } from '../../local/client';
import { type E2EStack, startE2EStack, waitUntil, X86 } from '../support/local';

const amiJob = (name: string) => ({
  name,
  arch: 'x86_64',
  format: 'raw',
  targets: [{ type: 'aws-ami' }],
  recipe: { builder: 'script', script: 'head -c 262144 /dev/urandom > disk.raw', artifact: 'disk.raw' },
});

/** Active imports at each change, as a step function of time. */
function activeAt(timeline: Array<{ at: number; active: number }>, t: number): number {
  let active = 0;
  for (const p of timeline) {
    if (p.at > t) break;
    active = p.active;
  }
  return active;
}

describe('register: 100 AMI jobs at once, throttled to the account’s 20 imports', () => {
  let stack: E2EStack;
  const failKeys = new Set<string>();

  beforeAll(async () => {
    stack = await startE2EStack({
      config: { importConcurrency: 20 },
      registration: {
        // Imports slower than builds, so registrations queue up behind the limit as in AWS.
        ec2: {
          durations: { pending: 200, active: 12000, jitter: 0.3 },
          failWhen: (task) =>
            task.key && failKeys.has(task.key)
              ? 'ClientError: Disk validation failed [Unsupported specified file format]'
              : undefined,
        },
        timeCompressionMs: 200,
        importPollMs: 50,
      },
    });
    for (let i = 0; i < 4; i += 1) stack.fleet.spawn(X86);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('all 100 end SUCCEEDED with one AMI each; ≤ 20 active imports, ≥ 18 while ≥ 20 wait; no limit errors', async () => {
    const submitted = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        stack.alice.submit(amiJob(`bulk-${i}`)).then((r) => r.body.jobId),
      ),
    );
    const done: JobBody[] = [];
    for (const jobId of submitted) done.push(await stack.alice.waitFor(jobId, undefined, 240_000, 250));
    expect(done.map((j) => j.status)).toEqual(done.map(() => 'SUCCEEDED'));
    for (const job of done) {
      const images = job.images as Array<{ imageId: string; region: string }>;
      expect(images).toHaveLength(1);
      expect(images[0]?.imageId).toMatch(/^ami-[0-9a-f]{17}$/);
    }
    const sim = stack.registration?.ec2;
    if (!sim) throw new Error('no EC2 simulator');
    const stats = sim.stats('us-east-1');
    expect(stats.peakActiveImports).toBeLessThanOrEqual(20);
    expect(stats.limitRejections).toBe(0);
    expect(new Set(sim.images('us-east-1').map((i) => i.name)).size).toBe(sim.images('us-east-1').length);

    // A registration "waits" from REGISTERING until its import ends: queued for a slot or importing.
    // (After the import the slot is free again, whatever the later steps take.)
    const importEnd = new Map(
      sim.importTasks('us-east-1').map((t) => [t.key?.split('/')[1], (t as { endedAt?: number }).endedAt]),
    );
    const spans = done.map((j) => ({
      from: Date.parse(j.history.find((h) => h.status === 'REGISTERING')?.at ?? ''),
      to: importEnd.get(j.jobId) ?? Date.parse(j.finishedAt as string),
    }));
    expect(spans.every((s) => Number.isFinite(s.from) && Number.isFinite(s.to))).toBe(true);
    const events = [
      ...new Set(spans.flatMap((s) => [s.from, s.to]).concat(stats.timeline.map((p) => p.at))),
    ].sort((a, b) => a - b);
    let busy = 0;
    let importSlotMs = 0;
    let atLeast18 = 0;
    for (let i = 0; i + 1 < events.length; i += 1) {
      const [t, next] = [events[i] as number, events[i + 1] as number];
      const waiting = spans.filter((s) => s.from <= t && t < s.to).length;
      if (waiting < 20) continue;
      const active = activeAt(stats.timeline, t);
      busy += next - t;
      importSlotMs += active * (next - t);
      if (active >= 18) atLeast18 += next - t;
    }
    const meanActive = importSlotMs / busy;
    console.log(
      `while ≥ 20 registrations waited (${(busy / 1000).toFixed(1)} s): mean active imports ${meanActive.toFixed(2)}, ≥ 18 for ${((100 * atLeast18) / busy).toFixed(0)}% of the time, peak ${stats.peakActiveImports}`,
    );
    // Registrations did pile up behind the limit, and the semaphore kept the account's imports busy
    // meanwhile. A slot is idle only between an import's end and its execution noticing it (the
    // poll), so the time-weighted mean is what the limit allows minus that poll lag.
    expect(busy).toBeGreaterThan(5_000);
    expect(meanActive).toBeGreaterThanOrEqual(18);
    const slots = await readSemaphore(stack.clients.documents, stack.state.slotsTableName, IMPORT_SLOTS);
    expect(slots).toEqual({ count: 0, holders: [] });
  }, 300_000); // 100 registrations, 20 imports at a time; the first of its waits allows 240 s

  it('an execution stopped mid-import: its slot is reclaimed and the retry makes exactly one AMI', async () => {
    const { body } = await stack.alice.submit(amiJob('stopped-mid-import'));
    const sim = stack.registration?.ec2;
    if (!sim) throw new Error('no EC2 simulator');
    const task = await waitUntil('its import to be active', () =>
      sim.importTasks('us-east-1').find((t) => t.key?.includes(body.jobId) && t.status === 'active'),
    );
    const registering = await stack.alice.waitFor(body.jobId, (j) => j.status === 'REGISTERING');
    const executionName = (registering.registration as { executionName: string }).executionName;
    const sfn = makeSfnClient('us-east-1', stack.registration?.sfnEndpoint);
    await sfn.send(
      new StopExecutionCommand({
        executionArn: `${stack.state.registerStateMachineArn?.replace(':stateMachine:', ':execution:')}:${executionName}`,
        cause: 'test: operator stopped it mid-import',
      }),
    );
    const done = await stack.alice.waitFor(body.jobId, undefined, 60_000);
    expect(done.status).toBe('SUCCEEDED');
    expect((done.registration as { attempt: number }).attempt).toBe(2);
    const ec2 = makeEc2Client('us-east-1', stack.registration?.ec2Endpoint);
    const named = await ec2.send(
      new DescribeImagesCommand({
        Owners: ['self'],
        Filters: [{ Name: 'name', Values: [`kiln-${body.jobId}`] }],
      }),
    );
    expect(named.Images).toHaveLength(1);
    // The retry reused the first attempt's import (same ClientToken), so one import, one snapshot.
    expect(sim.importTasks('us-east-1').filter((t) => t.key?.includes(body.jobId))).toHaveLength(1);
    expect(task.importTaskId).toBeTruthy();
    const slots = await waitUntil('the slot to be free', async () => {
      const s = await readSemaphore(stack.clients.documents, stack.state.slotsTableName, IMPORT_SLOTS);
      return s.count === 0 ? s : undefined;
    });
    expect(slots.holders).toEqual([]);
  });

  it('a failed import: FAILED with the simulator’s error text, slot released', async () => {
    const job = amiJob('failing-import');
    const { body } = await stack.alice.submit(job);
    failKeys.add(`artifacts/${body.jobId}/image.raw`);
    const done = await stack.alice.waitFor(body.jobId, undefined, 60_000);
    expect(done.status).toBe('FAILED');
    expect(done.error?.code).toBe('REGISTER_FAILED');
    expect(done.error?.message).toContain('Disk validation failed [Unsupported specified file format]');
    const slots = await readSemaphore(stack.clients.documents, stack.state.slotsTableName, IMPORT_SLOTS);
    expect(slots).toEqual({ count: 0, holders: [] });
  });
});
