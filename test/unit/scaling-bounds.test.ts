/**
 * The yardsticks of `npm run bench:scaling`. The perfect-foresight (zero-wait) fleet is checked
 * against an independent dynamic programme over the same relaxation, and against every zero-wait
 * fleet with builds pinned to instances, none of which may cost less. The wait-target floor is
 * checked against every split of a few jobs among instances.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { perfectForesight, waitTargetFloor, workSeconds } from '../../bench/scaling/bounds';
import type { TraceJob } from '../../bench/scaling/traces';

const job = (id: number, arrival: number, build: number): TraceJob => ({
  id,
  arrival,
  build,
  priority: 'normal',
});
const jobsOf = (pairs: ReadonlyArray<readonly [number, number]>) =>
  pairs.map(([arrival, build], id) => job(id, arrival, build));

/**
 * min over integer R(t) ≥ N(t), constant between events, of ∫R + boot × (total rise of R), with
 * R = 0 before the first and after the last event: a brute force over every R on every segment.
 */
function optimumByDynamicProgramme(jobs: readonly TraceJob[], boot: number): number {
  const times = [...new Set(jobs.flatMap((j) => [j.arrival, j.arrival + j.build]))].sort((a, b) => a - b);
  const segments = times.slice(0, -1).map((from, i) => {
    const to = times[i + 1] as number;
    const running = jobs.filter((j) => j.arrival <= from && j.arrival + j.build >= to).length;
    return { length: to - from, running };
  });
  const most = Math.max(0, ...segments.map((s) => s.running));
  // cost[r]: the cheapest way to reach the current segment with r instances in service.
  let cost = Array.from({ length: most + 1 }, (_, r) => (r === 0 ? 0 : Number.POSITIVE_INFINITY));
  for (const s of segments) {
    cost = cost.map((_, r) => {
      if (r < s.running) return Number.POSITIVE_INFINITY;
      const from = Math.min(...cost.map((c, p) => c + boot * Math.max(0, r - p)));
      return from + r * s.length;
    });
  }
  return Math.min(...cost);
}

/**
 * The cheapest zero-wait fleet with builds pinned to instances, by trying every way to split the
 * jobs among instances: an instance pays one boot and lives from its first job's start to its
 * last job's end; its jobs may not overlap. Exponential: for a handful of jobs only.
 */
function pinnedOptimum(jobs: readonly TraceJob[], boot: number): number {
  const sorted = [...jobs].sort((a, b) => a.arrival - b.arrival || a.build - b.build);
  let best = Number.POSITIVE_INFINITY;
  const instances: Array<{ to: number }> = [];
  const place = (i: number, cost: number) => {
    if (cost >= best) return;
    const j = sorted[i];
    if (!j) {
      best = cost;
      return;
    }
    const end = j.arrival + j.build;
    for (const inst of instances) {
      if (inst.to > j.arrival) continue;
      const before = inst.to;
      inst.to = end;
      place(i + 1, cost + (end - before));
      inst.to = before;
    }
    instances.push({ to: end });
    place(i + 1, cost + boot + j.build);
    instances.pop();
  };
  place(0, 0);
  return best;
}

/**
 * The fewest instances on which `needed` jobs can start within `target` of arrival, by trying every
 * split of the jobs among k instances. An instance serves from `readyAt` on. On one instance, the
 * jobs that meet the target go first, in arrival order (their deadlines are in the same order, so
 * no other order fits more), each as early as the one before lets it; the rest go last.
 */
function fewestInstancesMeeting(
  jobs: readonly TraceJob[],
  target: number,
  needed: number,
  readyAt: number,
): number {
  const onTime = (mine: readonly TraceJob[]) => {
    let best = 0;
    for (let mask = 0; mask < 1 << mine.length; mask += 1) {
      const chosen = mine.filter((_, i) => mask & (1 << i)).sort((a, b) => a.arrival - b.arrival);
      let free = readyAt;
      let fits = true;
      for (const j of chosen) {
        const start = Math.max(free, j.arrival);
        if (start > j.arrival + target) fits = false;
        free = start + j.build;
      }
      if (fits) best = Math.max(best, chosen.length);
    }
    return best;
  };
  for (let k = 1; k <= jobs.length; k += 1) {
    const owner = new Array<number>(jobs.length).fill(0);
    for (;;) {
      const split = Array.from({ length: k }, (_, i) => jobs.filter((_, n) => owner[n] === i));
      if (split.reduce((sum, mine) => sum + onTime(mine), 0) >= needed) return k;
      let n = 0;
      while (n < owner.length && owner[n] === k - 1) owner[n++] = 0;
      if (n === owner.length) break;
      owner[n] = (owner[n] ?? 0) + 1;
    }
  }
  return jobs.length;
}

/** Up to `most` jobs arriving in [0, lastArrival], each building for 1 to `longestBuild` seconds. */
const arbJobSet = (lastArrival: number, longestBuild: number, most: number) =>
  fc
    .array(fc.tuple(fc.integer({ min: 0, max: lastArrival }), fc.integer({ min: 1, max: longestBuild })), {
      minLength: 1,
      maxLength: most,
    })
    .map(jobsOf);

describe('perfectForesight', () => {
  it.each([
    {
      name: 'one job: its build and one boot',
      jobs: [[0, 100]],
      boot: 60,
      seconds: 160,
      launches: 1,
      idle: 0,
    },
    {
      name: 'a gap shorter than a boot is bridged idle',
      jobs: [
        [0, 100],
        [130, 100],
      ],
      boot: 60,
      seconds: 60 + 100 + 30 + 100,
      launches: 1,
      idle: 30,
    },
    {
      name: 'a gap of a whole boot or more takes a new launch',
      jobs: [
        [0, 100],
        [160, 100],
      ],
      boot: 60,
      seconds: 2 * 60 + 200,
      launches: 2,
      idle: 0,
    },
    {
      name: 'a build ending as another starts hands its instance over',
      jobs: [
        [0, 100],
        [100, 50],
      ],
      boot: 60,
      seconds: 60 + 150,
      launches: 1,
      idle: 0,
    },
    {
      name: 'overlapping builds need an instance each',
      jobs: [
        [0, 100],
        [10, 100],
        [20, 100],
      ],
      boot: 60,
      seconds: 3 * 60 + 300,
      launches: 3,
      idle: 0,
    },
    {
      name: 'a short build inside a long one leaves the second layer with a bridgeable gap',
      jobs: [
        [0, 1000],
        [100, 50],
        [200, 50],
      ],
      boot: 60,
      seconds: 2 * 60 + 1100 + 50,
      launches: 2,
      idle: 50,
    },
    {
      name: 'free boots: the bound is the build-seconds',
      jobs: [
        [0, 10],
        [5, 10],
        [100, 10],
      ],
      boot: 0,
      seconds: 30,
      launches: 3,
      idle: 0,
    },
    {
      name: 'free boots: a handover is no launch',
      jobs: [
        [0, 10],
        [10, 10],
      ],
      boot: 0,
      seconds: 20,
      launches: 1,
      idle: 0,
    },
  ])('$name', ({ jobs, boot, seconds, launches, idle }) => {
    const pf = perfectForesight({ jobs: jobsOf(jobs as Array<[number, number]>) }, boot);
    expect(pf.seconds).toBeCloseTo(seconds, 9);
    expect(pf.launches).toBe(launches);
    expect(pf.idleSeconds).toBeCloseTo(idle, 9);
    expect(pf.bootSeconds).toBe(launches * boot);
  });

  it('refuses a build that takes no time', () => {
    expect(() =>
      perfectForesight(
        {
          jobs: jobsOf([
            [0, 10],
            [5, 0],
          ]),
        },
        60,
      ),
    ).toThrow(/job 1: a build must take some time/);
  });

  it('reports the peak of builds running at once', () => {
    const pf = perfectForesight(
      {
        jobs: jobsOf([
          [0, 100],
          [50, 100],
          [60, 10],
          [200, 5],
        ]),
      },
      60,
    );
    expect(pf.peak).toBe(3);
  });

  const arbJobs = arbJobSet(600, 400, 7);
  const arbBoot = fc.integer({ min: 0, max: 150 });

  it('equals the brute-force optimum of the same relaxation', () => {
    fc.assert(
      fc.property(arbJobs, arbBoot, (jobs, boot) => {
        expect(perfectForesight({ jobs }, boot).seconds).toBeCloseTo(
          optimumByDynamicProgramme(jobs, boot),
          6,
        );
      }),
      { numRuns: 300 },
    );
  });

  it('is never above the cheapest zero-wait fleet with builds pinned to instances, nor below the build-seconds plus one boot', () => {
    fc.assert(
      fc.property(arbJobs, arbBoot, (jobs, boot) => {
        const pf = perfectForesight({ jobs }, boot);
        expect(pf.seconds).toBeLessThanOrEqual(pinnedOptimum(jobs, boot) + 1e-6);
        expect(pf.seconds).toBeGreaterThanOrEqual(workSeconds({ jobs }) + boot - 1e-6);
        expect(pf.seconds).toBeLessThanOrEqual(workSeconds({ jobs }) + jobs.length * boot + 1e-6);
      }),
      { numRuns: 300 },
    );
  });
});

describe('waitTargetFloor', () => {
  // 20 jobs in 10 s (arrivals 0 … 9.5 s), a target of 100 s, boots from 60 s; builds 40, 80 and 300 s.
  const jobs = Array.from({ length: 20 }, (_, i) => job(i, i / 2, i < 2 ? 40 : i < 4 ? 80 : 300));

  it.each([
    // Foresight: a job meeting the target can follow a build of up to 9.5 + 100 − 0 s: four of them.
    { online: false, launches: 19 - 4 },
    // Online: instances serve from 60 s, so only builds of up to 9.5 + 100 − 60 s can be followed.
    { online: true, launches: 19 - 2 },
  ])(
    'online $online: one boot per job meeting the target, less the builds short enough to be followed',
    ({ online, launches }) => {
      const floor = waitTargetFloor({ jobs }, 100, 0.95, 60, online);
      expect(floor.launches).toBe(launches);
      expect(floor.seconds).toBe(workSeconds({ jobs }) + launches * 60);
    },
  );

  it('never asks for more instances than the best split of the jobs needs', () => {
    const arbFew = arbJobSet(60, 150, 5);
    fc.assert(
      fc.property(
        arbFew,
        fc.integer({ min: 0, max: 120 }),
        fc.constantFrom(0.5, 0.8, 1),
        fc.integer({ min: 1, max: 90 }),
        fc.boolean(),
        (jobs, target, percentile, boot, online) => {
          const floor = waitTargetFloor({ jobs }, target, percentile, boot, online);
          const first = Math.min(...jobs.map((j) => j.arrival));
          const needed = Math.ceil(percentile * jobs.length);
          // Online, no instance serves before the first arrival plus a boot; with foresight, any time.
          const best = fewestInstancesMeeting(jobs, target, needed, online ? first + boot : -Infinity);
          expect(floor.launches).toBeLessThanOrEqual(best);
        },
      ),
      { numRuns: 200 },
    );
  });
});
