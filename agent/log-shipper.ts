import { KilnError } from '../core/errors';

export interface LogShipperOptions {
  /**
   * Stores one chunk. A retry of a failed call repeats the same seq with the same bytes, so a call
   * that failed after the store had taken it (a lost response) is harmless. The sink is expected to
   * time out on its own; a call that never settles stalls shipping (memory stays capped).
   */
  sink: (seq: number, chunk: Buffer) => Promise<void>;
  /** Longest time a written byte waits before it is shipped. */
  flushIntervalMs: number;
  /** A chunk is shipped as soon as this many bytes are waiting; no chunk is larger (bar a drop marker). */
  maxChunkBytes: number;
  startSeq?: number;
  /** Bytes held while the sink lags; beyond this the oldest are dropped. Default max(8 MiB, 4 chunks). */
  maxBufferedBytes?: number;
  /** Sink calls per chunk before giving up until the next trigger; default 3. */
  maxAttempts?: number;
  /** Delay before the first retry, doubled for each next one; default 200 ms. */
  retryDelayMs?: number;
}

interface Chunk {
  seq: number;
  data: Buffer;
}

/**
 * Batches build output into numbered chunks for a sink (S3 objects `logs/<jobId>/<seq>.log`).
 * Readers stop at the first missing seq, so seqs are contiguous and a chunk is never skipped: a
 * chunk the sink refuses stays first in line and is retried on the next trigger.
 */
export class LogShipper {
  private readonly sink: LogShipperOptions['sink'];
  private readonly flushIntervalMs: number;
  private readonly maxChunkBytes: number;
  private readonly maxBufferedBytes: number;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;

  private nextSeq: number;
  /** Written bytes not yet cut into a chunk, oldest first. */
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  /** Bytes dropped from the front of the queue since the last chunk was cut. */
  private droppedBytes = 0;
  /** The chunk being sent, or refused by the sink and waiting to be sent again. */
  private pending: Chunk | null = null;

  /** Bytes ever written, and bytes ever cut into chunks or dropped: flush() ships up to a mark. */
  private writtenTotal = 0;
  private consumedTotal = 0;
  private forceUntil = 0;

  private timer: NodeJS.Timeout | null = null;
  private draining: Promise<void> | null = null;
  /** A sink failure not yet reported to a flush() or close() caller. */
  private failure: KilnError | null = null;
  private sinkDown = false;
  private closed = false;

  constructor(opts: LogShipperOptions) {
    if (!(opts.maxChunkBytes > 0)) throw new KilnError('INTERNAL', 'maxChunkBytes must be positive');
    this.sink = opts.sink;
    this.flushIntervalMs = opts.flushIntervalMs;
    this.maxChunkBytes = opts.maxChunkBytes;
    this.maxBufferedBytes = Math.max(
      opts.maxBufferedBytes ?? Math.max(8 * 1024 * 1024, 4 * opts.maxChunkBytes),
      opts.maxChunkBytes,
    );
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 3);
    this.retryDelayMs = opts.retryDelayMs ?? 200;
    this.nextSeq = opts.startSeq ?? 0;
  }

  /** The seq the next new chunk will get. */
  get seq(): number {
    return this.nextSeq;
  }

  write(chunk: Buffer): void {
    if (this.closed) throw new KilnError('INTERNAL', 'LogShipper.write() after close()');
    if (chunk.length === 0) return;
    this.queue.push(chunk);
    this.queuedBytes += chunk.length;
    this.writtenTotal += chunk.length;
    this.enforceCap();
    // Armed even when a full chunk goes out at once, so the remainder does not wait for another write.
    this.armTimer();
    // While the sink is down, full chunks wait for the timer instead of hammering it on every write.
    if (this.queuedBytes >= this.maxChunkBytes && !this.sinkDown) void this.kick();
  }

  /**
   * Ships everything written so far. Rejects if the sink refused a chunk, now or since the last
   * flush()/close() (the data is kept and retried later unless the cap dropped it).
   */
  async flush(): Promise<void> {
    this.forceUntil = Math.max(this.forceUntil, this.writtenTotal);
    this.clearTimer();
    // A drain that started earlier may already be past its last check: wait for it, then run one
    // that surely sees the new mark.
    if (this.draining) await this.draining;
    await this.kick();
    this.throwFailure();
  }

  /**
   * Ships what is left and stops; later writes throw. If the sink still refuses, it rejects and
   * what was not shipped is let go (the caller has been told).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.flush();
    } finally {
      this.clearTimer();
      this.queue = [];
      this.queuedBytes = 0;
      this.pending = null;
    }
  }

  private onTimer(): void {
    this.timer = null;
    this.forceUntil = Math.max(this.forceUntil, this.writtenTotal);
    void this.kick();
  }

  private armTimer(): void {
    if (this.timer === null && !this.closed) {
      this.timer = setTimeout(() => this.onTimer(), this.flushIntervalMs);
    }
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private kick(): Promise<void> {
    this.draining ??= this.drain();
    return this.draining;
  }

  /** The only sender: one sink call at a time, in seq order. Records failures instead of throwing. */
  private async drain(): Promise<void> {
    // Settle kick()'s assignment before the finally below can clear it.
    await Promise.resolve();
    try {
      for (;;) {
        if (this.pending === null) {
          const forced = this.consumedTotal < this.forceUntil;
          const hasData = this.queuedBytes > 0 || this.droppedBytes > 0;
          if (!(this.queuedBytes >= this.maxChunkBytes || (forced && hasData))) return;
          this.pending = this.cut();
        }
        const chunk = this.pending;
        const error = await this.send(chunk);
        if (error !== undefined) {
          this.failure = new KilnError(
            'INTERNAL',
            `log chunk ${chunk.seq} (${chunk.data.length} bytes) was not stored after ${this.maxAttempts} attempts`,
            { cause: error },
          );
          this.sinkDown = true;
          // Try again a tick later even if nothing more is written, so a sink that recovers gets
          // everything before close().
          this.armTimer();
          return;
        }
        this.sinkDown = false;
        this.pending = null;
        this.nextSeq = chunk.seq + 1;
      }
    } finally {
      this.draining = null;
    }
  }

  /** Returns the last error if every attempt failed, undefined once the sink took the chunk. */
  private async send(chunk: Chunk): Promise<unknown> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt += 1) {
      try {
        await this.sink(chunk.seq, chunk.data);
        return undefined;
      } catch (error) {
        lastError = error ?? new Error('sink rejected without a reason');
        if (attempt < this.maxAttempts) {
          await new Promise((resolve) => setTimeout(resolve, this.retryDelayMs * 2 ** (attempt - 1)));
        }
      }
    }
    return lastError;
  }

  /** Takes the next chunk from the front of the queue, prefixed by a marker if bytes were dropped. */
  private cut(): Chunk {
    const parts: Buffer[] = [];
    let room = this.maxChunkBytes;
    if (this.droppedBytes > 0) {
      const marker = Buffer.from(`\n[${this.droppedBytes} bytes dropped]\n`);
      parts.push(marker);
      this.droppedBytes = 0;
      room = Math.max(0, room - marker.length);
    }
    const full = this.queuedBytes > room;
    const body = this.take(Math.min(room, this.queuedBytes));
    // A size cut at an arbitrary byte may split a UTF-8 character; readers decode each chunk on its
    // own, so hand the incomplete character to the next chunk.
    const keep = full ? utf8CompleteLength(body) : body.length;
    if (keep < body.length && keep > 0) {
      const rest = body.subarray(keep);
      this.queue.unshift(rest);
      this.queuedBytes += rest.length;
      this.consumedTotal -= rest.length;
      parts.push(body.subarray(0, keep));
    } else {
      parts.push(body);
    }
    return { seq: this.nextSeq, data: parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts) };
  }

  private take(n: number): Buffer {
    const parts: Buffer[] = [];
    let needed = n;
    while (needed > 0) {
      const head = this.queue[0];
      if (head === undefined) break;
      if (head.length <= needed) {
        parts.push(head);
        this.queue.shift();
        needed -= head.length;
      } else {
        parts.push(head.subarray(0, needed));
        this.queue[0] = head.subarray(needed);
        needed = 0;
      }
    }
    const taken = n - needed;
    this.queuedBytes -= taken;
    this.consumedTotal += taken;
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, taken);
  }

  /** Drops the oldest queued bytes beyond the cap; they are counted for the marker. */
  private enforceCap(): void {
    let excess = this.queuedBytes - this.maxBufferedBytes;
    if (excess <= 0) return;
    this.droppedBytes += excess;
    this.queuedBytes -= excess;
    this.consumedTotal += excess;
    while (excess > 0) {
      const head = this.queue[0];
      if (head === undefined) break;
      if (head.length <= excess) {
        this.queue.shift();
        excess -= head.length;
      } else {
        // Copy, so the dropped part of a large write is not kept alive by a view on it.
        this.queue[0] = Buffer.from(head.subarray(excess));
        excess = 0;
      }
    }
  }

  private throwFailure(): void {
    const failure = this.failure;
    if (failure !== null) {
      this.failure = null;
      throw failure;
    }
  }
}

/** Length of the prefix of `buf` that does not end inside a multi-byte UTF-8 sequence. */
function utf8CompleteLength(buf: Buffer): number {
  // Look back at most 3 bytes for the lead byte of the last sequence.
  for (let i = buf.length - 1; i >= Math.max(0, buf.length - 4); i -= 1) {
    const byte = buf[i] ?? 0;
    if ((byte & 0xc0) === 0x80) continue;
    const expected = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return i + expected > buf.length ? i : buf.length;
  }
  return buf.length;
}
