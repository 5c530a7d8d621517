import {
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
  type Tag,
} from '@aws-sdk/client-ec2';
import { type InventoryImage, type InventorySnapshot, RETENTION_TAGS } from '../../core/retention';
import type { DeleteOutcome, RetentionImages } from './ports';

const NOT_FOUND = new Set(['InvalidAMIID.NotFound', 'InvalidAMIID.Unavailable', 'InvalidSnapshot.NotFound']);

function isNotFound(error: unknown): boolean {
  return NOT_FOUND.has((error as { name?: string }).name ?? '');
}

function tagsOf(tags: Tag[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags ?? []) {
    // defineProperty: a tag key is user data and may be "__proto__".
    if (t.Key !== undefined) Object.defineProperty(out, t.Key, { value: t.Value ?? '', enumerable: true });
  }
  return out;
}

export interface Ec2RetentionImagesOptions {
  /** A client per region (the caller caches them). */
  ec2For: (region: string) => EC2Client;
  /** DescribeImages / DescribeSnapshots page size (EC2 allows 5–1000). @default 1000 */
  pageSize?: number;
}

/** EC2 images and snapshots, region by region, through the SDK (AWS or the local simulator). */
export class Ec2RetentionImages implements RetentionImages {
  private readonly ec2For: (region: string) => EC2Client;
  private readonly pageSize: number;

  constructor(options: Ec2RetentionImagesOptions) {
    this.ec2For = options.ec2For;
    this.pageSize = options.pageSize ?? 1000;
  }

  async listImages(region: string): Promise<InventoryImage[]> {
    const ec2 = this.ec2For(region);
    const images: InventoryImage[] = [];
    let nextToken: string | undefined;
    do {
      const out = await ec2.send(
        new DescribeImagesCommand({
          Owners: ['self'],
          // Deprecated and disabled images still hold snapshots and count against the account's limits.
          IncludeDeprecated: true,
          IncludeDisabled: true,
          MaxResults: this.pageSize,
          NextToken: nextToken,
        }),
      );
      for (const image of out.Images ?? []) {
        if (!image.ImageId) continue;
        images.push({
          region,
          imageId: image.ImageId,
          ...(image.Name ? { name: image.Name } : {}),
          state: image.State ?? 'unknown',
          creationDate: image.CreationDate ?? '',
          tags: tagsOf(image.Tags),
          snapshotIds: (image.BlockDeviceMappings ?? []).flatMap((m) =>
            m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : [],
          ),
        });
      }
      nextToken = out.NextToken;
    } while (nextToken);
    return images;
  }

  async listSnapshots(region: string, deploymentId: string): Promise<InventorySnapshot[]> {
    const ec2 = this.ec2For(region);
    const snapshots: InventorySnapshot[] = [];
    let nextToken: string | undefined;
    do {
      const out = await ec2.send(
        new DescribeSnapshotsCommand({
          OwnerIds: ['self'],
          // An account may hold many snapshots (backups): only this deployment's are of interest.
          Filters: [{ Name: `tag:${RETENTION_TAGS.deployment}`, Values: [deploymentId] }],
          MaxResults: this.pageSize,
          NextToken: nextToken,
        }),
      );
      for (const s of out.Snapshots ?? []) {
        if (!s.SnapshotId) continue;
        snapshots.push({
          region,
          snapshotId: s.SnapshotId,
          state: s.State ?? 'unknown',
          startTime: s.StartTime ? s.StartTime.toISOString() : '',
          tags: tagsOf(s.Tags),
        });
      }
      nextToken = out.NextToken;
    } while (nextToken);
    return snapshots;
  }

  async markExpiring(region: string, resourceIds: readonly string[], at: Date): Promise<void> {
    if (resourceIds.length === 0) return;
    const ec2 = this.ec2For(region);
    const tag = (ids: string[]) =>
      ec2.send(
        new CreateTagsCommand({
          Resources: ids,
          Tags: [{ Key: RETENTION_TAGS.expiring, Value: at.toISOString() }],
        }),
      );
    try {
      await tag([...resourceIds]);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      // One of them is already gone (a retried run): CreateTags is all or nothing, so one by one.
      for (const id of resourceIds) {
        try {
          await tag([id]);
        } catch (inner) {
          if (!isNotFound(inner)) throw inner;
        }
      }
    }
  }

  async deregisterImage(region: string, imageId: string): Promise<DeleteOutcome> {
    try {
      await this.ec2For(region).send(new DeregisterImageCommand({ ImageId: imageId }));
      return 'deleted';
    } catch (error) {
      if (isNotFound(error)) return 'gone';
      throw error;
    }
  }

  async deleteSnapshot(region: string, snapshotId: string): Promise<DeleteOutcome> {
    try {
      await this.ec2For(region).send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
      return 'deleted';
    } catch (error) {
      if (isNotFound(error)) return 'gone';
      throw error;
    }
  }
}
