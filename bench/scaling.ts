/**
 * `npm run bench:scaling`: a deterministic discrete-event simulation of one pool under four traces,
 * comparing Kiln's scaling decision (core/scaling.ts, the code the scaler runs) with AWS's
 * backlog-per-instance target tracking and a Buildkite-style scaler, and holding it to two
 * yardsticks on the burst: the perfect-foresight (zero-wait) fleet, and the cheapest any policy
 * meeting the wait target can be (ADR 0005). Simulated time, seeded randomness: a run takes seconds
 * and prints the same table every time for the same options. Exits 1 if Kiln misses a target
 * (docs/scaling.md explains each).
 *
 *   npx tsx bench/scaling.ts [--seed=kiln] [--boot=60-90] [--boot-failure=0.01] [--metric-delay=30]
 *     [--interval=10] [--idle-timeout=10] [--arrival-window=1] [--build-mean=300] [--max=50]
 *     [--trace=steady|burst|burst-cap|diurnal]
 */
import { parseArgs } from 'node:util';
import { DEFAULT_SCALING_SETTINGS, type ScalingSettings } from '../core/scaling';
import { perfectForesight, waitTargetFloor, workSeconds } from './scaling/bounds';
import { Fleet, type ModelParams, type RunResult } from './scaling/fleet';
import { buildkite, kiln, type Policy, targetTracking } from './scaling/policies';
import { bound, type Row, row, table } from './scaling/report';
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
const checks: Array<{ ok: boolean; text: string }> = [];
const out: string[] = [];
out.push(
  `seed "${seed}"; boot ${bootMin}–${bootMax} s (${(100 * params.bootFailureRate).toFixed(1)}% never report in); ` +
    `builds lognormal, mean ${buildMean} s, σ 0.5; 1 build per instance; decision interval ${interval} s; ` +
    `CloudWatch: ${params.metricPeriodSeconds} s periods, visible ${params.metricDelaySeconds} s after the period; ` +
    `kiln: idle timeout ${settings.idleTimeoutSeconds} s, boot deadline ${settings.bootDeadlineSeconds} s, ` +
    `arrivals over the last ${opts['arrival-window']} min; target tracking: target ${(waitTarget / buildMean).toFixed(3)} backlog/instance.`,
);

for (const trace of chosen) {
  const work = workSeconds(trace);
  // The shortest boot: whatever boot times are drawn, no zero-wait fleet costs less than this.
  const foresight = perfectForesight(trace, bootMin);
  const by = { foresightSeconds: foresight.seconds, workSeconds: work };
  const rows: Row[] = [];
  const runs: RunResult[] = [];
  for (const policy of policies) {
    const fleet = new Fleet(trace, params, { protectBusy: policy.protectBusy }, seed);
    policy.attach(fleet);
    const run = fleet.run();
    runs.push(run);
    rows.push(row(policy.name, run, by));
  }
  rows.push(
    bound('perfect foresight', foresight, by),
    bound(
      'build-minutes only',
      { seconds: work, bootSeconds: 0, idleSeconds: 0, launches: trace.jobs.length },
      by,
    ),
  );
  out.push('', `### ${trace.name}: ${trace.description}`, '');
  out.push(
    `${trace.jobs.length} jobs, ${(work / 60).toFixed(1)} build-minutes. Perfect foresight (every job starts on arrival, ` +
      `${bootMin} s per boot): ${(foresight.seconds / 60).toFixed(1)} instance-minutes, ${foresight.launches} launches, ` +
      `at most ${foresight.peak} at once` +
      (foresight.peak > trace.maxCapacity
        ? ` — more than maxCapacity ${trace.maxCapacity}, so some jobs must wait under any policy, and one that makes them wait can cost less than this.`
        : '.'),
  );
  const kilnRun = runs[0] as RunResult;
  out.push(
    `kiln: ${kilnRun.failedBoots} of ${kilnRun.launches} launches never reported in: ` +
      `${kilnRun.replaced} replaced at the ${settings.bootDeadlineSeconds} s boot deadline, ` +
      `${kilnRun.failedBoots - kilnRun.replaced} terminated there as no longer needed.`,
  );

  const k = rows[0] as Row;
  for (const other of rows.slice(1, policies.length)) {
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
    checks.push({
      ok: k.ratio <= costTarget,
      text: `${trace.name}: instance-minutes ${k.ratio.toFixed(3)}× the perfect-foresight (zero-wait) fleet ≤ ${costTarget}×`,
    });
    // The zero-wait fleet above gives every job a wait of 0; a policy may let 5% wait longer and the
    // rest up to the target. The cheapest any policy can be under that target, foresight included:
    const floor = waitTargetFloor(trace, waitTarget, 0.95, bootMin, false);
    checks.push({
      ok: k.instanceMinutes * 60 <= costTarget * floor.seconds,
      text:
        `${trace.name}: instance-minutes ${((k.instanceMinutes * 60) / floor.seconds).toFixed(3)}× the cheapest ` +
        `any policy meeting the wait target can be (${floor.launches} boots) ≤ ${costTarget}×`,
    });
    // Not a check: why the build-minutes alone cannot be the yardstick on a burst.
    const online = waitTargetFloor(trace, waitTarget, 0.95, bootMin, true);
    out.push(
      '',
      `Against the build-minutes alone: kiln ${k.workRatio.toFixed(3)}×. With perfect foresight, a policy meeting the ` +
        `wait target must still boot ${floor.launches} instances (${(floor.seconds / work).toFixed(3)}× the ` +
        `build-minutes); one that reacts to arrivals must boot ${online.launches} ` +
        `(${(online.seconds / work).toFixed(3)}×), each for ${bootMin} s or more. Kiln is ` +
        `${((k.instanceMinutes * 60) / online.seconds).toFixed(3)}× that reactive floor.`,
    );
  }
}

out.push('', 'Checks (kiln):');
for (const c of checks) out.push(`  ${c.ok ? 'PASS' : 'FAIL'} ${c.text}`);
out.push('', `simulated in ${((performance.now() - started) / 1000).toFixed(1)} s of wall time`);
console.log(out.join('\n'));
process.exitCode = checks.every((c) => c.ok) ? 0 : 1;
