import type { PoolConfig } from './config';
import { ConfigError } from './errors';
import { PRIORITIES, type Priority } from './job';

/**
 * The scaling decision for one pool: how many build agents it should have and which idle ones may
 * go. It is pure (the clock, the observed state and the config are passed in), so the AWS scaler
 * loop, the local fleet and the benchmark under `bench/` all run this same code.
 *
 * The rules, and why (docs/adr/0003-scaling-policy.md has the numbers):
 * - Demand is counted, not inferred from a delayed metric: outstanding = queued + running builds,
 *   and the pool needs ceil(outstanding / concurrency) instances, within [min, max]. Scale-out
 *   happens on the first decision that sees the jobs, including 0 → 1.
 * - Pending instances (and launches the group has accepted but not listed yet) are capacity that
 *   is coming, so a job is never launched for twice while an instance boots.
 * - Capacity only shrinks by naming instances: idle ones (no busy slot for ≥ idleTimeout, not
 *   protected from scale-in) and ones that never reported in. The decision never lowers desired
 *   capacity on its own, because then Auto Scaling picks the victim and may pick a busy instance.
 * - Hysteresis against flapping: an instance must be idle for the whole idle timeout before it may
 *   go, a decision never launches and scales in at once, and while jobs keep arriving a few idle
 *   instances are kept warm (the jobs expected to arrive during one boot), so steady load reuses
 *   warm instances instead of paying a boot for each job.
 */

export type InstanceState = 'pending' | 'in-service';

export interface ScalingInstance {
  id: string;
  /** `pending` until the group puts it in service (a launch lifecycle hook keeps it pending). */
  state: InstanceState;
  launchedAt: Date;
  /** Builds running on it now, 0..concurrency. */
  busySlots: number;
  /** When it last had a busy slot; unset if it has not run a build yet (idle since launch). */
  lastBusyAt?: Date;
  /** Set by its agent while it holds a job, so that Auto Scaling itself cannot pick it. */
  protectedFromScaleIn: boolean;
  /** Its agent's last heartbeat; unset until the agent has reported in once. */
  lastHeartbeatAt?: Date;
}

/** One SQS queue's depth: visible messages wait for an agent; in-flight ones are held by one. */
export interface QueueDepth {
  visible: number;
  inFlight: number;
}

export interface PoolScalingState {
  /** Depth of the pool's queue for each priority class. */
  queues: Record<Priority, QueueDepth>;
  /** Jobs of the pool that hold an agent (RUNNING or UPLOADING). */
  runningJobs: number;
  /** The group's instances that are not terminating. */
  instances: readonly ScalingInstance[];
  /** The group's desired capacity now; launches it accepted but does not list yet count as coming. */
  desiredCapacity?: number;
  /**
   * Jobs that arrived for the pool over a recent window, e.g. NumberOfMessagesSent of its queues in
   * the latest published one-minute period. It only sizes the warm headroom, never scale-out, so a
   * delayed metric is good enough. Unset: no warm headroom.
   */
  arrivals?: { jobs: number; overSeconds: number };
}

/** Scaling settings of a pool beyond its PoolConfig bounds. */
export interface ScalingSettings {
  /** How long an instance takes from launch to its agent's first poll; sizes the warm headroom. */
  bootSeconds: number;
  /** An instance whose agent has not reported in this long after launch is replaced. */
  bootDeadlineSeconds: number;
  /** An instance must have been idle this long before it may be scaled in. */
  idleTimeoutSeconds: number;
  /** How often the scaler loop calls decideScale (the decision itself does not use it). */
  decisionIntervalSeconds: number;
}

export type ScalingConfig = Pick<PoolConfig, 'minCapacity' | 'maxCapacity' | 'concurrency'> & ScalingSettings;

/**
 * Defaults tuned with `npm run bench:scaling` (docs/scaling.md). A 10 s loop, as the Buildkite
 * agent-scaler polls. An idle timeout of one loop: short, because after a burst every idle second
 * is paid for nothing, the warm headroom (not the timeout) is what keeps instances for steady load,
 * and a busy instance is excluded by its scale-in protection (set on claim), not by the timeout.
 * A boot deadline of twice the slowest modelled boot.
 */
export const DEFAULT_SCALING_SETTINGS: ScalingSettings = {
  bootSeconds: 75,
  bootDeadlineSeconds: 180,
  idleTimeoutSeconds: 10,
  decisionIntervalSeconds: 10,
};

export function scalingConfigFor(
  pool: Pick<PoolConfig, 'minCapacity' | 'maxCapacity' | 'concurrency'>,
  settings: Partial<ScalingSettings> = {},
): ScalingConfig {
  return {
    minCapacity: pool.minCapacity,
    maxCapacity: pool.maxCapacity,
    concurrency: pool.concurrency,
    ...DEFAULT_SCALING_SETTINGS,
    ...settings,
  };
}

export interface ScalingDecision {
  /**
   * The group's desired capacity once the decision is applied. It is never below the current
   * count minus the instances named in `terminate`, so applying it never makes Auto Scaling pick.
   */
  desiredCapacity: number;
  /** New instances to launch by raising desired capacity (replacements not included). */
  launch: number;
  /** Idle (or failed and unneeded) instances to terminate, decrementing desired capacity. */
  terminate: string[];
  /** Instances that never reported in: terminate without decrementing, so the group replaces them. */
  replace: string[];
  /** Queued + running builds. */
  outstandingJobs: number;
  /** Instances the outstanding builds need, before the capacity bounds. */
  neededCapacity: number;
  /** Why, in words, for logs and metrics. */
  reasons: string[];
}

export function scalingConfigProblems(config: ScalingConfig): string[] {
  const problems: string[] = [];
  const wholeAtLeast = (name: keyof ScalingConfig, min: number) => {
    const v = config[name];
    if (!Number.isInteger(v) || v < min) problems.push(`${name}: must be an integer ≥ ${min}, got ${v}`);
  };
  wholeAtLeast('minCapacity', 0);
  wholeAtLeast('maxCapacity', 0);
  wholeAtLeast('concurrency', 1);
  if (config.minCapacity > config.maxCapacity) problems.push('minCapacity: must not exceed maxCapacity');
  for (const name of ['bootSeconds', 'bootDeadlineSeconds', 'idleTimeoutSeconds'] as const) {
    if (!(config[name] >= 0)) problems.push(`${name}: must be ≥ 0, got ${config[name]}`);
  }
  if (!(config.decisionIntervalSeconds > 0)) problems.push('decisionIntervalSeconds: must be > 0');
  return problems;
}

const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, n));
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const secondsBetween = (from: Date, to: number) => (to - from.getTime()) / 1000;

interface IdleCandidate {
  instance: ScalingInstance;
  idleSeconds: number;
}

export function decideScale(state: PoolScalingState, config: ScalingConfig, now: Date): ScalingDecision {
  const problems = scalingConfigProblems(config);
  if (problems.length > 0) throw new ConfigError(problems);
  const t = now.getTime();
  const { concurrency, minCapacity, maxCapacity } = config;
  const reasons: string[] = [];

  // Demand. An agent keeps its job's message in flight for the whole build (it extends the
  // visibility on every heartbeat), so in-flight messages and running jobs are mostly the same
  // builds: take the largest of the views rather than their sum. In-flight also covers a message
  // whose agent died (invisible until its timeout), which will need a slot again.
  let visible = 0;
  let inFlight = 0;
  const perClass: string[] = [];
  for (const p of PRIORITIES) {
    const q = state.queues[p];
    visible += q.visible;
    inFlight += q.inFlight;
    if (q.visible + q.inFlight > 0) perClass.push(`${p} ${q.visible}+${q.inFlight}`);
  }
  const busySlots = state.instances.reduce((n, i) => n + i.busySlots, 0);
  const running = Math.max(inFlight, state.runningJobs, busySlots);
  const outstanding = visible + running;
  const needed = Math.ceil(outstanding / concurrency);
  const target = clamp(needed, minCapacity, maxCapacity);
  reasons.push(
    `${plural(outstanding, 'outstanding job')} (${visible} queued, ${running} running` +
      `${perClass.length > 0 ? `; visible+in-flight: ${perClass.join(', ')}` : ''})` +
      ` need ${plural(needed, 'instance')} at ${concurrency} per instance`,
  );
  if (needed > maxCapacity) reasons.push(`capped at maxCapacity ${maxCapacity}`);
  if (needed < minCapacity) reasons.push(`kept at minCapacity ${minCapacity}`);

  // Instances whose agent never reported in hold no capacity; they are terminated either way, and
  // replaced only if the capacity is still needed. A busy slot means an agent did report, so such
  // an instance is never treated as failed.
  const failed: ScalingInstance[] = [];
  const healthy: ScalingInstance[] = [];
  for (const i of state.instances) {
    const age = secondsBetween(i.launchedAt, t);
    if (i.lastHeartbeatAt === undefined && i.busySlots === 0 && age >= config.bootDeadlineSeconds) {
      failed.push(i);
      reasons.push(
        `${i.id} has not reported in ${Math.round(age)} s after launch (deadline ${config.bootDeadlineSeconds} s)`,
      );
    } else {
      healthy.push(i);
    }
  }
  const listed = state.instances.length;
  const unlisted = Math.max(0, (state.desiredCapacity ?? listed) - listed);
  const pending = healthy.filter((i) => i.state === 'pending').length;
  const capacity = healthy.length + unlisted;
  reasons.push(
    `capacity ${capacity}: ${healthy.length - pending} in service, ${pending + unlisted} booting` +
      (failed.length > 0 ? `, ${failed.length} failed to boot` : ''),
  );

  if (capacity < target) {
    const launches = target - capacity;
    const replace = failed.slice(0, launches).map((i) => i.id);
    const terminate = failed.slice(launches).map((i) => i.id);
    const launch = launches - replace.length;
    if (replace.length > 0) reasons.push(`replace ${replace.join(', ')}`);
    if (terminate.length > 0) reasons.push(`terminate ${terminate.join(', ')} (not needed)`);
    if (launch > 0) reasons.push(`launch ${launch} → desired ${target}`);
    return {
      desiredCapacity: listed + unlisted - terminate.length + launch,
      launch,
      terminate,
      replace,
      outstandingJobs: outstanding,
      neededCapacity: needed,
      reasons,
    };
  }

  // Enough capacity (or more). Keep a warm headroom while jobs arrive: the jobs expected during one
  // boot would otherwise each wait a boot. It only retains instances, never launches them.
  let warm = 0;
  const arrivals = state.arrivals;
  if (arrivals && arrivals.overSeconds > 0 && arrivals.jobs > 0) {
    const perSecond = arrivals.jobs / arrivals.overSeconds;
    warm = Math.ceil((perSecond * config.bootSeconds) / concurrency);
    reasons.push(
      `keep up to ${plural(warm, 'idle instance')} warm: ${(perSecond * 60).toFixed(1)} jobs/min arriving, a boot takes ~${config.bootSeconds} s`,
    );
  }
  const keep = clamp(needed + warm, minCapacity, maxCapacity);
  const surplus = capacity - keep;

  const idle: IdleCandidate[] = [];
  let protectedIdle = 0;
  let freeSlotsElsewhere = 0;
  for (const i of healthy) {
    if (i.state !== 'in-service') continue;
    const idleSeconds = i.busySlots === 0 ? secondsBetween(i.lastBusyAt ?? i.launchedAt, t) : 0;
    if (i.busySlots === 0 && idleSeconds >= config.idleTimeoutSeconds) {
      if (i.protectedFromScaleIn) protectedIdle += 1;
      else {
        idle.push({ instance: i, idleSeconds });
        continue;
      }
    }
    freeSlotsElsewhere += concurrency - i.busySlots;
  }
  // Longest idle first; the id breaks ties so the choice is deterministic.
  idle.sort((a, b) => b.idleSeconds - a.idleSeconds || a.instance.id.localeCompare(b.instance.id));
  // Visible jobs are about to be claimed by whichever agent polls first; an idle instance that is
  // about to take one must not be terminated under it. Reserve the most recently busy ones.
  const claimable = Math.max(0, visible - freeSlotsElsewhere);
  const reserved = Math.min(idle.length, Math.ceil(claimable / concurrency));
  const eligible = idle.slice(0, idle.length - reserved);
  const chosen = surplus > 0 ? eligible.slice(0, surplus) : [];
  const terminate = [...failed.map((i) => i.id), ...chosen.map((c) => c.instance.id)];
  if (failed.length > 0) reasons.push(`terminate ${failed.map((i) => i.id).join(', ')} (not needed)`);
  for (const c of chosen) {
    reasons.push(
      `scale in ${c.instance.id}: idle ${Math.round(c.idleSeconds)} s ≥ ${config.idleTimeoutSeconds} s`,
    );
  }
  if (reserved > 0) reasons.push(`${plural(reserved, 'idle instance')} kept for queued jobs`);
  if (protectedIdle > 0)
    reasons.push(`${plural(protectedIdle, 'idle instance')} kept: protected from scale-in`);
  const desiredCapacity = listed + unlisted - terminate.length;
  if (desiredCapacity > maxCapacity) {
    reasons.push(`${desiredCapacity - maxCapacity} over maxCapacity until busy instances go idle`);
  }
  if (surplus > chosen.length) {
    reasons.push(
      `${plural(surplus - chosen.length, 'surplus instance')} kept: booting, busy, protected, reserved or idle < ${config.idleTimeoutSeconds} s`,
    );
  }
  if (terminate.length === 0) reasons.push(`hold at ${desiredCapacity}`);
  return {
    desiredCapacity,
    launch: 0,
    terminate,
    replace: [],
    outstandingJobs: outstanding,
    neededCapacity: needed,
    reasons,
  };
}
