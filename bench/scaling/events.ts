/**
 * The simulation's clock: a min-heap of timed callbacks. Ties run in scheduling order, so a run is
 * deterministic whatever the heap's internal layout.
 */
interface Scheduled {
  at: number;
  seq: number;
  run: () => void;
}

export class EventQueue {
  private heap: Scheduled[] = [];
  private seq = 0;
  now = 0;

  get size(): number {
    return this.heap.length;
  }

  at(time: number, run: () => void): void {
    if (time < this.now) throw new Error(`event scheduled in the past: ${time} < ${this.now}`);
    this.push({ at: time, seq: this.seq++, run });
  }

  after(seconds: number, run: () => void): void {
    this.at(this.now + seconds, run);
  }

  /** Runs the next event; false when none is left. */
  step(): boolean {
    const top = this.pop();
    if (!top) return false;
    this.now = top.at;
    top.run();
    return true;
  }

  private before(a: Scheduled, b: Scheduled): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: Scheduled): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(h[i], h[parent])) break;
      [h[i], h[parent]] = [h[parent], h[i]];
      i = parent;
    }
  }

  private pop(): Scheduled | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.before(h[l], h[m])) m = l;
      if (r < h.length && this.before(h[r], h[m])) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
    return top;
  }
}
