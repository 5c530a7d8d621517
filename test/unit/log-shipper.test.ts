import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LogShipper } from '../../agent/log-shipper';
import { KilnError } from '../../core/errors';

interface Stored {
  seq: number;
  text: string;
}

/** A sink that records calls; `fail` decides per call whether it rejects, `hold` keeps calls pending. */
function recordingSink() {
  const stored: Stored[] = [];
  const calls: Stored[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const state = {
    fail: (_call: number): boolean => false,
    hold: false,
    releases: [] as Array<() => void>,
  };
  const sink = async (seq: number, chunk: Buffer): Promise<void> => {
    const call = calls.length;
    calls.push({ seq, text: chunk.toString('utf8') });
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      if (state.hold) await new Promise<void>((resolve) => state.releases.push(resolve));
      await Promise.resolve();
      if (state.fail(call)) throw new Error(`sink down (call ${call})`);
      stored.push({ seq, text: chunk.toString('utf8') });
    } finally {
      inFlight -= 1;
    }
  };
  return { sink, stored, calls, state, maxInFlight: () => maxInFlight };
}

/** Advances fake time until the promise settles; returns 'resolved' or the rejection reason. */
async function settle(promise: Promise<unknown>): Promise<unknown> {
  let outcome: unknown;
  let settled = false;
  promise.then(
    () => {
      outcome = 'resolved';
      settled = true;
    },
    (error: unknown) => {
      outcome = error;
      settled = true;
    },
  );
  for (let i = 0; i < 1000 && !settled; i += 1) await vi.advanceTimersByTimeAsync(10);
  if (!settled) throw new Error('promise did not settle within 10 s of fake time');
  return outcome;
}

const text = (stored: Stored[]): string => stored.map((s) => s.text).join('');

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('LogShipper', () => {
  it('ships nothing before the interval, then one chunk with everything written', async () => {
    const { sink, stored } = recordingSink();
    const shipper = new LogShipper({ sink, flushIntervalMs: 1000, maxChunkBytes: 1024 });
    shipper.write(Buffer.from('hello '));
    await vi.advanceTimersByTimeAsync(400);
    shipper.write(Buffer.from('world\n'));
    await vi.advanceTimersByTimeAsync(500);
    expect(stored).toEqual([]);
    await vi.advanceTimersByTimeAsync(100);
    expect(stored).toEqual([{ seq: 0, text: 'hello world\n' }]);

    shipper.write(Buffer.from('later\n'));
    await vi.advanceTimersByTimeAsync(1000);
    expect(stored).toEqual([
      { seq: 0, text: 'hello world\n' },
      { seq: 1, text: 'later\n' },
    ]);
    await shipper.close();
  });

  it('ships full chunks at once, without waiting for the timer, and the rest on the timer', async () => {
    const { sink, stored } = recordingSink();
    const shipper = new LogShipper({ sink, flushIntervalMs: 60_000, maxChunkBytes: 4, startSeq: 7 });
    shipper.write(Buffer.from('abcdefghij'));
    await vi.advanceTimersByTimeAsync(0);
    expect(stored).toEqual([
      { seq: 7, text: 'abcd' },
      { seq: 8, text: 'efgh' },
    ]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(stored.at(-1)).toEqual({ seq: 9, text: 'ij' });
    expect(shipper.seq).toBe(10);
    await shipper.close();
  });

  it('keeps seqs contiguous and order intact with one sink call in flight', async () => {
    const { sink, stored, calls, state, maxInFlight } = recordingSink();
    state.hold = true;
    const shipper = new LogShipper({ sink, flushIntervalMs: 50, maxChunkBytes: 8 });
    const lines: string[] = [];
    for (let i = 0; i < 40; i += 1) {
      const line = `l${i}\n`;
      lines.push(line);
      shipper.write(Buffer.from(line));
      if (i % 7 === 0) await vi.advanceTimersByTimeAsync(30);
      // Let held calls finish in a different order from how they were made, if more than one existed.
      for (const release of state.releases.splice(0).reverse()) release();
    }
    state.hold = false;
    for (const release of state.releases.splice(0)) release();
    expect(await settle(shipper.close())).toBe('resolved');
    expect(calls.length).toBe(stored.length);
    expect(maxInFlight()).toBe(1);
    expect(stored.map((s) => s.seq)).toEqual(stored.map((_, i) => i));
    expect(text(stored)).toBe(lines.join(''));
    expect(stored.every((s) => Buffer.byteLength(s.text) <= 8)).toBe(true);
  });

  it('does not split a UTF-8 character across chunks', async () => {
    const { sink, stored } = recordingSink();
    const shipper = new LogShipper({ sink, flushIntervalMs: 1000, maxChunkBytes: 5 });
    const written = 'aaaé€😀b';
    shipper.write(Buffer.from(written));
    await shipper.close();
    expect(text(stored)).toBe(written);
    expect(stored.every((s) => !s.text.includes('\uFFFD'))).toBe(true);
  });

  it('retries a failed sink call with the same seq and bytes', async () => {
    const { sink, stored, calls, state } = recordingSink();
    state.fail = (call) => call < 2;
    const shipper = new LogShipper({ sink, flushIntervalMs: 100, maxChunkBytes: 1024, retryDelayMs: 50 });
    shipper.write(Buffer.from('first\n'));
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(50);
    expect(calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toEqual([
      { seq: 0, text: 'first\n' },
      { seq: 0, text: 'first\n' },
      { seq: 0, text: 'first\n' },
    ]);
    expect(stored).toEqual([{ seq: 0, text: 'first\n' }]);
    // Retries that succeeded are not an error.
    await expect(shipper.flush()).resolves.toBeUndefined();
    await shipper.close();
  });

  it('surfaces a sink that keeps failing on the next flush, keeps the data, and resumes', async () => {
    const { sink, stored, state } = recordingSink();
    let down = true;
    state.fail = () => down;
    const shipper = new LogShipper({
      sink,
      flushIntervalMs: 100,
      maxChunkBytes: 1024,
      maxAttempts: 3,
      retryDelayMs: 10,
    });
    shipper.write(Buffer.from('one\n'));
    await vi.advanceTimersByTimeAsync(200);
    shipper.write(Buffer.from('two\n'));

    const error = await settle(shipper.flush());
    expect(error).toBeInstanceOf(KilnError);
    expect((error as KilnError).message).toMatch(/log chunk 0 .* after 3 attempts/);
    expect(((error as KilnError).cause as Error).message).toMatch(/sink down/);
    expect(stored).toEqual([]);

    down = false;
    expect(await settle(shipper.close())).toBe('resolved');
    expect(stored.map((s) => s.seq)).toEqual([0, 1]);
    expect(text(stored)).toBe('one\ntwo\n');
  });

  it('close() rejects if the sink never takes the data', async () => {
    const { sink, state } = recordingSink();
    state.fail = () => true;
    const shipper = new LogShipper({ sink, flushIntervalMs: 100, maxChunkBytes: 1024, retryDelayMs: 10 });
    shipper.write(Buffer.from('lost\n'));
    expect(await settle(shipper.close())).toBeInstanceOf(KilnError);
    expect(() => shipper.write(Buffer.from('x'))).toThrow(/after close/);
  });

  it('caps memory while the sink is stuck, dropping the oldest bytes with a marker', async () => {
    const { sink, stored, state } = recordingSink();
    state.hold = true;
    const shipper = new LogShipper({ sink, flushIntervalMs: 100, maxChunkBytes: 10, maxBufferedBytes: 30 });
    shipper.write(Buffer.from('0123456789'));
    await vi.advanceTimersByTimeAsync(0);
    expect(state.releases).toHaveLength(1);

    // 60 more bytes while chunk 0 is stuck: only the newest 30 are kept.
    for (const letter of 'abcdef') shipper.write(Buffer.from(letter.repeat(10)));
    state.hold = false;
    for (const release of state.releases.splice(0)) release();
    await shipper.close();

    expect(stored.map((s) => s.seq)).toEqual(stored.map((_, i) => i));
    const all = text(stored);
    expect(all.startsWith('0123456789')).toBe(true);
    expect(all).toContain('[30 bytes dropped]');
    expect(all).not.toContain('aaa');
    expect(all).not.toContain('ccc');
    expect(all.endsWith('dddddddddd' + 'eeeeeeeeee' + 'ffffffffff')).toBe(true);
    expect(all.indexOf('[30 bytes dropped]')).toBeLessThan(all.indexOf('ddd'));
  });

  it('keeps dropping while the sink fails, so memory stays bounded', async () => {
    const { sink, stored, state } = recordingSink();
    let down = true;
    state.fail = () => down;
    const shipper = new LogShipper({
      sink,
      flushIntervalMs: 100,
      maxChunkBytes: 100,
      maxBufferedBytes: 1000,
      retryDelayMs: 1,
    });
    for (let i = 0; i < 1000; i += 1) {
      shipper.write(Buffer.alloc(100, 'x'));
      if (i % 100 === 0) await vi.advanceTimersByTimeAsync(100);
    }
    down = false;
    expect(await settle(shipper.flush())).toBeInstanceOf(KilnError);
    expect(await settle(shipper.close())).toBe('resolved');
    const all = text(stored);
    // At most one pending chunk and the capped queue survive, plus a marker.
    expect(all.replace(/\n\[\d+ bytes dropped\]\n/g, '').length).toBeLessThanOrEqual(1100);
    expect(all).toMatch(/\[\d+ bytes dropped\]/);
  });
});
