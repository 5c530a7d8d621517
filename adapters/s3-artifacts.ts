import { GetObjectCommand, NoSuchKey, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ArtifactStore, StoredArtifact } from '../agent/ports';
import { uploadFileStreamed } from '../agent/upload';
import type { Artifact } from '../core/job';
import { artifactLocation } from '../core/registration';
import type { ArtifactLinks, LogChunk, LogReader } from '../lambdas/api/ports';
import { S3_LAYOUT } from '../lambdas/api/routes';

/** Artifacts and build logs in the artifacts bucket (layout in S3_LAYOUT). */
export class S3ArtifactStore implements ArtifactStore, LogReader, ArtifactLinks {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async uploadArtifact(
    jobId: string,
    format: string,
    filePath: string,
    signal?: AbortSignal,
  ): Promise<StoredArtifact> {
    const result = await uploadFileStreamed({
      s3: this.s3,
      bucket: this.bucket,
      key: S3_LAYOUT.artifactKey(jobId, format),
      filePath,
      tags: { 'kiln:job-id': jobId },
      ...(signal ? { signal } : {}),
    });
    return { uri: result.uri, sha256: result.sha256, sizeBytes: result.sizeBytes };
  }

  async appendLog(jobId: string, attempt: number, seq: number, chunk: Buffer): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: S3_LAYOUT.logChunkKey(jobId, attempt, seq),
        Body: chunk,
        ContentType: 'text/plain; charset=utf-8',
      }),
    );
  }

  async readChunks(jobId: string, attempt: number, fromSeq: number, max: number): Promise<LogChunk[]> {
    const chunks: LogChunk[] = [];
    for (let seq = fromSeq; seq < fromSeq + max; seq += 1) {
      try {
        const out = await this.s3.send(
          new GetObjectCommand({ Bucket: this.bucket, Key: S3_LAYOUT.logChunkKey(jobId, attempt, seq) }),
        );
        chunks.push({ attempt, seq, text: (await out.Body?.transformToString('utf8')) ?? '' });
      } catch (error) {
        if (error instanceof NoSuchKey || (error as { name?: string }).name === 'NoSuchKey') break;
        throw error;
      }
    }
    return chunks;
  }

  async presignDownload(artifact: Artifact, expiresInSeconds: number): Promise<string> {
    const { bucket, key } = artifactLocation(artifact.uri);
    return getSignedUrl(this.s3, new GetObjectCommand({ Bucket: bucket, Key: key }), {
      expiresIn: expiresInSeconds,
    });
  }
}
