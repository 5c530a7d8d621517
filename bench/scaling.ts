/**
 * `npm run bench:scaling`: a deterministic discrete-event simulation of one pool under four traces,
 * comparing Kiln's scaling decision (core/scaling.ts, the code the scaler runs) with AWS's
 * backlog-per-instance target tracking, a Buildkite-style scaler and a perfect-foresight lower
 * bound. Simulated time, seeded randomness: a run takes seconds and prints the same table every
 * time for the same options. Exits 1 if Kiln misses a target (docs/scaling.md explains each).
 *
 *   npx tsx bench/scaling.ts [--seed=kiln] [--boot=60-90] [--boot-failure=0.01] [--metric-delay=30]
 *     [--interval=10] [--idle-timeout=10] [--arrival-window=1] [--build-mean=300] [--max=50]
 *     [--trace=steady|burst|burst-cap|diurnal]
 */
import { parseArgs } from 'node:util';
import { DEFAULT_SCALING_SETTINGS, type ScalingSettings } from '../core/scaling';
import { bootFloor, lowerBoundSeconds } from './scaling/bounds';
import { Fleet, type ModelParams, type RunResult } from './scaling/fleet';
import { buildkite, kiln, type Policy, targetTracking } from './scaling/policies';
import { type Row, row, table } from './scaling/report';
import { traces } from './scaling/traces';

const { values: opts } = parseArgs({
  options: {
    seed: { type: 'string', default: 'kiln' },
    boot: { type: 'string', default: '60-90' },
    'boot-failure': { type: 'string', default: '0.01' },
    'metric-delay': { type: 'string', default: '30' },
    interval: { type: 'string', default: String(DEFAULT_SCALING_SETTINGS.decisionIntervalSeconds) },
    'idle-timeout': { type: 'string', default: String(DEFAULT_SCALING_SETTINGS.idleTimeoutSeconds) },
    'arrival-window': { type: 'string', default: '1' },
    'build-mean': { type: 'string', default: '300' },
    max: { type: 'string', default: '50' },
    trace: { type: 'string' },
  },
});

function num(name: string, text: string | undefined): number {
  const n = Number(text);
  if (text === undefined || text === '' || !Number.isFinite(n) || n < 0) {
    throw new Error(`--${name}: expected a number ≥ 0, got "${text}"`);
  }
  return n;
}

const [bootMin, bootMax] = (opts.boot ?? '')
  .split('-')
  .map((s, i) => num(i === 0 ? 'boot' : 'boot (max)', s));
if (bootMin === undefined || bootMax === undefined || bootMax < bootMin) {
  throw new Error(`--boot: expected MIN-MAX seconds, got "${opts.boot}"`);
}
const seed = opts.seed ?? 'kiln';
const interval = num('interval', opts.interval);
if (interval === 0) throw new Error('--interval: must be > 0');
const buildMean = num('build-mean', opts['build-mean']);
const params: ModelParams = {
  bootMinSeconds: bootMin,
  bootMaxSeconds: bootMax,
  bootFailureRate: num('boot-failure', opts['boot-failure']),
  concurrency: 1,
  minCapacity: 0,
  leaseSeconds: 120,
  heartbeatSeconds: 30,
  metricPeriodSeconds: 60,
  metricDelaySeconds: num('metric-delay', opts['metric-delay']),
  cutoffSeconds: 6 * 3600,
};
const settings: ScalingSettings = {
  ...DEFAULT_SCALING_SETTINGS,
  bootSeconds: (bootMin + bootMax) / 2,
  bootDeadlineSeconds: Math.max(DEFAULT_SCALING_SETTINGS.bootDeadlineSeconds, 2 * bootMax),
  idleTimeoutSeconds: num('idle-timeout', opts['idle-timeout']),
  decisionIntervalSeconds: interval,
};
/** The wait target: the slowest modelled boot plus one decision interval. */
const waitTarget = bootMax + interval;
const costTarget = 1.15;

const policies: Policy[] = [
  kiln(settings, num('arrival-window', opts['arrival-window'])),
  // AWS's recipe: target = acceptable latency / average processing time; we accept the same
  // latency we hold Kiln to.
  targetTracking({ targetBacklogPerInstance: waitTarget / buildMean, protectBusy: false, sampleSeconds: 10 }),
  targetTracking({ targetBacklogPerInstance: waitTarget / buildMean, protectBusy: true, sampleSeconds: 10 }),
  buildkite(interval),
];

const all = traces(seed, { buildMeanSeconds: buildMean, buildSigma: 0.5 }, num('max', opts.max));
const chosen = opts.trace ? all.filter((t) => t.name === opts.trace) : all;
if (chosen.length === 0) throw new Error(`--trace: one of ${all.map((t) => t.name).join(', ')}`);

const started = performance.now();
const checks: Array<{ ok: boolean; text: string; unreachable?: boolean }> = [];
const out: string[] = [];
out.push(
  `seed "${seed}"; boot ${bootMin}–${bootMax} s (${(100 * params.bootFailureRate).toFixed(1)}% never report in); ` +
    `builds lognormal, mean ${buildMean} s, σ 0.5; 1 build per instance; decision interval ${interval} s; ` +
    `CloudWatch: ${params.metricPeriodSeconds} s periods, visible ${params.metricDelaySeconds} s after the period; ` +
    `kiln: idle timeout ${settings.idleTimeoutSeconds} s, boot deadline ${settings.bootDeadlineSeconds} s, ` +
    `arrivals over the last ${opts['arrival-window']} min; target tracking: target ${(waitTarget / buildMean).toFixed(3)} backlog/instance.`,
);

for (const trace of chosen) {
  const bound = lowerBoundSeconds(trace);
  const rows: Row[] = [];
  const runs: RunResult[] = [];
  for (const policy of policies) {
    const fleet = new Fleet(trace, params, { protectBusy: policy.protectBusy }, seed);
    policy.attach(fleet);
    const run = fleet.run();
    runs.push(run);
    rows.push(row(policy.name, run, bound));
  }
  rows.push({
    policy: 'lower bound',
    p50: 0,
    p95: 0,
    max: 0,
    instanceMinutes: bound / 60,
    ratio: 1,
    bootShare: 0,
    idleShare: 0,
    killed: 0,
    launches: trace.jobs.length,
    unfinished: 0,
  });
  out.push('', `### ${trace.name}: ${trace.description}`, '');
  out.push(`${trace.jobs.length} jobs, ${(bound / 60).toFixed(1)} build-minutes (the lower bound).`);
  const kilnRun = runs[0] as RunResult;
  out.push(
    `kiln: ${kilnRun.failedBoots} of ${kilnRun.launches} launches never reported in: ` +
      `${kilnRun.replaced} replaced at the ${settings.bootDeadlineSeconds} s boot deadline, ` +
      `${kilnRun.failedBoots - kilnRun.replaced} terminated there as no longer needed.`,
  );

  const k = rows[0] as Row;
  for (const other of rows.slice(1, -1)) {
    out.push(
      `kiln vs ${other.policy}: p95 wait ${k.p95.toFixed(0)} vs ${other.p95.toFixed(0)} s, ` +
        `instance-minutes ${(k.instanceMinutes / other.instanceMinutes).toFixed(2)}×, killed ${k.killed} vs ${other.killed}.`,
    );
  }
  out.push('', table(rows));
  for (const r of rows) {
    if (r.unfinished > 0) {
      out.push(
        '',
        `${r.policy}: ${r.unfinished} job(s) unfinished at the cutoff, ${params.cutoffSeconds / 3600} h after the ` +
          'last arrival; their waits count up to it.',
      );
    }
  }

  checks.push({
    ok: k.killed === 0,
    text: `${trace.name}: ${k.killed} builds killed by scale-in (target 0)`,
  });
  if (trace.burstTargets) {
    checks.push({
      ok: k.p95 <= waitTarget,
      text: `${trace.name}: p95 wait ${k.p95.toFixed(1)} s ≤ ${waitTarget} s (slowest boot ${bootMax} s + interval ${interval} s)`,
    });
    const floor = bootFloor(trace, waitTarget, 0.95, {
      minSeconds: bootMin,
      meanSeconds: (bootMin + bootMax) / 2,
    });
    const expected = floor.expectedSeconds / bound;
    const strict = floor.strictSeconds / bound;
    if (expected <= costTarget) {
      checks.push({
        ok: k.ratio <= costTarget,
        text: `${trace.name}: instance-minutes ${k.ratio.toFixed(3)}× the lower bound ≤ ${costTarget}×`,
      });
    } else {
      // The lower bound has no boots, and meeting the wait target forces `floor.launches` of them,
      // so no policy reaches 1.15× of it. Hold Kiln to 1.15× of the cheapest cost that can meet the
      // wait target instead, and say so.
      out.push(
        '',
        `${costTarget}× the lower bound is out of reach on this trace: to start 95% of the jobs within ${waitTarget} s, ` +
          `any policy must boot at least ${floor.launches} instances, each for ${bootMin}–${bootMax} s, on top of ` +
          `${(bound / 60).toFixed(1)} build-minutes. Even if every boot took the minimum ${bootMin} s that is ` +
          `${(floor.strictSeconds / 60).toFixed(1)} instance-minutes = ${strict.toFixed(3)}× the lower bound; at the ` +
          `mean boot it is ${(floor.expectedSeconds / 60).toFixed(1)} = ${expected.toFixed(3)}× (the boot floor). ` +
          `Kiln: ${k.ratio.toFixed(3)}× the lower bound = ${(k.instanceMinutes / (floor.expectedSeconds / 60)).toFixed(3)}× the boot floor.`,
      );
      // Not a pass: the stated target is not met. It is reported as unreachable and does not fail
      // the run, because no policy can meet it on this trace.
      checks.push({
        ok: true,
        unreachable: true,
        text: `${trace.name}: instance-minutes ${k.ratio.toFixed(3)}× the lower bound; ${costTarget}× is out of reach (boot floor ${expected.toFixed(3)}×), see above`,
      });
      checks.push({
        ok: k.instanceMinutes * 60 <= costTarget * floor.expectedSeconds,
        text: `${trace.name}: instance-minutes ${(k.instanceMinutes / (floor.expectedSeconds / 60)).toFixed(3)}× the boot floor ≤ ${costTarget}×`,
      });
    }
  }
}

out.push('', 'Checks (kiln):');
for (const c of checks) out.push(`  ${c.unreachable ? 'UNREACHABLE' : c.ok ? 'PASS' : 'FAIL'} ${c.text}`);
out.push('', `simulated in ${((performance.now() - started) / 1000).toFixed(1)} s of wall time`);
console.log(out.join('\n'));
process.exitCode = checks.every((c) => c.ok) ? 0 : 1;
