/**
 * One entry per supported EC2 action: read the query parameters the SDK sends, call the
 * simulator, and render the response body with the element names the SDK's deserializer
 * reads (the `xmlName` of each member in @aws-sdk/client-ec2's schemas, e.g. `imageState`,
 * `imageOwnerId`, `isPublic`, `importSnapshotTaskSet`).
 */
import type { BlockDeviceMappingView, EbsView, ImageView, ImportTaskView, SnapshotView } from './model';
import type { QueryParams } from './query';
import type { Ec2Simulator, LaunchPermissionItem, ModifyImageAttributeInput } from './simulator';
import { itemSet, leaf, node, tagSet } from './xml';

export type ActionHandler = (
  sim: Ec2Simulator,
  region: string,
  params: QueryParams,
) => Promise<string> | string;

export const ACTIONS: Readonly<Record<string, ActionHandler>> = {
  async ImportSnapshot(sim, region, p) {
    const disk = p.has('DiskContainer') ? p.sub('DiskContainer') : undefined;
    const task = await sim.importSnapshot(region, {
      clientToken: p.str('ClientToken'),
      description: p.str('Description'),
      diskContainer: disk && {
        description: disk.str('Description'),
        format: disk.str('Format'),
        url: disk.str('Url'),
        userBucket: disk.has('UserBucket')
          ? { s3Bucket: disk.str('UserBucket.S3Bucket'), s3Key: disk.str('UserBucket.S3Key') }
          : undefined,
      },
      tagSpecifications: p.tagSpecifications(),
      encrypted: p.bool('Encrypted'),
      kmsKeyId: p.str('KmsKeyId'),
      roleName: p.str('RoleName'),
    });
    return (
      leaf('description', task.description) +
      leaf('importTaskId', task.importTaskId) +
      taskDetail(task) +
      tagSet(task.tags)
    );
  },

  DescribeImportSnapshotTasks(sim, region, p) {
    const { tasks, nextToken } = sim.describeImportSnapshotTasks(region, {
      importTaskIds: p.list('ImportTaskId'),
      filters: p.filters(),
      maxResults: p.int('MaxResults'),
      nextToken: p.str('NextToken'),
    });
    return (
      itemSet(
        'importSnapshotTaskSet',
        tasks,
        (t) =>
          leaf('description', t.description) +
          leaf('importTaskId', t.importTaskId) +
          taskDetail(t) +
          tagSet(t.tags),
      ) + leaf('nextToken', nextToken)
    );
  },

  CancelImportTask(sim, region, p) {
    const result = sim.cancelImportTask(region, p.str('ImportTaskId'), p.str('CancelReason'));
    return (
      leaf('importTaskId', result.importTaskId) +
      leaf('previousState', result.previousState) +
      leaf('state', result.state)
    );
  },

  RegisterImage(sim, region, p) {
    const { imageId } = sim.registerImage(region, {
      name: p.str('Name'),
      description: p.str('Description'),
      architecture: p.str('Architecture'),
      rootDeviceName: p.str('RootDeviceName'),
      blockDeviceMappings: p.structs('BlockDeviceMapping').map(readMapping),
      enaSupport: p.bool('EnaSupport'),
      bootMode: p.str('BootMode'),
      virtualizationType: p.str('VirtualizationType'),
      imdsSupport: p.str('ImdsSupport'),
      tpmSupport: p.str('TpmSupport'),
      imageLocation: p.str('ImageLocation'),
      tagSpecifications: p.tagSpecifications(),
    });
    return leaf('imageId', imageId);
  },

  CopyImage(sim, region, p) {
    const { imageId } = sim.copyImage(region, {
      sourceRegion: p.str('SourceRegion'),
      sourceImageId: p.str('SourceImageId'),
      name: p.str('Name'),
      description: p.str('Description'),
      clientToken: p.str('ClientToken'),
      copyImageTags: p.bool('CopyImageTags'),
      tagSpecifications: p.tagSpecifications(),
      encrypted: p.bool('Encrypted'),
      kmsKeyId: p.str('KmsKeyId'),
    });
    return leaf('imageId', imageId);
  },

  DescribeImages(sim, region, p) {
    const { images, nextToken } = sim.describeImages(region, {
      imageIds: p.list('ImageId'),
      owners: p.list('Owner'),
      executableUsers: p.list('ExecutableBy'),
      filters: p.filters(),
      maxResults: p.int('MaxResults'),
      nextToken: p.str('NextToken'),
    });
    return itemSet('imagesSet', images, renderImage) + leaf('nextToken', nextToken);
  },

  DescribeSnapshots(sim, region, p) {
    const { snapshots, nextToken } = sim.describeSnapshots(region, {
      snapshotIds: p.list('SnapshotId'),
      ownerIds: p.list('Owner'),
      restorableByUserIds: p.list('RestorableBy'),
      filters: p.filters(),
      maxResults: p.int('MaxResults'),
      nextToken: p.str('NextToken'),
    });
    return itemSet('snapshotSet', snapshots, renderSnapshot) + leaf('nextToken', nextToken);
  },

  CreateTags(sim, region, p) {
    sim.createTags(region, p.list('ResourceId'), p.tags('Tag'));
    return leaf('return', true);
  },

  ModifyImageAttribute(sim, region, p) {
    sim.modifyImageAttribute(region, readModifyImageAttribute(p));
    return leaf('return', true);
  },

  DescribeImageAttribute(sim, region, p) {
    const a = sim.describeImageAttribute(region, p.str('ImageId'), p.str('Attribute'));
    let body = leaf('imageId', a.imageId);
    if (a.launchPermissions) {
      body += itemSet(
        'launchPermission',
        a.launchPermissions,
        (l) => leaf('group', l.group) + leaf('userId', l.userId),
      );
    }
    if (a.attribute === 'description') body += node('description', leaf('value', a.description));
    if (a.attribute === 'bootMode') body += node('bootMode', leaf('value', a.bootMode));
    if (a.blockDeviceMappings) body += itemSet('blockDeviceMapping', a.blockDeviceMappings, renderMapping);
    return body;
  },

  DeregisterImage(sim, region, p) {
    const { snapshotResults } = sim.deregisterImage(region, p.str('ImageId'), {
      deleteAssociatedSnapshots: p.bool('DeleteAssociatedSnapshots'),
    });
    const results =
      snapshotResults.length === 0
        ? ''
        : itemSet(
            'deleteSnapshotResultSet',
            snapshotResults,
            (r) => leaf('snapshotId', r.snapshotId) + leaf('returnCode', r.returnCode),
          );
    return leaf('return', true) + results;
  },

  DeleteSnapshot(sim, region, p) {
    sim.deleteSnapshot(region, p.str('SnapshotId'));
    return leaf('return', true);
  },
};

function readMapping(m: QueryParams): BlockDeviceMappingView {
  const ebs = m.has('Ebs') ? m.sub('Ebs') : undefined;
  return {
    deviceName: m.str('DeviceName'),
    noDevice: m.str('NoDevice'),
    virtualName: m.str('VirtualName'),
    ebs: ebs && {
      snapshotId: ebs.str('SnapshotId'),
      volumeSize: ebs.int('VolumeSize'),
      volumeType: ebs.str('VolumeType'),
      deleteOnTermination: ebs.bool('DeleteOnTermination'),
      encrypted: ebs.bool('Encrypted'),
      iops: ebs.int('Iops'),
      throughput: ebs.int('Throughput'),
    },
  };
}

/**
 * Two wire forms reach the same change: `LaunchPermission.Add.N.UserId` (the structured
 * form) and `Attribute=launchPermission&OperationType=add&UserId.N=…` (the older flat form).
 */
function readModifyImageAttribute(p: QueryParams): ModifyImageAttributeInput {
  const items = (list: QueryParams[]): LaunchPermissionItem[] =>
    list.map((l) => ({
      userId: l.str('UserId'),
      group: l.str('Group'),
      organizationArn: l.str('OrganizationArn'),
      organizationalUnitArn: l.str('OrganizationalUnitArn'),
    }));
  const add = items(p.structs('LaunchPermission.Add'));
  const remove = items(p.structs('LaunchPermission.Remove'));
  const attribute = p.str('Attribute');
  if (attribute === 'launchPermission') {
    const flat: LaunchPermissionItem[] = [
      ...p.list('UserId').map((userId) => ({ userId })),
      ...p.list('UserGroup').map((group) => ({ group })),
    ];
    (p.str('OperationType') === 'remove' ? remove : add).push(...flat);
  }
  const description =
    p.str('Description.Value') ?? (attribute === 'description' ? p.str('Value') : undefined);
  return { imageId: p.str('ImageId'), launchPermission: { add, remove }, description };
}

function taskDetail(t: ImportTaskView): string {
  return node(
    'snapshotTaskDetail',
    leaf('description', t.description),
    leaf('diskImageSize', t.sizeBytes),
    leaf('encrypted', false),
    leaf('format', t.format),
    leaf('progress', t.progress),
    leaf('snapshotId', t.snapshotId),
    leaf('status', t.status),
    leaf('statusMessage', t.statusMessage),
    leaf('url', t.url),
    t.bucket === undefined ? '' : node('userBucket', leaf('s3Bucket', t.bucket), leaf('s3Key', t.key)),
  );
}

function renderEbs(e: EbsView): string {
  return (
    leaf('deleteOnTermination', e.deleteOnTermination) +
    leaf('iops', e.iops) +
    leaf('snapshotId', e.snapshotId) +
    leaf('volumeSize', e.volumeSize) +
    leaf('volumeType', e.volumeType) +
    leaf('throughput', e.throughput) +
    leaf('encrypted', e.encrypted)
  );
}

function renderMapping(m: BlockDeviceMappingView): string {
  return (
    leaf('deviceName', m.deviceName) +
    leaf('virtualName', m.virtualName) +
    leaf('noDevice', m.noDevice) +
    (m.ebs ? node('ebs', renderEbs(m.ebs)) : '')
  );
}

function renderImage(i: ImageView): string {
  return [
    leaf('imageId', i.imageId),
    leaf('imageLocation', `${i.ownerId}/${i.name}`),
    leaf('imageState', i.state),
    leaf('imageOwnerId', i.ownerId),
    leaf('creationDate', i.creationDate),
    leaf('isPublic', i.public),
    leaf('architecture', i.architecture),
    leaf('imageType', 'machine'),
    leaf('name', i.name),
    leaf('description', i.description),
    leaf('imageOwnerAlias', i.ownerAlias),
    leaf('rootDeviceType', 'ebs'),
    leaf('rootDeviceName', i.rootDeviceName),
    itemSet('blockDeviceMapping', i.blockDeviceMappings, renderMapping),
    leaf('virtualizationType', i.virtualizationType),
    leaf('hypervisor', 'xen'),
    leaf('enaSupport', i.enaSupport),
    leaf('bootMode', i.bootMode),
    leaf('imdsSupport', i.imdsSupport),
    leaf('tpmSupport', i.tpmSupport),
    leaf('platformDetails', 'Linux/UNIX'),
    leaf('usageOperation', 'RunInstances'),
    leaf('sourceImageId', i.sourceImageId),
    leaf('sourceImageRegion', i.sourceRegion),
    tagSet(i.tags),
  ].join('');
}

function renderSnapshot(s: SnapshotView): string {
  return [
    leaf('snapshotId', s.snapshotId),
    leaf('volumeId', s.volumeId),
    leaf('status', s.state),
    leaf('startTime', new Date(s.startTime).toISOString()),
    leaf('progress', s.progress),
    leaf('ownerId', s.ownerId),
    leaf('ownerAlias', s.ownerAlias),
    leaf('volumeSize', s.volumeSize),
    leaf('description', s.description),
    leaf('encrypted', s.encrypted),
    leaf('storageTier', 'standard'),
    tagSet(s.tags),
  ].join('');
}
