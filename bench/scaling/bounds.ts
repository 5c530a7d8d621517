import type { Trace } from './traces';

/**
 * (d) Perfect foresight: every job gets an instance the moment it arrives, with no boot and no
 * idle time, and the instance goes the moment the build ends. Its waits are all 0 and its
 * instance-seconds are the sum of the trace's build durations, so no policy can do better on cost
 * (it ignores maxCapacity, too).
 */
export function lowerBoundSeconds(trace: Trace): number {
  return trace.jobs.reduce((s, j) => s + j.build, 0);
}

export interface BootFloor {
  /** Instances any policy meeting the wait target must launch. */
  launches: number;
  /** Lower bound + launches × the shortest boot, in instance-seconds. */
  seconds: number;
}

/**
 * What the lower bound leaves out: boots. For a trace whose jobs all arrive in a short window,
 * any online policy that starts from zero instances and gives `percentile` of the jobs a wait of at
 * most `waitTarget` must boot almost one instance per job, and each boot costs at least
 * `bootMinSeconds` of instance time:
 * - an instance is launched no earlier than the first arrival, so it runs its first job no
 *   earlier than first arrival + bootMin;
 * - a job meeting the target starts by last arrival + waitTarget;
 * - so an instance can have run a second such job only if its first build was at most
 *   (last arrival + waitTarget) − (first arrival + bootMin) long; there are `short` such builds.
 * Hence launches ≥ ceil(percentile × jobs) − short, and instance time ≥ Σ builds + launches × bootMin.
 */
export function bootFloor(
  trace: Trace,
  waitTarget: number,
  percentile: number,
  bootMinSeconds: number,
): BootFloor {
  const arrivals = trace.jobs.map((j) => j.arrival);
  const first = Math.min(...arrivals);
  const last = Math.max(...arrivals);
  const window = last + waitTarget - (first + bootMinSeconds);
  const short = trace.jobs.filter((j) => j.build <= window).length;
  const launches = Math.max(0, Math.ceil(percentile * trace.jobs.length) - short);
  return { launches, seconds: lowerBoundSeconds(trace) + launches * bootMinSeconds };
}
