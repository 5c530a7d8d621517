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
  /** Instances any policy meeting the wait target must boot. */
  launches: number;
  /** Lower bound + launches × the shortest boot: no policy can do better, whatever the draws. */
  strictSeconds: number;
  /**
   * Lower bound + launches × the mean boot: what those boots cost on average. Boot times are drawn
   * independently of the policy, and with a boot-time distribution like this one (its hazard rises)
   * abandoning a slow boot for a new one never pays, so no policy does better in expectation.
   */
  expectedSeconds: number;
}

/**
 * What the lower bound leaves out: boots. For a trace whose jobs all arrive in a short window,
 * any online policy that starts from zero instances and gives `percentile` of the jobs a wait of at
 * most `waitTarget` must boot almost one instance per job:
 * - an instance is launched no earlier than the first arrival, so it runs its first job no
 *   earlier than first arrival + bootMin;
 * - a job meeting the target starts by last arrival + waitTarget;
 * - so an instance can have run a second such job only if its first build was at most
 *   (last arrival + waitTarget) − (first arrival + bootMin) long; there are `short` such builds.
 * Hence launches ≥ ceil(percentile × jobs) − short, each paying a whole boot on top of the builds.
 */
export function bootFloor(
  trace: Trace,
  waitTarget: number,
  percentile: number,
  boot: { minSeconds: number; meanSeconds: number },
): BootFloor {
  const arrivals = trace.jobs.map((j) => j.arrival);
  const first = Math.min(...arrivals);
  const last = Math.max(...arrivals);
  const window = last + waitTarget - (first + boot.minSeconds);
  const short = trace.jobs.filter((j) => j.build <= window).length;
  const launches = Math.max(0, Math.ceil(percentile * trace.jobs.length) - short);
  const bound = lowerBoundSeconds(trace);
  return {
    launches,
    strictSeconds: bound + launches * boot.minSeconds,
    expectedSeconds: bound + launches * boot.meanSeconds,
  };
}
