import type { TraceJob } from './traces';

/** The jobs of a trace, or any set of them. */
export interface Jobs {
  readonly jobs: readonly TraceJob[];
}

/** The trace's build-seconds: what the builds themselves take, as if instances needed no boot. */
export function workSeconds(trace: Jobs): number {
  return trace.jobs.reduce((s, j) => s + j.build, 0);
}

export interface PerfectForesight {
  /** Instance-seconds: the builds, every launch's boot, and every gap bridged by staying idle. */
  seconds: number;
  /** Launches: instances brought into service. */
  launches: number;
  /** Instance-seconds spent booting: launches × the boot. */
  bootSeconds: number;
  /** Instance-seconds spent idle across gaps shorter than a boot. */
  idleSeconds: number;
  /** Builds running at once at the busiest moment: the instances a zero-wait fleet needs. */
  peak: number;
}

/**
 * The cheapest fleet that knows the future and starts every job the moment it arrives, in the same
 * world as the policies: an instance must boot (`bootSeconds`) before it serves, and boots are paid
 * for. With foresight it launches each instance one boot ahead of its first job, keeps it idle
 * across a gap only when the gap is shorter than a boot, and ends it the moment it is not needed.
 *
 * Computed on the demand curve N(t), the builds running at t when each starts on arrival. Any such
 * fleet has R(t) ≥ N(t) instances in service and pays a boot for every unit R rises by, so its cost
 * is at least min over R ≥ N of ∫R + boot × (total rise of R). That minimum splits into layers (the
 * times when N ≥ k, for each k): each layer costs its own length, one boot, and min(gap, boot) per
 * gap. The layers' best choices nest, so their sum is the minimum. It lets a build move between
 * instances, so a real fleet costs at least as much; pass the shortest boot for a bound that holds
 * whatever boot times are drawn. It ignores maxCapacity: when `peak` exceeds it, some jobs must wait
 * under any policy, and a policy that makes jobs wait may cost less than this.
 */
export function perfectForesight(trace: Jobs, bootSeconds: number): PerfectForesight {
  const zero = trace.jobs.find((j) => !(j.build > 0));
  if (zero) throw new Error(`job ${zero.id}: a build must take some time, got ${zero.build} s`);
  // Ends sort before starts at the same instant, so a build that ends as another starts hands over.
  const events = trace.jobs
    .flatMap((j) => [
      { at: j.arrival, rise: 1 },
      { at: j.arrival + j.build, rise: -1 },
    ])
    .sort((a, b) => a.at - b.at || a.rise - b.rise);
  /** Per layer k (index k), when N last fell below k. */
  const layerOffAt: number[] = [];
  let running = 0;
  let peak = 0;
  let launches = 0;
  let idleSeconds = 0;
  for (const e of events) {
    if (e.rise > 0) {
      running += 1;
      peak = Math.max(peak, running);
      const offAt = layerOffAt[running];
      if (offAt !== undefined && (e.at - offAt < bootSeconds || e.at === offAt)) {
        idleSeconds += e.at - offAt;
      } else {
        launches += 1;
      }
    } else {
      layerOffAt[running] = e.at;
      running -= 1;
    }
  }
  const boot = launches * bootSeconds;
  return { seconds: workSeconds(trace) + boot + idleSeconds, launches, bootSeconds: boot, idleSeconds, peak };
}

export interface WaitTargetFloor {
  /** Instances any policy meeting the wait target must bring into service. */
  launches: number;
  /** Build-seconds + launches × the shortest boot. */
  seconds: number;
}

/**
 * The cheapest any policy can be while it starts `percentile` of the jobs within `waitTarget` of
 * their arrival, even one that knows the future and launches before the first arrival:
 * - a job meeting the target starts within [first arrival, last arrival + waitTarget];
 * - on one instance, a job meeting the target can follow another only if the earlier build fits in
 *   that window, so an instance running k such jobs has k − 1 builds no longer than the window;
 * - hence instances ≥ ceil(percentile × jobs) − (builds that short), each paying a boot.
 * With `online` (no launch before the first arrival) the window starts a boot later, at first
 * arrival + boot, which is the floor a scaler that reacts to arrivals faces.
 */
export function waitTargetFloor(
  trace: Jobs,
  waitTarget: number,
  percentile: number,
  bootMinSeconds: number,
  online: boolean,
): WaitTargetFloor {
  const arrivals = trace.jobs.map((j) => j.arrival);
  const first = Math.min(...arrivals) + (online ? bootMinSeconds : 0);
  const window = Math.max(...arrivals) + waitTarget - first;
  const short = trace.jobs.filter((j) => j.build <= window).length;
  const launches = Math.max(0, Math.ceil(percentile * trace.jobs.length) - short);
  return { launches, seconds: workSeconds(trace) + launches * bootMinSeconds };
}
