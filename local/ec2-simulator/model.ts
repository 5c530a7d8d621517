/**
 * Shared vocabulary of the EC2 simulator: the error it throws (an EC2 error code plus AWS's
 * message), the views it hands out, a seeded PRNG, resource ids, filters and tag rules.
 */
import { QueryError } from '../aws-query/errors';

/** An EC2 API error. `code` becomes the SDK error's `name` once it crosses the wire. */
export class Ec2Error extends QueryError {}

export type Tags = Record<string, string>;

export type ImportTaskStatus = 'pending' | 'active' | 'completed' | 'deleted';

/** What `failWhen` is asked about: the task as submitted. */
export interface ImportTaskInfo {
  importTaskId: string;
  region: string;
  description?: string;
  /** As sent in DiskContainer.Format (or inferred from the key's extension), upper-cased. */
  format?: string;
  bucket?: string;
  key?: string;
  url?: string;
  /** Size of the S3 object when `objectExists` was given and found it. */
  sizeBytes?: number;
  tags: Tags;
  clientToken?: string;
}

export interface ImportTaskView extends ImportTaskInfo {
  status: ImportTaskStatus;
  statusMessage?: string;
  /** Percent as a string, as AWS reports it; only while active. */
  progress?: string;
  snapshotId?: string;
  createdAt: number;
  /** When the task reached completed/deleted, or undefined while in progress. */
  endedAt?: number;
}

export interface EbsView {
  snapshotId?: string;
  volumeSize?: number;
  volumeType?: string;
  deleteOnTermination?: boolean;
  encrypted?: boolean;
  iops?: number;
  throughput?: number;
}

export interface BlockDeviceMappingView {
  deviceName?: string;
  ebs?: EbsView;
  noDevice?: string;
  virtualName?: string;
}

export type ImageState = 'pending' | 'available';

export interface ImageView {
  imageId: string;
  region: string;
  name: string;
  description?: string;
  ownerId: string;
  ownerAlias?: string;
  state: ImageState;
  /** ISO-8601 with milliseconds, as AWS's CreationDate. */
  creationDate: string;
  architecture: string;
  rootDeviceName: string;
  virtualizationType: string;
  enaSupport?: boolean;
  bootMode?: string;
  imdsSupport?: string;
  tpmSupport?: string;
  blockDeviceMappings: BlockDeviceMappingView[];
  snapshotIds: string[];
  public: boolean;
  /** Account ids with launch permission (ModifyImageAttribute LaunchPermission.Add.N.UserId). */
  launchPermissions: string[];
  tags: Tags;
  sourceImageId?: string;
  sourceRegion?: string;
}

export type SnapshotState = 'pending' | 'completed' | 'error';

export interface SnapshotView {
  snapshotId: string;
  region: string;
  ownerId: string;
  ownerAlias?: string;
  state: SnapshotState;
  progress: string;
  startTime: number;
  volumeSize: number;
  volumeId: string;
  description?: string;
  encrypted: boolean;
  tags: Tags;
  /** Set on snapshots made by an import task. */
  importTaskId?: string;
}

export interface Filter {
  name: string;
  values: string[];
}

export interface TagSpecification {
  resourceType: string;
  tags: Tags;
}

/** mulberry32: small, fast, good enough to make simulated failures and ids reproducible. */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** `count` lowercase hex digits. */
  hex(count: number): string {
    let out = '';
    while (out.length < count) {
      out += Math.floor(this.next() * 0x10000)
        .toString(16)
        .padStart(4, '0');
    }
    return out.slice(0, count);
  }
}

export const ID_PATTERNS = {
  image: /^ami-[0-9a-f]{8,17}$/,
  snapshot: /^snap-[0-9a-f]{8,17}$/,
  importTask: /^import-snap-[0-9a-f]{8,17}$/,
};

export function checkImageId(id: string): void {
  if (!ID_PATTERNS.image.test(id)) throw new Ec2Error('InvalidAMIID.Malformed', `Invalid id: "${id}"`);
}

export function checkSnapshotId(id: string): void {
  if (!ID_PATTERNS.snapshot.test(id)) {
    throw new Ec2Error(
      'InvalidSnapshotID.Malformed',
      `Value (${id}) for parameter snapshotId is invalid. Expected: 'snap-...'.`,
    );
  }
}

export function checkImportTaskId(id: string): void {
  if (!ID_PATTERNS.importTask.test(id)) {
    throw new Ec2Error('InvalidConversionTaskId.Malformed', `The import task ID '${id}' is malformed.`);
  }
}

export const imageNotFound = (id: string) =>
  new Ec2Error('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
export const snapshotNotFound = (id: string) =>
  new Ec2Error('InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
export const importTaskNotFound = (id: string) =>
  new Ec2Error('InvalidConversionTaskId', `The import task ID '${id}' does not exist.`);

/**
 * EC2 filter values are globs: `*` any run of characters, `?` one character, `\` escapes.
 */
export function globMatches(pattern: string, value: string): boolean {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern.charAt(i);
    if (c === '\\' && i + 1 < pattern.length) {
      i++;
      source += escapeRegExp(pattern.charAt(i));
    } else if (c === '*') source += '[\\s\\S]*';
    else if (c === '?') source += '[\\s\\S]';
    else source += escapeRegExp(c);
  }
  return new RegExp(`^${source}$`).test(value);
}

function escapeRegExp(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}

/**
 * Applies EC2 filter semantics: filters are ANDed, the values of one filter ORed. `fields`
 * returns the attribute values a filter name reads (undefined: the filter name is unknown).
 * `tag:<key>` and `tag-key` are handled here for every resource.
 */
export function matchesFilters(
  filters: Filter[],
  tags: Tags,
  fields: (name: string) => Array<string | undefined> | undefined,
): boolean {
  return filters.every((filter) => {
    const actual = filterValues(filter.name, tags, fields);
    return filter.values.some((pattern) => actual.some((v) => v !== undefined && globMatches(pattern, v)));
  });
}

/** Throws InvalidParameterValue for a filter name the resource does not support. */
export function checkFilters(
  filters: Filter[],
  fields: (name: string) => Array<string | undefined> | undefined,
): void {
  for (const filter of filters) filterValues(filter.name, {}, fields);
}

function filterValues(
  name: string,
  tags: Tags,
  fields: (name: string) => Array<string | undefined> | undefined,
): Array<string | undefined> {
  if (name.startsWith('tag:')) {
    const key = name.slice(4);
    return Object.hasOwn(tags, key) ? [tags[key]] : [];
  }
  if (name === 'tag-key') return Object.keys(tags);
  if (name === 'tag-value') return Object.values(tags);
  const values = fields(name);
  if (values === undefined) throw new Ec2Error('InvalidParameterValue', `The filter '${name}' is invalid`);
  return values;
}

export const MAX_TAGS_PER_RESOURCE = 50;

/** Checks tags as AWS does before it applies them to a resource that already has `existing`. */
export function checkTags(tags: Tags, existing: Tags = {}): void {
  for (const [key, value] of Object.entries(tags)) {
    if (key.length === 0) throw new Ec2Error('InvalidParameterValue', 'Tag key cannot be empty');
    if (key.length > 128) {
      throw new Ec2Error('InvalidParameterValue', `Tag key exceeds the maximum length of 128 characters`);
    }
    if (value.length > 256) {
      throw new Ec2Error('InvalidParameterValue', `Tag value exceeds the maximum length of 256 characters`);
    }
    if (key.toLowerCase().startsWith('aws:')) {
      throw new Ec2Error(
        'InvalidParameterValue',
        `Tag keys starting with 'aws:' are reserved for internal use`,
      );
    }
  }
  const merged = new Set([...Object.keys(existing), ...Object.keys(tags)]);
  if (merged.size > MAX_TAGS_PER_RESOURCE) {
    throw new Ec2Error(
      'TagLimitExceeded',
      `The maximum number of Tags for a resource has been reached. (${MAX_TAGS_PER_RESOURCE})`,
    );
  }
}

/** Tags of the specifications for `resourceType`; other resource types are refused. */
export function tagsFor(
  specs: TagSpecification[] | undefined,
  allowed: string[],
  operation: string,
): Map<string, Tags> {
  const out = new Map<string, Tags>();
  for (const spec of specs ?? []) {
    if (!allowed.includes(spec.resourceType)) {
      throw new Ec2Error(
        'InvalidParameterValue',
        `'${spec.resourceType}' is not a valid taggable resource type for this operation (${operation}).`,
      );
    }
    out.set(spec.resourceType, { ...out.get(spec.resourceType), ...spec.tags });
  }
  for (const tags of out.values()) checkTags(tags);
  return out;
}

const AMI_NAME = /^[a-zA-Z0-9()[\] ./\-'@_]{3,128}$/;

export function checkImageName(name: string | undefined): string {
  if (name === undefined || name === '') {
    throw new Ec2Error('MissingParameter', 'The request must contain the parameter name');
  }
  if (!AMI_NAME.test(name)) {
    throw new Ec2Error(
      'InvalidAMIName.Malformed',
      `AMI names must be between 3 and 128 characters long, and may contain letters, numbers, ` +
        `'(', ')', '.', '-', '/', '@', "'", '[', ']', ' ' and '_'`,
    );
  }
  return name;
}
