/**
 * Turns what the scaler read (the group, the queues, the agents' records, launch times) into the
 * state `decideScale` takes. Pure: no I/O, the clock is passed in.
 */
import type { Priority } from '../../core/job';
import type { PoolScalingState, QueueDepth, ScalingInstance } from '../../core/scaling';
import type { AgentRecord, GroupView } from './ports';

export interface PoolObservation {
  group: GroupView;
  queues: Record<Priority, QueueDepth>;
  /** Every agent record of the pool; records of instances not in the group only count as arrivals. */
  agents: readonly AgentRecord[];
  launchTimes: ReadonlyMap<string, Date>;
}

export interface ObserveSettings {
  /**
   * An agent whose last report is older than this is treated as one that never reported in: the
   * decision then replaces its instance once past the boot deadline. A live agent reports at
   * least every heartbeat.
   */
  silenceSeconds: number;
  /** Claims over this many seconds size the warm headroom; 0 turns it off. */
  arrivalWindowSeconds: number;
  /**
   * An agent that stopped taking work (a spot interruption notice, a shutdown) and has not come
   * back this long after has left its instance: the scaler releases the instance. A restarted
   * agent reports again within a heartbeat, so twice the heartbeat is enough.
   */
  drainGraceSeconds: number;
}

/** The group's lifecycle states the decision counts, and as what; every other state is on its way out. */
export function instanceStateOf(lifecycleState: string): ScalingInstance['state'] | undefined {
  if (lifecycleState === 'InService') return 'in-service';
  if (lifecycleState === 'Pending' || lifecycleState.startsWith('Pending:')) return 'pending';
  return undefined;
}

const parseTime = (iso: string | undefined): Date | undefined => {
  if (iso === undefined) return undefined;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : new Date(t);
};

/**
 * Instances whose agent has left them: it stopped taking work at least `drainGraceSeconds` ago
 * and holds no job. They would otherwise count as capacity until the instance is reclaimed or the
 * agent's silence runs out.
 */
export function leavingInstances(
  group: GroupView,
  agents: readonly AgentRecord[],
  settings: ObserveSettings,
  now: Date,
): string[] {
  const records = new Map(agents.map((r) => [r.agentId, r]));
  return group.instances.flatMap((member) => {
    const record = records.get(member.instanceId);
    if (!instanceStateOf(member.lifecycleState) || !record || record.accepting || record.busySlots > 0)
      return [];
    const reportedAt = parseTime(record.at);
    if (!reportedAt) return [];
    const since = (now.getTime() - reportedAt.getTime()) / 1000;
    return since >= settings.drainGraceSeconds ? [member.instanceId] : [];
  });
}

export function scalingStateOf(
  observation: PoolObservation,
  settings: ObserveSettings,
  now: Date,
): PoolScalingState {
  const t = now.getTime();
  const records = new Map(observation.agents.map((r) => [r.agentId, r]));
  const instances: ScalingInstance[] = [];
  for (const member of observation.group.instances) {
    const state = instanceStateOf(member.lifecycleState);
    if (!state) continue;
    // An instance EC2 does not describe yet was launched moments ago.
    const launchedAt = observation.launchTimes.get(member.instanceId) ?? now;
    const record = records.get(member.instanceId);
    const reportedAt = parseTime(record?.at);
    const live =
      record !== undefined &&
      reportedAt !== undefined &&
      t - reportedAt.getTime() <= settings.silenceSeconds * 1000;
    const lastBusyAt = live ? parseTime(record.lastBusyAt) : undefined;
    instances.push({
      id: member.instanceId,
      state,
      launchedAt,
      // An agent that stopped taking work has handed its jobs back.
      busySlots: live && record.accepting ? Math.max(0, record.busySlots) : 0,
      ...(lastBusyAt ? { lastBusyAt } : {}),
      protectedFromScaleIn: member.protectedFromScaleIn,
      ...(live && reportedAt ? { lastHeartbeatAt: reportedAt } : {}),
    });
  }
  const windowSeconds = settings.arrivalWindowSeconds;
  let arrivals: PoolScalingState['arrivals'];
  if (windowSeconds > 0) {
    const since = t - windowSeconds * 1000;
    let jobs = 0;
    for (const r of observation.agents) for (const at of r.recentClaims) if (at > since && at <= t) jobs += 1;
    arrivals = { jobs, overSeconds: windowSeconds };
  }
  return {
    queues: observation.queues,
    // Running builds are seen as in-flight messages and as the agents' busy slots; the decision
    // takes the largest view, so the jobs table need not be read.
    runningJobs: 0,
    instances,
    desiredCapacity: observation.group.desiredCapacity,
    ...(arrivals ? { arrivals } : {}),
  };
}
