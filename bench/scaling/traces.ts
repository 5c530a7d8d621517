import { PRIORITIES, type Priority } from '../../core/job';
import { type Random, stream } from './random';

export interface TraceJob {
  id: number;
  /** Seconds since the start of the trace. */
  arrival: number;
  /** Build duration in seconds, the same whichever policy runs it. */
  build: number;
  priority: Priority;
}

export interface Trace {
  name: string;
  description: string;
  jobs: TraceJob[];
  /** The pool's maxCapacity for this trace. */
  maxCapacity: number;
  /** Whether the burst targets (wait and instance-minutes) are checked on this trace. */
  burstTargets: boolean;
}

export interface WorkloadParams {
  buildMeanSeconds: number;
  /** Log-space standard deviation of the lognormal build durations. */
  buildSigma: number;
}

const HOUR = 3600;

/** Arrival times of a Poisson process whose rate (jobs/s) may vary, by thinning at `peak`. */
function poissonArrivals(rng: Random, from: number, to: number, rate: (t: number) => number, peak: number) {
  const times: number[] = [];
  let t = from;
  for (;;) {
    t += rng.exponential(peak);
    if (t >= to) return times;
    if (rng.next() * peak < rate(t)) times.push(t);
  }
}

/** One priority class per job: mostly normal, a fifth each high and low. */
function priorityOf(rng: Random): Priority {
  const u = rng.next();
  return u < 0.2 ? PRIORITIES[0] : u < 0.8 ? PRIORITIES[1] : PRIORITIES[2];
}

function build(
  seed: string,
  name: string,
  description: string,
  maxCapacity: number,
  burstTargets: boolean,
  arrivals: (rng: Random) => number[],
  work: WorkloadParams,
): Trace {
  const times = arrivals(stream(seed, name, 'arrivals')).sort((a, b) => a - b);
  const durations = stream(seed, name, 'builds');
  const classes = stream(seed, name, 'priorities');
  const jobs = times.map((arrival, id) => ({
    id,
    arrival,
    build: durations.lognormal(work.buildMeanSeconds, work.buildSigma),
    priority: priorityOf(classes),
  }));
  return { name, description, jobs, maxCapacity, burstTargets };
}

export function traces(seed: string, work: WorkloadParams, maxCapacity: number): Trace[] {
  const steadyRate = 4 / 60;
  const nightRate = 0.2 / 60;
  const peakRate = 8 / 60;
  const burstAt = 120;
  const burst = build(
    seed,
    'burst',
    '200 jobs in 10 s (maxCapacity 200, so the burst can be met at once)',
    200,
    true,
    (rng) => Array.from({ length: 200 }, () => rng.uniform(burstAt, burstAt + 10)),
    work,
  );
  return [
    build(
      seed,
      'steady',
      `Poisson arrivals at ${steadyRate * 60}/min for 4 h`,
      maxCapacity,
      false,
      (rng) => poissonArrivals(rng, 0, 4 * HOUR, () => steadyRate, steadyRate),
      work,
    ),
    burst,
    {
      ...burst,
      name: 'burst-cap',
      description: `the same 200 jobs with maxCapacity ${maxCapacity}: waits are bounded by capacity, not by policy`,
      maxCapacity,
      burstTargets: false,
    },
    build(
      seed,
      'diurnal',
      `24 h, Poisson with a sinusoidal rate from ${nightRate * 60}/min (midnight) to ${peakRate * 60}/min (noon)`,
      maxCapacity,
      false,
      (rng) =>
        poissonArrivals(
          rng,
          0,
          24 * HOUR,
          (t) => nightRate + ((peakRate - nightRate) * (1 - Math.cos((2 * Math.PI * t) / (24 * HOUR)))) / 2,
          peakRate,
        ),
      work,
    ),
  ];
}
