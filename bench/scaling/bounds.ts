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
      if (offAt !== undefined && e.at - offAt < bootSeconds) {
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

export interface BootFloor {
  /** Instances any online policy meeting the wait target must boot. */
  launches: number;
  /** Build-seconds + launches × the shortest boot: no online policy meeting the target does better. */
  seconds: number;
}

/**
 * Why the build-seconds alone are out of reach on a burst. Any online policy that starts from zero
 * instances and gives `percentile` of the jobs a wait of at most `waitTarget` must boot almost one
 * instance per job:
 * - an instance is launched no earlier than the first arrival, so it runs its first job no
 *   earlier than first arrival + bootMin;
 * - a job meeting the target starts by last arrival + waitTarget;
 * - so an instance can have run a second such job only if its first build was at most
 *   (last arrival + waitTarget) − (first arrival + bootMin) long; there are `short` such builds.
 * Hence launches ≥ ceil(percentile × jobs) − short, each paying a whole boot on top of the builds.
 */
export function bootFloor(
  trace: Jobs,
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
  return { launches, seconds: workSeconds(trace) + launches * bootMinSeconds };
}
