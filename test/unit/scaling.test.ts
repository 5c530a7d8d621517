import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors';
import { PRIORITIES, type Priority } from '../../core/job';
import {
  DEFAULT_SCALING_SETTINGS,
  decideScale,
  type PoolScalingState,
  type QueueDepth,
  type ScalingConfig,
  type ScalingDecision,
  type ScalingInstance,
  scalingConfigFor,
} from '../../core/scaling';

const NOW = new Date('2032-05-06T07:00:00.000Z');
const ago = (seconds: number) => new Date(NOW.getTime() - seconds * 1000);

/** Explicit values, so the cases do not move when the tuned defaults do. */
const CONFIG: ScalingConfig = {
  minCapacity: 0,
  maxCapacity: 10,
  concurrency: 1,
  bootSeconds: 75,
  bootDeadlineSeconds: 180,
  idleTimeoutSeconds: 20,
  decisionIntervalSeconds: 10,
};

function queues(byClass: Partial<Record<Priority, Partial<QueueDepth>>> = {}): Record<Priority, QueueDepth> {
  const out = {} as Record<Priority, QueueDepth>;
  for (const p of PRIORITIES)
    out[p] = { visible: byClass[p]?.visible ?? 0, inFlight: byClass[p]?.inFlight ?? 0 };
  return out;
}

/** An in-service instance whose agent reports, launched an hour ago, idle for `idleFor` seconds. */
const idle = (id: string, idleFor: number, extra: Partial<ScalingInstance> = {}): ScalingInstance => ({
  id,
  state: 'in-service',
  launchedAt: ago(3600),
  busySlots: 0,
  lastBusyAt: ago(idleFor),
  protectedFromScaleIn: false,
  lastHeartbeatAt: ago(5),
  ...extra,
});
/** Busy with one build; its agent holds scale-in protection, as the wiring does on claim. */
const busy = (id: string, extra: Partial<ScalingInstance> = {}): ScalingInstance =>
  idle(id, 0, { busySlots: 1, lastBusyAt: NOW, protectedFromScaleIn: true, ...extra });
/** Launched `age` seconds ago, its agent not reported in yet. */
const pending = (id: string, age: number): ScalingInstance => ({
  id,
  state: 'pending',
  launchedAt: ago(age),
  busySlots: 0,
  protectedFromScaleIn: false,
});
/** Running as far as EC2 and the group know, but its agent never reported in. */
const silent = (id: string, age: number): ScalingInstance => ({ ...pending(id, age), state: 'in-service' });

function pool(
  visible: number,
  running: number,
  instances: ScalingInstance[],
  extra: Partial<PoolScalingState> = {},
): PoolScalingState {
  return {
    queues: queues({ normal: { visible, inFlight: running } }),
    runningJobs: running,
    instances,
    ...extra,
  };
}

interface Case {
  name: string;
  state: PoolScalingState;
  config?: Partial<ScalingConfig>;
  desired: number;
  launch?: number;
  terminate?: string[];
  replace?: string[];
  reason?: RegExp;
}

const busyFleet = (n: number) => Array.from({ length: n }, (_, i) => busy(`i-busy${i}`));

const CASES: Case[] = [
  // 0 jobs
  { name: 'no jobs and no instances: nothing to do', state: pool(0, 0, []), desired: 0, launch: 0 },
  {
    name: 'no jobs at min 0: an instance idle past the timeout goes',
    state: pool(0, 0, [idle('i-a', 600)]),
    desired: 0,
    terminate: ['i-a'],
    reason: /scale in i-a: idle 600 s ≥ 20 s/,
  },
  // fast 0 → 1 and bursts: counted demand, no metric delay
  { name: '0 → 1 on the first queued job', state: pool(1, 0, []), desired: 1, launch: 1 },
  {
    name: 'a burst launches for every job at once',
    state: pool(7, 0, []),
    desired: 7,
    launch: 7,
    reason: /7 outstanding jobs \(7 queued, 0 running/,
  },
  {
    name: 'a burst beyond maxCapacity is capped at max',
    state: pool(200, 0, []),
    desired: 10,
    launch: 10,
    reason: /capped at maxCapacity 10/,
  },
  {
    name: 'a burst at max already launches nothing more',
    state: pool(190, 10, busyFleet(10)),
    desired: 10,
    launch: 0,
  },
  {
    name: 'concurrency: ceil(jobs / builds per instance)',
    state: pool(10, 0, []),
    config: { concurrency: 4 },
    desired: 3,
    launch: 3,
  },
  {
    name: 'queued and running count: each class adds up',
    state: {
      queues: queues({ high: { visible: 2, inFlight: 1 }, low: { visible: 1, inFlight: 1 } }),
      runningJobs: 2,
      instances: busyFleet(2),
    },
    desired: 5,
    launch: 3,
    reason: /high 2\+1, low 1\+1/,
  },
  // min floor
  {
    name: 'min floor: launches up to min with no jobs',
    state: pool(0, 0, []),
    config: { minCapacity: 2 },
    desired: 2,
    launch: 2,
  },
  {
    name: 'min floor: idle instances at min stay',
    state: pool(0, 0, [idle('i-a', 900), idle('i-b', 900)]),
    config: { minCapacity: 2 },
    desired: 2,
    terminate: [],
  },
  {
    name: 'min floor: only the idle ones above min go, longest idle first',
    state: pool(0, 0, [idle('i-a', 100), idle('i-b', 900), idle('i-c', 300)]),
    config: { minCapacity: 1 },
    desired: 1,
    terminate: ['i-b', 'i-c'],
  },
  // pending instances are capacity that is coming
  {
    name: 'pending instances cover the queue: no double launch',
    state: pool(3, 0, [pending('i-a', 30), pending('i-b', 30), pending('i-c', 5)]),
    desired: 3,
    launch: 0,
  },
  {
    name: 'pending instances cover part of the queue',
    state: pool(5, 0, [pending('i-a', 30), pending('i-b', 30)]),
    desired: 5,
    launch: 3,
  },
  {
    name: 'launches the group accepted but does not list yet are coming too',
    state: pool(3, 2, busyFleet(2), { desiredCapacity: 5 }),
    desired: 5,
    launch: 0,
  },
  {
    name: 'an idle instance is reused before launching',
    state: pool(1, 0, [idle('i-a', 5)]),
    desired: 1,
    launch: 0,
  },
  // running builds: in flight and running are the same builds, not twice
  {
    name: 'in-flight messages and running jobs are not added twice',
    state: pool(2, 3, busyFleet(3)),
    desired: 5,
    launch: 2,
  },
  {
    name: 'an in-flight message without a running job (agent died) still needs a slot',
    state: { queues: queues({ normal: { inFlight: 2 } }), runningJobs: 1, instances: busyFleet(1) },
    desired: 2,
    launch: 1,
  },
  {
    name: 'an instance reporting a busy slot counts even if the job table lags',
    state: pool(0, 0, [busy('i-a', { protectedFromScaleIn: false })]),
    desired: 1,
    terminate: [],
  },
  // busy vs idle
  {
    name: 'a busy instance is never chosen; the idle one is',
    state: pool(0, 1, [busy('i-a', { protectedFromScaleIn: false }), idle('i-b', 600)]),
    desired: 1,
    terminate: ['i-b'],
  },
  {
    name: 'busy instances beyond demand are kept until idle',
    state: pool(0, 0, [busy('i-a'), busy('i-b')]),
    desired: 2,
    terminate: [],
  },
  // idle-timeout boundary and hysteresis
  {
    name: 'idle exactly the timeout: may go',
    state: pool(0, 0, [idle('i-a', 20)]),
    desired: 0,
    terminate: ['i-a'],
  },
  {
    name: 'idle just under the timeout: stays (between two jobs)',
    state: pool(0, 0, [idle('i-a', 19.999)]),
    desired: 1,
    terminate: [],
    reason: /1 surplus instance kept/,
  },
  {
    name: 'never busy: idle since launch',
    state: pool(0, 0, [idle('i-a', 0, { lastBusyAt: undefined, launchedAt: ago(95) })]),
    desired: 0,
    terminate: ['i-a'],
  },
  {
    name: 'no scale-in in a decision that launches',
    state: pool(3, 0, [idle('i-a', 600, { lastBusyAt: ago(600) }), silent('i-dead', 400)]),
    desired: 3,
    launch: 1,
    replace: ['i-dead'],
    terminate: [],
  },
  {
    name: 'idle instances wanted by queued jobs stay (they are about to claim them)',
    state: pool(1, 0, [idle('i-a', 600), pending('i-b', 30)]),
    desired: 2,
    terminate: [],
    reason: /1 idle instance kept for queued jobs/,
  },
  {
    name: 'warm headroom: keeps the jobs expected during one boot, the rest go',
    // 8 jobs in 120 s over a 75 s boot: ceil(5) = 5 instances kept.
    state: pool(
      0,
      0,
      ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((s, i) => idle(`i-${s}`, 100 + i)),
      {
        arrivals: { jobs: 8, overSeconds: 120 },
      },
    ),
    desired: 5,
    terminate: ['i-g', 'i-f'],
    reason: /keep up to 5 idle instances warm: 4\.0 jobs\/min/,
  },
  {
    name: 'warm headroom never launches',
    state: pool(0, 0, [], { arrivals: { jobs: 100, overSeconds: 60 } }),
    desired: 0,
    launch: 0,
  },
  {
    name: 'warm headroom is capped by max',
    state: pool(0, 9, [...busyFleet(9), idle('i-x', 600), idle('i-y', 600)], {
      arrivals: { jobs: 60, overSeconds: 60 },
    }),
    config: { maxCapacity: 10 },
    desired: 10,
    terminate: ['i-x'],
  },
  // boot failures
  {
    name: 'an instance that never reported in by the deadline is replaced while needed',
    state: pool(1, 0, [silent('i-dead', 181)]),
    desired: 1,
    launch: 0,
    replace: ['i-dead'],
    reason: /i-dead has not reported in 181 s after launch \(deadline 180 s\)/,
  },
  {
    name: 'a pending instance past the deadline counts the same',
    state: pool(1, 0, [pending('i-dead', 400)]),
    desired: 1,
    replace: ['i-dead'],
  },
  {
    name: 'boot deadline boundary: exactly the deadline is replaced',
    state: pool(1, 0, [silent('i-dead', 180)]),
    desired: 1,
    replace: ['i-dead'],
  },
  {
    name: 'boot deadline boundary: before it, still booting',
    state: pool(1, 0, [pending('i-slow', 179)]),
    desired: 1,
    launch: 0,
    replace: [],
    terminate: [],
  },
  {
    name: 'a failed instance no longer needed is terminated, not replaced',
    state: pool(0, 0, [silent('i-dead', 500)]),
    desired: 0,
    terminate: ['i-dead'],
    replace: [],
  },
  {
    name: 'failed instances: replace what is needed, terminate the rest',
    state: pool(1, 0, [silent('i-d1', 500), silent('i-d2', 500)]),
    desired: 1,
    replace: ['i-d1'],
    terminate: ['i-d2'],
  },
  // protection
  {
    name: 'an idle instance protected from scale-in is kept',
    state: pool(0, 0, [idle('i-a', 900, { protectedFromScaleIn: true }), idle('i-b', 900)]),
    desired: 1,
    terminate: ['i-b'],
    reason: /1 idle instance kept: protected from scale-in/,
  },
  // max lowered under a running fleet
  {
    name: 'over max: idle instances go, busy ones wait',
    state: pool(0, 3, [...busyFleet(3), idle('i-x', 600)]),
    config: { maxCapacity: 2 },
    desired: 3,
    terminate: ['i-x'],
    reason: /1 over maxCapacity until busy instances go idle/,
  },
];

describe('decideScale', () => {
  it.each(CASES)('$name', (c) => {
    const config = { ...CONFIG, ...c.config };
    const d = decideScale(c.state, config, NOW);
    expect(d.desiredCapacity).toBe(c.desired);
    if (c.launch !== undefined) expect(d.launch).toBe(c.launch);
    if (c.terminate !== undefined) expect(d.terminate).toEqual(c.terminate);
    if (c.replace !== undefined) expect(d.replace).toEqual(c.replace);
    if (c.reason) expect(d.reasons.join('\n')).toMatch(c.reason);
  });

  // Properties every decision has, checked on every case above.
  describe.each(CASES)('invariants: $name', (c) => {
    const config = { ...CONFIG, ...c.config };
    const d: ScalingDecision = decideScale(c.state, config, NOW);
    const listed = c.state.instances.length;
    const unlisted = Math.max(0, (c.state.desiredCapacity ?? listed) - listed);
    const byId = new Map(c.state.instances.map((i) => [i.id, i]));

    it('never lowers desired capacity except by naming instances (Auto Scaling never picks)', () => {
      expect(d.desiredCapacity).toBe(listed + unlisted - d.terminate.length + d.launch);
      expect(d.launch).toBeGreaterThanOrEqual(0);
    });

    it('never terminates or replaces a busy instance, or one idle less than the timeout', () => {
      for (const id of [...d.terminate, ...d.replace]) {
        const i = byId.get(id);
        expect(i?.busySlots).toBe(0);
        const reported = i?.lastHeartbeatAt !== undefined;
        if (reported) {
          expect(i?.protectedFromScaleIn).toBe(false);
          const since = (i?.lastBusyAt ?? i?.launchedAt ?? NOW).getTime();
          expect(NOW.getTime() - since).toBeGreaterThanOrEqual(config.idleTimeoutSeconds * 1000);
        }
      }
    });

    it('never launches past max, never goes under min', () => {
      if (d.launch > 0 || d.replace.length > 0)
        expect(d.desiredCapacity).toBeLessThanOrEqual(config.maxCapacity);
      expect(d.desiredCapacity).toBeGreaterThanOrEqual(config.minCapacity);
    });

    it('never launches and scales in idle instances in one decision', () => {
      const idleChosen = d.terminate.filter((id) => byId.get(id)?.lastHeartbeatAt !== undefined);
      expect(d.launch > 0 && idleChosen.length > 0).toBe(false);
    });

    it('says why', () => {
      expect(d.reasons.length).toBeGreaterThan(0);
    });
  });

  it('does not modify its input and decides the same twice', () => {
    const state = pool(2, 1, [busy('i-a'), idle('i-b', 600), silent('i-c', 400)]);
    const frozen = structuredClone(state);
    const first = decideScale(state, CONFIG, NOW);
    expect(state).toEqual(frozen);
    expect(decideScale(state, CONFIG, NOW)).toEqual(first);
  });

  it('breaks ties between equally idle instances by id, whatever the input order', () => {
    const a = pool(0, 0, [idle('i-b', 300), idle('i-a', 300), idle('i-c', 300)]);
    const b = pool(0, 0, [idle('i-c', 300), idle('i-b', 300), idle('i-a', 300)]);
    const config = { ...CONFIG, minCapacity: 1 };
    expect(decideScale(a, config, NOW).terminate).toEqual(['i-a', 'i-b']);
    expect(decideScale(b, config, NOW).terminate).toEqual(['i-a', 'i-b']);
  });

  it('does not flap when one instance runs short jobs back to back', () => {
    // A naive desired = jobs scaler would go 1, 0, 1, 0 here and let Auto Scaling pick each time.
    // Each step is a decision 10 s after the previous one; idle gaps are measured from it.
    const steps: Array<{ queued: number; running: number; idleFor?: number }> = [
      { queued: 1, running: 0, idleFor: 4 },
      { queued: 0, running: 1 },
      { queued: 0, running: 0, idleFor: 6 },
      { queued: 0, running: 1 },
      { queued: 0, running: 0, idleFor: 12 },
    ];
    for (const [n, step] of steps.entries()) {
      const at = new Date(NOW.getTime() + n * 10_000);
      const instance =
        step.idleFor === undefined
          ? busy('i-a', { lastBusyAt: at })
          : idle('i-a', 0, { lastBusyAt: new Date(at.getTime() - step.idleFor * 1000) });
      const d = decideScale(pool(step.queued, step.running, [instance]), CONFIG, at);
      expect({ desired: d.desiredCapacity, launch: d.launch, terminate: d.terminate }).toEqual({
        desired: 1,
        launch: 0,
        terminate: [],
      });
    }
  });

  it.each([
    [
      'minCapacity above maxCapacity',
      { minCapacity: 5, maxCapacity: 2 },
      /minCapacity: must not exceed maxCapacity/,
    ],
    ['zero builds per instance', { concurrency: 0 }, /concurrency: must be an integer ≥ 1/],
    ['a negative idle timeout', { idleTimeoutSeconds: -1 }, /idleTimeoutSeconds: must be ≥ 0/],
    ['a fractional max', { maxCapacity: 2.5 }, /maxCapacity: must be an integer/],
  ])('refuses a config with %s', (_, bad, message) => {
    const run = () => decideScale(pool(0, 0, []), { ...CONFIG, ...bad }, NOW);
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(message);
  });

  it('builds a config from a pool with the tuned defaults', () => {
    const config = scalingConfigFor(
      { minCapacity: 0, maxCapacity: 50, concurrency: 2 },
      { idleTimeoutSeconds: 45 },
    );
    expect(config).toEqual({
      ...DEFAULT_SCALING_SETTINGS,
      minCapacity: 0,
      maxCapacity: 50,
      concurrency: 2,
      idleTimeoutSeconds: 45,
    });
  });
});
