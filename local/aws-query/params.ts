/**
 * Query-protocol parameters as the SDKs serialize them into a form-encoded body: lists are
 * flattened with 1-based indexes (`Name.1`, or `Name.member.1` for the `member` dialect) and
 * structures are dotted paths (`Outer.Inner`). Each service subclasses this with its own errors
 * for malformed values and its own helpers.
 */

/** The form entries of a Query request body or query string. */
export function formEntries(body: string): Map<string, string> {
  return new Map(new URLSearchParams(body));
}

export type ScalarKind = 'boolean' | 'integer';

export abstract class QueryParamsBase {
  protected constructor(protected readonly entries: ReadonlyMap<string, string>) {}

  /** The same kind of parameters over other entries (for `sub` and `structs`). */
  protected abstract derive(entries: ReadonlyMap<string, string>): this;

  /** The service's error for a value of parameter `name` that is not a `kind`. */
  protected abstract invalidValue(name: string, raw: string, kind: ScalarKind): Error;

  str(name: string): string | undefined {
    return this.entries.get(name);
  }

  bool(name: string): boolean | undefined {
    const raw = this.entries.get(name);
    if (raw === undefined) return undefined;
    if (raw === 'true') return true;
    if (raw === 'false') return false;
    throw this.invalidValue(name, raw, 'boolean');
  }

  int(name: string): number | undefined {
    const raw = this.entries.get(name);
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(value)) throw this.invalidValue(name, raw, 'integer');
    return value;
  }

  /** True when `name` or any `name.…` parameter is present. */
  has(name: string): boolean {
    const prefix = `${name}.`;
    for (const key of this.entries.keys()) if (key === name || key.startsWith(prefix)) return true;
    return false;
  }

  /** The parameters under `name.`, with that prefix removed. */
  sub(name: string): this {
    const prefix = `${name}.`;
    const out = new Map<string, string>();
    for (const [key, value] of this.entries)
      if (key.startsWith(prefix)) out.set(key.slice(prefix.length), value);
    return this.derive(out);
  }

  /** `name.1`, `name.2`, … as strings, in index order (gaps allowed, as AWS does). */
  list(name: string): string[] {
    return this.indexes(name).flatMap((i) => {
      const value = this.entries.get(`${name}.${i}`);
      return value === undefined ? [] : [value];
    });
  }

  /** `name.1.…`, `name.2.…` as structures, in index order. */
  structs(name: string): this[] {
    return this.indexes(name).map((i) => this.sub(`${name}.${i}`));
  }

  private indexes(name: string): number[] {
    const prefix = `${name}.`;
    const found = new Set<number>();
    for (const key of this.entries.keys()) {
      if (!key.startsWith(prefix)) continue;
      const index = /^(\d+)(?:\.|$)/.exec(key.slice(prefix.length))?.[1];
      if (index !== undefined) found.add(Number(index));
    }
    return [...found].sort((a, b) => a - b);
  }
}
