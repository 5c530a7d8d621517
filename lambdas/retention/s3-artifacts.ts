import { DeleteObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { InventoryArtifact } from '../../core/retention';
import { S3_LAYOUT } from '../api/routes';
import type { DeleteOutcome, RetentionArtifacts } from './ports';

/** `artifacts/<jobId>/…` → jobId, or undefined for a key outside that layout. */
export function artifactJobId(key: string): string | undefined {
  if (!key.startsWith(S3_LAYOUT.artifactPrefix)) return undefined;
  const [jobId, ...rest] = key.slice(S3_LAYOUT.artifactPrefix.length).split('/');
  return jobId && rest.length > 0 ? jobId : undefined;
}

/** The artifacts under `artifacts/` in the deployment's bucket. */
export class S3RetentionArtifacts implements RetentionArtifacts {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async list(): Promise<InventoryArtifact[]> {
    const artifacts: InventoryArtifact[] = [];
    let token: string | undefined;
    do {
      const out = await this.s3.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: S3_LAYOUT.artifactPrefix,
          ContinuationToken: token,
        }),
      );
      for (const object of out.Contents ?? []) {
        const jobId = object.Key ? artifactJobId(object.Key) : undefined;
        if (!object.Key || !jobId) continue;
        artifacts.push({
          key: object.Key,
          jobId,
          lastModified: object.LastModified ? object.LastModified.toISOString() : '',
        });
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return artifacts;
  }

  /** S3 answers a delete of a missing key with success, so a retried delete is simply "deleted". */
  async delete(key: string): Promise<DeleteOutcome> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    return 'deleted';
  }
}
