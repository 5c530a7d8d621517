/**
 * What the retention run needs from the world, declared here by the code that uses it. The AWS
 * adapters live beside it (ec2-images.ts, s3-artifacts.ts); the job store is the shared one.
 */
import type { DynamoJobStore } from '../../adapters/dynamodb-job-store';
import type { InventoryArtifact, InventoryImage, InventorySnapshot } from '../../core/retention';

/** What a delete found: it deleted the thing, or the thing was already gone (a retried run). */
export type DeleteOutcome = 'deleted' | 'gone';

export interface RetentionImages {
  /** Every image the account owns in the region, whoever made it, every page. */
  listImages(region: string): Promise<InventoryImage[]>;
  /** The account's snapshots in the region that carry `kiln:deployment` = deploymentId. */
  listSnapshots(region: string, deploymentId: string): Promise<InventorySnapshot[]>;
  /** Tags `kiln:expiring` on the resources that still exist; missing ones are skipped. */
  markExpiring(region: string, resourceIds: readonly string[], at: Date): Promise<void>;
  deregisterImage(region: string, imageId: string): Promise<DeleteOutcome>;
  deleteSnapshot(region: string, snapshotId: string): Promise<DeleteOutcome>;
}

export interface RetentionArtifacts {
  /** Every object under `artifacts/`, every page. */
  list(): Promise<InventoryArtifact[]>;
  delete(key: string): Promise<DeleteOutcome>;
}

export type RetentionJobStore = Pick<DynamoJobStore, 'get' | 'listByStatus' | 'apply'>;

export interface RetentionPorts {
  images: RetentionImages;
  artifacts: RetentionArtifacts;
  jobs: RetentionJobStore;
}
