/**
 * Reads EC2 Query-API parameters as the SDK serializes them: lists are flattened with
 * 1-based indexes (`ImportTaskId.1`, `Filter.2.Value.1`) and structures are dotted paths
 * (`DiskContainer.UserBucket.S3Bucket`).
 */
import { formEntries, QueryParamsBase, type ScalarKind } from '../aws-query/params';
import { Ec2Error, type Filter, type TagSpecification, type Tags } from './model';

export class QueryParams extends QueryParamsBase {
  private constructor(entries: ReadonlyMap<string, string>) {
    super(entries);
  }

  static parse(body: string): QueryParams {
    return new QueryParams(formEntries(body));
  }

  static of(entries: Record<string, string>): QueryParams {
    return new QueryParams(new Map(Object.entries(entries)));
  }

  protected derive(entries: ReadonlyMap<string, string>): this {
    return new QueryParams(entries) as this;
  }

  protected invalidValue(name: string, raw: string, kind: ScalarKind): Error {
    return new Ec2Error(
      'InvalidParameterValue',
      `Value (${raw}) for parameter ${name} is invalid. Expected: ${kind}.`,
    );
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
}
