import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PutObjectTaggingCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { KilnError } from '../core/errors';

export interface UploadResult {
  bucket: string;
  key: string;
  /** s3://bucket/key */
  uri: string;
  /** Hex SHA-256 of the bytes uploaded. */
  sha256: string;
  sizeBytes: number;
}

export interface UploadFileOptions {
  s3: S3Client;
  bucket: string;
  key: string;
  filePath: string;
  /** Default 8 MiB; S3 needs at least 5 MiB. */
  partSizeBytes?: number;
  /** Parts in flight at once; default 4. */
  queueSize?: number;
  contentType?: string;
  tags?: Record<string, string>;
  onProgress?: (loaded: number, total: number) => void;
  /** Aborting it stops the upload and aborts the multipart upload. */
  signal?: AbortSignal;
}

/** Name of the object tag that carries the hex SHA-256 of the object. */
export const SHA256_TAG = 'sha256';

const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
const DEFAULT_QUEUE_SIZE = 4;
const READ_CHUNK_BYTES = 1024 * 1024;
/** S3 allows 10 tags per object; one is ours. */
const MAX_CALLER_TAGS = 9;

/**
 * Uploads a file with a multipart upload, hashing it on the way: the file is read once, and memory
 * stays near partSize × (queueSize + 1) whatever its size.
 *
 * The digest goes on the object as the tag `sha256`, not as `x-amz-meta-sha256` metadata: metadata
 * is fixed by CreateMultipartUpload, which is sent when the first part is ready, long before the
 * last byte has been hashed. Adding it afterwards would take a CopyObject of the whole object (and a
 * multipart copy past 5 GiB), i.e. a second pass; a tag can be set after completion at no cost.
 */
export async function uploadFileStreamed(opts: UploadFileOptions): Promise<UploadResult> {
  const { s3, bucket, key, filePath } = opts;
  const partSize = opts.partSizeBytes ?? DEFAULT_PART_SIZE;
  const queueSize = opts.queueSize ?? DEFAULT_QUEUE_SIZE;
  const where = `s3://${bucket}/${key}`;
  const fail = (what: string, cause: unknown): KilnError =>
    new KilnError('UPLOAD_FAILED', `upload of ${filePath} to ${where} failed: ${what}`, { cause });

  const callerTags = Object.entries(opts.tags ?? {}).filter(([name]) => name !== SHA256_TAG);
  if (callerTags.length > MAX_CALLER_TAGS) {
    throw fail(`at most ${MAX_CALLER_TAGS} tags besides ${SHA256_TAG}`, undefined);
  }
  if (opts.signal?.aborted) throw fail('aborted before it started', opts.signal.reason);

  let total: number;
  try {
    const info = await stat(filePath);
    if (!info.isFile()) throw new Error('not a regular file');
    total = info.size;
  } catch (error) {
    throw fail(error instanceof Error ? error.message : String(error), error);
  }

  const hash = createHash('sha256');
  let hashedBytes = 0;
  const hasher = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      hashedBytes += chunk.length;
      callback(null, chunk);
    },
  });
  const source = createReadStream(filePath, { highWaterMark: READ_CHUNK_BYTES });
  // pipeline() destroys both streams on error: a read error reaches the uploader through `hasher`,
  // and destroying `hasher` (abort) closes the file.
  const piping = pipeline(source, hasher).catch(() => {});

  // Aborting by failing the input rather than Upload.abort(): abort() rejects at once and leaves
  // AbortMultipartUpload to run in the background, while a failed input makes done() reject only
  // after in-flight parts settle and the multipart upload has been aborted.
  const onAbort = (): void => {
    const reason: unknown = opts.signal?.reason;
    hasher.destroy(reason instanceof Error ? reason : new Error('upload aborted'));
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  try {
    try {
      const upload = new Upload({
        client: s3,
        params: {
          Bucket: bucket,
          Key: key,
          Body: hasher,
          ContentLength: total,
          ...(opts.contentType ? { ContentType: opts.contentType } : {}),
        },
        partSize,
        queueSize,
        leavePartsOnError: false,
      });
      if (opts.onProgress) {
        const onProgress = opts.onProgress;
        upload.on('httpUploadProgress', (progress) => onProgress(progress.loaded ?? 0, total));
      }
      await upload.done();
    } catch (error) {
      // Also closes the file when Upload rejected its options before reading anything.
      hasher.destroy();
      const message = error instanceof Error ? error.message : String(error);
      // After an abort the error may come from AbortMultipartUpload itself (lib-storage rethrows it
      // in place of the original), so its message is kept next to the word "aborted".
      throw fail(opts.signal?.aborted ? `aborted (${message})` : message, error);
    }
    await piping;
    // The object is complete but the caller gave up; it reports the abort, not a result it no longer
    // wants (the object is overwritten by a retry or expired by retention).
    if (opts.signal?.aborted) throw fail('aborted after the object was stored', opts.signal.reason);

    const sha256 = hash.digest('hex');
    try {
      await s3.send(
        new PutObjectTaggingCommand({
          Bucket: bucket,
          Key: key,
          Tagging: {
            TagSet: [
              ...callerTags.map(([Key, Value]) => ({ Key, Value })),
              { Key: SHA256_TAG, Value: sha256 },
            ],
          },
        }),
      );
    } catch (error) {
      throw fail('the object was stored but tagging it failed', error);
    }
    return { bucket, key, uri: where, sha256, sizeBytes: hashedBytes };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** SHA-256 (hex) of a file, read as a stream; for verification, not used by the upload itself. */
export async function sha256File(filePath: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(filePath, { highWaterMark: READ_CHUNK_BYTES })) {
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}
