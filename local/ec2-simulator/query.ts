/**
 * Reads EC2 Query-API parameters as the SDK serializes them: lists are flattened with
 * 1-based indexes (`ImportTaskId.1`, `Filter.2.Value.1`) and structures are dotted paths
 * (`DiskContainer.UserBucket.S3Bucket`).
 */
import { Ec2Error, type Filter, type TagSpecification, type Tags } from './model';

export class QueryParams {
  private constructor(private readonly entries: ReadonlyMap<string, string>) {}

  static parse(body: string): QueryParams {
    return new QueryParams(new Map(new URLSearchParams(body)));
  }

  static of(entries: Record<string, string>): QueryParams {
    return new QueryParams(new Map(Object.entries(entries)));
  }

  str(name: string): string | undefined {
    return this.entries.get(name);
  }

  bool(name: string): boolean | undefined {
    const raw = this.entries.get(name);
    if (raw === undefined) return undefined;
    if (raw === 'true') return true;
    if (raw === 'false') return false;
    throw new Ec2Error(
      'InvalidParameterValue',
      `Value (${raw}) for parameter ${name} is invalid. Expected: boolean.`,
    );
  }

  int(name: string): number | undefined {
    const raw = this.entries.get(name);
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(value)) {
      throw new Ec2Error(
        'InvalidParameterValue',
        `Value (${raw}) for parameter ${name} is invalid. Expected: integer.`,
      );
    }
    return value;
  }

  /** True when `name` or any `name.…` parameter is present. */
  has(name: string): boolean {
    const prefix = `${name}.`;
    for (const key of this.entries.keys()) if (key === name || key.startsWith(prefix)) return true;
    return false;
  }

  /** The parameters under `name.`, with that prefix removed. */
  sub(name: string): QueryParams {
    const prefix = `${name}.`;
    const out = new Map<string, string>();
    for (const [key, value] of this.entries)
      if (key.startsWith(prefix)) out.set(key.slice(prefix.length), value);
    return new QueryParams(out);
  }

  /** `name.1`, `name.2`, … as strings, in index order (gaps allowed, as EC2 does). */
  list(name: string): string[] {
    return this.indexes(name).flatMap((i) => {
      const value = this.entries.get(`${name}.${i}`);
      return value === undefined ? [] : [value];
    });
  }

  /** `name.1.…`, `name.2.…` as structures, in index order. */
  structs(name: string): QueryParams[] {
    return this.indexes(name).map((i) => this.sub(`${name}.${i}`));
  }

  /** `Filter.N.Name` / `Filter.N.Value.M`. Some operations' models name the list `Filters`. */
  filters(): Filter[] {
    return [...this.structs('Filter'), ...this.structs('Filters')].map((f) => {
      const name = f.str('Name');
      if (!name) throw new Ec2Error('InvalidParameterValue', 'The filter name must not be empty');
      return { name, values: f.list('Value') };
    });
  }

  /** `Tag.N.Key` / `Tag.N.Value` (a missing value is the empty string, as in AWS). */
  tags(name = 'Tag'): Tags {
    const out: Tags = {};
    for (const tag of this.structs(name)) {
      const key = tag.str('Key');
      if (key === undefined) throw new Ec2Error('InvalidParameterValue', 'Tag key must be specified');
      if (Object.hasOwn(out, key))
        throw new Ec2Error('InvalidParameterValue', `Duplicate tag key '${key}' specified`);
      Object.defineProperty(out, key, { value: tag.str('Value') ?? '', enumerable: true, writable: true });
    }
    return out;
  }

  /** `TagSpecification.N.ResourceType` with `TagSpecification.N.Tag.M.Key/Value`. */
  tagSpecifications(): TagSpecification[] | undefined {
    const specs = this.structs('TagSpecification');
    if (specs.length === 0) return undefined;
    return specs.map((spec) => {
      const resourceType = spec.str('ResourceType');
      if (!resourceType) {
        throw new Ec2Error('InvalidParameterValue', 'TagSpecification.ResourceType must be specified');
      }
      return { resourceType, tags: spec.tags() };
    });
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
