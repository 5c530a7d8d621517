/**
 * Seeded pseudo-random numbers for the simulation. Every stream is derived from (seed, name), so
 * each policy draws the same boot times and boot failures for its n-th launch, and adding a draw
 * to one stream does not shift the others.
 */
export class Random {
  private state: number;

  constructor(seed: string) {
    // FNV-1a over the seed text gives a 32-bit starting state.
    let h = 0x811c9dc5;
    for (let i = 0; i < seed.length; i++) {
      h ^= seed.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    this.state = h >>> 0;
  }

  /** Uniform in [0, 1): a Weyl sequence passed through a 32-bit avalanche mix. */
  next(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z ^= z >>> 16;
    return (z >>> 0) / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Index in [0, n). */
  index(n: number): number {
    return Math.min(n - 1, Math.floor(this.next() * n));
  }

  exponential(ratePerSecond: number): number {
    return -Math.log(1 - this.next()) / ratePerSecond;
  }

  /** Standard normal, by the Box–Muller transform. */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Lognormal with the given mean (not median) and log-space standard deviation. */
  lognormal(mean: number, sigma: number): number {
    const mu = Math.log(mean) - (sigma * sigma) / 2;
    return Math.exp(mu + sigma * this.normal());
  }
}

export const stream = (seed: string, ...names: string[]) => new Random([seed, ...names].join('/'));
