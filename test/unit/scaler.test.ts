import { describe, expect, it } from 'vitest';
import type { Priority } from '../../core/job';
import { type QueueDepth, scalingConfigFor } from '../../core/scaling';
import { ENV, queueKey } from '../../infra/definitions';
import { scalingStateOf } from '../../lambdas/scaler/observe';
import type {
  AgentRecord,
  AgentRecords,
  GroupInstance,
  GroupView,
  InstanceLaunchTimes,
  QueueDepths,
  ScalingGroups,
} from '../../lambdas/scaler/ports';
import { FleetScaler, runDecisionLoop, type ScaledPool } from '../../lambdas/scaler/scaler';
import { scalerSettingsFromEnv } from '../../lambdas/scaler/settings';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000);
const iso = (s: number) => at(s).toISOString();

const POOL: ScaledPool = {
  pool: 'p',
  groupName: 'kiln-p',
  queueUrls: { high: 'q-high', normal: 'q-normal', low: 'q-low' },
  scaling: scalingConfigFor(
    { minCapacity: 0, maxCapacity: 4, concurrency: 1 },
    { idleTimeoutSeconds: 10, bootDeadlineSeconds: 180 },
  ),
};
const SETTINGS = { silenceSeconds: 180, arrivalWindowSeconds: 60, drainGraceSeconds: 60 };

/** An Auto Scaling group, queues and agent records held in memory; every call is recorded. */
class World implements ScalingGroups, InstanceLaunchTimes, QueueDepths, AgentRecords {
  calls: string[] = [];
  group: GroupView | undefined = {
    name: 'kiln-p',
    minSize: 0,
    maxSize: 4,
    desiredCapacity: 0,
    instances: [],
  };
  depths: Partial<Record<string, QueueDepth>> = {};
  records: AgentRecord[] = [];
  launched = new Map<string, Date>();
  gone = new Set<string>();

  async describe(names: readonly string[]) {
    const out = new Map<string, GroupView>();
    if (this.group && names.includes(this.group.name)) out.set(this.group.name, structuredClone(this.group));
    return out;
  }
  async setDesiredCapacity(name: string, n: number) {
    this.calls.push(`desired ${name} ${n}`);
  }
  async terminate(id: string, decrement: boolean) {
    this.calls.push(`terminate ${id}${decrement ? ' decrement' : ''}`);
    return !this.gone.has(id);
  }
  async launchTimes(ids: readonly string[]) {
    this.calls.push(`launch-times ${ids.join(',')}`);
    return new Map(ids.flatMap((id) => (this.launched.has(id) ? [[id, this.launched.get(id) as Date]] : [])));
  }
  async depth(url: string) {
    return this.depths[url] ?? { visible: 0, inFlight: 0 };
  }
  async list(pool: string) {
    return this.records.filter((r) => r.pool === pool);
  }

  instance(id: string, launchedAtS: number, extra: Partial<GroupInstance> = {}) {
    this.launched.set(id, at(launchedAtS));
    (this.group?.instances as GroupInstance[] | undefined)?.push({
      instanceId: id,
      lifecycleState: 'InService',
      healthStatus: 'Healthy',
      protectedFromScaleIn: false,
      ...extra,
    } as GroupInstance);
  }

  record(id: string, extra: Partial<AgentRecord>) {
    this.records.push({
      agentId: id,
      pool: 'p',
      busySlots: 0,
      slots: 1,
      at: iso(0),
      accepting: true,
      recentClaims: [],
      ...extra,
    });
  }
}

function scalerAt(world: World, nowS: number, pools: ScaledPool[] = [POOL]) {
  return new FleetScaler(
    { groups: world, launchTimes: world, queues: world, agents: world, clock: () => at(nowS) },
    pools,
    SETTINGS,
  );
}

describe('FleetScaler', () => {
  it('raises desired capacity to the queued jobs (0 → 3), within the maximum', async () => {
    const world = new World();
    world.depths['q-normal'] = { visible: 2, inFlight: 0 };
    world.depths['q-high'] = { visible: 1, inFlight: 0 };
    const [tick] = await scalerAt(world, 0).tick();
    expect(world.calls).toEqual(['desired kiln-p 3']);
    expect(tick?.applied).toEqual({ released: [], terminated: [], replaced: [], desiredCapacity: 3 });

    world.calls = [];
    world.depths['q-low'] = { visible: 20, inFlight: 0 };
    await scalerAt(world, 0).tick();
    expect(world.calls).toEqual(['desired kiln-p 4']);
  });

  it('terminates idle, unprotected instances by name with decrement, and never lowers desired capacity itself', async () => {
    const world = new World();
    (world.group as GroupView).desiredCapacity = 3;
    world.instance('i-idle', 0);
    world.instance('i-busy', 0, { protectedFromScaleIn: true });
    world.instance('i-fresh', 0);
    world.record('i-idle', { at: iso(100), lastBusyAt: iso(80) });
    world.record('i-busy', { at: iso(100), busySlots: 1, lastBusyAt: iso(100) });
    world.record('i-fresh', { at: iso(100), lastBusyAt: iso(95) });
    world.depths['q-normal'] = { visible: 0, inFlight: 1 };
    const [tick] = await scalerAt(world, 100).tick();
    expect(world.calls.filter((c) => !c.startsWith('launch-times'))).toEqual(['terminate i-idle decrement']);
    expect(tick?.decision?.desiredCapacity).toBe(2);
    expect(tick?.applied.desiredCapacity).toBeUndefined();
  });

  it('leaves a protected idle instance alone', async () => {
    const world = new World();
    (world.group as GroupView).desiredCapacity = 1;
    world.instance('i-1', 0, { protectedFromScaleIn: true });
    world.record('i-1', { at: iso(100), lastBusyAt: iso(10) });
    await scalerAt(world, 100).tick();
    expect(world.calls.filter((c) => !c.startsWith('launch-times'))).toEqual([]);
  });

  it('replaces an instance that never reported in (no decrement) while its capacity is needed', async () => {
    const world = new World();
    (world.group as GroupView).desiredCapacity = 1;
    world.instance('i-dead', 0);
    world.depths['q-normal'] = { visible: 1, inFlight: 0 };
    const [tick] = await scalerAt(world, 200).tick();
    expect(world.calls.filter((c) => !c.startsWith('launch-times'))).toEqual(['terminate i-dead']);
    expect(tick?.applied.replaced).toEqual(['i-dead']);
  });

  it('treats an agent silent for longer than silenceSeconds as one that never reported in', async () => {
    const world = new World();
    (world.group as GroupView).desiredCapacity = 1;
    world.instance('i-1', 0);
    world.record('i-1', { at: iso(10), busySlots: 1, lastBusyAt: iso(10) });
    // Still within the silence allowance: busy, kept.
    await scalerAt(world, 150).tick();
    expect(world.calls.filter((c) => c.startsWith('terminate'))).toEqual([]);
    // Silent for 290 s: its instance is terminated (not needed: no jobs).
    await scalerAt(world, 300).tick();
    expect(world.calls.filter((c) => c.startsWith('terminate'))).toEqual(['terminate i-1 decrement']);
  });

  it('does not count instances on their way out, and describes each instance launch time once', async () => {
    const world = new World();
    (world.group as GroupView).desiredCapacity = 1;
    world.instance('i-going', 0, { lifecycleState: 'Terminating:Wait' });
    world.instance('i-new', 50, { lifecycleState: 'Pending' });
    world.depths['q-normal'] = { visible: 1, inFlight: 0 };
    const scaler = scalerAt(world, 60);
    await scaler.tick();
    await scaler.tick();
    expect(world.calls).toEqual(['launch-times i-new']);
  });

  it('sizes the warm headroom from the claims agents recorded over the arrival window', async () => {
    const world = new World();
    (world.group as GroupView).desiredCapacity = 2;
    world.instance('i-1', 0);
    world.instance('i-2', 0);
    world.record('i-1', { at: iso(300), lastBusyAt: iso(200), recentClaims: [T0 + 250_000, T0 + 260_000] });
    world.record('i-2', { at: iso(300), lastBusyAt: iso(200), recentClaims: [T0 + 100_000] });
    // A record of an instance already gone still counts its claims.
    world.record('i-old', { at: iso(270), recentClaims: [T0 + 270_000] });
    const state = scalingStateOf(
      {
        group: world.group as GroupView,
        queues: {
          high: { visible: 0, inFlight: 0 },
          normal: { visible: 0, inFlight: 0 },
          low: { visible: 0, inFlight: 0 },
        },
        agents: world.records,
        launchTimes: world.launched,
      },
      SETTINGS,
      at(300),
    );
    expect(state.arrivals).toEqual({ jobs: 3, overSeconds: 60 });
    // 3 jobs/min × 75 s boot → 4 warm instances wanted, so neither idle instance goes.
    await scalerAt(world, 300).tick();
    expect(world.calls.filter((c) => c.startsWith('terminate'))).toEqual([]);
    // Without arrivals, both go.
    const quiet = new FleetScaler(
      { groups: world, launchTimes: world, queues: world, agents: world, clock: () => at(300) },
      [POOL],
      { ...SETTINGS, arrivalWindowSeconds: 0 },
    );
    await quiet.tick();
    expect(world.calls.filter((c) => c.startsWith('terminate'))).toEqual([
      'terminate i-1 decrement',
      'terminate i-2 decrement',
    ]);
  });

  it('maps lifecycle states and agent records into the decision state', () => {
    const group: GroupView = {
      name: 'g',
      minSize: 0,
      maxSize: 9,
      desiredCapacity: 5,
      instances: ['Pending', 'Pending:Wait', 'InService', 'Terminating', 'Standby'].map((s, i) => ({
        instanceId: `i-${i}`,
        lifecycleState: s,
        healthStatus: 'Healthy',
        protectedFromScaleIn: i === 2,
      })),
    };
    const queues = Object.fromEntries(
      (['high', 'normal', 'low'] as Priority[]).map((p) => [p, { visible: 1, inFlight: 2 }]),
    ) as Record<Priority, QueueDepth>;
    const state = scalingStateOf(
      {
        group,
        queues,
        agents: [
          {
            agentId: 'i-2',
            pool: 'p',
            busySlots: 1,
            slots: 1,
            at: iso(9),
            lastBusyAt: iso(9),
            accepting: true,
            recentClaims: [],
          },
          {
            agentId: 'i-1',
            pool: 'p',
            busySlots: 1,
            slots: 1,
            at: iso(9),
            accepting: false,
            recentClaims: [],
          },
        ],
        launchTimes: new Map([['i-2', at(1)]]),
      },
      { silenceSeconds: 60, arrivalWindowSeconds: 0, drainGraceSeconds: 60 },
      at(10),
    );
    expect(state.desiredCapacity).toBe(5);
    expect(state.arrivals).toBeUndefined();
    expect(state.instances).toEqual([
      { id: 'i-0', state: 'pending', launchedAt: at(10), busySlots: 0, protectedFromScaleIn: false },
      // An agent no longer taking work has handed its jobs back: not busy.
      {
        id: 'i-1',
        state: 'pending',
        launchedAt: at(10),
        busySlots: 0,
        protectedFromScaleIn: false,
        lastHeartbeatAt: at(9),
      },
      {
        id: 'i-2',
        state: 'in-service',
        launchedAt: at(1),
        busySlots: 1,
        lastBusyAt: at(9),
        protectedFromScaleIn: true,
        lastHeartbeatAt: at(9),
      },
    ]);
  });

  it('releases an instance whose agent left (spot notice) and launches for the work it handed back', async () => {
    const world = new World();
    (world.group as GroupView).desiredCapacity = 2;
    world.instance('i-left', 0);
    world.instance('i-busy', 0, { protectedFromScaleIn: true });
    world.record('i-left', { at: iso(100), accepting: false, lastBusyAt: iso(100) });
    world.record('i-busy', { at: iso(150), busySlots: 1, lastBusyAt: iso(150) });
    world.depths['q-normal'] = { visible: 1, inFlight: 1 };
    // Within the grace: a restarting agent would be back by now; nothing happens yet.
    await scalerAt(world, 150).tick();
    expect(world.calls.filter((c) => !c.startsWith('launch-times'))).toEqual([]);
    const [tick] = await scalerAt(world, 160).tick();
    expect(world.calls.filter((c) => !c.startsWith('launch-times'))).toEqual([
      'terminate i-left decrement',
      'desired kiln-p 2',
    ]);
    expect(tick?.applied).toMatchObject({ released: ['i-left'], desiredCapacity: 2 });
  });

  it('keeps the group minimum when releasing: replaced, not decremented', async () => {
    const world = new World();
    (world.group as GroupView).minSize = 1;
    (world.group as GroupView).desiredCapacity = 1;
    world.instance('i-left', 0);
    world.record('i-left', { at: iso(0), accepting: false });
    await scalerAt(world, 100).tick();
    expect(world.calls.filter((c) => !c.startsWith('launch-times'))).toEqual(['terminate i-left']);
  });

  it('reports a missing group in the tick instead of throwing', async () => {
    const world = new World();
    world.group = undefined;
    const [tick] = await scalerAt(world, 0).tick();
    expect(tick?.errors).toEqual(['Auto Scaling group kiln-p not found']);
    expect(world.calls).toEqual([]);
  });
});

describe('runDecisionLoop', () => {
  it('ticks every interval until the stop time, skipping slots a slow tick overran', async () => {
    let now = 1000;
    const ticks: number[] = [];
    const ran = await runDecisionLoop(
      async () => {
        ticks.push(now);
        // The third tick takes 25 s: the slots at +20 s and +30 s are skipped.
        now += ticks.length === 3 ? 25_000 : 500;
      },
      {
        startAt: 1000,
        intervalMs: 10_000,
        stopBefore: 56_000,
        now: () => now,
        sleep: async (ms) => {
          now += ms;
        },
      },
    );
    expect(ticks).toEqual([1000, 11_000, 21_000, 51_000]);
    expect(ran).toBe(4);
  });
});

describe('scalerSettingsFromEnv', () => {
  const base = {
    [ENV.config]: JSON.stringify({ prefix: 'lab', heartbeatSeconds: 20 }),
    [ENV.queueUrls]: JSON.stringify(
      Object.fromEntries(
        ['general-x86_64', 'general-aarch64'].flatMap((pool) =>
          (['high', 'normal', 'low'] as Priority[]).map((p) => [queueKey(pool, p), `https://q/${pool}-${p}`]),
        ),
      ),
    ),
  };

  it('builds every pool from the config, with default group names and settings', () => {
    const settings = scalerSettingsFromEnv(base);
    expect(settings.pools.map((p) => [p.pool, p.groupName])).toEqual([
      ['general-x86_64', 'lab-general-x86_64'],
      ['general-aarch64', 'lab-general-aarch64'],
    ]);
    expect(settings.pools[0]?.queueUrls.high).toBe('https://q/general-x86_64-high');
    expect(settings.pools[0]?.scaling).toMatchObject({
      minCapacity: 0,
      maxCapacity: 10,
      idleTimeoutSeconds: 10,
    });
    expect(settings.intervalMs).toBe(10_000);
    expect(settings.agentsTableName).toBe('lab-agents');
    expect(settings.observe).toEqual({
      silenceSeconds: 180,
      arrivalWindowSeconds: 60,
      drainGraceSeconds: 40,
    });
  });

  it('takes groups, the table and settings from the environment', () => {
    const settings = scalerSettingsFromEnv({
      ...base,
      [ENV.autoScalingGroups]: JSON.stringify({ 'general-x86_64': 'custom' }),
      [ENV.agentsTableName]: 'agents-t',
      [ENV.scalingSettings]: JSON.stringify({
        idleTimeoutSeconds: 30,
        decisionIntervalSeconds: 5,
        arrivalWindowSeconds: 0,
      }),
    });
    expect(settings.pools[0]?.groupName).toBe('custom');
    expect(settings.pools[0]?.scaling.idleTimeoutSeconds).toBe(30);
    expect(settings.intervalMs).toBe(5000);
    expect(settings.agentsTableName).toBe('agents-t');
    expect(settings.observe.arrivalWindowSeconds).toBe(0);
  });

  it('reports every problem at once', () => {
    expect(() =>
      scalerSettingsFromEnv({
        [ENV.config]: '{',
        [ENV.scalingSettings]: JSON.stringify({ idleTimeout: 3, bootSeconds: 'x' }),
      }),
    ).toThrow(
      /KILN_CONFIG is not valid JSON[\s\S]*KILN_QUEUE_URLS is not set[\s\S]*idleTimeout is not a scaling setting[\s\S]*bootSeconds must be a number/,
    );
    expect(() => scalerSettingsFromEnv({ ...base, [ENV.queueUrls]: '{}' })).toThrow(
      /lacks general-x86_64\/high/,
    );
  });
});
