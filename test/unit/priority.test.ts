import { describe, expect, it } from 'vitest';
import type { Priority } from '../../core/job';
import {
  DEFAULT_MINIMUM_SHARES,
  minimumSharesProblems,
  priorityOrder,
  recordStart,
} from '../../core/priority';

const repeat = (p: Priority, n: number): Priority[] => Array.from({ length: n }, () => p);

describe('priorityOrder', () => {
  it.each<{ what: string; recent: Priority[]; order: Priority[] }>([
    { what: 'no history: plain priority', recent: [], order: ['high', 'normal', 'low'] },
    {
      what: 'shares above their minimums even if the next start goes elsewhere: plain priority',
      recent: [...repeat('high', 6), ...repeat('normal', 3), ...repeat('low', 2)],
      order: ['high', 'normal', 'low'],
    },
    {
      what: 'low starved, normal at its edge: low first, then normal',
      recent: [...repeat('high', 8), ...repeat('normal', 2)],
      order: ['low', 'normal', 'high'],
    },
    {
      what: 'normal starved, low at its edge: normal first, then low',
      recent: [...repeat('high', 9), 'low'],
      order: ['normal', 'low', 'high'],
    },
    {
      what: 'normal starved, low comfortably above: normal first, then plain priority',
      recent: [...repeat('high', 7), ...repeat('low', 3)],
      order: ['normal', 'high', 'low'],
    },
    {
      what: 'both starved: the one furthest below its minimum leads',
      recent: repeat('high', 10),
      order: ['normal', 'low', 'high'],
    },
    {
      what: 'only lower classes ran: high leads again',
      recent: [...repeat('normal', 5), ...repeat('low', 5)],
      order: ['high', 'normal', 'low'],
    },
  ])('$what', ({ recent, order }) => {
    expect(priorityOrder(recent, DEFAULT_MINIMUM_SHARES)).toEqual(order);
  });

  it('a short history is plain priority: a fresh agent starts with the highest class', () => {
    expect(priorityOrder(repeat('high', 4), DEFAULT_MINIMUM_SHARES)).toEqual(['high', 'normal', 'low']);
    expect(priorityOrder(repeat('high', 5), DEFAULT_MINIMUM_SHARES)).toEqual(['normal', 'high', 'low']);
  });

  it('a zero minimum never jumps the queue', () => {
    expect(priorityOrder(repeat('high', 10), { normal: 0, low: 0 })).toEqual(['high', 'normal', 'low']);
  });

  it('under saturation every class gets at least its minimum share of starts', () => {
    // Every queue always has work: the agent takes the first class of the order each time.
    let window: Priority[] = [];
    const starts: Priority[] = [];
    for (let i = 0; i < 1000; i += 1) {
      const next = priorityOrder(window, DEFAULT_MINIMUM_SHARES)[0] as Priority;
      starts.push(next);
      window = recordStart(window, next, 20);
    }
    const share = (p: Priority) => starts.filter((s) => s === p).length / starts.length;
    expect(share('low')).toBeGreaterThanOrEqual(0.1);
    expect(share('normal')).toBeGreaterThanOrEqual(0.2);
    expect(share('high')).toBeGreaterThanOrEqual(0.6);
  });
});

describe('recordStart', () => {
  it('keeps the newest `size` starts, oldest first', () => {
    expect(recordStart(['high', 'normal'], 'low', 2)).toEqual(['normal', 'low']);
    expect(recordStart([], 'low', 2)).toEqual(['low']);
  });
});

describe('minimumSharesProblems', () => {
  it.each([
    [{ normal: 0.2, low: 0.1 }, []],
    [{ normal: 0.6, low: 0.5 }, ['minimum shares must add up to less than 1']],
    [{ normal: -0.1 }, ['each minimum share must be at least 0 and below 1']],
  ])('%j → %j', (minimums, problems) => {
    expect(minimumSharesProblems(minimums)).toEqual(problems);
  });
});
