/**
 * Retention end to end in local mode, on a controllable clock: 50 real jobs of mixed build types
 * submitted in batches over 20 simulated days (the EC2 simulator dates each image by that clock),
 * plus images the cleanup must never touch seeded in the simulator. The expected outcome is worked
 * out here from the rules, independently of the policy code.
 */
import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEc2Client } from '../../adapters/clients';
import type { BuildType } from '../../core/job';
import { RETENTION_TAGS } from '../../core/retention';
import { ENV } from '../../infra/definitions';
import { RETENTION_ENV } from '../../lambdas/retention/settings';
import type { Ec2Simulator } from '../../local/ec2-simulator';
import { type LocalRetention, localRetention } from '../../local/retention';
import { type E2EStack, startE2EStack, X86 } from '../support/local';

const DAY = 86_400_000;
const HOME = 'us-east-1';
const COPY = 'eu-west-1';
const OTHER_ACCOUNT = '111122223333';
const TYPES: BuildType[] = ['scratch', 'explicit', 'auto'];
const DAYS: Record<BuildType, number> = { scratch: 3, explicit: 14, auto: 14 };
const BATCHES = 10;
const PER_BATCH = 5;
/** Simulated days between batches; the cleanup runs half a day after the last batch + 2 days. */
const STEP_DAYS = 2;
const RUN_DAY = BATCHES * STEP_DAYS + 0.5;
const COPY_CAP = 3;
const GOLDEN_KEEP = 2;

interface Planned {
  index: number;
  batch: number;
  day: number;
  buildType: BuildType;
  copies: boolean;
  name?: string;
  jobId?: string;
}

/** Job i: build types in turn, one job per batch copied to eu-west-1, a "golden" name on four of them. */
const JOBS: Planned[] = Array.from({ length: BATCHES * PER_BATCH }, (_, index) => {
  const batch = Math.floor(index / PER_BATCH);
  return {
    index,
    batch,
    day: batch * STEP_DAYS,
    buildType: TYPES[index % 3] as BuildType,
    copies: index % PER_BATCH === 0,
    ...(index % PER_BATCH === 1 && batch < 4 ? { name: 'golden' } : {}),
  };
});
const PINNED_JOB = 2;
/** Its home snapshot is also used by a hand-made image (seeded below), so it must stay. */
const SHARED_SNAPSHOT_JOB = 0;

function jobBody(job: Planned) {
  return {
    ...(job.name ? { name: job.name } : {}),
    arch: 'x86_64',
    format: 'raw',
    buildType: job.buildType,
    targets: [{ type: 'aws-ami', ...(job.copies ? { regions: [HOME, COPY] } : {}) }],
    recipe: { builder: 'script', script: 'head -c 65536 /dev/urandom > disk.raw', artifact: 'disk.raw' },
  };
}

/** What must go, worked out from the rules by hand. */
function expectedOutcome() {
  const age = (j: Planned) => RUN_DAY - j.day;
  const expiredByAge = (j: Planned) => age(j) >= DAYS[j.buildType];
  const golden = JOBS.filter((j) => j.name === 'golden').sort((a, b) => b.day - a.day);
  const newestGolden = new Set(golden.slice(0, GOLDEN_KEEP).map((j) => j.index));
  const homeGoes = (j: Planned) => j.index !== PINNED_JOB && !newestGolden.has(j.index) && expiredByAge(j);
  // eu-west-1 has a cap: what outlives its age there loses its oldest beyond the cap.
  const copyStaying = JOBS.filter((j) => j.copies && !expiredByAge(j)).sort((a, b) => a.day - b.day);
  const overCap = new Set(
    copyStaying.slice(0, Math.max(0, copyStaying.length - COPY_CAP)).map((j) => j.index),
  );
  const copyGoes = (j: Planned) => j.copies && (expiredByAge(j) || overCap.has(j.index));
  return JOBS.map((j) => {
    const allGone = homeGoes(j) && (!j.copies || copyGoes(j));
    return {
      job: j,
      homeGoes: homeGoes(j),
      copyGoes: copyGoes(j),
      artifactGoes: allGone,
      // Job 0's home snapshot lives on in someone else's image, so job 0 is not finished with.
      expires: allGone && j.index !== SHARED_SNAPSHOT_JOB,
    };
  });
}

describe('retention: 50 jobs over 20 simulated days, foreign and pinned images', () => {
  let stack: E2EStack;
  let sim: Ec2Simulator;
  let offsetMs = 0;
  const simNow = () => Date.now() + offsetMs;
  const seeded: Record<
    string,
    { region: string; imageId?: string; snapshotIds?: string[]; snapshotId?: string }
  > = {};
  const retentionConfig = {
    regions: [COPY],
    keepNewestPerName: GOLDEN_KEEP,
    regionMaxImages: { [COPY]: COPY_CAP },
  };

  beforeAll(async () => {
    stack = await startE2EStack({
      registration: { ec2: { now: simNow, durations: { pending: 10, active: 40 } }, timeCompressionMs: 20 },
    });
    for (let i = 0; i < 5; i += 1) stack.fleet.spawn(X86);
    const running = stack.registration?.ec2;
    if (!running) throw new Error('no EC2 simulator');
    sim = running;
    const old = simNow() - 30 * DAY;
    const ours = { [RETENTION_TAGS.deployment]: stack.config.prefix, [RETENTION_TAGS.buildType]: 'scratch' };
    // Named like ours, tagged like nothing: not ours (ownership is by tag, never by name).
    seeded.lookalike = sim.seedImage(HOME, { name: 'kiln-lookalike-0001', createdAt: old });
    seeded.lookalikeCopy = sim.seedImage(COPY, { name: 'kiln-lookalike-0002', createdAt: old });
    // Another deployment's, in this account.
    seeded.staging = sim.seedImage(HOME, {
      name: 'kiln-staging-job',
      createdAt: old,
      tags: { ...ours, [RETENTION_TAGS.deployment]: 'kiln-staging', [RETENTION_TAGS.jobId]: 'staging-1' },
      snapshotTags: { ...ours, [RETENTION_TAGS.deployment]: 'kiln-staging' },
    });
    // Another account's image carrying our very tags, shared with us: never ours to delete.
    seeded.otherAccount = sim.seedImage(HOME, {
      name: 'shared-with-us',
      ownerId: OTHER_ACCOUNT,
      launchPermissions: [sim.accountId],
      createdAt: old,
      tags: ours,
      snapshotTags: ours,
    });
    // Ours, old, scratch, but pinned by a person.
    seeded.pinned = sim.seedImage(HOME, {
      name: 'kiln-pinned-by-hand',
      createdAt: old,
      tags: { ...ours, [RETENTION_TAGS.keep]: 'true' },
      snapshotTags: ours,
    });
    seeded.untaggedSnapshot = sim.seedSnapshot(HOME, { createdAt: old });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  /** Everything the cleanup could touch, to compare before and after. */
  async function world() {
    const listing = await stack.clients.s3.send(
      new ListObjectsV2Command({ Bucket: stack.state.bucketName, Prefix: 'artifacts/' }),
    );
    const statuses = await Promise.all(
      JOBS.map(async (j) => [j.jobId, (await stack.alice.get(j.jobId as string)).body.status] as const),
    );
    return {
      images: [HOME, COPY].flatMap((r) => sim.images(r).map((i) => `${r}/${i.imageId}`)).sort(),
      snapshots: [HOME, COPY].flatMap((r) => sim.snapshots(r).map((s) => `${r}/${s.snapshotId}`)).sort(),
      artifacts: (listing.Contents ?? []).map((o) => o.Key as string).sort(),
      statuses: Object.fromEntries(statuses),
    };
  }

  function imagesOf(jobId: string) {
    return [HOME, COPY].flatMap((r) => sim.images(r).filter((i) => i.tags[RETENTION_TAGS.jobId] === jobId));
  }

  it('builds and registers 50 jobs in batches, two simulated days apart', async () => {
    for (let batch = 0; batch < BATCHES; batch += 1) {
      if (batch > 0) offsetMs += STEP_DAYS * DAY;
      const jobs = JOBS.filter((j) => j.batch === batch);
      await Promise.all(
        jobs.map(async (j) => {
          const res = await stack.alice.submit(jobBody(j));
          expect(res.status, JSON.stringify(res.body)).toBe(202);
          j.jobId = res.body.jobId;
        }),
      );
      for (const j of jobs) {
        const done = await stack.alice.waitFor(j.jobId as string, undefined, 30_000, 50);
        expect(done.status, JSON.stringify(done.error)).toBe('SUCCEEDED');
      }
    }
    const first = JOBS[PINNED_JOB] as Planned;
    const pinnedImage = imagesOf(first.jobId as string)[0];
    if (!pinnedImage) throw new Error('job 2 has no image');
    // A person pins job 2's image through the EC2 API.
    await makeEc2Client(HOME, stack.registration?.ec2Endpoint).send(
      new CreateTagsCommand({
        Resources: [pinnedImage.imageId],
        Tags: [{ Key: RETENTION_TAGS.keep, Value: 'true' }],
      }),
    );
    // Someone registers an image of their own from job 0's snapshot.
    const shared = imagesOf((JOBS[SHARED_SNAPSHOT_JOB] as Planned).jobId as string).find(
      (i) => i.region === HOME,
    );
    seeded.handMade = sim.seedImage(HOME, {
      name: 'hand-made-from-job-0',
      snapshotIds: shared?.snapshotIds ?? [],
    });
    expect(shared?.snapshotIds).toHaveLength(1);
    // The images carry the simulated dates they were registered at.
    const ages = JOBS.map((j) =>
      Math.round((simNow() - Date.parse(imagesOf(j.jobId as string)[0]?.creationDate ?? '')) / DAY),
    );
    expect(ages[0]).toBe(BATCHES * STEP_DAYS - STEP_DAYS);
    expect(ages[49]).toBe(0);
  });

  let retention: LocalRetention;
  let dryPlanned = 0;
  const expected = expectedOutcome();

  function expectedRemovals() {
    const images: string[] = [];
    for (const e of expected) {
      const all = imagesOf(e.job.jobId as string);
      for (const image of all) {
        if (image.region === HOME ? e.homeGoes : e.copyGoes) images.push(`${image.region}/${image.imageId}`);
      }
    }
    return images.sort();
  }
  let removals: { images: string[]; snapshots: string[]; artifacts: string[]; expired: string[] };

  it('dry run: returns exactly the expected plan and changes nothing', async () => {
    // The clock now reads RUN_DAY simulated days after the first batch (plus the real seconds since).
    offsetMs = RUN_DAY * DAY;
    retention = localRetention({
      state: stack.state,
      config: stack.config,
      retention: retentionConfig,
      now: () => new Date(simNow()),
      pageSize: 5,
    });
    const snapshotOf = (region: string, imageId: string) =>
      sim.images(region).find((i) => i.imageId === imageId)?.snapshotIds ?? [];
    const images = expectedRemovals();
    const sharedSnapshot = imagesOf((JOBS[SHARED_SNAPSHOT_JOB] as Planned).jobId as string).find(
      (i) => i.region === HOME,
    )?.snapshotIds[0];
    removals = {
      images,
      snapshots: images
        .flatMap((k) => {
          const [region, imageId] = k.split('/') as [string, string];
          return snapshotOf(region, imageId).map((s) => `${region}/${s}`);
        })
        .filter((s) => s !== `${HOME}/${sharedSnapshot}`)
        .sort(),
      artifacts: expected
        .filter((e) => e.artifactGoes)
        .map((e) => `artifacts/${e.job.jobId}/image.raw`)
        .sort(),
      expired: expected
        .filter((e) => e.expires)
        .map((e) => e.job.jobId as string)
        .sort(),
    };
    // The scenario exercises every rule: age, keep-newest, the cap, the pin, a shared snapshot.
    expect(removals.images.length).toBeGreaterThan(20);
    expect(expected.filter((e) => e.copyGoes && !e.homeGoes).length).toBe(2);
    expect(expected.filter((e) => e.job.name === 'golden' && !e.homeGoes).length).toBe(GOLDEN_KEEP);

    const before = await world();
    const report = await retention.run({ dryRun: true });
    const after = await world();
    expect(after).toEqual(before);
    expect(report.dryRun).toBe(true);
    expect(report.execution).toBeUndefined();
    expect(report.problems).toEqual([]);
    expect(report.regions).toEqual([HOME, COPY]);

    const planned = (kind: string) =>
      report.plan.actions
        .filter((a) => a.kind === kind)
        .map((a) =>
          a.kind === 'deregister-image'
            ? `${a.region}/${a.imageId}`
            : a.kind === 'delete-snapshot'
              ? `${a.region}/${a.snapshotId}`
              : a.kind === 'delete-artifact'
                ? a.key
                : a.jobId,
        )
        .sort();
    expect(planned('deregister-image')).toEqual(removals.images);
    expect(planned('delete-snapshot')).toEqual(removals.snapshots);
    expect(planned('delete-artifact')).toEqual(removals.artifacts);
    expect(planned('expire-job')).toEqual(removals.expired);
    expect(report.plan.foreign).toBeGreaterThanOrEqual(4);
    dryPlanned = report.planned;
    expect(dryPlanned).toBe(removals.images.length + removals.snapshots.length + removals.artifacts.length);
  });

  it('the Lambda entry builds the same run from its environment (a dry run on the real clock)', async () => {
    Object.assign(process.env, {
      AWS_REGION: HOME,
      [ENV.config]: JSON.stringify(stack.config),
      [ENV.tableName]: stack.state.tableName,
      [ENV.bucketName]: stack.state.bucketName,
      [ENV.dynamodbEndpoint]: stack.state.endpoints.dynamodb,
      [ENV.sqsEndpoint]: stack.state.endpoints.sqs,
      [ENV.s3Endpoint]: stack.state.endpoints.s3,
      [ENV.ec2Endpoint]: stack.state.endpoints.ec2,
      [ENV.eventsEndpoint]: stack.state.endpoints.events,
      [ENV.eventBusName]: stack.state.eventBusName,
      [RETENTION_ENV.config]: JSON.stringify(retentionConfig),
    });
    const { handler } = await import('../../lambdas/entry/retention');
    const context = {
      functionName: 'kiln-retention',
      functionVersion: '$LATEST',
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:kiln-retention',
      memoryLimitInMB: '512',
      awsRequestId: 'e2e',
      logGroupName: 'e2e',
      logStreamName: 'e2e',
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => 900_000,
      done: () => undefined,
      fail: () => undefined,
      succeed: () => undefined,
    };
    const before = await world();
    const out = (await handler({ dryRun: true }, context)) as {
      dryRun: boolean;
      regions: string[];
      problems: unknown[];
      planned: number;
      actions: Array<{ kind: string; region?: string; reason: string }>;
    };
    expect(await world()).toEqual(before);
    // The Lambda judges by the real clock, on which every simulated image is still young: only
    // eu-west-1's cap acts (its oldest copies beyond the cap go, each with its snapshot).
    const copies = JOBS.filter((j) => j.copies).length;
    expect(out).toMatchObject({ dryRun: true, regions: [HOME, COPY], problems: [] });
    expect(out.planned).toBe(2 * (copies - COPY_CAP));
    for (const a of out.actions) {
      expect(a.region).toBe(COPY);
      expect(a.reason).toMatch(/^(over-cap|image-removed)$/);
    }
  });

  it('a run killed halfway (and hit by a failed delete) is completed by the next; foreign and pinned untouched', async () => {
    const stop = new AbortController();
    let deregistered = 0;
    let failedOnce = false;
    const killing = localRetention({
      state: stack.state,
      config: stack.config,
      retention: retentionConfig,
      now: () => new Date(simNow()),
      pageSize: 5,
      wrapPorts: (ports) => ({
        ...ports,
        images: {
          ...ports.images,
          listImages: (r) => ports.images.listImages(r),
          listSnapshots: (r, d) => ports.images.listSnapshots(r, d),
          markExpiring: (r, ids, at) => ports.images.markExpiring(r, ids, at),
          deleteSnapshot: (r, id) => ports.images.deleteSnapshot(r, id),
          async deregisterImage(region, imageId) {
            const outcome = await ports.images.deregisterImage(region, imageId);
            // The process "dies" right after its 16th deregistration (of 32), before that image's snapshots.
            deregistered += 1;
            if (deregistered === 16) stop.abort();
            return outcome;
          },
        },
        artifacts: {
          list: () => ports.artifacts.list(),
          async delete(key) {
            if (!failedOnce) {
              failedOnce = true;
              throw new Error('injected: S3 is having a bad day');
            }
            return ports.artifacts.delete(key);
          },
        },
      }),
    });
    let first: Awaited<ReturnType<LocalRetention['run']>>;
    try {
      first = await killing.run({ signal: stop.signal });
    } finally {
      killing.close();
    }
    expect(first.execution?.aborted).toBe(true);
    expect(first.failed).toBe(1);
    expect(first.deleted).toBeGreaterThan(0);
    expect(first.deleted).toBeLessThan(dryPlanned);
    // It died between an image and its snapshot: a snapshot of ours, marked, that no image uses.
    const inUse = new Set(
      sim
        .images(HOME)
        .flatMap((i) => i.snapshotIds)
        .concat(sim.images(COPY).flatMap((i) => i.snapshotIds)),
    );
    const orphans = [HOME, COPY].flatMap((r) =>
      sim.snapshots(r).filter((s) => s.tags[RETENTION_TAGS.expiring] && !inUse.has(s.snapshotId)),
    );
    expect(orphans.length).toBeGreaterThanOrEqual(1);

    const second = await retention.run();
    expect(second.execution?.aborted).toBe(false);
    expect(second.failed).toBe(0);
    expect(first.deleted + second.deleted).toBe(dryPlanned);
    expect(
      second.plan.actions.filter((a) => a.kind === 'delete-snapshot' && a.reason === 'orphan-marked').length,
    ).toBeGreaterThanOrEqual(orphans.length);

    const end = await world();
    const gone = (all: string[], list: string[]) => list.filter((x) => all.includes(x));
    expect(gone(end.images, removals.images)).toEqual([]);
    expect(gone(end.snapshots, removals.snapshots)).toEqual([]);
    expect(gone(end.artifacts, removals.artifacts)).toEqual([]);
    // Exactly those: every other image, snapshot and artifact is still there.
    const ourImages = JOBS.flatMap((j) => imagesOf(j.jobId as string)).length;
    const totalImages = JOBS.reduce((n, j) => n + (j.copies ? 2 : 1), 0);
    expect(ourImages).toBe(totalImages - removals.images.length);
    expect(end.artifacts).toHaveLength(JOBS.length - removals.artifacts.length);
    for (const e of expected) {
      expect(end.statuses[e.job.jobId as string], `job ${e.job.index}`).toBe(
        e.expires ? 'EXPIRED' : 'SUCCEEDED',
      );
    }
    // EXPIRED is announced on the job events bus like every transition, once per job.
    const announced = stack.events
      .events()
      .map((ev) => ev.detail as { jobId: string; status: string; previousStatus?: string })
      .filter((d) => d.status === 'EXPIRED');
    expect(announced.map((d) => d.jobId).sort()).toEqual(removals.expired);
    for (const d of announced) expect(d.previousStatus).toBe('SUCCEEDED');
    // Foreign, pinned and hand-made images and their snapshots are all still there.
    for (const [what, s] of Object.entries(seeded)) {
      if (s.imageId) expect(end.images, what).toContain(`${s.region}/${s.imageId}`);
      for (const id of [...(s.snapshotIds ?? []), ...(s.snapshotId ? [s.snapshotId] : [])])
        expect(end.snapshots, what).toContain(`${s.region}/${id}`);
    }
    const pinnedJob = JOBS[PINNED_JOB] as Planned;
    expect(imagesOf(pinnedJob.jobId as string)).toHaveLength(1);
    expect(end.artifacts).toContain(`artifacts/${pinnedJob.jobId}/image.raw`);
  });

  it('is idempotent: a third run finds nothing to do', async () => {
    const third = await retention.run();
    expect(third.plan.actions).toEqual([]);
    expect(third.deleted).toBe(0);
    retention.close();
  });
});
