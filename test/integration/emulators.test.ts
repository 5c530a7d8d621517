import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS } from '../../adapters/clients';
import { parseConfig } from '../../core/config';
import { JOBS_TABLE, queueDefinitions, queueKey } from '../../infra/definitions';
import { createResources } from '../../local/resources';
import { startTestStack, type TestStack } from '../support/emulators';

const CONFIG = {
  prefix: 'itest',
  leaseSeconds: 40,
  heartbeatSeconds: 10,
  maxReceiveCount: 4,
  pools: [{ name: 'small', arch: 'x86_64' as const, instanceTypes: ['t3.small'] }],
};

let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack(CONFIG);
});

afterAll(async () => {
  await stack?.stop();
});

describe('createResources', () => {
  it('creates the jobs table with the key and indexes of JOBS_TABLE', async () => {
    const { Table } = await stack.clients.dynamodb.send(
      new DescribeTableCommand({ TableName: stack.resources.tableName }),
    );
    expect(Table?.TableStatus).toBe('ACTIVE');
    expect(Table?.BillingModeSummary?.BillingMode).toBe('PAY_PER_REQUEST');
    expect(Table?.KeySchema).toEqual([{ AttributeName: JOBS_TABLE.partitionKey.name, KeyType: 'HASH' }]);

    const indexes = Object.fromEntries((Table?.GlobalSecondaryIndexes ?? []).map((i) => [i.IndexName, i]));
    expect(Object.keys(indexes).sort()).toEqual(
      JOBS_TABLE.globalSecondaryIndexes.map((i) => i.indexName).sort(),
    );
    for (const def of JOBS_TABLE.globalSecondaryIndexes) {
      const index = indexes[def.indexName];
      expect(index?.IndexStatus).toBe('ACTIVE');
      expect(index?.Projection?.ProjectionType).toBe('ALL');
      expect(index?.KeySchema).toEqual([
        { AttributeName: def.partitionKey.name, KeyType: 'HASH' },
        { AttributeName: def.sortKey.name, KeyType: 'RANGE' },
      ]);
    }
  });

  it('creates each queue with its visibility timeout and a redrive policy to its own DLQ', async () => {
    const defs = queueDefinitions(stack.config);
    expect(defs).toHaveLength(3);
    expect(Object.keys(stack.resources.queueUrls).sort()).toEqual(
      defs.map((d) => queueKey(d.pool, d.priority)).sort(),
    );

    for (const def of defs) {
      const key = queueKey(def.pool, def.priority);
      const queueUrl = stack.resources.queueUrls[key];
      const dlqUrl = stack.resources.deadLetterQueueUrls[key];
      expect(queueUrl).toMatch(new RegExp(`/${def.queueName}$`));
      expect(dlqUrl).toMatch(new RegExp(`/${def.deadLetterQueueName}$`));

      const { Attributes: queue } = await stack.clients.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }),
      );
      const { Attributes: dlq } = await stack.clients.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: dlqUrl,
          AttributeNames: ['QueueArn', 'MessageRetentionPeriod'],
        }),
      );
      expect(queue?.VisibilityTimeout).toBe(String(def.visibilityTimeoutSeconds));
      expect(queue?.MessageRetentionPeriod).toBe(String(def.messageRetentionSeconds));
      expect(dlq?.MessageRetentionPeriod).toBe(String(def.messageRetentionSeconds));
      const redrive = JSON.parse(queue?.RedrivePolicy ?? '{}');
      expect(redrive.deadLetterTargetArn).toBe(dlq?.QueueArn);
      expect(Number(redrive.maxReceiveCount)).toBe(CONFIG.maxReceiveCount);
    }
  });

  it('creates the artifacts bucket', async () => {
    await expect(
      stack.clients.s3.send(new HeadBucketCommand({ Bucket: stack.resources.bucketName })),
    ).resolves.toBeDefined();
  });

  it('can run again on the same emulators, and applies a changed queue setting', async () => {
    const again = await createResources(stack.clients, stack.config);
    expect(again).toEqual(stack.resources);

    // Its own prefix, so the stack's queues keep the settings the other tests rely on.
    const first = await createResources(
      stack.clients,
      parseConfig({ ...CONFIG, prefix: 'rerun', leaseSeconds: 40 }),
    );
    const second = await createResources(
      stack.clients,
      parseConfig({ ...CONFIG, prefix: 'rerun', leaseSeconds: 90 }),
    );
    expect(second.queueUrls).toEqual(first.queueUrls);
    const url = second.queueUrls[queueKey('small', 'normal')];
    const { Attributes } = await stack.clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['VisibilityTimeout'] }),
    );
    expect(Attributes?.VisibilityTimeout).toBe('90');
  });
});

describe('dynalite', () => {
  it('rejects a conditional write whose condition does not hold, and applies one that does', async () => {
    const TableName = stack.resources.tableName;
    const Item = { jobId: 'job-cas', status: 'QUEUED', owner: 'alice', createdKey: '2024#job-cas' };
    await stack.clients.documents.send(
      new PutCommand({ TableName, Item, ConditionExpression: 'attribute_not_exists(jobId)' }),
    );
    await expect(
      stack.clients.documents.send(
        new PutCommand({ TableName, Item, ConditionExpression: 'attribute_not_exists(jobId)' }),
      ),
    ).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });

    const claim = (from: string) =>
      stack.clients.documents.send(
        new UpdateCommand({
          TableName,
          Key: { jobId: 'job-cas' },
          UpdateExpression: 'SET #s = :to',
          ConditionExpression: '#s = :from',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':from': from, ':to': 'RUNNING' },
        }),
      );
    await claim('QUEUED');
    await expect(claim('QUEUED')).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });

    const { Item: stored } = await stack.clients.documents.send(
      new GetCommand({ TableName, Key: { jobId: 'job-cas' }, ConsistentRead: true }),
    );
    expect(stored?.status).toBe('RUNNING');
  });
});

describe('fauxqs', () => {
  it('answers a long poll as soon as a message is sent during the wait', async () => {
    const queueUrl = stack.resources.queueUrls[queueKey('small', 'high')];
    // A client of its own, so the long poll gets a signal when its request leaves for the server.
    const poller = new SQSClient({
      region: stack.region,
      endpoint: stack.endpoints.sqs,
      credentials: { ...LOCAL_CREDENTIALS },
    });
    let markSent: () => void = () => {};
    const requestSent = new Promise<void>((resolve) => {
      markSent = resolve;
    });
    poller.middlewareStack.add(
      (next) => async (args) => {
        markSent();
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low', name: 'signalSent' },
    );

    try {
      const waitTimeSeconds = 20;
      const startedAt = Date.now();
      const received = poller.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          WaitTimeSeconds: waitTimeSeconds,
          MaxNumberOfMessages: 1,
        }),
      );
      // Racing the poll itself, so a failed request surfaces instead of leaving this await pending.
      await Promise.race([requestSent, received]);
      await stack.clients.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'wake up' }));

      const { Messages } = await received;
      expect(Messages?.map((m) => m.Body)).toEqual(['wake up']);
      // Far from the 20 s the poll would otherwise wait out.
      expect(Date.now() - startedAt).toBeLessThan((waitTimeSeconds * 1000) / 2);
      await stack.clients.sqs.send(
        new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: Messages?.[0]?.ReceiptHandle }),
      );
    } finally {
      poller.destroy();
    }
  });
});

describe('s3rver', () => {
  const size = 12 * 1024 * 1024 + 12_345;

  /** Deterministic pseudo-random bytes in uneven chunks, hashed as they are produced. */
  function generated(total: number): { stream: Readable; sha256: () => string } {
    const hash = createHash('sha256');
    let produced = 0;
    let counter = 0;
    const stream = new Readable({
      read() {
        if (produced >= total) {
          this.push(null);
          return;
        }
        const n = Math.min(total - produced, 700_001);
        const chunk = Buffer.alloc(n);
        for (let off = 0; off < n; off += 32) {
          createHash('sha256').update(`block-${counter++}`).digest().copy(chunk, off);
        }
        produced += n;
        hash.update(chunk);
        this.push(chunk);
      },
    });
    return { stream, sha256: () => hash.digest('hex') };
  }

  async function sha256Of(body: AsyncIterable<Uint8Array>): Promise<{ sha256: string; bytes: number }> {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of body) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    return { sha256: hash.digest('hex'), bytes };
  }

  it('round-trips a streamed multipart upload byte for byte', async () => {
    const Key = 'artifacts/job-multipart/image.raw';
    const source = generated(size);
    const parts = new Set<number>();
    const upload = new Upload({
      client: stack.clients.s3,
      params: { Bucket: stack.resources.bucketName, Key, Body: source.stream },
      partSize: 5 * 1024 * 1024,
      queueSize: 2,
    });
    upload.on('httpUploadProgress', (p) => {
      if (p.part !== undefined) parts.add(p.part);
    });
    await upload.done();
    expect(parts.size).toBe(3);

    const got = await stack.clients.s3.send(
      new GetObjectCommand({ Bucket: stack.resources.bucketName, Key }),
    );
    expect(got.ContentLength).toBe(size);
    const downloaded = await sha256Of(got.Body as AsyncIterable<Uint8Array>);
    expect(downloaded).toEqual({ sha256: source.sha256(), bytes: size });
  });

  it('serves an object through a presigned GET URL on 127.0.0.1', async () => {
    const Key = 'artifacts/job-presigned/image.qcow2';
    const content = Buffer.from('qcow2 bytes, honest');
    await new Upload({
      client: stack.clients.s3,
      params: { Bucket: stack.resources.bucketName, Key, Body: content },
    }).done();

    const url = await getSignedUrl(
      stack.clients.s3,
      new GetObjectCommand({ Bucket: stack.resources.bucketName, Key }),
      {
        expiresIn: 60,
      },
    );
    expect(new URL(url).hostname).toBe('127.0.0.1');
    expect(new URL(url).searchParams.get('X-Amz-Signature')).toBeTruthy();

    const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer())).toEqual(content);
  });
});
