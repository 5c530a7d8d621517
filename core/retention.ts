/**
 * Retention policy: which of a deployment's images, snapshots and artifacts to remove, and in what
 * order. Pure: the caller lists what exists (the inventory), passes the rules and the clock, and
 * gets back a plan; nothing here talks to AWS.
 *
 * Deleting the wrong image is the worst bug this project can have, so every rule errs towards
 * keeping: ownership is decided by this deployment's own tag (never by name), a pin of any value
 * but "false" keeps, an unknown build type gets the longest retention, an image is never removed
 * before the expiry written on it at registration, and nothing is decided in a region (or about an
 * artifact) whose listing did not complete.
 */
import { z } from 'zod';
import { ConfigError } from './errors';
import { BUILD_TYPES, type BuildType, type JobStatus } from './job';
import { DEFAULT_IMAGE_RETENTION_DAYS } from './registration';
import { isTerminal } from './transitions';

/** Tags the register workflow writes on every image and snapshot, and the two retention reads. */
export const RETENTION_TAGS = {
  jobId: 'kiln:job-id',
  buildType: 'kiln:build-type',
  expiresAt: 'kiln:expires-at',
  deployment: 'kiln:deployment',
  /** Set by people: any value but "false" keeps the image or snapshot forever. */
  keep: 'kiln:keep',
  /**
   * Written by the cleanup on an image and the snapshots it is about to delete, before it
   * deregisters the image: a snapshot left behind by a run that died is then known to be ours to
   * finish, whatever its age.
   */
  expiring: 'kiln:expiring',
} as const;

const DAY_MS = 86_400_000;

const region = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'an AWS region name such as "eu-west-1"');
const days = z.number().positive().max(36_500);

export const RetentionConfigSchema = z.strictObject({
  /** Days a scratch build's image, snapshots and artifact are kept. */
  scratchDays: days.default(DEFAULT_IMAGE_RETENTION_DAYS.scratch),
  explicitDays: days.default(DEFAULT_IMAGE_RETENTION_DAYS.explicit),
  autoDays: days.default(DEFAULT_IMAGE_RETENTION_DAYS.auto),
  /** The newest N images of each job name stay in each region, however old. */
  keepNewestPerName: z.number().int().min(1).max(1000).optional(),
  /** At most this many of the deployment's images per region: the oldest go first beyond it. */
  maxImagesPerRegion: z.number().int().min(1).optional(),
  /** Per-region caps, overriding maxImagesPerRegion. */
  regionMaxImages: z.record(region, z.number().int().min(1)).default({}),
  /** Regions the deployment registers images in, besides its home region. */
  regions: z.array(region).max(40).default([]),
  /**
   * Deletions one run starts at most (a job's images, snapshots and artifact are never split, so
   * a run may pass it by one job's share). A bad clock or a bug cannot empty an account in one run.
   */
  maxDeletionsPerRun: z.number().int().min(1).max(100_000).default(500),
});
export type RetentionConfig = z.output<typeof RetentionConfigSchema>;
export type RetentionConfigInput = z.input<typeof RetentionConfigSchema>;

export function parseRetentionConfig(input: unknown): RetentionConfig {
  const result = RetentionConfigSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw new ConfigError(
    result.error.issues.map((i) => `retention.${i.path.join('.') || '(value)'}: ${i.message}`),
  );
}

/** The config plus whose resources these are: the `kiln:deployment` tag value (config.prefix). */
export interface RetentionRules extends RetentionConfig {
  deploymentId: string;
}

export function retentionDays(config: RetentionConfig, buildType: BuildType): number {
  return { scratch: config.scratchDays, explicit: config.explicitDays, auto: config.autoDays }[buildType];
}

/** Every region the cleanup lists: the home region first, then the configured ones. */
export function retentionRegions(config: Pick<RetentionConfig, 'regions'>, homeRegion: string): string[] {
  return [...new Set([homeRegion, ...config.regions])];
}

export function capFor(config: RetentionConfig, regionName: string): number | undefined {
  return Object.hasOwn(config.regionMaxImages, regionName)
    ? config.regionMaxImages[regionName]
    : config.maxImagesPerRegion;
}

// ---- inventory -------------------------------------------------------------------------------

export type Tags = Readonly<Record<string, string>>;

export interface InventoryImage {
  region: string;
  imageId: string;
  name?: string;
  /** EC2 state: only available, failed and disabled images may be removed. */
  state: string;
  /** ISO-8601, as EC2's CreationDate. */
  creationDate: string;
  tags: Tags;
  snapshotIds: readonly string[];
}

export interface InventorySnapshot {
  region: string;
  snapshotId: string;
  /** EC2 state: only completed and error snapshots may be removed. */
  state: string;
  /** ISO-8601, as EC2's StartTime. */
  startTime: string;
  tags: Tags;
}

export interface InventoryArtifact {
  /** `artifacts/<jobId>/…` */
  key: string;
  jobId: string;
  lastModified: string;
}

export interface InventoryJob {
  jobId: string;
  status: JobStatus;
  name?: string;
  buildType?: BuildType;
  /** Regions the job record says it has images in. */
  imageRegions: readonly string[];
}

export interface RetentionInventory {
  /** Regions whose images and snapshots were listed completely; nothing elsewhere is decided. */
  regions: readonly string[];
  /** Every image the account owns in those regions, whoever made it (they may use our snapshots). */
  images: readonly InventoryImage[];
  snapshots: readonly InventorySnapshot[];
  /** Objects under `artifacts/`; undefined when the listing failed (no artifact or job decisions). */
  artifacts?: readonly InventoryArtifact[];
  /** Records of the jobs the resources name, and of SUCCEEDED jobs (to notice ones with nothing left). */
  jobs: readonly InventoryJob[];
}

// ---- plan ------------------------------------------------------------------------------------

export type ImageReason = 'expired' | 'over-cap';
export type SnapshotReason = 'image-removed' | 'orphan-marked' | 'orphan-expired';
export type ArtifactReason = 'images-removed' | 'expired';
export type JobReason = 'output-removed' | 'nothing-left';

/** One step of a plan, before it is placed in its group. */
export type DraftAction =
  | {
      kind: 'deregister-image';
      region: string;
      imageId: string;
      jobId?: string;
      /** Snapshots this plan deletes after the image: marked `kiln:expiring` with it first. */
      snapshotIds: string[];
      reason: ImageReason;
      detail: string;
    }
  | {
      kind: 'delete-snapshot';
      region: string;
      snapshotId: string;
      imageId?: string;
      jobId?: string;
      reason: SnapshotReason;
      detail: string;
    }
  | { kind: 'delete-artifact'; key: string; jobId: string; reason: ArtifactReason; detail: string }
  | { kind: 'expire-job'; jobId: string; reason: JobReason; detail: string };

/**
 * A step of a plan. `group` ties together what must be done in order: a job's images, their
 * snapshots, its artifact and its record (plus any images sharing a snapshot with them). An
 * executor that fails a step stops its group there and goes on with the next group.
 */
export type RetentionAction = DraftAction & { group: string };

export type KeepReason =
  | 'pinned'
  | 'job-active'
  | 'state'
  | 'no-creation-date'
  | 'newest-of-name'
  | 'not-due'
  | 'in-use'
  | 'image-kept'
  | 'not-ours'
  | 'deferred';

export interface KeptItem {
  kind: 'image' | 'snapshot' | 'artifact';
  region?: string;
  id: string;
  jobId?: string;
  reason: KeepReason;
  detail: string;
}

export interface RetentionPlan {
  at: string;
  /** In a safe order: per job, images, then their snapshots, then the artifact, then the job record. */
  actions: RetentionAction[];
  /** The deployment's resources left in place, and why. */
  kept: KeptItem[];
  /** Images and snapshots in the listed regions this deployment did not make (never touched). */
  foreign: number;
  /** Deletions left for the next run by maxDeletionsPerRun. */
  deferred: number;
}

export function isDeletion(action: DraftAction): boolean {
  return action.kind !== 'expire-job';
}

// ---- policy ----------------------------------------------------------------------------------

const REMOVABLE_IMAGE_STATES = new Set(['available', 'failed', 'disabled']);
const REMOVABLE_SNAPSHOT_STATES = new Set(['completed', 'error']);

function tag(tags: Tags, key: string): string | undefined {
  return Object.hasOwn(tags, key) ? tags[key] : undefined;
}

export function isPinned(tags: Tags): boolean {
  const value = tag(tags, RETENTION_TAGS.keep);
  return value !== undefined && value.trim().toLowerCase() !== 'false';
}

export function isOwnedBy(tags: Tags, deploymentId: string): boolean {
  return tag(tags, RETENTION_TAGS.deployment) === deploymentId;
}

function buildTypeOf(value: string | undefined): BuildType | undefined {
  return BUILD_TYPES.find((t) => t === value);
}

/** Days for a build type, or the longest configured when it is unknown. */
function daysFor(rules: RetentionConfig, buildType: BuildType | undefined): number {
  if (buildType) return retentionDays(rules, buildType);
  return Math.max(...BUILD_TYPES.map((t) => retentionDays(rules, t)));
}

/** When a resource may go: its class's retention after creation, and never before its expires-at tag. */
function dueAt(createdMs: number, dayCount: number, tags: Tags): number {
  const expires = Date.parse(tag(tags, RETENTION_TAGS.expiresAt) ?? '');
  const byAge = createdMs + dayCount * DAY_MS;
  return Number.isFinite(expires) ? Math.max(byAge, expires) : byAge;
}

const key = (regionName: string, id: string) => `${regionName}/${id}`;

interface ImageFacts {
  image: InventoryImage;
  jobId?: string;
  name?: string;
  createdMs: number;
  dueMs: number;
  /** May be removed at all (not pinned, job not running, a removable state, a known age). */
  removable: boolean;
  /** Why it stays, once decided (absent for images this plan removes). */
  keep?: { reason: KeepReason; detail: string };
}

type ImageDecision = { reason: ImageReason; detail: string };

interface Decisions {
  /** key(region, imageId) → why it goes */
  images: Map<string, ImageDecision>;
  /** key(region, imageId) → the group (job) its removal belongs to */
  groupOfImage: Map<string, string>;
  facts: ImageFacts[];
}

interface BuildContext {
  inventory: RetentionInventory;
  rules: RetentionRules;
  nowMs: number;
  covered: Set<string>;
  jobs: Map<string, InventoryJob>;
}

/**
 * The plan for one run. Images go when their class's retention (and their expires-at tag) has
 * passed, unless pinned, among the newest N of their name, or their job is still running; a
 * region over its cap loses its oldest removable images first (a cap is a hard account limit, so
 * it overrides age and keep-newest, never a pin). A snapshot goes with its image unless another
 * image still uses it; an artifact goes once no image of its job is left; a SUCCEEDED job whose
 * output is all gone becomes EXPIRED.
 */
export function planRetention(
  inventory: RetentionInventory,
  rules: RetentionRules,
  now: Date,
): RetentionPlan {
  const nowMs = now.getTime();
  const covered = new Set(inventory.regions);
  const jobs = new Map(inventory.jobs.map((j) => [j.jobId, j]));
  const decisions = decideImages(inventory, rules, nowMs, covered, jobs);
  const context: BuildContext = { inventory, rules, nowMs, covered, jobs };

  // Every job's share of the work, oldest first, so a limited run removes the oldest first.
  const full = buildActions(context, decisions.images);
  const find = joinGroups(full.links);
  const groups = groupActions(full.actions, inventory, find);
  const chosen = new Set<string>();
  let deletions = 0;
  let deferred = 0;
  for (const group of groups) {
    const count = group.actions.filter(isDeletion).length;
    if (count > 0 && deletions >= rules.maxDeletionsPerRun) {
      deferred += count;
      continue;
    }
    chosen.add(group.id);
    deletions += count;
  }
  if (deferred === 0) return finish(groups, full.kept, decisions, context, now, 0);

  // Re-derive snapshots, artifacts and jobs with only the chosen images removed, so nothing this
  // run does depends on an image it leaves in place.
  const chosenImages = new Map(
    [...decisions.images].filter(([k]) => chosen.has(find(decisions.groupOfImage.get(k) ?? ''))),
  );
  const limited = buildActions(context, chosenImages);
  const limitedGroups = groupActions(limited.actions, inventory, find).filter((g) => chosen.has(g.id));
  const kept = [...limited.kept];
  for (const group of groups) {
    if (chosen.has(group.id)) continue;
    for (const a of group.actions.filter(isDeletion)) {
      kept.push({
        kind:
          a.kind === 'deregister-image' ? 'image' : a.kind === 'delete-snapshot' ? 'snapshot' : 'artifact',
        ...('region' in a ? { region: a.region } : {}),
        id: actionTarget(a),
        ...(a.jobId !== undefined ? { jobId: a.jobId } : {}),
        reason: 'deferred',
        detail: `due (${a.reason}) but left for the next run: this one reached maxDeletionsPerRun (${rules.maxDeletionsPerRun})`,
      });
    }
  }
  return finish(limitedGroups, kept, decisions, context, now, deferred);
}

function finish(
  groups: Group[],
  kept: KeptItem[],
  decisions: Decisions,
  context: BuildContext,
  now: Date,
  deferred: number,
): RetentionPlan {
  const { inventory, rules, covered } = context;
  const actions = groups.flatMap((g) => g.actions);
  const foreign =
    inventory.images.filter((i) => covered.has(i.region) && !isOwnedBy(i.tags, rules.deploymentId)).length +
    inventory.snapshots.filter((s) => covered.has(s.region) && !isOwnedBy(s.tags, rules.deploymentId)).length;
  const keptImages: KeptItem[] = [];
  for (const f of decisions.facts) {
    if (!f.keep) continue;
    keptImages.push({
      kind: 'image',
      region: f.image.region,
      id: f.image.imageId,
      ...(f.jobId !== undefined ? { jobId: f.jobId } : {}),
      ...f.keep,
    });
  }
  return { at: now.toISOString(), actions, kept: [...keptImages, ...kept], foreign, deferred };
}

export function actionTarget(a: DraftAction): string {
  switch (a.kind) {
    case 'deregister-image':
      return a.imageId;
    case 'delete-snapshot':
      return a.snapshotId;
    case 'delete-artifact':
      return a.key;
    case 'expire-job':
      return a.jobId;
  }
}

function decideImages(
  inventory: RetentionInventory,
  rules: RetentionRules,
  nowMs: number,
  covered: Set<string>,
  jobs: Map<string, InventoryJob>,
): Decisions {
  const facts: ImageFacts[] = [];
  for (const image of inventory.images) {
    if (!covered.has(image.region) || !isOwnedBy(image.tags, rules.deploymentId)) continue;
    const jobId = tag(image.tags, RETENTION_TAGS.jobId);
    const job = jobId === undefined ? undefined : jobs.get(jobId);
    const createdMs = Date.parse(image.creationDate);
    const buildType = buildTypeOf(tag(image.tags, RETENTION_TAGS.buildType)) ?? job?.buildType;
    const dueMs = dueAt(createdMs, daysFor(rules, buildType), image.tags);
    let keep: ImageFacts['keep'];
    if (isPinned(image.tags)) keep = { reason: 'pinned', detail: `tagged ${RETENTION_TAGS.keep}` };
    else if (job && !isTerminal(job.status))
      keep = { reason: 'job-active', detail: `job ${job.jobId} is ${job.status}` };
    else if (!REMOVABLE_IMAGE_STATES.has(image.state))
      keep = { reason: 'state', detail: `image is ${image.state}` };
    else if (!Number.isFinite(createdMs))
      keep = { reason: 'no-creation-date', detail: `creation date "${image.creationDate}" is not a date` };
    facts.push({
      image,
      ...(jobId !== undefined ? { jobId } : {}),
      ...(job?.name ? { name: job.name } : {}),
      createdMs,
      dueMs,
      removable: keep === undefined,
      ...(keep ? { keep } : {}),
    });
  }
  const byAge = (a: ImageFacts, b: ImageFacts) =>
    a.createdMs - b.createdMs ||
    a.image.region.localeCompare(b.image.region) ||
    a.image.imageId.localeCompare(b.image.imageId);

  const newest = new Set<ImageFacts>();
  if (rules.keepNewestPerName !== undefined) {
    const byName = new Map<string, ImageFacts[]>();
    for (const f of facts) {
      if (f.name === undefined) continue;
      const k = key(f.image.region, f.name);
      byName.set(k, [...(byName.get(k) ?? []), f]);
    }
    for (const group of byName.values()) {
      // Images without a usable date sort as newest: they are kept anyway.
      const sorted = [...group].sort((a, b) => {
        const [x, y] = [
          Number.isFinite(a.createdMs) ? a.createdMs : Infinity,
          Number.isFinite(b.createdMs) ? b.createdMs : Infinity,
        ];
        return y - x || b.image.imageId.localeCompare(a.image.imageId);
      });
      for (const f of sorted.slice(0, rules.keepNewestPerName)) newest.add(f);
    }
  }

  const images = new Map<string, ImageDecision>();
  for (const f of facts) {
    if (!f.removable) continue;
    if (newest.has(f)) {
      f.keep = {
        reason: 'newest-of-name',
        detail: `among the ${rules.keepNewestPerName} newest images of job name "${f.name}" in ${f.image.region}`,
      };
      continue;
    }
    if (nowMs >= f.dueMs) {
      images.set(key(f.image.region, f.image.imageId), {
        reason: 'expired',
        detail: `created ${f.image.creationDate}, due ${new Date(f.dueMs).toISOString()}`,
      });
    } else {
      f.keep = { reason: 'not-due', detail: `due ${new Date(f.dueMs).toISOString()}` };
    }
  }

  for (const regionName of covered) {
    const cap = capFor(rules, regionName);
    if (cap === undefined) continue;
    const survivors = facts.filter(
      (f) => f.image.region === regionName && !images.has(key(regionName, f.image.imageId)),
    );
    let excess = survivors.length - cap;
    for (const f of survivors.filter((s) => s.removable).sort(byAge)) {
      if (excess <= 0) break;
      images.set(key(regionName, f.image.imageId), {
        reason: 'over-cap',
        detail: `${survivors.length} images in ${regionName}, cap ${cap}: the oldest go first`,
      });
      delete f.keep;
      excess -= 1;
    }
  }
  const groupOfImage = new Map(
    facts.map((f) => [
      key(f.image.region, f.image.imageId),
      groupId(f.jobId, f.image.region, f.image.imageId),
    ]),
  );
  return { images, groupOfImage, facts };
}

interface Built {
  actions: DraftAction[];
  kept: KeptItem[];
  /** Groups that must be handled as one (their images share a snapshot this plan deletes). */
  links: Array<[string, string]>;
}

function groupId(jobId: string | undefined, regionName: string, id: string): string {
  return jobId !== undefined ? `job:${jobId}` : `item:${key(regionName, id)}`;
}

/** A snapshot deleted with its image belongs to the image's group, whatever it is tagged with. */
function groupIdOf(a: DraftAction): string {
  if (a.kind === 'delete-snapshot' && a.imageId !== undefined) return groupId(a.jobId, a.region, a.imageId);
  return groupId(a.jobId, 'region' in a ? a.region : '', actionTarget(a));
}

/** Union-find over group ids; the representative is the smallest id, so plans are deterministic. */
function joinGroups(links: ReadonlyArray<readonly [string, string]>): (id: string) => string {
  const parent = new Map<string, string>();
  const find = (id: string): string => {
    let root = id;
    while (parent.has(root) && parent.get(root) !== root) root = parent.get(root) as string;
    parent.set(id, root);
    return root;
  };
  for (const [a, b] of links) {
    const [ra, rb] = [find(a), find(b)];
    if (ra === rb) continue;
    if (ra < rb) parent.set(rb, ra);
    else parent.set(ra, rb);
  }
  return find;
}

/** Snapshots, artifacts and job records, given which images go. */
function buildActions(context: BuildContext, removedImages: ReadonlyMap<string, ImageDecision>): Built {
  const { inventory, rules, nowMs, covered, jobs } = context;
  const actions: DraftAction[] = [];
  const kept: KeptItem[] = [];
  const links: Array<[string, string]> = [];
  const own = (tags: Tags) => isOwnedBy(tags, rules.deploymentId);
  const images = inventory.images.filter((i) => covered.has(i.region));
  const snapshots = new Map(
    inventory.snapshots.filter((s) => covered.has(s.region)).map((s) => [key(s.region, s.snapshotId), s]),
  );
  const jobActive = (jobId: string | undefined) => {
    const job = jobId === undefined ? undefined : jobs.get(jobId);
    return job !== undefined && !isTerminal(job.status);
  };

  // Who uses each snapshot. One that any staying image uses (ours or not) is never deleted; one
  // several removed images share waits until they are all gone (then it is an orphan).
  const users = new Map<string, InventoryImage[]>();
  for (const image of images) {
    for (const id of new Set(image.snapshotIds)) {
      const sk = key(image.region, id);
      users.set(sk, [...(users.get(sk) ?? []), image]);
    }
  }
  const keptSnapshot = (s: InventorySnapshot, reason: KeepReason, detail: string) =>
    kept.push({
      kind: 'snapshot',
      region: s.region,
      id: s.snapshotId,
      ...jobIdOf(s.tags),
      reason,
      detail,
    });
  /** Why an own snapshot must stay whatever its age, or undefined. */
  const mustKeep = (s: InventorySnapshot): KeepReason | undefined => {
    if (isPinned(s.tags)) return 'pinned';
    if (!REMOVABLE_SNAPSHOT_STATES.has(s.state)) return 'state';
    if (jobActive(tag(s.tags, RETENTION_TAGS.jobId))) return 'job-active';
    return undefined;
  };

  const removedSnapshots = new Set<string>();
  const sortedImages = [...images].sort(
    (a, b) =>
      Date.parse(a.creationDate) - Date.parse(b.creationDate) ||
      a.region.localeCompare(b.region) ||
      a.imageId.localeCompare(b.imageId),
  );
  for (const image of sortedImages) {
    const decision = removedImages.get(key(image.region, image.imageId));
    if (!decision || !own(image.tags)) continue;
    const jobId = tag(image.tags, RETENTION_TAGS.jobId);
    const marked: string[] = [];
    const deletes: DraftAction[] = [];
    for (const id of new Set(image.snapshotIds)) {
      const sk = key(image.region, id);
      const s = snapshots.get(sk);
      if (!s) continue;
      if (!own(s.tags)) {
        keptSnapshot(
          s,
          'not-ours',
          `used by removed image ${image.imageId} but not tagged as this deployment's`,
        );
        continue;
      }
      const why = mustKeep(s);
      if (why) {
        keptSnapshot(s, why, `snapshot of removed image ${image.imageId} kept (${why})`);
        continue;
      }
      const others = (users.get(sk) ?? []).filter((u) => u !== image);
      const staying = others.find((u) => !removedImages.has(key(u.region, u.imageId)));
      if (staying) {
        keptSnapshot(s, 'in-use', `image ${staying.imageId} still uses it`);
        continue;
      }
      marked.push(s.snapshotId);
      if (removedSnapshots.has(sk)) continue;
      // Shared by several removed images: deleted after all of them, so their groups become one.
      for (const other of others) {
        links.push([
          groupId(jobId, image.region, image.imageId),
          groupId(tag(other.tags, RETENTION_TAGS.jobId), other.region, other.imageId),
        ]);
      }
      removedSnapshots.add(sk);
      deletes.push({
        kind: 'delete-snapshot',
        region: s.region,
        snapshotId: s.snapshotId,
        imageId: image.imageId,
        ...(jobId !== undefined ? { jobId } : {}),
        reason: 'image-removed',
        detail: `snapshot of ${image.imageId}, removed in this run`,
      });
    }
    actions.push(
      {
        kind: 'deregister-image',
        region: image.region,
        imageId: image.imageId,
        ...(jobId !== undefined ? { jobId } : {}),
        snapshotIds: marked,
        reason: decision.reason,
        detail: decision.detail,
      },
      ...deletes,
    );
  }

  // Snapshots no image uses: left by a run that died after deregistering, or by a person.
  const orphans = [...snapshots.values()]
    .filter((s) => own(s.tags) && !users.has(key(s.region, s.snapshotId)))
    .sort(
      (a, b) => Date.parse(a.startTime) - Date.parse(b.startTime) || a.snapshotId.localeCompare(b.snapshotId),
    );
  for (const s of orphans) {
    const jobId = tag(s.tags, RETENTION_TAGS.jobId);
    const why = mustKeep(s);
    if (why) {
      keptSnapshot(s, why, `orphaned snapshot kept (${why})`);
      continue;
    }
    const marked = tag(s.tags, RETENTION_TAGS.expiring) !== undefined;
    const job = jobId === undefined ? undefined : jobs.get(jobId);
    const buildType = buildTypeOf(tag(s.tags, RETENTION_TAGS.buildType)) ?? job?.buildType;
    const startedMs = Date.parse(s.startTime);
    const due = dueAt(startedMs, daysFor(rules, buildType), s.tags);
    const expired = Number.isFinite(due) && nowMs >= due;
    if (!marked && !expired) {
      keptSnapshot(s, 'not-due', `orphaned snapshot, due ${isoOr(due)}`);
      continue;
    }
    removedSnapshots.add(key(s.region, s.snapshotId));
    actions.push({
      kind: 'delete-snapshot',
      region: s.region,
      snapshotId: s.snapshotId,
      ...(jobId !== undefined ? { jobId } : {}),
      reason: marked ? 'orphan-marked' : 'orphan-expired',
      detail: marked
        ? `its image is gone and an earlier run marked it ${RETENTION_TAGS.expiring}`
        : `its image is gone and it was due ${isoOr(due)}`,
    });
  }

  if (inventory.artifacts)
    actions.push(...jobActions(context, removedImages, removedSnapshots, actions, kept));
  return { actions, kept, links };
}

function jobIdOf(tags: Tags): { jobId?: string } {
  const jobId = tag(tags, RETENTION_TAGS.jobId);
  return jobId !== undefined ? { jobId } : {};
}

/** Artifacts and job records: they go once nothing of their job stays in any image. */
function jobActions(
  context: BuildContext,
  removedImages: ReadonlyMap<string, ImageDecision>,
  removedSnapshots: ReadonlySet<string>,
  ec2Actions: readonly DraftAction[],
  kept: KeptItem[],
): DraftAction[] {
  const { inventory, rules, nowMs, covered, jobs } = context;
  const own = (tags: Tags) => isOwnedBy(tags, rules.deploymentId);
  const actions: DraftAction[] = [];
  const staying = new Set<string>();
  for (const image of inventory.images) {
    const jobId = tag(image.tags, RETENTION_TAGS.jobId);
    if (jobId === undefined || !own(image.tags) || !covered.has(image.region)) continue;
    if (!removedImages.has(key(image.region, image.imageId))) staying.add(jobId);
  }
  const snapshotsLeft = new Set<string>();
  for (const s of inventory.snapshots) {
    const jobId = tag(s.tags, RETENTION_TAGS.jobId);
    if (jobId === undefined || !own(s.tags) || !covered.has(s.region)) continue;
    if (!removedSnapshots.has(key(s.region, s.snapshotId))) snapshotsLeft.add(jobId);
  }
  const touched = new Set(ec2Actions.flatMap((a) => (a.jobId !== undefined ? [a.jobId] : [])));
  const artifactsByJob = new Map<string, InventoryArtifact[]>();
  for (const a of inventory.artifacts ?? [])
    artifactsByJob.set(a.jobId, [...(artifactsByJob.get(a.jobId) ?? []), a]);
  const candidates = new Set([
    ...artifactsByJob.keys(),
    ...touched,
    ...inventory.jobs.filter((j) => j.status === 'SUCCEEDED').map((j) => j.jobId),
  ]);

  for (const jobId of [...candidates].sort()) {
    const job = jobs.get(jobId);
    const artifacts = artifactsByJob.get(jobId) ?? [];
    const keepAll = (reason: KeepReason, detail: string) => {
      for (const a of artifacts) kept.push({ kind: 'artifact', id: a.key, jobId, reason, detail });
    };
    if (job && !isTerminal(job.status)) {
      keepAll('job-active', `job is ${job.status}`);
      continue;
    }
    const uncovered = (job?.imageRegions ?? []).filter((r) => !covered.has(r));
    if (uncovered.length > 0) {
      keepAll('image-kept', `the job has images in regions not listed: ${uncovered.join(', ')}`);
      continue;
    }
    if (staying.has(jobId)) {
      keepAll('image-kept', 'an image of the job stays');
      continue;
    }
    const removesSome = touched.has(jobId);
    const newest = Math.max(...artifacts.map((a) => Date.parse(a.lastModified)));
    const due = newest + daysFor(rules, job?.buildType) * DAY_MS;
    const artifactsGo = artifacts.length > 0 && (removesSome || (Number.isFinite(due) && nowMs >= due));
    if (artifactsGo) {
      for (const a of artifacts) {
        actions.push({
          kind: 'delete-artifact',
          key: a.key,
          jobId,
          reason: removesSome ? 'images-removed' : 'expired',
          detail: removesSome
            ? 'the last images and snapshots of its job are removed in this run'
            : `no image of its job is left and it was due ${isoOr(due)}`,
        });
      }
    } else {
      keepAll('not-due', `due ${isoOr(due)}`);
    }
    const nothingLeft = !snapshotsLeft.has(jobId) && (artifacts.length === 0 || artifactsGo);
    if (job?.status === 'SUCCEEDED' && nothingLeft) {
      const acted = removesSome || artifactsGo;
      actions.push({
        kind: 'expire-job',
        jobId,
        reason: acted ? 'output-removed' : 'nothing-left',
        detail: acted
          ? 'this run removes the last of its images, snapshots and artifact'
          : 'none of its images, snapshots or artifact is left',
      });
    }
  }
  return actions;
}

function isoOr(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : 'never (no usable date)';
}

interface Group {
  id: string;
  oldestMs: number;
  actions: RetentionAction[];
}

const ORDER: Record<DraftAction['kind'], number> = {
  'deregister-image': 0,
  'delete-snapshot': 1,
  'delete-artifact': 2,
  'expire-job': 3,
};

/**
 * One group per job (or per resource without a job), oldest first; inside a group the images go
 * first, then the snapshots (the snapshots of an image only after it), the artifact, the record.
 */
function groupActions(
  actions: DraftAction[],
  inventory: RetentionInventory,
  find: (id: string) => string,
): Group[] {
  const created = new Map(
    inventory.images.map((i) => [key(i.region, i.imageId), Date.parse(i.creationDate)]),
  );
  const started = new Map(
    inventory.snapshots.map((s) => [key(s.region, s.snapshotId), Date.parse(s.startTime)]),
  );
  const modified = new Map((inventory.artifacts ?? []).map((a) => [a.key, Date.parse(a.lastModified)]));
  const groups = new Map<string, Group>();
  for (const a of actions) {
    const id = find(groupIdOf(a));
    const group = groups.get(id) ?? { id, oldestMs: Number.POSITIVE_INFINITY, actions: [] };
    const t =
      a.kind === 'deregister-image'
        ? created.get(key(a.region, a.imageId))
        : a.kind === 'delete-snapshot'
          ? started.get(key(a.region, a.snapshotId))
          : a.kind === 'delete-artifact'
            ? modified.get(a.key)
            : undefined;
    if (t !== undefined && Number.isFinite(t)) group.oldestMs = Math.min(group.oldestMs, t);
    group.actions.push({ ...a, group: id });
    groups.set(id, group);
  }
  for (const g of groups.values()) {
    // A stable sort keeps each image's snapshots in the order they were added, after all images.
    g.actions.sort((a, b) => ORDER[a.kind] - ORDER[b.kind]);
  }
  return [...groups.values()].sort((a, b) => a.oldestMs - b.oldestMs || a.id.localeCompare(b.id));
}
