/**
 * Query-API parameters as the SDK serializes them for Auto Scaling (AWS Query protocol): lists
 * are `Name.member.1`, `Name.member.2`; structures are dotted paths
 * (`LaunchTemplate.LaunchTemplateName`). EC2 (for DescribeInstances) lists as `Name.1`.
 */
import { validation } from './model';

export class QueryParams {
  constructor(private readonly entries: ReadonlyMap<string, string>) {}

  static parse(body: string): QueryParams {
    return new QueryParams(new Map(new URLSearchParams(body)));
  }

  str(name: string): string | undefined {
    return this.entries.get(name);
  }

  int(name: string): number | undefined {
    const raw = this.entries.get(name);
    if (raw === undefined) return undefined;
    if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
      throw validation(
        `1 validation error detected: Value '${raw}' at '${name}' failed to satisfy constraint: Member must be an integer`,
      );
    }
    return Number(raw);
  }

  bool(name: string): boolean | undefined {
    const raw = this.entries.get(name);
    if (raw === undefined) return undefined;
    if (raw === 'true') return true;
    if (raw === 'false') return false;
    throw validation(
      `1 validation error detected: Value '${raw}' at '${name}' failed to satisfy constraint: Member must be a boolean`,
    );
  }

  has(name: string): boolean {
    const prefix = `${name}.`;
    for (const key of this.entries.keys()) if (key === name || key.startsWith(prefix)) return true;
    return false;
  }

  sub(name: string): QueryParams {
    const prefix = `${name}.`;
    const out = new Map<string, string>();
    for (const [key, value] of this.entries)
      if (key.startsWith(prefix)) out.set(key.slice(prefix.length), value);
    return new QueryParams(out);
  }

  /** `name.1`, `name.2`, … (pass `Name.member` for an Auto Scaling list). */
  list(name: string): string[] {
    return this.indexes(name).flatMap((i) => {
      const v = this.entries.get(`${name}.${i}`);
      return v === undefined ? [] : [v];
    });
  }

  /** `name.1.…`, `name.2.…` as structures. */
  structs(name: string): QueryParams[] {
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
