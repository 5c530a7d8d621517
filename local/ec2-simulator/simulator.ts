/**
 * The EC2 simulator's state and behaviour, independent of HTTP: import snapshot tasks that
 * move pending → active → completed (or deleted) as an injectable clock advances, AMIs and
 * snapshots per region, and the account's limits as AWS enforces them.
 *
 * Time is never scheduled: every call first "settles" the tasks, applying each transition
 * whose time has come at the moment it was due, so a fake clock drives the simulation and the
 * recorded timeline is exact whatever the polling pattern.
 */
import {
  type BlockDeviceMappingView,
  checkFilters,
  checkImageId,
  checkImageName,
  checkImportTaskId,
  checkSnapshotId,
  checkTags,
  Ec2Error,
  type Filter,
  type ImageState,
  type ImageView,
  type ImportTaskInfo,
  type ImportTaskStatus,
  type ImportTaskView,
  imageNotFound,
  importTaskNotFound,
  matchesFilters,
  Prng,
  type SnapshotState,
  type SnapshotView,
  snapshotNotFound,
  type TagSpecification,
  type Tags,
  tagsFor,
} from './model';

export interface Ec2Durations {
  /** Milliseconds an import task stays `pending` (default 50). */
  pending: number;
  /** Milliseconds an import task stays `active` before it completes or fails (default 300). */
  active: number;
  /** Each task's active time is scaled by 1 ± jitter × (seeded random); 0 (default) keeps it exact. */
  jitter: number;
  /** Milliseconds a registered image stays `pending` before `available` (default 0). */
  register: number;
  /** Milliseconds a copied image and its snapshots stay `pending` (default 0). */
  copy: number;
}

export interface Ec2SimulatorOptions {
  /** The caller's account: owner of everything it creates (default '000000000000'). */
  accountId?: string;
  /** Import tasks that may be in progress (pending or active) per region (default 20, as AWS). */
  importLimit?: number;
  durations?: Partial<Ec2Durations>;
  /** Fraction of imports (0..1) that fail with `failureMessage`, decided by a PRNG seeded with `seed`. */
  failureRate?: number;
  /** Default 'ClientError: Disk validation failed [Unsupported specified file format]'. */
  failureMessage?: string;
  /** Seed of the simulator's PRNGs (failures, jitter, ids); default 1. */
  seed?: number;
  /** Decides a task's fate when it is created: AWS's error text to make it fail, or undefined. */
  failWhen?: (task: ImportTaskInfo) => string | undefined;
  /**
   * Checks the import's S3 object when the task is created: its size sets the snapshot's
   * VolumeSize; undefined (missing) makes the task fail once it leaves `pending`.
   */
  objectExists?: (bucket: string, key: string) => Promise<{ sizeBytes: number } | undefined>;
  /** The clock, in milliseconds (default Date.now). */
  now?: () => number;
}

export interface TimelinePoint {
  at: number;
  /** Import tasks pending or active right after the change recorded at `at`. */
  active: number;
}

export interface Ec2Stats {
  /** Highest number of import tasks in progress at once. */
  peakActiveImports: number;
  /** Import tasks in progress now. */
  activeImports: number;
  /** One point per import task state change, in time order. */
  timeline: TimelinePoint[];
  /** ImportSnapshot calls received, accepted or not. */
  importRequests: number;
  /** ImportSnapshot calls refused with ResourceCountLimitExceeded. */
  limitRejections: number;
}

export interface ImportSnapshotInput {
  clientToken?: string;
  description?: string;
  diskContainer?: {
    description?: string;
    format?: string;
    url?: string;
    userBucket?: { s3Bucket?: string; s3Key?: string };
  };
  tagSpecifications?: TagSpecification[];
  encrypted?: boolean;
  kmsKeyId?: string;
  roleName?: string;
}

export interface RegisterImageInput {
  name?: string;
  description?: string;
  architecture?: string;
  rootDeviceName?: string;
  blockDeviceMappings?: BlockDeviceMappingView[];
  enaSupport?: boolean;
  bootMode?: string;
  virtualizationType?: string;
  imdsSupport?: string;
  tpmSupport?: string;
  imageLocation?: string;
  tagSpecifications?: TagSpecification[];
}

export interface CopyImageInput {
  sourceRegion?: string;
  sourceImageId?: string;
  name?: string;
  description?: string;
  clientToken?: string;
  copyImageTags?: boolean;
  tagSpecifications?: TagSpecification[];
  encrypted?: boolean;
  kmsKeyId?: string;
}

export interface LaunchPermissionItem {
  userId?: string;
  group?: string;
  organizationArn?: string;
  organizationalUnitArn?: string;
}

export interface ModifyImageAttributeInput {
  imageId?: string;
  launchPermission?: { add?: LaunchPermissionItem[]; remove?: LaunchPermissionItem[] };
  description?: string;
}

export interface ImageAttribute {
  imageId: string;
  attribute: string;
  launchPermissions?: LaunchPermissionItem[];
  description?: string;
  bootMode?: string;
  blockDeviceMappings?: BlockDeviceMappingView[];
}

export interface Page {
  maxResults?: number;
  nextToken?: string;
}

export interface DescribeImagesInput extends Page {
  imageIds?: string[];
  owners?: string[];
  executableUsers?: string[];
  filters?: Filter[];
}

export interface DescribeSnapshotsInput extends Page {
  snapshotIds?: string[];
  ownerIds?: string[];
  restorableByUserIds?: string[];
  filters?: Filter[];
}

export interface DescribeImportSnapshotTasksInput extends Page {
  importTaskIds?: string[];
  filters?: Filter[];
}

/** A pre-existing snapshot, e.g. another account's or an old one of ours, for retention tests. */
export interface SeedSnapshot {
  snapshotId?: string;
  ownerId?: string;
  ownerAlias?: string;
  createdAt?: Date | number;
  tags?: Tags;
  volumeSize?: number;
  state?: SnapshotState;
  description?: string;
  public?: boolean;
  /** Accounts allowed to create volumes from it. */
  restorableBy?: string[];
}

/** A pre-existing image; without `snapshotIds` a backing snapshot is seeded with it. */
export interface SeedImage {
  imageId?: string;
  name: string;
  description?: string;
  ownerId?: string;
  ownerAlias?: string;
  createdAt?: Date | number;
  tags?: Tags;
  snapshotTags?: Tags;
  architecture?: string;
  rootDeviceName?: string;
  snapshotIds?: string[];
  volumeSize?: number;
  public?: boolean;
  launchPermissions?: string[];
  state?: ImageState;
  bootMode?: string;
  enaSupport?: boolean;
}

const DEFAULT_DURATIONS: Ec2Durations = { pending: 50, active: 300, jitter: 0, register: 0, copy: 0 };
const DEFAULT_FAILURE = 'ClientError: Disk validation failed [Unsupported specified file format]';
const IMPORT_FORMATS = ['RAW', 'VHD', 'VMDK'];
const ARCHITECTURES = ['i386', 'x86_64', 'arm64', 'x86_64_mac', 'arm64_mac'];
const BOOT_MODES = ['legacy-bios', 'uefi', 'uefi-preferred'];
const VIRTUALIZATION_TYPES = ['hvm', 'paravirtual'];
/** AWS lists import tasks completed or cancelled in the previous 7 days. */
const TASK_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;
const GIB = 1024 ** 3;
const ACCOUNT_ID = /^\d{12}$/;

interface TaskRecord {
  info: ImportTaskInfo;
  tags: Map<string, string>;
  fingerprint: string;
  seq: number;
  createdAt: number;
  activeAt: number;
  endAt: number;
  failure?: { at: number; message: string };
  status: ImportTaskStatus;
  statusMessage?: string;
  snapshotId?: string;
  endedAt?: number;
}

interface ImageRecord {
  imageId: string;
  region: string;
  name: string;
  description?: string;
  ownerId: string;
  ownerAlias?: string;
  createdAt: number;
  availableAt: number;
  architecture: string;
  rootDeviceName: string;
  virtualizationType: string;
  enaSupport?: boolean;
  bootMode?: string;
  imdsSupport?: string;
  tpmSupport?: string;
  mappings: BlockDeviceMappingView[];
  public: boolean;
  launchPermissions: Set<string>;
  tags: Map<string, string>;
  sourceImageId?: string;
  sourceRegion?: string;
}

interface SnapshotRecord {
  snapshotId: string;
  region: string;
  ownerId: string;
  ownerAlias?: string;
  createdAt: number;
  readyAt: number;
  failed: boolean;
  volumeSize: number;
  volumeId: string;
  description?: string;
  encrypted: boolean;
  tags: Map<string, string>;
  public: boolean;
  createVolumePermissions: Set<string>;
  importTaskId?: string;
}

class RegionState {
  readonly tasks = new Map<string, TaskRecord>();
  readonly inProgress = new Set<TaskRecord>();
  readonly importTokens = new Map<string, TaskRecord>();
  readonly copyTokens = new Map<string, { imageId: string; fingerprint: string }>();
  readonly images = new Map<string, ImageRecord>();
  readonly snapshots = new Map<string, SnapshotRecord>();
  readonly timeline: TimelinePoint[] = [];
  peak = 0;
  importRequests = 0;
  limitRejections = 0;

  constructor(readonly name: string) {}
}

export class Ec2Simulator {
  readonly accountId: string;
  readonly importLimit: number;
  readonly durations: Ec2Durations;
  private readonly failureRate: number;
  private readonly failureMessage: string;
  private readonly failWhen?: Ec2SimulatorOptions['failWhen'];
  private readonly objectExists?: Ec2SimulatorOptions['objectExists'];
  private readonly clock: () => number;
  private readonly failureRng: Prng;
  private readonly timingRng: Prng;
  private readonly idRng: Prng;
  private readonly regionStates = new Map<string, RegionState>();
  private readonly usedIds = new Set<string>();
  private taskSeq = 0;

  constructor(opts: Ec2SimulatorOptions = {}) {
    this.accountId = opts.accountId ?? '000000000000';
    if (!ACCOUNT_ID.test(this.accountId)) throw new Error(`accountId must be 12 digits: ${this.accountId}`);
    this.importLimit = opts.importLimit ?? 20;
    this.durations = { ...DEFAULT_DURATIONS, ...opts.durations };
    this.failureRate = opts.failureRate ?? 0;
    if (!(this.failureRate >= 0 && this.failureRate <= 1)) throw new Error('failureRate must be within 0..1');
    this.failureMessage = opts.failureMessage ?? DEFAULT_FAILURE;
    this.failWhen = opts.failWhen;
    this.objectExists = opts.objectExists;
    this.clock = opts.now ?? Date.now;
    const seed = opts.seed ?? 1;
    this.failureRng = new Prng(seed);
    this.timingRng = new Prng(seed ^ 0x5bd1e995);
    this.idRng = new Prng(seed ^ 0x27d4eb2f);
  }

  now(): number {
    return this.clock();
  }

  // ---- import snapshot tasks ------------------------------------------------------------

  async importSnapshot(region: string, input: ImportSnapshotInput): Promise<ImportTaskView> {
    const r = this.region(region);
    r.importRequests++;
    const disk = input.diskContainer;
    if (!disk) throw new Ec2Error('MissingParameter', 'The request must contain the parameter DiskContainer');
    const bucket = disk.userBucket?.s3Bucket;
    const key = disk.userBucket?.s3Key;
    if (disk.url !== undefined && disk.userBucket !== undefined) {
      throw new Ec2Error(
        'InvalidParameterCombination',
        'Specify either DiskContainer.Url or DiskContainer.UserBucket',
      );
    }
    if (disk.url === undefined && (!bucket || !key)) {
      throw new Ec2Error(
        'InvalidParameter',
        'DiskContainer.UserBucket.S3Bucket and DiskContainer.UserBucket.S3Key are required',
      );
    }
    const tags = tagsFor(input.tagSpecifications, ['import-snapshot-task'], 'ImportSnapshot').get(
      'import-snapshot-task',
    );
    const format = (disk.format ?? formatFromKey(key ?? disk.url ?? ''))?.toUpperCase();
    const fingerprint = JSON.stringify([input.description, disk, format, tags ?? {}]);
    const replay = this.importReplay(r, input.clientToken, fingerprint);
    if (replay) return replay;

    const location = bucket && key ? { bucket, key } : parseS3Url(disk.url);
    const object =
      this.objectExists && location ? await this.objectExists(location.bucket, location.key) : undefined;
    const missing = this.objectExists !== undefined && location !== undefined && object === undefined;

    // From here on, synchronous: a concurrent call with the same token sees this one's task.
    this.settle();
    const replayed = this.importReplay(r, input.clientToken, fingerprint);
    if (replayed) return replayed;
    if (r.inProgress.size >= this.importLimit) {
      r.limitRejections++;
      throw new Ec2Error(
        'ResourceCountLimitExceeded',
        `You have reached the limit for the number of concurrent import snapshot tasks (${this.importLimit}). ` +
          'Wait for an import task to complete, or cancel one, and try again.',
      );
    }

    const now = this.clock();
    const info: ImportTaskInfo = {
      importTaskId: this.newId('import-snap-'),
      region,
      description: input.description,
      format,
      bucket: location?.bucket,
      key: location?.key,
      url: disk.url,
      sizeBytes: object?.sizeBytes,
      tags: { ...tags },
      clientToken: input.clientToken,
    };
    const activeAt = now + this.durations.pending;
    const endAt = activeAt + this.activeDuration();
    const draw = this.failureRng.next();
    let failure: TaskRecord['failure'];
    if (missing && location) {
      failure = {
        at: activeAt,
        message: `ClientError: Unable to read the disk image: the S3 object s3://${location.bucket}/${location.key} does not exist or is not accessible`,
      };
    } else if (!format || !IMPORT_FORMATS.includes(format)) {
      failure = { at: activeAt, message: DEFAULT_FAILURE };
    } else {
      const message = this.failWhen?.(structuredClone(info));
      if (message) failure = { at: endAt, message };
      else if (draw < this.failureRate) failure = { at: endAt, message: this.failureMessage };
    }
    const task: TaskRecord = {
      info,
      tags: new Map(Object.entries(tags ?? {})),
      fingerprint,
      seq: this.taskSeq++,
      createdAt: now,
      activeAt,
      endAt,
      failure,
      status: 'pending',
      statusMessage: 'pending',
    };
    r.tasks.set(info.importTaskId, task);
    if (input.clientToken !== undefined) r.importTokens.set(input.clientToken, task);
    r.inProgress.add(task);
    this.record(r, now);
    return this.taskView(task, now);
  }

  describeImportSnapshotTasks(
    region: string,
    input: DescribeImportSnapshotTasksInput = {},
  ): { tasks: ImportTaskView[]; nextToken?: string } {
    this.settle();
    const r = this.region(region);
    const now = this.clock();
    const fields = (task: TaskRecord) => (name: string) => {
      if (name === 'import-task-id') return [task.info.importTaskId];
      if (name === 'task-state') return [task.status];
      return undefined;
    };
    const filters = input.filters ?? [];
    checkFilters(filters, fields(PROBE_TASK));
    const retained = (t: TaskRecord) => t.endedAt === undefined || t.endedAt >= now - TASK_RETENTION_MS;
    let tasks: TaskRecord[];
    if (input.importTaskIds?.length) {
      tasks = input.importTaskIds.map((id) => {
        checkImportTaskId(id);
        const task = r.tasks.get(id);
        if (!task || !retained(task)) throw importTaskNotFound(id);
        return task;
      });
    } else {
      tasks = [...r.tasks.values()].filter(retained);
    }
    const matching = tasks.filter((t) => matchesFilters(filters, Object.fromEntries(t.tags), fields(t)));
    const page = paginate(matching, input);
    return { tasks: page.items.map((t) => this.taskView(t, now)), nextToken: page.nextToken };
  }

  cancelImportTask(
    region: string,
    importTaskId: string | undefined,
    reason?: string,
  ): { importTaskId: string; previousState: string; state: string } {
    if (!importTaskId)
      throw new Ec2Error('MissingParameter', 'The request must contain the parameter ImportTaskId');
    checkImportTaskId(importTaskId);
    this.settle();
    const r = this.region(region);
    const task = r.tasks.get(importTaskId);
    if (!task) throw importTaskNotFound(importTaskId);
    if (!r.inProgress.has(task)) {
      throw new Ec2Error(
        'IncorrectState',
        `The import task '${importTaskId}' cannot be cancelled because it is ${task.status}.`,
      );
    }
    const previousState = task.status;
    const now = this.clock();
    task.status = 'deleted';
    task.statusMessage = reason
      ? `User initiated task cancelation: ${reason}`
      : 'User initiated task cancelation';
    task.endedAt = now;
    r.inProgress.delete(task);
    this.record(r, now);
    return { importTaskId, previousState, state: 'deleting' };
  }

  // ---- images ---------------------------------------------------------------------------

  registerImage(region: string, input: RegisterImageInput): { imageId: string } {
    this.settle();
    const r = this.region(region);
    const name = checkImageName(input.name);
    if (input.imageLocation !== undefined) {
      throw new Ec2Error(
        'UnsupportedOperation',
        'The simulator registers EBS-backed images from snapshots only (no ImageLocation).',
      );
    }
    const architecture = oneOf('architecture', input.architecture ?? 'x86_64', ARCHITECTURES);
    const virtualizationType = oneOf(
      'virtualizationType',
      input.virtualizationType ?? 'hvm',
      VIRTUALIZATION_TYPES,
    );
    const bootMode = input.bootMode === undefined ? undefined : oneOf('bootMode', input.bootMode, BOOT_MODES);
    if (architecture.startsWith('arm64') && bootMode === 'legacy-bios') {
      throw new Ec2Error(
        'InvalidParameterCombination',
        'The boot mode legacy-bios is not supported for the arm64 architecture.',
      );
    }
    const rootDeviceName = input.rootDeviceName ?? '/dev/sda1';
    const mappings = (input.blockDeviceMappings ?? []).map((m) => this.checkMapping(r, m));
    const root = mappings.find((m) => m.deviceName === rootDeviceName);
    if (!root?.ebs?.snapshotId) {
      throw new Ec2Error(
        'InvalidBlockDeviceMapping',
        `The root device name '${rootDeviceName}' must be in the block device mapping, with an EBS snapshot.`,
      );
    }
    const tags = tagsFor(input.tagSpecifications, ['image', 'snapshot'], 'RegisterImage');
    this.checkNameFree(r, name);
    const now = this.clock();
    const image: ImageRecord = {
      imageId: this.newId('ami-'),
      region,
      name,
      description: input.description,
      ownerId: this.accountId,
      createdAt: now,
      availableAt: now + this.durations.register,
      architecture,
      rootDeviceName,
      virtualizationType,
      enaSupport: input.enaSupport,
      bootMode,
      imdsSupport: input.imdsSupport,
      tpmSupport: input.tpmSupport,
      mappings,
      public: false,
      launchPermissions: new Set(),
      tags: new Map(Object.entries(tags.get('image') ?? {})),
    };
    const snapshotTags = tags.get('snapshot');
    if (snapshotTags) {
      const snapshots = snapshotIdsOf(image).map((id) => this.ownSnapshot(r, id));
      for (const s of snapshots) checkTags(snapshotTags, Object.fromEntries(s.tags));
      for (const s of snapshots) for (const [k, v] of Object.entries(snapshotTags)) s.tags.set(k, v);
    }
    r.images.set(image.imageId, image);
    return { imageId: image.imageId };
  }

  copyImage(region: string, input: CopyImageInput): { imageId: string } {
    this.settle();
    const r = this.region(region);
    if (!input.sourceRegion) throw missing('SourceRegion');
    if (!input.sourceImageId) throw missing('SourceImageId');
    const name = checkImageName(input.name);
    const fingerprint = JSON.stringify([
      input.sourceRegion,
      input.sourceImageId,
      name,
      input.description,
      input.copyImageTags ?? false,
      input.tagSpecifications ?? [],
      input.encrypted ?? false,
      input.kmsKeyId,
    ]);
    if (input.clientToken !== undefined) {
      const earlier = r.copyTokens.get(input.clientToken);
      if (earlier) {
        if (earlier.fingerprint !== fingerprint) throw tokenMismatch(input.clientToken);
        return { imageId: earlier.imageId };
      }
    }
    checkImageId(input.sourceImageId);
    const source = this.regionStates.get(input.sourceRegion)?.images.get(input.sourceImageId);
    if (!source || !this.visibleImage(source)) throw imageNotFound(input.sourceImageId);
    const now = this.clock();
    if (imageState(source, now) !== 'available') {
      throw new Ec2Error(
        'IncorrectState',
        `The image '${source.imageId}' is not in a state that allows copying.`,
      );
    }
    const tags = tagsFor(input.tagSpecifications, ['image', 'snapshot'], 'CopyImage');
    const imageTags = new Map<string, string>(input.copyImageTags ? source.tags : []);
    for (const [k, v] of Object.entries(tags.get('image') ?? {})) imageTags.set(k, v);
    checkTags(Object.fromEntries(imageTags));
    this.checkNameFree(r, name);

    const imageId = this.newId('ami-');
    const readyAt = now + this.durations.copy;
    const mappings = source.mappings.map((m): BlockDeviceMappingView => {
      if (!m.ebs?.snapshotId) return structuredClone(m);
      const sourceSnapshot = this.regionStates.get(source.region)?.snapshots.get(m.ebs.snapshotId);
      const copy: SnapshotRecord = {
        snapshotId: this.newId('snap-'),
        region,
        ownerId: this.accountId,
        createdAt: now,
        readyAt,
        failed: false,
        volumeSize: sourceSnapshot?.volumeSize ?? m.ebs.volumeSize ?? 8,
        volumeId: 'vol-ffffffff',
        description:
          `Copied for DestinationAmi ${imageId} from SourceAmi ${source.imageId} ` +
          `for SourceSnapshot ${m.ebs.snapshotId}. Task created on ${now}.`,
        encrypted: input.encrypted ?? sourceSnapshot?.encrypted ?? false,
        tags: new Map(Object.entries(tags.get('snapshot') ?? {})),
        public: false,
        createVolumePermissions: new Set(),
      };
      r.snapshots.set(copy.snapshotId, copy);
      return { ...structuredClone(m), ebs: { ...m.ebs, snapshotId: copy.snapshotId } };
    });
    const image: ImageRecord = {
      imageId,
      region,
      name,
      description: input.description ?? source.description,
      ownerId: this.accountId,
      createdAt: now,
      availableAt: readyAt,
      architecture: source.architecture,
      rootDeviceName: source.rootDeviceName,
      virtualizationType: source.virtualizationType,
      enaSupport: source.enaSupport,
      bootMode: source.bootMode,
      imdsSupport: source.imdsSupport,
      tpmSupport: source.tpmSupport,
      mappings,
      public: false,
      launchPermissions: new Set(),
      tags: imageTags,
      sourceImageId: source.imageId,
      sourceRegion: source.region,
    };
    r.images.set(imageId, image);
    if (input.clientToken !== undefined) r.copyTokens.set(input.clientToken, { imageId, fingerprint });
    return { imageId };
  }

  describeImages(
    region: string,
    input: DescribeImagesInput = {},
  ): { images: ImageView[]; nextToken?: string } {
    this.settle();
    const r = this.region(region);
    const now = this.clock();
    const filters = input.filters ?? [];
    const fields = (image: ImageRecord) => (name: string) => imageField(image, name, now);
    checkFilters(filters, fields(PROBE_IMAGE));
    let images: ImageRecord[];
    if (input.imageIds?.length) {
      const unknown: string[] = [];
      images = [];
      for (const id of input.imageIds) {
        checkImageId(id);
        const image = r.images.get(id);
        if (image && this.visibleImage(image)) images.push(image);
        else unknown.push(id);
      }
      if (unknown.length === 1) throw imageNotFound(unknown[0] as string);
      if (unknown.length > 1) {
        throw new Ec2Error('InvalidAMIID.NotFound', `The image ids '[${unknown.join(', ')}]' do not exist`);
      }
    } else {
      images = [...r.images.values()].filter((i) => this.visibleImage(i));
    }
    const owners = input.owners ?? [];
    for (const owner of owners) checkOwner(owner);
    const executable = input.executableUsers ?? [];
    const matching = images.filter(
      (image) =>
        (owners.length === 0 || owners.some((o) => this.ownedBy(image, o))) &&
        (executable.length === 0 || executable.some((u) => this.executableBy(image, u))) &&
        matchesFilters(filters, Object.fromEntries(image.tags), fields(image)),
    );
    const page = paginate(matching, input);
    return { images: page.items.map((i) => this.imageView(i, now)), nextToken: page.nextToken };
  }

  modifyImageAttribute(region: string, input: ModifyImageAttributeInput): void {
    this.settle();
    const image = this.ownImage(this.region(region), input.imageId);
    const add = input.launchPermission?.add ?? [];
    const remove = input.launchPermission?.remove ?? [];
    if (add.length === 0 && remove.length === 0 && input.description === undefined) {
      throw new Ec2Error('MissingParameter', 'No attributes specified.');
    }
    for (const item of [...add, ...remove]) checkLaunchPermission(item);
    for (const item of add) {
      if (item.group === 'all') image.public = true;
      if (item.userId) image.launchPermissions.add(item.userId);
    }
    for (const item of remove) {
      if (item.group === 'all') image.public = false;
      if (item.userId) image.launchPermissions.delete(item.userId);
    }
    if (input.description !== undefined) image.description = input.description;
  }

  describeImageAttribute(
    region: string,
    imageId: string | undefined,
    attribute: string | undefined,
  ): ImageAttribute {
    this.settle();
    if (!attribute) throw missing('Attribute');
    const image = this.ownImage(this.region(region), imageId);
    const base = { imageId: image.imageId, attribute };
    switch (attribute) {
      case 'launchPermission':
        return {
          ...base,
          launchPermissions: [
            ...(image.public ? [{ group: 'all' }] : []),
            ...[...image.launchPermissions].map((userId) => ({ userId })),
          ],
        };
      case 'description':
        return { ...base, description: image.description };
      case 'bootMode':
        return { ...base, bootMode: image.bootMode };
      case 'blockDeviceMapping':
        return { ...base, blockDeviceMappings: structuredClone(image.mappings) };
      default:
        throw new Ec2Error(
          'InvalidParameterValue',
          `Value (${attribute}) for parameter attribute is invalid. Unknown attribute.`,
        );
    }
  }

  deregisterImage(
    region: string,
    imageId: string | undefined,
    opts: { deleteAssociatedSnapshots?: boolean } = {},
  ): { snapshotResults: Array<{ snapshotId: string; returnCode: string }> } {
    this.settle();
    const r = this.region(region);
    const image = this.ownImage(r, imageId);
    r.images.delete(image.imageId);
    if (!opts.deleteAssociatedSnapshots) return { snapshotResults: [] };
    return {
      snapshotResults: snapshotIdsOf(image).map((snapshotId) => {
        const snapshot = r.snapshots.get(snapshotId);
        if (!snapshot || snapshot.ownerId !== this.accountId)
          return { snapshotId, returnCode: 'missing-permissions' };
        if (this.imageUsing(r, snapshotId)) return { snapshotId, returnCode: 'skipped' };
        r.snapshots.delete(snapshotId);
        return { snapshotId, returnCode: 'success' };
      }),
    };
  }

  // ---- snapshots ------------------------------------------------------------------------

  describeSnapshots(
    region: string,
    input: DescribeSnapshotsInput = {},
  ): { snapshots: SnapshotView[]; nextToken?: string } {
    this.settle();
    const r = this.region(region);
    const now = this.clock();
    const filters = input.filters ?? [];
    const fields = (s: SnapshotRecord) => (name: string) => snapshotField(s, name, now);
    checkFilters(filters, fields(PROBE_SNAPSHOT));
    let snapshots: SnapshotRecord[];
    if (input.snapshotIds?.length) {
      snapshots = input.snapshotIds.map((id) => {
        checkSnapshotId(id);
        const s = r.snapshots.get(id);
        if (!s || !this.visibleSnapshot(s)) throw snapshotNotFound(id);
        return s;
      });
    } else {
      snapshots = [...r.snapshots.values()].filter((s) => this.visibleSnapshot(s));
    }
    const owners = input.ownerIds ?? [];
    for (const owner of owners) checkOwner(owner);
    const restorable = input.restorableByUserIds ?? [];
    const matching = snapshots.filter(
      (s) =>
        (owners.length === 0 ||
          owners.some((o) =>
            o === 'self' ? s.ownerId === this.accountId : o === s.ownerId || o === s.ownerAlias,
          )) &&
        (restorable.length === 0 ||
          restorable.some((u) => {
            const account = u === 'self' ? this.accountId : u;
            return s.ownerId === account || s.public || s.createVolumePermissions.has(account);
          })) &&
        matchesFilters(filters, Object.fromEntries(s.tags), fields(s)),
    );
    const page = paginate(matching, input);
    return { snapshots: page.items.map((s) => this.snapshotView(s, now)), nextToken: page.nextToken };
  }

  deleteSnapshot(region: string, snapshotId: string | undefined): void {
    if (!snapshotId) throw missing('SnapshotId');
    checkSnapshotId(snapshotId);
    this.settle();
    const r = this.region(region);
    const snapshot = this.ownSnapshot(r, snapshotId);
    const user = this.imageUsing(r, snapshotId);
    if (user) {
      throw new Ec2Error(
        'InvalidSnapshot.InUse',
        `The snapshot ${snapshotId} is currently in use by ${user.imageId}`,
      );
    }
    r.snapshots.delete(snapshot.snapshotId);
  }

  // ---- tags -----------------------------------------------------------------------------

  createTags(region: string, resourceIds: string[], tags: Tags): void {
    if (resourceIds.length === 0) throw missing('ResourceId');
    if (Object.keys(tags).length === 0) throw missing('Tag');
    this.settle();
    const r = this.region(region);
    const targets = resourceIds.map((id): Map<string, string> => {
      if (id.startsWith('ami-')) return this.ownImage(r, id).tags;
      if (id.startsWith('snap-')) return this.ownSnapshot(r, id).tags;
      if (id.startsWith('import-snap-')) {
        checkImportTaskId(id);
        const task = r.tasks.get(id);
        if (!task) throw importTaskNotFound(id);
        return task.tags;
      }
      throw new Ec2Error('InvalidID', `The ID '${id}' is not valid`);
    });
    for (const target of targets) checkTags(tags, Object.fromEntries(target));
    for (const target of targets) for (const [k, v] of Object.entries(tags)) target.set(k, v);
  }

  // ---- observation and seeding (for tests, not part of the EC2 API) ---------------------

  stats(region?: string): Ec2Stats {
    this.settle();
    if (region !== undefined) {
      const r = this.regionStates.get(region);
      if (!r)
        return {
          peakActiveImports: 0,
          activeImports: 0,
          timeline: [],
          importRequests: 0,
          limitRejections: 0,
        };
      return {
        peakActiveImports: r.peak,
        activeImports: r.inProgress.size,
        timeline: r.timeline.map((p) => ({ ...p })),
        importRequests: r.importRequests,
        limitRejections: r.limitRejections,
      };
    }
    // Account-wide: the regions' counts summed at every change.
    const regions = [...this.regionStates.values()];
    const points = regions
      .flatMap((r, index) => r.timeline.map((p, order) => ({ ...p, index, order })))
      .sort((a, b) => a.at - b.at || a.order - b.order || a.index - b.index);
    const current = regions.map(() => 0);
    const timeline = points.map((p) => {
      current[p.index] = p.active;
      return { at: p.at, active: current.reduce((sum, n) => sum + n, 0) };
    });
    return {
      peakActiveImports: Math.max(0, ...timeline.map((p) => p.active)),
      activeImports: regions.reduce((sum, r) => sum + r.inProgress.size, 0),
      timeline,
      importRequests: regions.reduce((sum, r) => sum + r.importRequests, 0),
      limitRejections: regions.reduce((sum, r) => sum + r.limitRejections, 0),
    };
  }

  /** Regions that have seen a call or a seed. */
  regions(): string[] {
    return [...this.regionStates.keys()];
  }

  /** Every image in the region, whoever owns it. */
  images(region: string): ImageView[] {
    this.settle();
    const now = this.clock();
    return [...(this.regionStates.get(region)?.images.values() ?? [])].map((i) => this.imageView(i, now));
  }

  /** Every snapshot in the region, whoever owns it. */
  snapshots(region: string): SnapshotView[] {
    this.settle();
    const now = this.clock();
    return [...(this.regionStates.get(region)?.snapshots.values() ?? [])].map((s) =>
      this.snapshotView(s, now),
    );
  }

  /** Every import task in the region, however old. */
  importTasks(region: string): ImportTaskView[] {
    this.settle();
    const now = this.clock();
    return [...(this.regionStates.get(region)?.tasks.values() ?? [])].map((t) => this.taskView(t, now));
  }

  seedSnapshot(region: string, seed: SeedSnapshot = {}): SnapshotView {
    const r = this.region(region);
    const snapshotId = this.claimId(seed.snapshotId, 'snap-', checkSnapshotId);
    const createdAt = seed.createdAt === undefined ? this.clock() : new Date(seed.createdAt).getTime();
    const snapshot: SnapshotRecord = {
      snapshotId,
      region,
      ownerId: seed.ownerId ?? this.accountId,
      ownerAlias: seed.ownerAlias,
      createdAt,
      readyAt: seed.state === 'pending' ? Number.POSITIVE_INFINITY : createdAt,
      failed: seed.state === 'error',
      volumeSize: seed.volumeSize ?? 8,
      volumeId: 'vol-ffffffff',
      description: seed.description,
      encrypted: false,
      tags: new Map(Object.entries(seed.tags ?? {})),
      public: seed.public ?? false,
      createVolumePermissions: new Set(seed.restorableBy ?? []),
    };
    r.snapshots.set(snapshotId, snapshot);
    return this.snapshotView(snapshot, this.clock());
  }

  seedImage(region: string, seed: SeedImage): ImageView {
    const r = this.region(region);
    const ownerId = seed.ownerId ?? this.accountId;
    const name = checkImageName(seed.name);
    if (ownerId === this.accountId) this.checkNameFree(r, name);
    const createdAt = seed.createdAt === undefined ? this.clock() : new Date(seed.createdAt).getTime();
    const snapshotIds = seed.snapshotIds ?? [
      this.seedSnapshot(region, {
        ownerId,
        ownerAlias: seed.ownerAlias,
        createdAt,
        tags: seed.snapshotTags,
        volumeSize: seed.volumeSize,
        restorableBy: seed.launchPermissions,
        public: seed.public,
      }).snapshotId,
    ];
    const rootDeviceName = seed.rootDeviceName ?? '/dev/xvda';
    const image: ImageRecord = {
      imageId: this.claimId(seed.imageId, 'ami-', checkImageId),
      region,
      name,
      description: seed.description,
      ownerId,
      ownerAlias: seed.ownerAlias,
      createdAt,
      availableAt: seed.state === 'pending' ? Number.POSITIVE_INFINITY : createdAt,
      architecture: seed.architecture ?? 'x86_64',
      rootDeviceName,
      virtualizationType: 'hvm',
      enaSupport: seed.enaSupport ?? true,
      bootMode: seed.bootMode,
      mappings: snapshotIds.map((snapshotId, i) => ({
        deviceName: i === 0 ? rootDeviceName : `/dev/sd${String.fromCharCode(98 + i)}`,
        ebs: {
          snapshotId,
          volumeSize: r.snapshots.get(snapshotId)?.volumeSize ?? seed.volumeSize ?? 8,
          volumeType: 'gp3',
          deleteOnTermination: true,
          encrypted: false,
        },
      })),
      public: seed.public ?? false,
      launchPermissions: new Set(seed.launchPermissions ?? []),
      tags: new Map(Object.entries(seed.tags ?? {})),
    };
    r.images.set(image.imageId, image);
    return this.imageView(image, this.clock());
  }

  // ---- internals ------------------------------------------------------------------------

  private region(name: string): RegionState {
    let r = this.regionStates.get(name);
    if (!r) {
      r = new RegionState(name);
      this.regionStates.set(name, r);
    }
    return r;
  }

  private newId(prefix: string): string {
    for (;;) {
      const id = `${prefix}${this.idRng.hex(17)}`;
      if (!this.usedIds.has(id)) {
        this.usedIds.add(id);
        return id;
      }
    }
  }

  private claimId(id: string | undefined, prefix: string, check: (id: string) => void): string {
    if (id === undefined) return this.newId(prefix);
    check(id);
    if (this.usedIds.has(id)) throw new Error(`id already in use: ${id}`);
    this.usedIds.add(id);
    return id;
  }

  private activeDuration(): number {
    const { active, jitter } = this.durations;
    if (jitter <= 0) return active;
    return Math.max(0, Math.round(active * (1 + jitter * (2 * this.timingRng.next() - 1))));
  }

  private importReplay(
    r: RegionState,
    token: string | undefined,
    fingerprint: string,
  ): ImportTaskView | undefined {
    if (token === undefined) return undefined;
    const task = r.importTokens.get(token);
    if (!task) return undefined;
    if (task.fingerprint !== fingerprint) throw tokenMismatch(token);
    this.settle();
    return this.taskView(task, this.clock());
  }

  /** Applies, in time order, every import task transition that is due. */
  private settle(): void {
    const now = this.clock();
    for (const r of this.regionStates.values()) {
      if (r.inProgress.size === 0) continue;
      const due: Array<{ at: number; seq: number; step: number; task: TaskRecord; to: ImportTaskStatus }> =
        [];
      for (const task of r.inProgress) {
        const failsEarly = task.failure !== undefined && task.failure.at <= task.activeAt;
        const steps: Array<{ at: number; to: ImportTaskStatus }> = failsEarly
          ? [{ at: task.activeAt, to: 'deleted' }]
          : [
              { at: task.activeAt, to: 'active' },
              { at: task.endAt, to: task.failure ? 'deleted' : 'completed' },
            ];
        steps.forEach((s, step) => {
          if (s.at <= now && !(task.status === 'active' && s.to === 'active')) {
            due.push({ ...s, seq: task.seq, step, task });
          }
        });
      }
      due.sort((a, b) => a.at - b.at || a.seq - b.seq || a.step - b.step);
      for (const { at, task, to } of due) this.transition(r, task, to, at);
    }
  }

  private transition(r: RegionState, task: TaskRecord, to: ImportTaskStatus, at: number): void {
    task.status = to;
    if (to === 'active') {
      task.statusMessage = 'downloading/converting';
    } else if (to === 'completed') {
      const snapshot: SnapshotRecord = {
        snapshotId: this.newId('snap-'),
        region: r.name,
        ownerId: this.accountId,
        createdAt: at,
        readyAt: at,
        failed: false,
        volumeSize: task.info.sizeBytes === undefined ? 8 : Math.max(1, Math.ceil(task.info.sizeBytes / GIB)),
        volumeId: 'vol-ffffffff',
        description: `Created by AWS-VMImport service for ${task.info.importTaskId}`,
        encrypted: false,
        tags: new Map(),
        public: false,
        createVolumePermissions: new Set(),
        importTaskId: task.info.importTaskId,
      };
      r.snapshots.set(snapshot.snapshotId, snapshot);
      task.snapshotId = snapshot.snapshotId;
      task.statusMessage = undefined;
      task.endedAt = at;
      r.inProgress.delete(task);
    } else {
      task.statusMessage = task.failure?.message;
      task.endedAt = at;
      r.inProgress.delete(task);
    }
    this.record(r, at);
  }

  private record(r: RegionState, at: number): void {
    r.timeline.push({ at, active: r.inProgress.size });
    r.peak = Math.max(r.peak, r.inProgress.size);
  }

  private checkMapping(r: RegionState, m: BlockDeviceMappingView): BlockDeviceMappingView {
    const snapshotId = m.ebs?.snapshotId;
    if (!m.ebs || !snapshotId) return structuredClone(m);
    checkSnapshotId(snapshotId);
    const snapshot = r.snapshots.get(snapshotId);
    if (!snapshot || !this.visibleSnapshot(snapshot)) throw snapshotNotFound(snapshotId);
    const state = snapshotState(snapshot, this.clock());
    if (state !== 'completed') {
      throw new Ec2Error('IncorrectState', `Snapshot '${snapshotId}' is not in a valid state: ${state}`);
    }
    const volumeSize = m.ebs.volumeSize ?? snapshot.volumeSize;
    if (volumeSize < snapshot.volumeSize) {
      throw new Ec2Error(
        'InvalidBlockDeviceMapping',
        `Volume of size ${volumeSize}GB is smaller than snapshot '${snapshotId}', expect size >= ${snapshot.volumeSize}GB`,
      );
    }
    return {
      ...structuredClone(m),
      ebs: {
        ...m.ebs,
        volumeSize,
        volumeType: m.ebs.volumeType ?? 'gp2',
        deleteOnTermination: m.ebs.deleteOnTermination ?? true,
        encrypted: m.ebs.encrypted ?? snapshot.encrypted,
      },
    };
  }

  private checkNameFree(r: RegionState, name: string): void {
    for (const image of r.images.values()) {
      if (image.ownerId === this.accountId && image.name === name) {
        throw new Ec2Error(
          'InvalidAMIName.Duplicate',
          `AMI name ${name} is already in use by AMI ${image.imageId}`,
        );
      }
    }
  }

  private ownImage(r: RegionState, imageId: string | undefined): ImageRecord {
    if (!imageId) throw missing('ImageId');
    checkImageId(imageId);
    const image = r.images.get(imageId);
    if (!image || !this.visibleImage(image)) throw imageNotFound(imageId);
    if (image.ownerId !== this.accountId)
      throw new Ec2Error('AuthFailure', `Not authorized for image:${imageId}`);
    return image;
  }

  private ownSnapshot(r: RegionState, snapshotId: string): SnapshotRecord {
    checkSnapshotId(snapshotId);
    const snapshot = r.snapshots.get(snapshotId);
    if (!snapshot || !this.visibleSnapshot(snapshot)) throw snapshotNotFound(snapshotId);
    if (snapshot.ownerId !== this.accountId) {
      throw new Ec2Error('AuthFailure', `Not authorized for snapshot:${snapshotId}`);
    }
    return snapshot;
  }

  private imageUsing(r: RegionState, snapshotId: string): ImageRecord | undefined {
    for (const image of r.images.values()) if (snapshotIdsOf(image).includes(snapshotId)) return image;
    return undefined;
  }

  private visibleImage(image: ImageRecord): boolean {
    return image.ownerId === this.accountId || image.public || image.launchPermissions.has(this.accountId);
  }

  private visibleSnapshot(s: SnapshotRecord): boolean {
    return s.ownerId === this.accountId || s.public || s.createVolumePermissions.has(this.accountId);
  }

  private ownedBy(image: ImageRecord, owner: string): boolean {
    if (owner === 'self') return image.ownerId === this.accountId;
    return image.ownerId === owner || image.ownerAlias === owner;
  }

  private executableBy(image: ImageRecord, user: string): boolean {
    if (user === 'all') return image.public;
    const account = user === 'self' ? this.accountId : user;
    return image.public || image.launchPermissions.has(account);
  }

  private taskView(task: TaskRecord, now: number): ImportTaskView {
    const view: ImportTaskView = {
      ...structuredClone(task.info),
      tags: Object.fromEntries(task.tags),
      status: task.status,
      statusMessage: task.statusMessage,
      snapshotId: task.snapshotId,
      createdAt: task.createdAt,
      endedAt: task.endedAt,
    };
    if (task.status === 'active') {
      const span = task.endAt - task.activeAt;
      const done = span <= 0 ? 0 : Math.floor(((now - task.activeAt) / span) * 100);
      view.progress = String(Math.min(99, Math.max(0, done)));
    }
    return view;
  }

  private imageView(image: ImageRecord, now: number): ImageView {
    return {
      imageId: image.imageId,
      region: image.region,
      name: image.name,
      description: image.description,
      ownerId: image.ownerId,
      ownerAlias: image.ownerAlias,
      state: imageState(image, now),
      creationDate: new Date(image.createdAt).toISOString(),
      architecture: image.architecture,
      rootDeviceName: image.rootDeviceName,
      virtualizationType: image.virtualizationType,
      enaSupport: image.enaSupport,
      bootMode: image.bootMode,
      imdsSupport: image.imdsSupport,
      tpmSupport: image.tpmSupport,
      blockDeviceMappings: structuredClone(image.mappings),
      snapshotIds: snapshotIdsOf(image),
      public: image.public,
      launchPermissions: [...image.launchPermissions],
      tags: Object.fromEntries(image.tags),
      sourceImageId: image.sourceImageId,
      sourceRegion: image.sourceRegion,
    };
  }

  private snapshotView(s: SnapshotRecord, now: number): SnapshotView {
    const state = snapshotState(s, now);
    return {
      snapshotId: s.snapshotId,
      region: s.region,
      ownerId: s.ownerId,
      ownerAlias: s.ownerAlias,
      state,
      progress: state === 'completed' ? '100%' : '0%',
      startTime: s.createdAt,
      volumeSize: s.volumeSize,
      volumeId: s.volumeId,
      description: s.description,
      encrypted: s.encrypted,
      tags: Object.fromEntries(s.tags),
      importTaskId: s.importTaskId,
    };
  }
}

// Records used only to check filter names before any resource is looked at.
const PROBE_TASK = { info: { importTaskId: '' }, status: 'pending' } as unknown as TaskRecord;
const PROBE_IMAGE = { mappings: [], tags: new Map(), launchPermissions: new Set() } as unknown as ImageRecord;
const PROBE_SNAPSHOT = { tags: new Map() } as unknown as SnapshotRecord;

function imageField(image: ImageRecord, name: string, now: number): Array<string | undefined> | undefined {
  const ebs = image.mappings.map((m) => m.ebs);
  switch (name) {
    case 'name':
      return [image.name];
    case 'image-id':
      return [image.imageId];
    case 'state':
      return [imageState(image, now)];
    case 'owner-id':
      return [image.ownerId];
    case 'owner-alias':
      return [image.ownerAlias];
    case 'architecture':
      return [image.architecture];
    case 'is-public':
      return [String(image.public)];
    case 'description':
      return [image.description];
    case 'root-device-name':
      return [image.rootDeviceName];
    case 'root-device-type':
      return ['ebs'];
    case 'virtualization-type':
      return [image.virtualizationType];
    case 'image-type':
      return ['machine'];
    case 'hypervisor':
      return ['xen'];
    case 'ena-support':
      return [String(image.enaSupport ?? false)];
    case 'creation-date':
      return [new Date(image.createdAt ?? 0).toISOString()];
    case 'source-image-id':
      return [image.sourceImageId];
    case 'source-image-region':
      return [image.sourceRegion];
    case 'block-device-mapping.snapshot-id':
      return ebs.map((e) => e?.snapshotId);
    case 'block-device-mapping.device-name':
      return image.mappings.map((m) => m.deviceName);
    case 'block-device-mapping.volume-size':
      return ebs.map((e) => (e?.volumeSize === undefined ? undefined : String(e.volumeSize)));
    case 'block-device-mapping.volume-type':
      return ebs.map((e) => e?.volumeType);
    default:
      return undefined;
  }
}

function snapshotField(s: SnapshotRecord, name: string, now: number): Array<string | undefined> | undefined {
  switch (name) {
    case 'snapshot-id':
      return [s.snapshotId];
    case 'status':
      return [snapshotState(s, now)];
    case 'owner-id':
      return [s.ownerId];
    case 'owner-alias':
      return [s.ownerAlias];
    case 'volume-id':
      return [s.volumeId];
    case 'volume-size':
      return [String(s.volumeSize)];
    case 'description':
      return [s.description];
    case 'encrypted':
      return [String(s.encrypted)];
    case 'start-time':
      return [new Date(s.createdAt ?? 0).toISOString()];
    case 'progress':
      return [snapshotState(s, now) === 'completed' ? '100%' : '0%'];
    case 'storage-tier':
      return ['standard'];
    default:
      return undefined;
  }
}

function imageState(image: ImageRecord, now: number): ImageState {
  return now >= image.availableAt ? 'available' : 'pending';
}

function snapshotState(s: SnapshotRecord, now: number): SnapshotState {
  if (s.failed) return 'error';
  return now >= s.readyAt ? 'completed' : 'pending';
}

function snapshotIdsOf(image: ImageRecord): string[] {
  return image.mappings.flatMap((m) => (m.ebs?.snapshotId ? [m.ebs.snapshotId] : []));
}

function formatFromKey(key: string): string | undefined {
  const ext = /\.([a-z0-9]+)$/i.exec(key)?.[1]?.toLowerCase();
  if (ext === 'raw' || ext === 'img') return 'RAW';
  if (ext === 'vhd' || ext === 'vmdk') return ext.toUpperCase();
  return undefined;
}

function parseS3Url(url: string | undefined): { bucket: string; key: string } | undefined {
  const m = url === undefined ? null : /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  return m ? { bucket: m[1] as string, key: m[2] as string } : undefined;
}

function oneOf(parameter: string, value: string, allowed: string[]): string {
  if (!allowed.includes(value)) {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Value (${value}) for parameter ${parameter} is invalid. Valid values: ${allowed.join(', ')}`,
    );
  }
  return value;
}

function checkOwner(owner: string): void {
  if (['self', 'amazon', 'aws-marketplace', 'aws-backup-vault'].includes(owner) || ACCOUNT_ID.test(owner))
    return;
  throw new Ec2Error('InvalidUserID.Malformed', `Invalid user id: "${owner}"`);
}

function checkLaunchPermission(item: LaunchPermissionItem): void {
  if (item.organizationArn !== undefined || item.organizationalUnitArn !== undefined) {
    throw new Ec2Error(
      'UnsupportedOperation',
      'The simulator does not model organization launch permissions.',
    );
  }
  if (item.group !== undefined && item.group !== 'all') {
    throw new Ec2Error(
      'InvalidAMIAttributeItemValue',
      `Invalid attribute item value "${item.group}" for group item type.`,
    );
  }
  if (item.userId !== undefined && !ACCOUNT_ID.test(item.userId)) {
    throw new Ec2Error(
      'InvalidAMIAttributeItemValue',
      `Invalid attribute item value "${item.userId}" for userId item type.`,
    );
  }
  if (item.group === undefined && item.userId === undefined) {
    throw new Ec2Error('InvalidParameterValue', 'A launch permission needs a UserId or a Group.');
  }
}

function missing(parameter: string): Ec2Error {
  return new Ec2Error('MissingParameter', `The request must contain the parameter ${parameter}`);
}

function tokenMismatch(token: string): Ec2Error {
  return new Ec2Error(
    'IdempotentParameterMismatch',
    `The client token '${token}' was already used for a request with different parameters.`,
  );
}

function paginate<T>(items: T[], page: Page): { items: T[]; nextToken?: string } {
  let start = 0;
  if (page.nextToken !== undefined) {
    const decoded = Number(Buffer.from(page.nextToken, 'base64url').toString('utf8'));
    if (!Number.isInteger(decoded) || decoded < 0) {
      throw new Ec2Error('InvalidParameterValue', `The NextToken value '${page.nextToken}' is invalid`);
    }
    start = decoded;
  }
  if (page.maxResults === undefined) return { items: items.slice(start) };
  if (!Number.isInteger(page.maxResults) || page.maxResults < 1) {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Value (${page.maxResults}) for parameter maxResults is invalid.`,
    );
  }
  const end = start + page.maxResults;
  return {
    items: items.slice(start, end),
    nextToken: end < items.length ? Buffer.from(String(end)).toString('base64url') : undefined,
  };
}
