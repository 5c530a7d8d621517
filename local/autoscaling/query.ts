/**
 * Query-API parameters as the SDK serializes them for Auto Scaling (AWS Query protocol): lists
 * are `Name.member.1`, `Name.member.2`; structures are dotted paths
 * (`LaunchTemplate.LaunchTemplateName`). EC2 (for DescribeInstances) lists as `Name.1`.
 * Pass `Name.member` to `list`/`structs` for an Auto Scaling list.
 */
import { formEntries, QueryParamsBase, type ScalarKind } from '../aws-query/params';
import { validation } from './model';

export class QueryParams extends QueryParamsBase {
  /** Public here (the base constructor is protected). */
  constructor(entries: ReadonlyMap<string, string>) {
    super(entries);
  }

  static parse(body: string): QueryParams {
    return new QueryParams(formEntries(body));
  }

  protected derive(entries: ReadonlyMap<string, string>): this {
    return new QueryParams(entries) as this;
  }

  protected invalidValue(name: string, raw: string, kind: ScalarKind): Error {
    return validation(
      `1 validation error detected: Value '${raw}' at '${name}' failed to satisfy constraint: Member must be ${kind === 'integer' ? 'an integer' : 'a boolean'}`,
    );
  }
}
