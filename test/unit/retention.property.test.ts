/**
 * Properties of the retention policy over generated inventories: a mix of this deployment's images,
 * other deployments' and untagged ones, pins of every spelling, jobs in every status, snapshots
 * shared between images, orphans, artifacts, regions that were not listed, and random rules.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BUILD_TYPES, JOB_STATUSES } from '../../core/job';
import {
  actionTarget,
  capFor,
  type InventoryArtifact,
  type InventoryImage,
  type InventoryJob,
  type InventorySnapshot,
  isDeletion,
  planRetention,
  RETENTION_TAGS,
  type RetentionAction,
  type RetentionInventory,
  type RetentionPlan,
  type RetentionRules,
  retentionDays,
} from '../../core/retention';
import { isTerminal } from '../../core/transitions';

const NOW = new Date('2031-03-01T00:00:00.000Z');
const DAY = 86_400_000;
const DEPLOYMENT = 'kiln';
const REGIONS = ['us-east-1', 'eu-west-1', 'ap-south-1'] as const;
const JOB_IDS = ['j0', 'j1', 'j2', 'j3', 'j4', 'j5', 'j6', 'j7', 'j8', 'j9'] as const;
const at = (daysAgo: number) => new Date(NOW.getTime() - daysAgo * DAY).toISOString();

// Whole hours: fast-check's doubles crowd around zero, which would leave almost everything young.
const arbDaysAgo = fc.integer({ min: -24, max: 40 * 24 }).map((h) => h / 24);
/**
 * `percent`% of the time one of `values`, else undefined. (fast-check's own weights bend under its
 * bias towards small values, which made pins and running jobs far commoner than asked.)
 */
const sometimes = <T>(percent: number, values: readonly T[]) =>
  fc
    .nat({ max: 9999 })
    .map((n) => (n % 100 < percent ? values[Math.floor(n / 100) % values.length] : undefined));
const arbDeployment = sometimes(25, ['kiln-other', 'kiln-other', undefined]).map((d) => d ?? DEPLOYMENT);
const arbPin = sometimes(15, ['true', 'TRUE', 'yes', 'false', ' False', '']);
const arbBuildType = fc.constantFrom<string | undefined>(...BUILD_TYPES, 'weird', undefined);
const arbJobRef = fc.constantFrom<string | undefined>(...JOB_IDS, 'gone', undefined);

function tagsOf(fields: {
  deployment: string | undefined;
  pin: string | undefined;
  buildType: string | undefined;
  jobId: string | undefined;
  expiresInDays?: number | undefined;
  marked?: boolean;
}): Record<string, string> {
  const tags: Record<string, string> = {};
  if (fields.deployment !== undefined) tags[RETENTION_TAGS.deployment] = fields.deployment;
  if (fields.pin !== undefined) tags[RETENTION_TAGS.keep] = fields.pin;
  if (fields.buildType !== undefined) tags[RETENTION_TAGS.buildType] = fields.buildType;
  if (fields.jobId !== undefined) tags[RETENTION_TAGS.jobId] = fields.jobId;
  if (fields.expiresInDays !== undefined) tags[RETENTION_TAGS.expiresAt] = at(-fields.expiresInDays);
  if (fields.marked) tags[RETENTION_TAGS.expiring] = at(0);
  return tags;
}

const arbImage = fc.record({
  region: fc.constantFrom(...REGIONS),
  deployment: arbDeployment,
  pin: arbPin,
  buildType: arbBuildType,
  jobId: arbJobRef,
  expiresInDays: sometimes(30, [-20, -5, -1, -0.1, 0.1, 1, 5, 20]),
  state: fc.constantFrom('available', 'available', 'available', 'pending', 'failed', 'disabled'),
  age: arbDaysAgo,
  /** Also uses the snapshot of an earlier image in its region, when there is one. */
  sharesWith: fc.option(fc.nat(30), { nil: undefined }),
  snapshotOwnTag: sometimes(20, [false]).map((v) => v === undefined),
  snapshotPin: arbPin,
  snapshotState: fc.constantFrom('completed', 'completed', 'completed', 'pending', 'error'),
});

const arbOrphan = fc.record({
  region: fc.constantFrom(...REGIONS),
  deployment: arbDeployment,
  pin: arbPin,
  buildType: arbBuildType,
  jobId: arbJobRef,
  age: arbDaysAgo,
  marked: fc.boolean(),
  state: fc.constantFrom('completed', 'pending'),
});

const arbJob = fc.record({
  status: sometimes(40, JOB_STATUSES).map((s) => s ?? 'SUCCEEDED'),
  name: fc.constantFrom<string | undefined>('nightly', 'release', undefined),
  buildType: fc.constantFrom<(typeof BUILD_TYPES)[number] | undefined>(...BUILD_TYPES, undefined),
  artifactAge: fc.option(arbDaysAgo, { nil: undefined }),
  extraRegion: fc.option(fc.constantFrom(...REGIONS), { nil: undefined }),
});

const arbInventory = fc
  .record({
    covered: fc.subarray([...REGIONS], { minLength: 1 }),
    images: fc.array(arbImage, { maxLength: 24 }),
    orphans: fc.array(arbOrphan, { maxLength: 6 }),
    jobs: fc.array(arbJob, { minLength: JOB_IDS.length, maxLength: JOB_IDS.length }),
    artifactsListed: fc.boolean(),
    strayArtifactAge: fc.option(arbDaysAgo, { nil: undefined }),
  })
  .map((g): RetentionInventory => {
    const images: InventoryImage[] = [];
    const snapshots: InventorySnapshot[] = [];
    g.images.forEach((img, i) => {
      const snapshotId = `snap-${String(i).padStart(4, '0')}`;
      const imageTags = tagsOf(img);
      snapshots.push({
        region: img.region,
        snapshotId,
        state: img.snapshotState,
        startTime: at(img.age + 0.001),
        tags: tagsOf({
          deployment: img.snapshotOwnTag ? img.deployment : undefined,
          pin: img.snapshotPin,
          buildType: img.buildType,
          jobId: img.jobId,
          expiresInDays: img.expiresInDays,
        }),
      });
      const earlier = images.filter((e) => e.region === img.region);
      const shared =
        img.sharesWith !== undefined && earlier.length > 0
          ? earlier[img.sharesWith % earlier.length]?.snapshotIds[0]
          : undefined;
      images.push({
        region: img.region,
        imageId: `ami-${String(i).padStart(4, '0')}`,
        name: `kiln-${img.jobId ?? 'x'}`,
        state: img.state,
        creationDate: at(img.age),
        tags: imageTags,
        snapshotIds: shared ? [snapshotId, shared] : [snapshotId],
      });
    });
    g.orphans.forEach((o, i) => {
      snapshots.push({
        region: o.region,
        snapshotId: `snap-orphan-${i}`,
        state: o.state,
        startTime: at(o.age),
        tags: tagsOf({ ...o, marked: o.marked }),
      });
    });
    const jobs: InventoryJob[] = JOB_IDS.map((jobId, i) => {
      const j = g.jobs[i] as (typeof g.jobs)[number];
      const regions = new Set(
        images.filter((im) => im.tags[RETENTION_TAGS.jobId] === jobId).map((im) => im.region),
      );
      if (j.extraRegion) regions.add(j.extraRegion);
      return {
        jobId,
        status: j.status,
        ...(j.name ? { name: j.name } : {}),
        ...(j.buildType ? { buildType: j.buildType } : {}),
        imageRegions: [...regions],
      };
    });
    const artifacts: InventoryArtifact[] = JOB_IDS.flatMap((jobId, i) => {
      const age = g.jobs[i]?.artifactAge;
      return age === undefined ? [] : [{ key: `artifacts/${jobId}/image.raw`, jobId, lastModified: at(age) }];
    });
    if (g.strayArtifactAge !== undefined)
      artifacts.push({
        key: 'artifacts/gone/image.raw',
        jobId: 'gone',
        lastModified: at(g.strayArtifactAge),
      });
    return {
      regions: g.covered,
      images,
      snapshots,
      ...(g.artifactsListed ? { artifacts } : {}),
      jobs,
    };
  });

const arbRules = fc
  .record({
    scratchDays: fc.integer({ min: 1, max: 10 }),
    explicitDays: fc.integer({ min: 1, max: 20 }),
    autoDays: fc.integer({ min: 1, max: 20 }),
    keepNewestPerName: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
    maxImagesPerRegion: fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
    regionCap: fc.option(fc.tuple(fc.constantFrom(...REGIONS), fc.integer({ min: 1, max: 4 })), {
      nil: undefined,
    }),
    maxDeletionsPerRun: fc.constantFrom(1, 3, 10, 100_000),
  })
  .map(
    (r): RetentionRules => ({
      deploymentId: DEPLOYMENT,
      scratchDays: r.scratchDays,
      explicitDays: r.explicitDays,
      autoDays: r.autoDays,
      ...(r.keepNewestPerName !== undefined ? { keepNewestPerName: r.keepNewestPerName } : {}),
      ...(r.maxImagesPerRegion !== undefined ? { maxImagesPerRegion: r.maxImagesPerRegion } : {}),
      regionMaxImages: r.regionCap ? { [r.regionCap[0]]: r.regionCap[1] } : {},
      regions: [],
      maxDeletionsPerRun: r.maxDeletionsPerRun,
    }),
  );

/** The spec, written out independently of the policy: any pin value but "false" pins. */
function isPinned(tags: Record<string, string>): boolean {
  const value = tags[RETENTION_TAGS.keep];
  return value !== undefined && value.trim().toLowerCase() !== 'false';
}
/** Ours only by our own deployment tag, never by name. */
const isOwnedBy = (tags: Record<string, string>, deployment: string) =>
  tags[RETENTION_TAGS.deployment] === deployment;

const unlimited = (rules: RetentionRules): RetentionRules => ({ ...rules, maxDeletionsPerRun: 1_000_000 });

const RUNS = { numRuns: 400 };

type Deregister = Extract<RetentionAction, { kind: 'deregister-image' }>;
const deregistrations = (plan: RetentionPlan) =>
  plan.actions.filter((a): a is Deregister => a.kind === 'deregister-image');
const removedImageKeys = (plan: RetentionPlan) =>
  new Set(deregistrations(plan).map((a) => `${a.region}/${a.imageId}`));
const ikey = (i: { region: string; imageId: string }) => `${i.region}/${i.imageId}`;

function jobOf(inv: RetentionInventory, tags: Record<string, string>): InventoryJob | undefined {
  return inv.jobs.find((j) => j.jobId === tags[RETENTION_TAGS.jobId]);
}

/** The class retention of an image, as the rules define it (unknown type: the longest). */
function classDays(inv: RetentionInventory, rules: RetentionRules, image: InventoryImage): number {
  const type =
    BUILD_TYPES.find((t) => t === image.tags[RETENTION_TAGS.buildType]) ?? jobOf(inv, image.tags)?.buildType;
  return type ? retentionDays(rules, type) : Math.max(...BUILD_TYPES.map((t) => retentionDays(rules, t)));
}

/** Is an image one the policy may remove at all (for cap accounting). */
function removable(inv: RetentionInventory, image: InventoryImage): boolean {
  const job = jobOf(inv, image.tags);
  return (
    !isPinned(image.tags) &&
    (job === undefined || isTerminal(job.status)) &&
    ['available', 'failed', 'disabled'].includes(image.state) &&
    Number.isFinite(Date.parse(image.creationDate))
  );
}

/** What the executor does to the world for each action (deregister marks its snapshots first). */
function apply(inv: RetentionInventory, actions: readonly RetentionAction[]): RetentionInventory {
  let { images, snapshots, artifacts, jobs } = inv;
  for (const a of actions) {
    if (a.kind === 'deregister-image') {
      const marked = new Set([a.imageId, ...a.snapshotIds]);
      snapshots = snapshots.map((s) =>
        s.region === a.region && marked.has(s.snapshotId)
          ? { ...s, tags: { ...s.tags, [RETENTION_TAGS.expiring]: NOW.toISOString() } }
          : s,
      );
      images = images.filter((i) => !(i.region === a.region && i.imageId === a.imageId));
    } else if (a.kind === 'delete-snapshot') {
      snapshots = snapshots.filter((s) => !(s.region === a.region && s.snapshotId === a.snapshotId));
    } else if (a.kind === 'delete-artifact') {
      artifacts = artifacts?.filter((x) => x.key !== a.key);
    } else {
      jobs = jobs.map((j) =>
        j.jobId === a.jobId && j.status === 'SUCCEEDED' ? { ...j, status: 'EXPIRED' } : j,
      );
    }
  }
  return { ...inv, images, snapshots, ...(artifacts ? { artifacts } : {}), jobs };
}

/** `region/id` (or the artifact key) of each deletion. */
const deletionIds = (actions: readonly RetentionAction[]) =>
  actions.filter(isDeletion).map((a) => `${'region' in a ? a.region : ''}/${actionTarget(a)}`);

describe('retention policy properties', () => {
  it('never plans anything for a pinned or foreign image or snapshot, nor outside the listed regions', () => {
    fc.assert(
      fc.property(arbInventory, arbRules, (inv, rules) => {
        const plan = planRetention(inv, rules, NOW);
        const images = new Map(inv.images.map((i) => [ikey(i), i]));
        const snapshots = new Map(inv.snapshots.map((s) => [`${s.region}/${s.snapshotId}`, s]));
        for (const a of plan.actions) {
          if (a.kind === 'deregister-image' || a.kind === 'delete-snapshot')
            expect(inv.regions).toContain(a.region);
          if (a.kind === 'deregister-image') {
            const image = images.get(ikey(a));
            expect(image).toBeDefined();
            expect(isOwnedBy(image?.tags ?? {}, DEPLOYMENT)).toBe(true);
            expect(isPinned(image?.tags ?? {})).toBe(false);
          }
          if (a.kind === 'delete-snapshot') {
            const s = snapshots.get(`${a.region}/${a.snapshotId}`);
            expect(s).toBeDefined();
            expect(isOwnedBy(s?.tags ?? {}, DEPLOYMENT)).toBe(true);
            expect(isPinned(s?.tags ?? {})).toBe(false);
          }
        }
      }),
      RUNS,
    );
  });

  it('never plans an image younger than its class retention (or its expires-at tag) unless a cap needs it', () => {
    fc.assert(
      fc.property(arbInventory, arbRules, (inv, rules) => {
        const plan = planRetention(inv, rules, NOW);
        const images = new Map(inv.images.map((i) => [ikey(i), i]));
        for (const a of deregistrations(plan)) {
          const image = images.get(ikey(a)) as InventoryImage;
          if (a.reason === 'over-cap') continue;
          const ageDays = (NOW.getTime() - Date.parse(image.creationDate)) / DAY;
          expect(ageDays).toBeGreaterThanOrEqual(classDays(inv, rules, image));
          const expires = Date.parse(image.tags[RETENTION_TAGS.expiresAt] ?? '');
          if (Number.isFinite(expires)) expect(NOW.getTime()).toBeGreaterThanOrEqual(expires);
        }
      }),
      RUNS,
    );
  });

  it('never plans an image or snapshot of a job that is still running', () => {
    fc.assert(
      fc.property(arbInventory, arbRules, (inv, rules) => {
        const plan = planRetention(inv, rules, NOW);
        const active = new Set(inv.jobs.filter((j) => !isTerminal(j.status)).map((j) => j.jobId));
        for (const a of plan.actions) {
          if (a.jobId !== undefined) expect(active.has(a.jobId)).toBe(false);
        }
      }),
      RUNS,
    );
  });

  it('respects count caps: a region over its cap keeps only what may not be removed, oldest removed first', () => {
    fc.assert(
      fc.property(arbInventory, arbRules, (inv, rules) => {
        const plan = planRetention(inv, unlimited(rules), NOW);
        const removed = removedImageKeys(plan);
        for (const region of inv.regions) {
          const cap = capFor(rules, region);
          if (cap === undefined) continue;
          const ours = inv.images.filter((i) => i.region === region && isOwnedBy(i.tags, DEPLOYMENT));
          const staying = ours.filter((i) => !removed.has(ikey(i)));
          if (staying.length > cap) {
            // Over the cap only by images nothing may remove.
            for (const i of staying) expect(removable(inv, i)).toBe(false);
          }
          const capped = deregistrations(plan).filter((a) => a.region === region && a.reason === 'over-cap');
          const newestCapped = Math.max(
            ...capped.map((a) => Date.parse(inv.images.find((i) => ikey(i) === ikey(a))?.creationDate ?? '')),
          );
          for (const i of staying.filter((s) => removable(inv, s)))
            expect(Date.parse(i.creationDate)).toBeGreaterThanOrEqual(newestCapped);
        }
      }),
      RUNS,
    );
  });

  it('keeps the newest N images of each job name in each region, unless a cap needs them', () => {
    fc.assert(
      fc.property(arbInventory, arbRules, (inv, rules) => {
        fc.pre(rules.keepNewestPerName !== undefined);
        const plan = planRetention(inv, rules, NOW);
        const byAge = deregistrations(plan).filter((a) => a.reason === 'expired');
        for (const a of byAge) {
          const image = inv.images.find((i) => ikey(i) === ikey(a)) as InventoryImage;
          const name = jobOf(inv, image.tags)?.name;
          if (name === undefined) continue;
          const newer = inv.images.filter(
            (i) =>
              i.region === image.region &&
              isOwnedBy(i.tags, DEPLOYMENT) &&
              jobOf(inv, i.tags)?.name === name &&
              (Date.parse(i.creationDate) > Date.parse(image.creationDate) ||
                !Number.isFinite(Date.parse(i.creationDate)) ||
                (i.creationDate === image.creationDate && i.imageId > image.imageId)),
          );
          expect(newer.length).toBeGreaterThanOrEqual(rules.keepNewestPerName ?? 0);
        }
      }),
      RUNS,
    );
  });

  it('orders safely: an image before its snapshots, a job’s images and snapshots before its artifact, the record last', () => {
    fc.assert(
      fc.property(arbInventory, arbRules, (inv, rules) => {
        const plan = planRetention(inv, rules, NOW);
        const removed = removedImageKeys(plan);
        plan.actions.forEach((a, i) => {
          const before = plan.actions.slice(0, i);
          const after = plan.actions.slice(i + 1);
          if (a.kind === 'delete-snapshot') {
            // Every image using it is deregistered earlier in this plan, or was already gone.
            const users = inv.images.filter(
              (im) => im.region === a.region && im.snapshotIds.includes(a.snapshotId),
            );
            for (const u of users) {
              expect(removed.has(ikey(u))).toBe(true);
              expect(before.some((b) => b.kind === 'deregister-image' && ikey(b) === ikey(u))).toBe(true);
            }
          }
          if (a.kind === 'delete-artifact' || a.kind === 'expire-job') {
            for (const later of after) {
              if (later.jobId !== a.jobId) continue;
              expect(['delete-artifact', 'expire-job']).toContain(later.kind);
              if (a.kind === 'expire-job') expect(later.kind).not.toBe('delete-artifact');
            }
          }
          if (a.kind === 'expire-job') {
            expect(inv.jobs.find((j) => j.jobId === a.jobId)?.status).toBe('SUCCEEDED');
          }
        });
        // A snapshot any staying image uses is never deleted.
        const staying = inv.images.filter((im) => !removed.has(ikey(im)));
        for (const a of plan.actions) {
          if (a.kind !== 'delete-snapshot') continue;
          for (const s of staying) {
            if (s.region === a.region) expect(s.snapshotIds).not.toContain(a.snapshotId);
          }
        }
      }),
      RUNS,
    );
  });

  it('never deletes an artifact while an image of its job stays or its job runs', () => {
    fc.assert(
      fc.property(arbInventory, arbRules, (inv, rules) => {
        const plan = planRetention(inv, rules, NOW);
        const removed = removedImageKeys(plan);
        for (const a of plan.actions) {
          if (a.kind !== 'delete-artifact') continue;
          const job = inv.jobs.find((j) => j.jobId === a.jobId);
          if (job) expect(isTerminal(job.status)).toBe(true);
          for (const region of job?.imageRegions ?? []) expect(inv.regions).toContain(region);
          const staying = inv.images.filter(
            (i) =>
              i.tags[RETENTION_TAGS.jobId] === a.jobId &&
              isOwnedBy(i.tags, DEPLOYMENT) &&
              inv.regions.includes(i.region) &&
              !removed.has(ikey(i)),
          );
          expect(staying).toEqual([]);
        }
      }),
      RUNS,
    );
  });

  it('limits a run to maxDeletionsPerRun, passing it by at most one job’s share', () => {
    fc.assert(
      fc.property(arbInventory, arbRules, (inv, rules) => {
        const plan = planRetention(inv, rules, NOW);
        const full = planRetention(inv, unlimited(rules), NOW);
        const count = plan.actions.filter(isDeletion).length;
        const shares = new Map<string, number>();
        for (const a of full.actions.filter(isDeletion)) shares.set(a.group, (shares.get(a.group) ?? 0) + 1);
        const largest = Math.max(0, ...shares.values());
        expect(count).toBeLessThanOrEqual(Math.max(rules.maxDeletionsPerRun - 1 + largest, largest));
        expect(count + plan.deferred).toBe(full.actions.filter(isDeletion).length);
        // Groups are taken whole, the oldest first.
        for (const g of new Set(plan.actions.map((a) => a.group)))
          expect(plan.actions.filter((a) => a.group === g && isDeletion(a)).length).toBe(shares.get(g) ?? 0);
        // A limited plan only ever removes things the full plan removes.
        const all = new Set(deletionIds(full.actions));
        for (const id of deletionIds(plan.actions)) expect(all.has(id)).toBe(true);
      }),
      RUNS,
    );
  });

  it('is idempotent: once its plan is applied, the next plan removes nothing more', () => {
    fc.assert(
      fc.property(arbInventory, arbRules, (inv, rules) => {
        const r = unlimited(rules);
        const after = apply(inv, planRetention(inv, r, NOW).actions);
        const again = planRetention(after, r, NOW);
        expect(deletionIds(again.actions)).toEqual([]);
        expect(again.actions).toEqual([]);
      }),
      RUNS,
    );
  });

  it('is resumable: a run stopped after any action is finished by the next (same images and snapshots)', () => {
    fc.assert(
      fc.property(arbInventory, arbRules, fc.nat(), (inv, rules, cut) => {
        const r = unlimited(rules);
        const first = planRetention(inv, r, NOW);
        const done = first.actions.slice(0, first.actions.length === 0 ? 0 : cut % first.actions.length);
        const second = planRetention(apply(inv, done), r, NOW);
        const ec2 = (actions: readonly RetentionAction[]) =>
          deletionIds(
            actions.filter((a) => a.kind === 'deregister-image' || a.kind === 'delete-snapshot'),
          ).sort();
        expect([...ec2(done), ...ec2(second.actions)].sort()).toEqual(ec2(first.actions));
        // Artifacts: never one the first plan would not have removed.
        const firstArtifacts = new Set(
          deletionIds(first.actions.filter((a) => a.kind === 'delete-artifact')),
        );
        for (const id of deletionIds(second.actions.filter((a) => a.kind === 'delete-artifact')))
          expect(firstArtifacts.has(id)).toBe(true);
        // And the world ends where an uninterrupted run leaves it.
        const end = apply(apply(inv, done), second.actions);
        const direct = apply(inv, first.actions);
        expect(end.images.map(ikey).sort()).toEqual(direct.images.map(ikey).sort());
      }),
      RUNS,
    );
  });
});
