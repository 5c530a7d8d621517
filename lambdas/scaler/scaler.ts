/**
 * The fleet scaler: one `tick` reads every pool's group, queues and agents, asks `decideScale`
 * what to do, and applies it. The scaler Lambda runs a tick every ~10 s inside a one-minute
 * schedule; local mode runs the same ticks on a timer against its simulators.
 *
 * Applying a decision never lets Auto Scaling choose an instance to terminate: capacity only
 * shrinks through TerminateInstanceInAutoScalingGroup on instances the decision named, and
 * desired capacity is only ever raised.
 */

import { ConfigError } from '../../core/errors';
import { PRIORITIES, type Priority } from '../../core/job';
import {
  decideScale,
  type QueueDepth,
  type ScalingConfig,
  type ScalingDecision,
  scalingConfigProblems,
} from '../../core/scaling';
import { instanceStateOf, leavingInstances, type ObserveSettings, scalingStateOf } from './observe';
import type {
  AgentRecord,
  AgentRecords,
  GroupView,
  InstanceLaunchTimes,
  QueueDepths,
  ScalingGroups,
} from './ports';

export interface ScaledPool {
  pool: string;
  groupName: string;
  /** The pool's queue of each priority class. */
  queueUrls: Record<Priority, string>;
  scaling: ScalingConfig;
}

export interface ScalerLog {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
}

export interface FleetScalerDeps {
  groups: ScalingGroups;
  launchTimes: InstanceLaunchTimes;
  queues: QueueDepths;
  agents: AgentRecords;
  clock?: () => Date;
  log?: ScalerLog;
}

export interface PoolTick {
  pool: string;
  groupName: string;
  decision?: ScalingDecision;
  /**
   * What was applied: instances released because their agent left, instances terminated (by
   * name, desired capacity decremented), replaced (not decremented), and the desired capacity set.
   */
  applied: { released: string[]; terminated: string[]; replaced: string[]; desiredCapacity?: number };
  errors: string[];
}

const NO_LOG: ScalerLog = { info: () => undefined, warn: () => undefined };

export class FleetScaler {
  private readonly clock: () => Date;
  private readonly log: ScalerLog;
  /** Launch times never change: each instance is described once. */
  private readonly launched = new Map<string, Date>();

  constructor(
    private readonly deps: FleetScalerDeps,
    private readonly pools: readonly ScaledPool[],
    private readonly settings: ObserveSettings,
  ) {
    this.clock = deps.clock ?? (() => new Date());
    this.log = deps.log ?? NO_LOG;
    const problems = pools.flatMap((p) => scalingConfigProblems(p.scaling).map((m) => `${p.pool}: ${m}`));
    if (!(settings.silenceSeconds > 0)) problems.push('silenceSeconds: must be > 0');
    if (!(settings.arrivalWindowSeconds >= 0)) problems.push('arrivalWindowSeconds: must be ≥ 0');
    if (!(settings.drainGraceSeconds > 0)) problems.push('drainGraceSeconds: must be > 0');
    if (problems.length > 0) throw new ConfigError(problems);
  }

  /** One decision per pool, applied. A pool's failure is reported in its result, not thrown. */
  async tick(): Promise<PoolTick[]> {
    const groups = await this.deps.groups.describe(this.pools.map((p) => p.groupName));
    await this.learnLaunchTimes([...groups.values()]);
    return Promise.all(this.pools.map((pool) => this.tickPool(pool, groups.get(pool.groupName))));
  }

  private async learnLaunchTimes(groups: GroupView[]): Promise<void> {
    const current = new Set<string>();
    for (const g of groups) {
      for (const i of g.instances) if (instanceStateOf(i.lifecycleState)) current.add(i.instanceId);
    }
    for (const id of this.launched.keys()) if (!current.has(id)) this.launched.delete(id);
    const unknown = [...current].filter((id) => !this.launched.has(id));
    if (unknown.length === 0) return;
    try {
      for (const [id, at] of await this.deps.launchTimes.launchTimes(unknown)) this.launched.set(id, at);
    } catch (error) {
      // Without a launch time an instance counts as just launched: it is neither failed nor idle yet.
      this.log.warn('reading launch times failed', { error: String(error) });
    }
  }

  private async tickPool(pool: ScaledPool, group: GroupView | undefined): Promise<PoolTick> {
    const result: PoolTick = {
      pool: pool.pool,
      groupName: pool.groupName,
      applied: { released: [], terminated: [], replaced: [] },
      errors: [],
    };
    if (!group) {
      result.errors.push(`Auto Scaling group ${pool.groupName} not found`);
      return result;
    }
    let observed: { queues: Record<Priority, QueueDepth>; agents: AgentRecord[]; now: Date };
    try {
      const [queues, agents] = await Promise.all([this.queueDepths(pool), this.deps.agents.list(pool.pool)]);
      observed = { queues, agents, now: this.clock() };
    } catch (error) {
      result.errors.push(`observing the pool failed: ${String(error)}`);
      return result;
    }
    let desired = group.desiredCapacity;

    // Instances whose agent has left (spot notice, shutdown) go first, so that the decision sees
    // their capacity as gone; the group's minimum is kept by replacing rather than shrinking.
    const leaving = leavingInstances(group, observed.agents, this.settings, observed.now);
    for (const id of leaving) {
      const decrement = desired - 1 >= group.minSize;
      if (await this.terminate(result, id, decrement)) {
        result.applied.released.push(id);
        if (decrement) desired -= 1;
      }
    }
    const released = new Set(result.applied.released);
    const remaining: GroupView = {
      ...group,
      desiredCapacity: desired,
      instances: group.instances.filter((i) => !released.has(i.instanceId)),
    };

    let decision: ScalingDecision;
    try {
      const state = scalingStateOf(
        { group: remaining, queues: observed.queues, agents: observed.agents, launchTimes: this.launched },
        this.settings,
        observed.now,
      );
      decision = decideScale(state, pool.scaling, observed.now);
    } catch (error) {
      result.errors.push(`deciding failed: ${String(error)}`);
      return result;
    }
    result.decision = decision;

    // Replacements first: the group starts their successors at once, desired capacity unchanged.
    for (const id of decision.replace) {
      if (await this.terminate(result, id, false)) result.applied.replaced.push(id);
    }
    for (const id of decision.terminate) {
      if (await this.terminate(result, id, true)) {
        result.applied.terminated.push(id);
        desired -= 1;
      }
    }
    // Only ever up: lowering it would let Auto Scaling pick which instance goes.
    if (decision.desiredCapacity > desired) {
      try {
        await this.deps.groups.setDesiredCapacity(pool.groupName, decision.desiredCapacity);
        result.applied.desiredCapacity = decision.desiredCapacity;
      } catch (error) {
        result.errors.push(`SetDesiredCapacity ${decision.desiredCapacity} failed: ${String(error)}`);
      }
    }
    const changed =
      result.applied.released.length + result.applied.terminated.length + result.applied.replaced.length >
        0 || result.applied.desiredCapacity !== undefined;
    if (changed || result.errors.length > 0) {
      this.log.info('scaling decision applied', {
        pool: pool.pool,
        group: pool.groupName,
        desiredCapacity: decision.desiredCapacity,
        launch: decision.launch,
        applied: result.applied,
        reasons: decision.reasons,
        ...(result.errors.length > 0 ? { errors: result.errors } : {}),
      });
    }
    return result;
  }

  private async terminate(result: PoolTick, instanceId: string, decrement: boolean): Promise<boolean> {
    try {
      return await this.deps.groups.terminate(instanceId, decrement);
    } catch (error) {
      result.errors.push(`terminating ${instanceId} failed: ${String(error)}`);
      return false;
    }
  }

  private async queueDepths(pool: ScaledPool): Promise<Record<Priority, QueueDepth>> {
    const depths = await Promise.all(PRIORITIES.map((p) => this.deps.queues.depth(pool.queueUrls[p])));
    return Object.fromEntries(PRIORITIES.map((p, i) => [p, depths[i] as QueueDepth])) as Record<
      Priority,
      QueueDepth
    >;
  }
}

export interface DecisionLoopOptions {
  /** When the first decision is due (epoch ms). */
  startAt: number;
  intervalMs: number;
  /** No decision starts at or after this time (epoch ms). */
  stopBefore: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Runs `tick` at startAt, startAt + interval, … while that time is before `stopBefore`, the way
 * the Buildkite agent-scaler loops inside one scheduled invocation. A slot missed because a tick
 * ran long is skipped, not made up. Returns the number of ticks run.
 */
export async function runDecisionLoop(
  tick: () => Promise<unknown>,
  options: DecisionLoopOptions,
): Promise<number> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let ran = 0;
  let slot = options.startAt;
  while (slot < options.stopBefore) {
    const wait = slot - now();
    if (wait > 0) await sleep(wait);
    await tick();
    ran += 1;
    const after = now();
    slot += options.intervalMs;
    while (slot < after) slot += options.intervalMs;
  }
  return ran;
}
