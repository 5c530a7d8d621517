import {
  CancelImportTaskCommand,
  CopyImageCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeImportSnapshotTasksCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  ImportSnapshotCommand,
  type ImportSnapshotCommandInput,
  ModifyImageAttributeCommand,
  paginateDescribeImages,
  RegisterImageCommand,
  type RegisterImageCommandInput,
  type SnapshotTaskDetail,
} from '@aws-sdk/client-ec2';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Ec2Simulator,
  type RunningEc2Simulator,
  type StartEc2SimulatorOptions,
  startEc2Simulator,
} from '../../local/ec2-simulator';

const GIB = 1024 ** 3;
const SELF = '000000000000';
const PARTNER = '111122223333';
const UNSUPPORTED = 'ClientError: Disk validation failed [Unsupported specified file format]';

/** A clock the test moves by hand: task progress is read from it, so no test waits. */
class FakeClock {
  private t = Date.UTC(2025, 0, 1);
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

interface Harness {
  clock: FakeClock;
  running: RunningEc2Simulator;
  us: EC2Client;
  eu: EC2Client;
}

const started: Array<{ running: RunningEc2Simulator; clients: EC2Client[] }> = [];

afterEach(async () => {
  for (const { running, clients } of started.splice(0)) {
    for (const c of clients) c.destroy();
    await running.stop();
  }
});

async function start(opts: StartEc2SimulatorOptions = {}): Promise<Harness> {
  const clock = new FakeClock();
  const running = await startEc2Simulator({ now: clock.now, ...opts });
  const client = (region: string) =>
    new EC2Client({
      region,
      endpoint: running.url,
      credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local-secret' },
      maxAttempts: 1,
    });
  const us = client('us-east-1');
  const eu = client('eu-west-1');
  started.push({ running, clients: [us, eu] });
  return { clock, running, us, eu };
}

function importInput(
  key: string,
  extra: Partial<ImportSnapshotCommandInput> = {},
): ImportSnapshotCommandInput {
  return {
    Description: `import of ${key}`,
    DiskContainer: { Format: 'RAW', UserBucket: { S3Bucket: 'kiln-artifacts', S3Key: key } },
    ...extra,
  };
}

async function taskDetail(client: EC2Client, importTaskId: string): Promise<SnapshotTaskDetail> {
  const out = await client.send(new DescribeImportSnapshotTasksCommand({ ImportTaskIds: [importTaskId] }));
  expect(out.ImportSnapshotTasks).toHaveLength(1);
  return out.ImportSnapshotTasks?.[0]?.SnapshotTaskDetail ?? {};
}

/** The error a call fails with (the test fails if it succeeds). */
async function failure(call: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await call;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail');
}

/** Imports `key` and advances the clock through the default 50 ms pending + 300 ms active. */
async function importedSnapshot(h: Harness, key: string): Promise<string> {
  const { ImportTaskId } = await h.us.send(new ImportSnapshotCommand(importInput(key)));
  h.clock.advance(350);
  const detail = await taskDetail(h.us, ImportTaskId as string);
  expect(detail.Status).toBe('completed');
  return detail.SnapshotId as string;
}

function registerInput(name: string, snapshotId: string): RegisterImageCommandInput {
  return {
    Name: name,
    Architecture: 'x86_64',
    RootDeviceName: '/dev/xvda',
    BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: snapshotId, VolumeType: 'gp3' } }],
    EnaSupport: true,
    BootMode: 'uefi-preferred',
    VirtualizationType: 'hvm',
  };
}

describe('EC2 simulator through the real EC2Client', () => {
  it('imports, registers, tags, copies, shares, deregisters and deletes an image', async () => {
    const h = await start({
      objectExists: async (bucket, key) =>
        bucket === 'kiln-artifacts' && key === 'jobs/j-1/disk.raw' ? { sizeBytes: 3 * GIB + 1 } : undefined,
    });
    const { us, eu, clock } = h;

    const imported = await us.send(
      new ImportSnapshotCommand(
        importInput('jobs/j-1/disk.raw', {
          ClientToken: 'j-1/us-east-1',
          TagSpecifications: [
            { ResourceType: 'import-snapshot-task', Tags: [{ Key: 'kiln:job-id', Value: 'j-1' }] },
          ],
        }),
      ),
    );
    expect(imported.ImportTaskId).toMatch(/^import-snap-[0-9a-f]{17}$/);
    expect(imported.Description).toBe('import of jobs/j-1/disk.raw');
    expect(imported.Tags).toEqual([{ Key: 'kiln:job-id', Value: 'j-1' }]);
    expect(imported.SnapshotTaskDetail).toMatchObject({
      Status: 'pending',
      Format: 'RAW',
      UserBucket: { S3Bucket: 'kiln-artifacts', S3Key: 'jobs/j-1/disk.raw' },
    });
    const taskId = imported.ImportTaskId as string;

    clock.advance(49);
    expect((await taskDetail(us, taskId)).Status).toBe('pending');
    clock.advance(1);
    expect(await taskDetail(us, taskId)).toMatchObject({ Status: 'active', Progress: '0' });
    clock.advance(150);
    expect(await taskDetail(us, taskId)).toMatchObject({ Status: 'active', Progress: '50' });
    clock.advance(150);
    const done = await taskDetail(us, taskId);
    expect(done).toMatchObject({ Status: 'completed', DiskImageSize: 3 * GIB + 1 });
    expect(done.Progress).toBeUndefined();
    expect(done.SnapshotId).toMatch(/^snap-[0-9a-f]{17}$/);
    const snapshotId = done.SnapshotId as string;

    // Listing with no ids returns every task, this one included.
    const all = await us.send(new DescribeImportSnapshotTasksCommand({}));
    expect(all.ImportSnapshotTasks?.map((t) => t.ImportTaskId)).toEqual([taskId]);
    // This operation's model names its filter list `Filters` on the wire (Filters.1.Name).
    const filtered = await us.send(
      new DescribeImportSnapshotTasksCommand({
        Filters: [{ Name: 'tag:kiln:job-id', Values: ['j-1', 'j-9'] }],
      }),
    );
    expect(filtered.ImportSnapshotTasks?.map((t) => t.ImportTaskId)).toEqual([taskId]);
    const unknownTask = await failure(
      us.send(new DescribeImportSnapshotTasksCommand({ ImportTaskIds: ['import-snap-0123456789abcdef0'] })),
    );
    expect(unknownTask.name).toBe('InvalidConversionTaskId');

    const { Snapshots } = await us.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }));
    expect(Snapshots?.[0]).toMatchObject({
      SnapshotId: snapshotId,
      State: 'completed',
      OwnerId: SELF,
      VolumeSize: 4,
      Progress: '100%',
      Encrypted: false,
    });
    expect(Snapshots?.[0]?.StartTime).toEqual(new Date(clock.now()));

    const { ImageId } = await us.send(
      new RegisterImageCommand({
        ...registerInput('kiln-j-1-us-east-1', snapshotId),
        Architecture: 'arm64',
        BootMode: 'uefi',
        TagSpecifications: [
          { ResourceType: 'image', Tags: [{ Key: 'kiln:job-id', Value: 'j-1' }] },
          { ResourceType: 'snapshot', Tags: [{ Key: 'kiln:job-id', Value: 'j-1' }] },
        ],
      }),
    );
    expect(ImageId).toMatch(/^ami-[0-9a-f]{17}$/);
    const imageId = ImageId as string;

    const byName = await us.send(
      new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: ['kiln-j-1-*'] }] }),
    );
    expect(byName.Images).toHaveLength(1);
    expect(byName.Images?.[0]).toMatchObject({
      ImageId: imageId,
      Name: 'kiln-j-1-us-east-1',
      State: 'available',
      OwnerId: SELF,
      Public: false,
      Architecture: 'arm64',
      RootDeviceName: '/dev/xvda',
      RootDeviceType: 'ebs',
      VirtualizationType: 'hvm',
      EnaSupport: true,
      BootMode: 'uefi',
      CreationDate: new Date(clock.now()).toISOString(),
      Tags: [{ Key: 'kiln:job-id', Value: 'j-1' }],
      BlockDeviceMappings: [
        {
          DeviceName: '/dev/xvda',
          Ebs: {
            SnapshotId: snapshotId,
            VolumeSize: 4,
            VolumeType: 'gp3',
            DeleteOnTermination: true,
            Encrypted: false,
          },
        },
      ],
    });
    const byTag = await us.send(
      new DescribeImagesCommand({ Filters: [{ Name: 'tag:kiln:job-id', Values: ['j-1'] }] }),
    );
    expect(byTag.Images?.map((i) => i.ImageId)).toEqual([imageId]);
    const noMatch = await us.send(
      new DescribeImagesCommand({ Filters: [{ Name: 'tag:kiln:job-id', Values: ['j-2'] }] }),
    );
    expect(noMatch.Images).toEqual([]);

    await us.send(
      new CreateTagsCommand({
        Resources: [imageId, snapshotId],
        Tags: [
          { Key: 'kiln:build-type', Value: 'explicit' },
          { Key: 'kiln:expires-at', Value: '2025-01-15T00:00:00Z' },
        ],
      }),
    );
    const tagged = await us.send(
      new DescribeImagesCommand({ Filters: [{ Name: 'tag-key', Values: ['kiln:expires-at'] }] }),
    );
    expect(tagged.Images?.[0]?.Tags).toEqual([
      { Key: 'kiln:job-id', Value: 'j-1' },
      { Key: 'kiln:build-type', Value: 'explicit' },
      { Key: 'kiln:expires-at', Value: '2025-01-15T00:00:00Z' },
    ]);
    const taggedSnapshots = await us.send(
      new DescribeSnapshotsCommand({
        OwnerIds: ['self'],
        Filters: [{ Name: 'tag:kiln:build-type', Values: ['explicit'] }],
      }),
    );
    expect(taggedSnapshots.Snapshots?.map((s) => s.SnapshotId)).toEqual([snapshotId]);
    expect(taggedSnapshots.Snapshots?.[0]?.Tags).toContainEqual({ Key: 'kiln:job-id', Value: 'j-1' });

    // CopyImage is called in the destination region; the copy has its own snapshot there.
    const copyInput = {
      SourceRegion: 'us-east-1',
      SourceImageId: imageId,
      Name: 'kiln-j-1-eu-west-1',
      ClientToken: 'j-1/eu-west-1',
      CopyImageTags: true,
    };
    const copy = await eu.send(new CopyImageCommand(copyInput));
    expect(copy.ImageId).toMatch(/^ami-[0-9a-f]{17}$/);
    expect(copy.ImageId).not.toBe(imageId);
    expect((await eu.send(new CopyImageCommand(copyInput))).ImageId).toBe(copy.ImageId);
    const euImages = await eu.send(new DescribeImagesCommand({ Owners: ['self'] }));
    expect(euImages.Images).toHaveLength(1);
    const copied = euImages.Images?.[0];
    expect(copied).toMatchObject({
      ImageId: copy.ImageId,
      Name: 'kiln-j-1-eu-west-1',
      State: 'available',
      SourceImageId: imageId,
      SourceImageRegion: 'us-east-1',
      Architecture: 'arm64',
    });
    expect(copied?.Tags).toContainEqual({ Key: 'kiln:job-id', Value: 'j-1' });
    const copySnapshotId = copied?.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId as string;
    expect(copySnapshotId).toMatch(/^snap-/);
    expect(copySnapshotId).not.toBe(snapshotId);
    const euSnapshots = await eu.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
    expect(euSnapshots.Snapshots?.map((s) => s.SnapshotId)).toEqual([copySnapshotId]);
    const usImages = await us.send(new DescribeImagesCommand({ Owners: ['self'] }));
    expect(usImages.Images?.map((i) => i.ImageId)).toEqual([imageId]);

    await us.send(
      new ModifyImageAttributeCommand({ ImageId: imageId, LaunchPermission: { Add: [{ UserId: PARTNER }] } }),
    );
    const attribute = await us.send(
      new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: 'launchPermission' }),
    );
    expect(attribute.ImageId).toBe(imageId);
    expect(attribute.LaunchPermissions).toEqual([{ UserId: PARTNER }]);
    expect(h.running.sim.images('us-east-1')[0]?.launchPermissions).toEqual([PARTNER]);

    const inUse = await failure(us.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })));
    expect(inUse.name).toBe('InvalidSnapshot.InUse');
    expect(inUse.message).toContain(imageId);

    await us.send(new DeregisterImageCommand({ ImageId: imageId }));
    const gone = await failure(us.send(new DescribeImagesCommand({ ImageIds: [imageId] })));
    expect(gone.name).toBe('InvalidAMIID.NotFound');
    // Deregistering leaves the snapshot, which retention deletes next.
    const kept = await us.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }));
    expect(kept.Snapshots?.[0]?.State).toBe('completed');
    await us.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
    const deleted = await failure(us.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] })));
    expect(deleted.name).toBe('InvalidSnapshot.NotFound');
    expect(h.running.sim.snapshots('us-east-1')).toEqual([]);
  });

  it('returns the same import task for a repeated ClientToken, and refuses it with other parameters', async () => {
    const h = await start();
    const input = importInput('jobs/j-2/disk.raw', { ClientToken: 'j-2/us-east-1' });
    const first = await h.us.send(new ImportSnapshotCommand(input));
    h.clock.advance(100);
    const again = await h.us.send(new ImportSnapshotCommand(input));
    expect(again.ImportTaskId).toBe(first.ImportTaskId);
    expect(again.SnapshotTaskDetail?.Status).toBe('active');

    const listed = await h.us.send(new DescribeImportSnapshotTasksCommand({}));
    expect(listed.ImportSnapshotTasks).toHaveLength(1);
    expect(h.running.sim.stats('us-east-1')).toMatchObject({ importRequests: 2, activeImports: 1 });

    const mismatch = await failure(
      h.us.send(new ImportSnapshotCommand({ ...input, Description: 'another disk' })),
    );
    expect(mismatch.name).toBe('IdempotentParameterMismatch');

    // Tokens are per region: the same token in another region is another task.
    const elsewhere = await h.eu.send(new ImportSnapshotCommand(input));
    expect(elsewhere.ImportTaskId).not.toBe(first.ImportTaskId);
  });

  it('refuses the 21st concurrent import with ResourceCountLimitExceeded until a slot frees', async () => {
    const h = await start();
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const out = await h.us.send(
        new ImportSnapshotCommand(importInput(`jobs/j-${i}/disk.raw`, { ClientToken: `t-${i}` })),
      );
      ids.push(out.ImportTaskId as string);
      h.clock.advance(10);
    }
    // Now t = 200: every task is still in progress (the first ends at 350).
    const refused = await failure(h.us.send(new ImportSnapshotCommand(importInput('jobs/j-20/disk.raw'))));
    expect(refused.name).toBe('ResourceCountLimitExceeded');
    expect(refused.message).toMatch(/limit for the number of concurrent import snapshot tasks/);
    expect(refused.$metadata?.httpStatusCode).toBe(400);

    // A retry of an accepted request is not a new task, so the limit does not apply to it.
    const replay = await h.us.send(
      new ImportSnapshotCommand(importInput('jobs/j-3/disk.raw', { ClientToken: 't-3' })),
    );
    expect(replay.ImportTaskId).toBe(ids[3]);
    // The limit is per region.
    await h.eu.send(new ImportSnapshotCommand(importInput('jobs/j-20/disk.raw')));

    h.clock.advance(149); // t = 349: the first task is one millisecond from done.
    expect(
      (await failure(h.us.send(new ImportSnapshotCommand(importInput('jobs/j-20/disk.raw'))))).name,
    ).toBe('ResourceCountLimitExceeded');
    h.clock.advance(1);
    const admitted = await h.us.send(new ImportSnapshotCommand(importInput('jobs/j-20/disk.raw')));
    expect(admitted.SnapshotTaskDetail?.Status).toBe('pending');
    expect((await taskDetail(h.us, ids[0] as string)).Status).toBe('completed');

    // Cancelling frees a slot at once.
    expect(
      (await failure(h.us.send(new ImportSnapshotCommand(importInput('jobs/j-21/disk.raw'))))).name,
    ).toBe('ResourceCountLimitExceeded');
    const cancelled = await h.us.send(
      new CancelImportTaskCommand({ ImportTaskId: ids[19], CancelReason: 'stopped' }),
    );
    expect(cancelled).toMatchObject({ ImportTaskId: ids[19], PreviousState: 'active', State: 'deleting' });
    expect((await taskDetail(h.us, ids[19] as string)).Status).toBe('deleted');
    await h.us.send(new ImportSnapshotCommand(importInput('jobs/j-21/disk.raw')));

    expect(h.running.sim.stats('us-east-1')).toMatchObject({
      peakActiveImports: 20,
      activeImports: 20,
      limitRejections: 3,
      importRequests: 26,
    });
  });

  it('fails imports with AWS error text: by rule, by format, and for a missing object', async () => {
    const h = await start({
      failWhen: (task) => (task.key?.includes('corrupt') ? UNSUPPORTED : undefined),
      objectExists: async (_bucket, key) => (key.includes('missing') ? undefined : { sizeBytes: GIB }),
    });
    const bad = await h.us.send(new ImportSnapshotCommand(importInput('jobs/corrupt/disk.raw')));
    const qcow = await h.us.send(
      new ImportSnapshotCommand({
        DiskContainer: {
          Format: 'qcow2',
          UserBucket: { S3Bucket: 'kiln-artifacts', S3Key: 'jobs/q/disk.qcow2' },
        },
      }),
    );
    const missing = await h.us.send(new ImportSnapshotCommand(importInput('jobs/missing/disk.raw')));
    const good = await h.us.send(new ImportSnapshotCommand(importInput('jobs/good/disk.raw')));

    // Disk validation problems surface when the task leaves pending.
    h.clock.advance(50);
    expect(await taskDetail(h.us, qcow.ImportTaskId as string)).toMatchObject({
      Status: 'deleted',
      StatusMessage: UNSUPPORTED,
    });
    const missingDetail = await taskDetail(h.us, missing.ImportTaskId as string);
    expect(missingDetail.Status).toBe('deleted');
    expect(missingDetail.StatusMessage).toMatch(
      /^ClientError: .*s3:\/\/kiln-artifacts\/jobs\/missing\/disk\.raw/,
    );
    expect((await taskDetail(h.us, bad.ImportTaskId as string)).Status).toBe('active');

    h.clock.advance(300);
    expect(await taskDetail(h.us, bad.ImportTaskId as string)).toMatchObject({
      Status: 'deleted',
      StatusMessage: UNSUPPORTED,
    });
    expect((await taskDetail(h.us, bad.ImportTaskId as string)).SnapshotId).toBeUndefined();
    expect((await taskDetail(h.us, good.ImportTaskId as string)).Status).toBe('completed');
    expect(h.running.sim.snapshots('us-east-1')).toHaveLength(1);
    expect(h.running.sim.stats('us-east-1').activeImports).toBe(0);
  });

  it('fails a seeded fraction of imports, the same ones for the same seed', async () => {
    const outcomes = async (seed: number) => {
      const h = await start({ failureRate: 0.5, seed });
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) {
        ids.push(
          (await h.us.send(new ImportSnapshotCommand(importInput(`k/${i}.raw`)))).ImportTaskId as string,
        );
      }
      h.clock.advance(350);
      const { ImportSnapshotTasks } = await h.us.send(
        new DescribeImportSnapshotTasksCommand({ ImportTaskIds: ids }),
      );
      return ImportSnapshotTasks?.map((t) => t.SnapshotTaskDetail?.Status) ?? [];
    };
    const first = await outcomes(7);
    expect(first.filter((s) => s === 'deleted').length).toBeGreaterThan(0);
    expect(first.filter((s) => s === 'completed').length).toBeGreaterThan(0);
    expect(await outcomes(7)).toEqual(first);
  });

  it('refuses a duplicate AMI name and a snapshot that does not exist', async () => {
    const h = await start();
    const snapshotId = await importedSnapshot(h, 'jobs/j-3/disk.raw');
    const { ImageId } = await h.us.send(new RegisterImageCommand(registerInput('kiln-j-3', snapshotId)));

    const duplicate = await failure(
      h.us.send(new RegisterImageCommand(registerInput('kiln-j-3', snapshotId))),
    );
    expect(duplicate.name).toBe('InvalidAMIName.Duplicate');
    expect(duplicate.message).toContain(ImageId as string);
    // The same name is free in another region.
    expect(h.running.sim.images('us-east-1')).toHaveLength(1);

    const noSnapshot = await failure(
      h.us.send(new RegisterImageCommand(registerInput('kiln-j-4', 'snap-0123456789abcdef0'))),
    );
    expect(noSnapshot.name).toBe('InvalidSnapshot.NotFound');
    const copyDuplicate = await failure(
      h.us.send(
        new CopyImageCommand({ SourceRegion: 'us-east-1', SourceImageId: ImageId, Name: 'kiln-j-3' }),
      ),
    );
    expect(copyDuplicate.name).toBe('InvalidAMIName.Duplicate');
  });

  it('records the peak of imports in progress over time', async () => {
    const h = await start();
    const start0 = h.clock.now();
    for (let i = 0; i < 5; i++) {
      await h.us.send(new ImportSnapshotCommand(importInput(`p/${i}.raw`)));
      h.clock.advance(100);
    }
    h.clock.advance(1000);
    const stats = h.running.sim.stats('us-east-1');
    // Task i runs over [100 i, 100 i + 350): at most four overlap.
    expect(stats.peakActiveImports).toBe(4);
    expect(stats.activeImports).toBe(0);
    expect(stats.importRequests).toBe(5);
    const ats = stats.timeline.map((p) => p.at);
    expect(ats).toEqual([...ats].sort((a, b) => a - b));
    expect(stats.timeline[0]).toEqual({ at: start0, active: 1 });
    expect(stats.timeline.at(-1)).toEqual({ at: start0 + 400 + 350, active: 0 });
    expect(Math.max(...stats.timeline.map((p) => p.active))).toBe(4);
    // Without a region: the whole account.
    expect(h.running.sim.stats()).toMatchObject({ peakActiveImports: 4, importRequests: 5 });
  });

  it('answers an unknown action with InvalidAction, and an unsigned request with an auth error', async () => {
    const h = await start();
    h.us.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { body?: unknown };
        // Same length: content-length is already set when this runs.
        if (typeof request.body === 'string') {
          request.body = request.body.replace('Action=DescribeImages', 'Action=LaunchMissiles');
        }
        return next(args);
      },
      { step: 'build', name: 'renameAction' },
    );
    const unknown = await failure(h.us.send(new DescribeImagesCommand({})));
    expect(unknown.name).toBe('InvalidAction');
    expect(unknown.message).toContain('LaunchMissiles');

    const unsigned = await fetch(h.running.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'Action=DescribeImages&Version=2016-11-15',
    });
    expect(unsigned.status).toBe(401);
    expect(await unsigned.text()).toContain('<Code>MissingAuthenticationToken</Code>');
  });

  it('answers DryRun with DryRunOperation', async () => {
    const h = await start();
    const dry = await failure(h.us.send(new DescribeImagesCommand({ DryRun: true })));
    expect(dry.name).toBe('DryRunOperation');
  });

  it('shows seeded images of other accounts only when shared, with their creation dates', async () => {
    const h = await start();
    const sim = h.running.sim;
    const old = sim.seedImage('us-east-1', {
      name: 'kiln-old',
      createdAt: new Date('2024-12-01T00:00:00Z'),
      tags: { 'kiln:expires-at': '2024-12-15T00:00:00Z' },
      snapshotTags: { 'kiln:job-id': 'j-old' },
    });
    const shared = sim.seedImage('us-east-1', {
      name: 'partner-base',
      ownerId: PARTNER,
      launchPermissions: [SELF],
      createdAt: Date.UTC(2024, 10, 1),
    });
    sim.seedImage('us-east-1', { name: 'partner-private', ownerId: PARTNER });

    const visible = await h.us.send(new DescribeImagesCommand({}));
    expect(visible.Images?.map((i) => i.Name).sort()).toEqual(['kiln-old', 'partner-base']);
    const mine = await h.us.send(new DescribeImagesCommand({ Owners: ['self'] }));
    expect(mine.Images?.map((i) => i.ImageId)).toEqual([old.imageId]);
    expect(mine.Images?.[0]?.CreationDate).toBe('2024-12-01T00:00:00.000Z');
    const theirs = await h.us.send(new DescribeImagesCommand({ Owners: [PARTNER] }));
    expect(theirs.Images?.map((i) => i.ImageId)).toEqual([shared.imageId]);
    expect(theirs.Images?.[0]?.OwnerId).toBe(PARTNER);

    const snapshots = await h.us.send(
      new DescribeSnapshotsCommand({
        OwnerIds: ['self'],
        Filters: [{ Name: 'tag:kiln:job-id', Values: ['j-old'] }],
      }),
    );
    expect(snapshots.Snapshots?.map((s) => s.SnapshotId)).toEqual(old.snapshotIds);
    expect(snapshots.Snapshots?.[0]?.StartTime).toEqual(new Date('2024-12-01T00:00:00Z'));

    const notMine = await failure(h.us.send(new DeregisterImageCommand({ ImageId: shared.imageId })));
    expect(notMine.name).toBe('AuthFailure');
    const badFilter = await failure(
      h.us.send(new DescribeImagesCommand({ Filters: [{ Name: 'colour', Values: ['x'] }] })),
    );
    expect(badFilter.name).toBe('InvalidParameterValue');
  });

  it('pages DescribeImages with MaxResults and NextToken', async () => {
    const h = await start();
    for (let i = 0; i < 7; i++) h.running.sim.seedImage('us-east-1', { name: `paged-${i}` });
    const pages: number[] = [];
    const names: string[] = [];
    for await (const page of paginateDescribeImages({ client: h.us, pageSize: 3 }, { Owners: ['self'] })) {
      pages.push(page.Images?.length ?? 0);
      names.push(...(page.Images ?? []).map((i) => i.Name as string));
    }
    expect(pages).toEqual([3, 3, 1]);
    expect(names).toEqual(Array.from({ length: 7 }, (_, i) => `paged-${i}`));
  });

  it('works without HTTP, on the same clock semantics', async () => {
    let now = 0;
    const sim = new Ec2Simulator({ now: () => now, importLimit: 1, durations: { pending: 10, active: 10 } });
    const task = await sim.importSnapshot('us-west-2', {
      diskContainer: { format: 'VMDK', userBucket: { s3Bucket: 'b', s3Key: 'disk.vmdk' } },
    });
    await expect(
      sim.importSnapshot('us-west-2', {
        diskContainer: { userBucket: { s3Bucket: 'b', s3Key: 'other.vmdk' } },
      }),
    ).rejects.toMatchObject({ code: 'ResourceCountLimitExceeded' });
    now = 20;
    const [done] = sim.describeImportSnapshotTasks('us-west-2', { importTaskIds: [task.importTaskId] }).tasks;
    expect(done).toMatchObject({ status: 'completed', format: 'VMDK' });
    const { imageId } = sim.registerImage('us-west-2', {
      name: 'direct',
      rootDeviceName: '/dev/sda1',
      blockDeviceMappings: [{ deviceName: '/dev/sda1', ebs: { snapshotId: done?.snapshotId } }],
    });
    expect(sim.describeImages('us-west-2', { imageIds: [imageId] }).images[0]?.state).toBe('available');
    expect(sim.stats('us-west-2').timeline).toEqual([
      { at: 0, active: 1 },
      { at: 10, active: 1 },
      { at: 20, active: 0 },
    ]);
  });
});
