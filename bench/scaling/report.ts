import type { RunResult } from './fleet';

/** Nearest-rank percentile (p in 0..1) of unsorted values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[rank - 1] ?? 0;
}

export interface Row {
  policy: string;
  p50: number;
  p95: number;
  max: number;
  instanceMinutes: number;
  /** Instance-minutes ÷ the perfect-foresight (zero-wait) fleet of the same trace. */
  ratio: number;
  /** Instance-minutes ÷ the trace's build-minutes. */
  workRatio: number;
  bootShare: number;
  idleShare: number;
  killed: number;
  launches: number;
  unfinished: number;
}

/** The yardsticks every row is divided by, computed from the trace in the same run. */
export interface Yardsticks {
  foresightSeconds: number;
  workSeconds: number;
}

export function row(policy: string, r: RunResult, by: Yardsticks): Row {
  const share = (s: number) => (r.instanceSeconds > 0 ? s / r.instanceSeconds : 0);
  return {
    policy,
    p50: percentile(r.waits, 0.5),
    p95: percentile(r.waits, 0.95),
    max: percentile(r.waits, 1),
    instanceMinutes: r.instanceSeconds / 60,
    ratio: r.instanceSeconds / by.foresightSeconds,
    workRatio: r.instanceSeconds / by.workSeconds,
    bootShare: share(r.bootSeconds),
    idleShare: share(r.idleSeconds),
    killed: r.killed,
    launches: r.launches,
    unfinished: r.unfinished,
  };
}

/** What a bound costs, in instance-seconds. */
export interface BoundCost {
  seconds: number;
  bootSeconds: number;
  idleSeconds: number;
  launches: number;
}

/** A row for a bound: no waits, nothing killed. */
export function bound(policy: string, b: BoundCost, by: Yardsticks): Row {
  return {
    policy,
    p50: 0,
    p95: 0,
    max: 0,
    instanceMinutes: b.seconds / 60,
    ratio: b.seconds / by.foresightSeconds,
    workRatio: b.seconds / by.workSeconds,
    bootShare: b.bootSeconds / b.seconds,
    idleShare: b.idleSeconds / b.seconds,
    killed: 0,
    launches: b.launches,
    unfinished: 0,
  };
}

const secs = (s: number) => `${Math.round(s)} s`;
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function table(rows: readonly Row[]): string {
  const header = [
    'policy',
    'p50 wait',
    'p95 wait',
    'max wait',
    'instance-min',
    '× foresight',
    '× work',
    'boot',
    'idle',
    'launches',
    'killed',
  ];
  const body = rows.map((r) => [
    r.policy,
    secs(r.p50),
    secs(r.p95),
    secs(r.max),
    r.instanceMinutes.toFixed(1),
    `${r.ratio.toFixed(2)}×`,
    `${r.workRatio.toFixed(2)}×`,
    pct(r.bootShare),
    pct(r.idleShare),
    String(r.launches),
    String(r.killed),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `-${'-'.repeat(w)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...body.map(line)].join('\n');
}
