import { PRIORITIES, type Priority } from './job';

/**
 * Minimum share of starts each class gets while the fleet is saturated. `high` takes whatever
 * the others leave; the sum of the minimums must stay below 1.
 */
export type MinimumShares = Readonly<Partial<Record<Exclude<Priority, 'high'>, number>>>;

export const DEFAULT_MINIMUM_SHARES: MinimumShares = { normal: 0.2, low: 0.1 };

/**
 * The order in which an idle agent tries its pool's queues. Highest class first, except that a
 * class whose share of the recent starts fell below its minimum goes first (the one furthest
 * below its minimum leads), so under saturation no class starves. Build type plays no part: a
 * security-fix rebuild can be `auto` and `high`.
 *
 * `recentStarts` are the classes of the last starts this agent made, oldest first.
 */
export function priorityOrder(recentStarts: readonly Priority[], minimums: MinimumShares): Priority[] {
  const total = recentStarts.length;
  const deficits = PRIORITIES.flatMap((p) => {
    if (p === 'high') return [];
    const minimum = minimums[p] ?? 0;
    // A share means something only once the window could hold one start of this class at its
    // minimum: before that, plain priority (a fresh agent starts with the highest class).
    if (minimum <= 0 || total < Math.ceil(1 / minimum)) return [];
    // The share this class would have if the next start went elsewhere: acting before it drops
    // below the minimum is what keeps it at or above the minimum.
    const share = recentStarts.filter((s) => s === p).length / (total + 1);
    return share < minimum ? [{ p, deficit: minimum - share }] : [];
  });
  deficits.sort((a, b) => b.deficit - a.deficit || PRIORITIES.indexOf(a.p) - PRIORITIES.indexOf(b.p));
  const first: Priority[] = deficits.map((d) => d.p);
  return [...first, ...PRIORITIES.filter((p) => !first.includes(p))];
}

/** Keeps the last `size` starts, oldest first. */
export function recordStart(window: readonly Priority[], started: Priority, size: number): Priority[] {
  const next = [...window, started];
  return next.length > size ? next.slice(next.length - size) : next;
}

export function minimumSharesProblems(minimums: MinimumShares): string[] {
  const values = Object.values(minimums).filter((v): v is number => v !== undefined);
  const problems: string[] = [];
  if (values.some((v) => v < 0 || v >= 1)) problems.push('each minimum share must be at least 0 and below 1');
  if (values.reduce((a, b) => a + b, 0) >= 1) problems.push('minimum shares must add up to less than 1');
  return problems;
}
