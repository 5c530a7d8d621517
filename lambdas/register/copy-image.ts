import {
  CopyImageCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  type EC2Client,
  ModifyImageAttributeCommand,
} from '@aws-sdk/client-ec2';
import type { RegisteredImage } from '../../core/job';

export interface CopyImageEvent {
  region: string;
  sourceRegion: string;
  sourceImageId: string;
  imageName: string;
  jobId: string;
  buildType: string;
  expiresAt: string;
  shareWith: string[];
  deploymentId: string;
}

/** Thrown while the copy is still pending; the workflow retries the step until it is available. */
export class CopyNotReady extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CopyNotReady';
  }
}

export class CopyFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CopyFailed';
  }
}

/**
 * Copies the AMI into `region` (Step Functions' SDK integrations call only their own region),
 * then tags and shares the copy once it is available. Idempotent: the ClientToken makes a
 * retried call return the same copy.
 */
export async function copyImageToRegion(
  ec2For: (region: string) => EC2Client,
  event: CopyImageEvent,
): Promise<RegisteredImage> {
  const ec2 = ec2For(event.region);
  const copy = await ec2.send(
    new CopyImageCommand({
      Name: event.imageName,
      SourceImageId: event.sourceImageId,
      SourceRegion: event.sourceRegion,
      ClientToken: `${event.jobId}-${event.region}`.slice(0, 64),
      Description: `kiln job ${event.jobId} (copy of ${event.sourceImageId} from ${event.sourceRegion})`,
    }),
  );
  const imageId = copy.ImageId;
  if (!imageId) throw new CopyFailed(`CopyImage to ${event.region} returned no image id`);
  const described = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
  const image = described.Images?.[0];
  if (!image || image.State === 'pending')
    throw new CopyNotReady(`copy ${imageId} in ${event.region} is still pending`);
  if (image.State !== 'available') {
    throw new CopyFailed(
      `copy ${imageId} in ${event.region} is ${image.State}: ${image.StateReason?.Message ?? ''}`,
    );
  }
  const snapshotId = image.BlockDeviceMappings?.find((m) => m.Ebs?.SnapshotId)?.Ebs?.SnapshotId ?? '';
  await ec2.send(
    new CreateTagsCommand({
      Resources: snapshotId ? [imageId, snapshotId] : [imageId],
      Tags: [
        { Key: 'kiln:job-id', Value: event.jobId },
        { Key: 'kiln:build-type', Value: event.buildType },
        { Key: 'kiln:expires-at', Value: event.expiresAt },
        { Key: 'kiln:deployment', Value: event.deploymentId },
      ],
    }),
  );
  if (event.shareWith.length > 0) {
    await ec2.send(
      new ModifyImageAttributeCommand({
        ImageId: imageId,
        Attribute: 'launchPermission',
        OperationType: 'add',
        UserIds: event.shareWith,
      }),
    );
  }
  return { region: event.region, imageId, snapshotId };
}
