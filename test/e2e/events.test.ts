import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_EVENT_DETAIL_TYPE, JOB_EVENT_SOURCE, type JobEvent } from '../../core/events';
import type { BusEvent } from '../../local/event-bus';
import { type E2EStack, scriptJob, startE2EStack, waitUntil, X86 } from '../support/local';

describe('job events on the local bus', () => {
  let stack: E2EStack;
  const received: BusEvent[] = [];

  beforeAll(async () => {
    stack = await startE2EStack({ registration: false });
    stack.events.subscribe((e) => received.push(e));
    stack.fleet.spawn(X86);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const eventsOf = (jobId: string) =>
    received.map((e) => e.detail as JobEvent).filter((d) => d.jobId === jobId);

  it('a subscriber sees every transition of a job, in order, with its type, pool and outcome', async () => {
    const { body } = await stack.alice.submit(
      scriptJob('head -c 2048 /dev/urandom > image.raw', {
        buildType: 'scratch',
        priority: 'low',
        name: 'evented',
      }),
    );
    const done = await stack.alice.waitFor(body.jobId);
    expect(done.status).toBe('SUCCEEDED');
    const events = await waitUntil('the last event', () => {
      const list = eventsOf(body.jobId);
      return list.at(-1)?.status === 'SUCCEEDED' ? list : undefined;
    });
    expect(events.map((e) => e.status)).toEqual(done.history.map((h) => h.status));
    expect(events.map((e) => e.sequence)).toEqual(events.map((_, i) => i));
    expect(events.map((e) => e.previousStatus)).toEqual([
      undefined,
      ...events.slice(0, -1).map((e) => e.status),
    ]);
    for (const e of events) {
      expect(e).toMatchObject({
        jobId: body.jobId,
        buildType: 'scratch',
        priority: 'low',
        pool: X86,
        name: 'evented',
      });
    }
    expect(events.at(-1)?.artifact?.sha256).toBe(done.artifact?.sha256);
    const raw = received.find((e) => (e.detail as JobEvent).jobId === body.jobId);
    expect(raw).toMatchObject({ source: JOB_EVENT_SOURCE, detailType: JOB_EVENT_DETAIL_TYPE });
  });

  it('a failure carries its error; a cancel of a queued job is one more event', async () => {
    const failing = await stack.alice.submit(scriptJob('echo nope >&2\nexit 3'));
    await stack.alice.waitFor(failing.body.jobId);
    const failed = await waitUntil('the FAILED event', () =>
      eventsOf(failing.body.jobId).find((e) => e.status === 'FAILED'),
    );
    expect(failed.error?.code).toBe('BUILD_FAILED');
    expect(failed.error?.message).toContain('nope');

    const queued = await stack.alice.submit({ ...scriptJob('true'), arch: 'aarch64' });
    await stack.alice.cancel(queued.body.jobId);
    const events = await waitUntil('the CANCELLED event', () => {
      const list = eventsOf(queued.body.jobId);
      return list.length === 2 ? list : undefined;
    });
    expect(events.map((e) => e.status)).toEqual(['QUEUED', 'CANCELLED']);
  });
});
