import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  CreateBucketCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHA256_TAG, sha256File, uploadFileStreamed } from '../../agent/upload';
import { KilnError } from '../../core/errors';

// s3rver ships no type declarations; this is the part of its API the test uses.
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverConstructor = new (options: {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
}) => S3rverInstance;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;

const BUCKET = 'kiln-artifacts-test';
const MiB = 1024 * 1024;

let dir: string;
let server: S3rverInstance;
let s3: S3Client;
let bigFile: string;
/** Every S3 command the client sent, in order, with how it ended. */
let sent: Array<{ command: string; ok: boolean; input: Record<string, unknown> }> = [];

/** Writes `size` random bytes in 1 MiB pieces, so the test itself does not hold the file in memory. */
async function writeRandomFile(file: string, size: number): Promise<void> {
  const out = createWriteStream(file);
  for (let written = 0; written < size; written += MiB) {
    if (!out.write(randomBytes(Math.min(MiB, size - written)))) {
      await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
  }
  out.end();
  await finished(out);
}

async function downloadSha256(key: string): Promise<{ sha256: string; size: number }> {
  const object = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of object.Body as Readable) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), size };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'kiln-upload-test-'));
  server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: path.join(dir, 's3') });
  const { port } = await server.run();
  s3 = new S3Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    // Without these the SDK's default checksumming of streamed bodies makes s3rver store them corrupted.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      const entry = {
        command: context.commandName ?? '?',
        ok: false,
        input: args.input as Record<string, unknown>,
      };
      sent.push(entry);
      const output = await next(args);
      entry.ok = true;
      return output;
    },
    { step: 'initialize', name: 'kilnTestRecordCommands' },
  );
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  bigFile = path.join(dir, 'image.raw');
  await writeRandomFile(bigFile, 40 * MiB + 12345);
});

afterAll(async () => {
  s3?.destroy();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('uploadFileStreamed', () => {
  it('uploads a large file in parts and returns the SHA-256 computed on the way', async () => {
    const progress: number[] = [];
    sent = [];
    const result = await uploadFileStreamed({
      s3,
      bucket: BUCKET,
      key: 'artifacts/job-1/image.raw',
      filePath: bigFile,
      partSizeBytes: 5 * MiB,
      queueSize: 4,
      contentType: 'application/octet-stream',
      tags: { 'kiln:job-id': 'job-1' },
      onProgress: (loaded, total) => progress.push(loaded / total),
    });

    const expected = await sha256File(bigFile);
    expect(result).toEqual({
      bucket: BUCKET,
      key: 'artifacts/job-1/image.raw',
      uri: `s3://${BUCKET}/artifacts/job-1/image.raw`,
      sha256: expected,
      sizeBytes: 40 * MiB + 12345,
    });

    const downloaded = await downloadSha256('artifacts/job-1/image.raw');
    expect(downloaded).toEqual({ sha256: expected, size: 40 * MiB + 12345 });

    // The multipart path: 8 full 5 MiB parts and a short last one.
    const commands = sent.map((c) => c.command);
    expect(commands.filter((c) => c === 'UploadPartCommand')).toHaveLength(9);
    expect(commands[0]).toBe('CreateMultipartUploadCommand');
    expect(commands).toContain('CompleteMultipartUploadCommand');
    expect(sent.every((c) => c.ok)).toBe(true);

    const { TagSet } = await s3.send(
      new GetObjectTaggingCommand({ Bucket: BUCKET, Key: 'artifacts/job-1/image.raw' }),
    );
    expect(Object.fromEntries((TagSet ?? []).map((t) => [t.Key, t.Value]))).toEqual({
      'kiln:job-id': 'job-1',
      [SHA256_TAG]: expected,
    });

    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toBe(1);
  });

  it('uploads a file smaller than one part with a single PUT', async () => {
    const small = path.join(dir, 'small.tar');
    await writeRandomFile(small, 300_000);
    const result = await uploadFileStreamed({
      s3,
      bucket: BUCKET,
      key: 'artifacts/job-2/small.tar',
      filePath: small,
    });
    expect(result.sizeBytes).toBe(300_000);
    expect(result.sha256).toBe(await sha256File(small));
    expect(await downloadSha256('artifacts/job-2/small.tar')).toEqual({
      sha256: result.sha256,
      size: 300_000,
    });
  });

  it('fails with UPLOAD_FAILED for a missing file', async () => {
    const error = await uploadFileStreamed({
      s3,
      bucket: BUCKET,
      key: 'artifacts/job-3/missing.raw',
      filePath: path.join(dir, 'does-not-exist.raw'),
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KilnError);
    expect((error as KilnError).code).toBe('UPLOAD_FAILED');
    expect((error as KilnError).message).toContain('does-not-exist.raw');
    expect(((error as KilnError).cause as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('fails with UPLOAD_FAILED when lib-storage refuses the options (part below 5 MiB)', async () => {
    const error = await uploadFileStreamed({
      s3,
      bucket: BUCKET,
      key: 'artifacts/job-5/image.raw',
      filePath: bigFile,
      partSizeBytes: 1024,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KilnError);
    expect((error as KilnError).code).toBe('UPLOAD_FAILED');
    expect((error as KilnError).message).toMatch(/EntityTooSmall/);
  });

  it('aborts the multipart upload when the signal fires mid-upload', async () => {
    const controller = new AbortController();
    const key = 'artifacts/job-4/image.raw';
    sent = [];
    const error = await uploadFileStreamed({
      s3,
      bucket: BUCKET,
      key,
      filePath: bigFile,
      partSizeBytes: 5 * MiB,
      queueSize: 1,
      // The first part reported done: the multipart upload exists and more of the file is unread.
      onProgress: () => controller.abort(),
      signal: controller.signal,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KilnError);
    expect((error as KilnError).code).toBe('UPLOAD_FAILED');
    expect((error as KilnError).message).toMatch(/aborted/);

    // By the time the call rejected, AbortMultipartUpload had been sent for the upload it started.
    // (s3rver answers it with 405 MethodNotAllowed, so only the request is checked here, not its effect.)
    const created = sent.find((c) => c.command === 'CreateMultipartUploadCommand' && c.input.Key === key);
    expect(created).toBeDefined();
    const aborts = sent.filter((c) => c.command === 'AbortMultipartUploadCommand' && c.input.Key === key);
    expect(aborts).toHaveLength(1);
    expect(aborts[0]?.input.UploadId).toEqual(expect.any(String));
    expect(sent.some((c) => c.command === 'CompleteMultipartUploadCommand' && c.input.Key === key)).toBe(
      false,
    );
    expect(sent.filter((c) => c.command === 'UploadPartCommand' && c.input.Key === key).length).toBeLessThan(
      9,
    );
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })).catch((e: unknown) => e);
    expect((head as { name?: string }).name).toBe('NotFound');
  });
});
