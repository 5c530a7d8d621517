import { afterEach, describe, expect, it } from 'vitest';
import {
  type InstanceMetadata,
  type LifecycleActions,
  type LifecycleNotice,
  type LifecycleResult,
  LifecycleWatcher,
  type SpotNotice,
} from '../../agent/lifecycle';
import { waitUntil } from '../support/local';

/** Instance metadata the test sets by hand. */
class FakeMetadata implements InstanceMetadata {
  state: string | undefined = 'InService';
  spot: SpotNotice | undefined;
  failing = false;
  reads = 0;
  async targetLifecycleState() {
    this.reads += 1;
    if (this.failing) throw new Error('IMDS unreachable');
    return this.state;
  }
  async spotInstanceAction() {
    if (this.failing) throw new Error('IMDS unreachable');
    return this.spot;
  }
}

/** Records every lifecycle call, with the order of events across the fakes. */
class FakeActions implements LifecycleActions {
  constructor(
    private readonly events: string[],
    public failures = 0,
  ) {}
  completed: LifecycleResult[] = [];
  heartbeats = 0;
  async complete(result: LifecycleResult) {
    this.events.push(`complete:${result}`);
    if (this.failures > 0) {
      this.failures -= 1;
      throw new Error('ValidationError: No active Lifecycle Action found');
    }
    this.completed.push(result);
  }
  async heartbeat() {
    this.heartbeats += 1;
  }
}

/** A hand-back that the test finishes when it wants (as Agent.stop() finishes when slots are idle). */
function controlledHandBack(events: string[]) {
  const notices: LifecycleNotice[] = [];
  let finish!: () => void;
  const finished = new Promise<void>((r) => {
    finish = r;
  });
  return {
    notices,
    finish: () => finish(),
    handBack: (notice: LifecycleNotice) => {
      notices.push(notice);
      events.push(`hand-back:${notice}`);
      return finished.then(() => {
        events.push('handed-back');
      });
    },
  };
}

describe('LifecycleWatcher', () => {
  const watchers: LifecycleWatcher[] = [];
  afterEach(() => {
    for (const w of watchers.splice(0)) w.stop();
  });

  function watch(
    metadata: InstanceMetadata,
    actions: LifecycleActions,
    handBack: (n: LifecycleNotice) => Promise<void>,
    extra = {},
  ) {
    const w = new LifecycleWatcher({ metadata, actions, handBack, pollMs: 10, heartbeatMs: 15, ...extra });
    watchers.push(w);
    return w;
  }

  it('does nothing while the instance is in service', async () => {
    const events: string[] = [];
    const metadata = new FakeMetadata();
    const actions = new FakeActions(events);
    const hb = controlledHandBack(events);
    const w = watch(metadata, actions, hb.handBack);
    w.start();
    await waitUntil('a few polls', () => (metadata.reads >= 5 ? true : undefined));
    expect(w.notice).toBeUndefined();
    expect(events).toEqual([]);
  });

  it('on termination: hands jobs back at once, heartbeats while that runs, then completes CONTINUE', async () => {
    const events: string[] = [];
    const metadata = new FakeMetadata();
    const actions = new FakeActions(events);
    const hb = controlledHandBack(events);
    const w = watch(metadata, actions, hb.handBack);
    w.start();
    metadata.state = 'Terminated';
    await waitUntil('hand-back started', () => (hb.notices.length > 0 ? true : undefined));
    expect(hb.notices).toEqual(['terminating']);
    // The hook's timeout is pushed back while jobs are still being handed back.
    await waitUntil('heartbeats', () => (actions.heartbeats >= 2 ? true : undefined));
    expect(actions.completed).toEqual([]);
    hb.finish();
    await w.done;
    expect(actions.completed).toEqual(['CONTINUE']);
    expect(events).toEqual(['hand-back:terminating', 'handed-back', 'complete:CONTINUE']);
    expect(hb.notices).toHaveLength(1);
  });

  it('on a spot interruption notice: hands jobs back at once, and completes only once the group terminates it', async () => {
    const events: string[] = [];
    const metadata = new FakeMetadata();
    const actions = new FakeActions(events);
    const hb = controlledHandBack(events);
    const w = watch(metadata, actions, hb.handBack);
    w.start();
    metadata.spot = { action: 'terminate', time: '2030-01-01T00:00:00Z' };
    await waitUntil('hand-back started', () => (hb.notices.length > 0 ? true : undefined));
    expect(hb.notices).toEqual(['spot-interruption']);
    hb.finish();
    await waitUntil('handed back', () => (events.includes('handed-back') ? true : undefined));
    const reads = metadata.reads;
    await waitUntil('more polls', () => (metadata.reads > reads + 3 ? true : undefined));
    expect(actions.completed).toEqual([]);
    expect(actions.heartbeats).toBe(0);
    metadata.state = 'Terminated';
    await w.done;
    expect(actions.completed).toEqual(['CONTINUE']);
    expect(hb.notices).toEqual(['spot-interruption']);
  });

  it('retries CompleteLifecycleAction a bounded number of times', async () => {
    const events: string[] = [];
    const metadata = new FakeMetadata();
    metadata.state = 'Terminated';
    const actions = new FakeActions(events, 2);
    const w = watch(metadata, actions, async () => undefined, { completeAttempts: 5 });
    w.start();
    await w.done;
    expect(events.filter((e) => e === 'complete:CONTINUE')).toHaveLength(3);
    expect(actions.completed).toEqual(['CONTINUE']);

    const events2: string[] = [];
    const giveUp = new FakeActions(events2, 100);
    const w2 = watch(metadata, giveUp, async () => undefined, { completeAttempts: 3 });
    w2.start();
    await w2.done;
    expect(events2).toEqual(['complete:CONTINUE', 'complete:CONTINUE', 'complete:CONTINUE']);
  });

  it('keeps polling through metadata errors', async () => {
    const events: string[] = [];
    const metadata = new FakeMetadata();
    metadata.failing = true;
    const actions = new FakeActions(events);
    const hb = controlledHandBack(events);
    const w = watch(metadata, actions, hb.handBack);
    w.start();
    await waitUntil('failed polls', () => (metadata.reads >= 3 ? true : undefined));
    metadata.failing = false;
    metadata.state = 'Terminated';
    hb.finish();
    await w.done;
    expect(actions.completed).toEqual(['CONTINUE']);
  });

  it('poll() alone tells the agent at start-up that its instance is already going away', async () => {
    const events: string[] = [];
    const metadata = new FakeMetadata();
    metadata.state = 'Terminated';
    const actions = new FakeActions(events);
    const w = watch(metadata, actions, async () => undefined);
    expect(await w.poll()).toBe('terminating');
    await w.done;
    expect(actions.completed).toEqual(['CONTINUE']);
  });
});
