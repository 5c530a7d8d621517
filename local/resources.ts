/**
 * Creates on the emulators what the CDK app creates in AWS, from the same definitions
 * (infra/definitions.ts), so local mode cannot drift from the deployed shape.
 */
import {
  type AttributeDefinition,
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type TableDescription,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { type BucketLocationConstraint, CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type QueueAttributeName,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import type { AwsClients } from '../adapters/clients';
import type { KilnConfig } from '../core/config';
import {
  AGENTS_TABLE,
  agentsTableName as agentsTableNameOf,
  artifactsBucketName,
  JOBS_TABLE,
  jobsTableName,
  type QueueDefinition,
  queueDefinitions,
  queueKey,
  SLOTS_TABLE,
  slotsTableName as slotsTableNameOf,
} from '../infra/definitions';

export interface LocalResources {
  tableName: string;
  /** Counting semaphores (import slots). */
  slotsTableName: string;
  /** Agent status records, read by the fleet scaler. */
  agentsTableName: string;
  bucketName: string;
  /** queueKey(pool, priority) → queue URL */
  queueUrls: Record<string, string>;
  /** queueKey(pool, priority) → URL of that queue's dead-letter queue */
  deadLetterQueueUrls: Record<string, string>;
}

// dynalite keeps a table CREATING for createTableMs; DynamoDB Local or AWS take longer.
const TABLE_ACTIVE_DEADLINE_MS = 60_000;
const TABLE_POLL_MS = 25;

/** Safe to call again on the same endpoints: what exists is kept (queues get their attributes re-applied). */
export async function createResources(clients: AwsClients, config: KilnConfig): Promise<LocalResources> {
  const tableName = jobsTableName(config.prefix);
  const slotsTableName = slotsTableNameOf(config.prefix);
  const agentsTableName = agentsTableNameOf(config.prefix);
  const bucketName = artifactsBucketName(config.prefix);
  const [, , , queues] = await Promise.all([
    ensureAgentsTable(clients, agentsTableName),
    ensureJobsTable(clients, tableName),
    ensureSlotsTable(clients, slotsTableName),
    Promise.all(queueDefinitions(config).map((def) => ensureQueuePair(clients, def))),
    ensureBucket(clients, bucketName),
  ]);
  const queueUrls: Record<string, string> = {};
  const deadLetterQueueUrls: Record<string, string> = {};
  for (const q of queues) {
    queueUrls[q.key] = q.url;
    deadLetterQueueUrls[q.key] = q.deadLetterUrl;
  }
  return { tableName, slotsTableName, agentsTableName, bucketName, queueUrls, deadLetterQueueUrls };
}

async function ensureJobsTable(clients: AwsClients, tableName: string): Promise<void> {
  const attributes = new Map<string, AttributeDefinition>();
  const addAttribute = (a: { name: string; type: 'S' | 'N' }) =>
    attributes.set(a.name, { AttributeName: a.name, AttributeType: a.type });
  addAttribute(JOBS_TABLE.partitionKey);
  for (const index of JOBS_TABLE.globalSecondaryIndexes) {
    addAttribute(index.partitionKey);
    addAttribute(index.sortKey);
  }

  try {
    await clients.dynamodb.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [...attributes.values()],
        KeySchema: [{ AttributeName: JOBS_TABLE.partitionKey.name, KeyType: 'HASH' }],
        GlobalSecondaryIndexes: JOBS_TABLE.globalSecondaryIndexes.map((index) => ({
          IndexName: index.indexName,
          KeySchema: [
            { AttributeName: index.partitionKey.name, KeyType: 'HASH' },
            { AttributeName: index.sortKey.name, KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'ALL' },
        })),
      }),
    );
  } catch (err) {
    if (errorName(err) !== 'ResourceInUseException') throw err;
  }

  const table = await waitForActiveTable(clients, tableName);
  // A table left over from an older definition would fail later, on the first query of a missing index.
  const present = new Set((table.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName));
  const missing = JOBS_TABLE.globalSecondaryIndexes.filter((i) => !present.has(i.indexName));
  if (missing.length > 0) {
    throw new Error(
      `table ${tableName} exists without index(es) ${missing.map((i) => i.indexName).join(', ')}; delete it or use another prefix`,
    );
  }

  await ensureTimeToLive(clients, tableName);
}

async function ensureAgentsTable(clients: AwsClients, tableName: string): Promise<void> {
  const { partitionKey, sortKey } = AGENTS_TABLE;
  try {
    await clients.dynamodb.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: partitionKey.name, AttributeType: partitionKey.type },
          { AttributeName: sortKey.name, AttributeType: sortKey.type },
        ],
        KeySchema: [
          { AttributeName: partitionKey.name, KeyType: 'HASH' },
          { AttributeName: sortKey.name, KeyType: 'RANGE' },
        ],
      }),
    );
  } catch (err) {
    if (errorName(err) !== 'ResourceInUseException') throw err;
  }
  await waitForActiveTable(clients, tableName);
}

async function ensureSlotsTable(clients: AwsClients, tableName: string): Promise<void> {
  try {
    await clients.dynamodb.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: SLOTS_TABLE.partitionKey.name, AttributeType: SLOTS_TABLE.partitionKey.type },
        ],
        KeySchema: [{ AttributeName: SLOTS_TABLE.partitionKey.name, KeyType: 'HASH' }],
      }),
    );
  } catch (err) {
    if (errorName(err) !== 'ResourceInUseException') throw err;
  }
  await waitForActiveTable(clients, tableName);
}

async function waitForActiveTable(clients: AwsClients, tableName: string): Promise<TableDescription> {
  const deadline = Date.now() + TABLE_ACTIVE_DEADLINE_MS;
  for (;;) {
    const { Table: table } = await clients.dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
    const indexesActive = (table?.GlobalSecondaryIndexes ?? []).every((i) => i.IndexStatus === 'ACTIVE');
    if (table && table.TableStatus === 'ACTIVE' && indexesActive) return table;
    if (Date.now() > deadline) {
      throw new Error(
        `table ${tableName} not ACTIVE after ${TABLE_ACTIVE_DEADLINE_MS} ms (${table?.TableStatus})`,
      );
    }
    await delay(TABLE_POLL_MS);
  }
}

async function ensureTimeToLive(clients: AwsClients, tableName: string): Promise<void> {
  const attributeName = JOBS_TABLE.timeToLiveAttribute;
  const { TimeToLiveDescription: ttl } = await clients.dynamodb.send(
    new DescribeTimeToLiveCommand({ TableName: tableName }),
  );
  // AWS rejects enabling TTL twice, so an existing setting is left alone.
  if (ttl?.TimeToLiveStatus === 'ENABLED' || ttl?.TimeToLiveStatus === 'ENABLING') return;
  try {
    await clients.dynamodb.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: attributeName, Enabled: true },
      }),
    );
  } catch (err) {
    // dynalite has no UpdateTimeToLive. Locally nothing relies on expiry: records just stay.
    if (errorName(err) !== 'UnknownOperationException') throw err;
  }
}

async function ensureQueuePair(
  clients: AwsClients,
  def: QueueDefinition,
): Promise<{ key: string; url: string; deadLetterUrl: string }> {
  const retention = String(def.messageRetentionSeconds);
  const deadLetterUrl = await ensureQueue(clients, def.deadLetterQueueName, {
    MessageRetentionPeriod: retention,
  });
  const { Attributes: dlqAttributes } = await clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: deadLetterUrl, AttributeNames: ['QueueArn'] }),
  );
  const deadLetterArn = dlqAttributes?.QueueArn;
  if (!deadLetterArn) throw new Error(`queue ${def.deadLetterQueueName} has no QueueArn`);

  const url = await ensureQueue(clients, def.queueName, {
    VisibilityTimeout: String(def.visibilityTimeoutSeconds),
    MessageRetentionPeriod: retention,
    RedrivePolicy: JSON.stringify({
      deadLetterTargetArn: deadLetterArn,
      maxReceiveCount: def.maxReceiveCount,
    }),
  });
  return { key: queueKey(def.pool, def.priority), url, deadLetterUrl };
}

/**
 * The SDK names this error QueueNameExists when AWS sends the query-compatible code
 * QueueAlreadyExists; fauxqs sends `AWS.SimpleQueueService.QueueNameExists`, which the SDK cannot
 * map, so the error surfaces under that raw code.
 */
const QUEUE_EXISTS_ERRORS = new Set([
  'QueueNameExists',
  'QueueAlreadyExists',
  'AWS.SimpleQueueService.QueueNameExists',
]);

async function ensureQueue(
  clients: AwsClients,
  name: string,
  attributes: Partial<Record<QueueAttributeName, string>>,
): Promise<string> {
  try {
    const { QueueUrl } = await clients.sqs.send(
      new CreateQueueCommand({ QueueName: name, Attributes: attributes }),
    );
    if (!QueueUrl) throw new Error(`CreateQueue ${name} returned no URL`);
    return QueueUrl;
  } catch (err) {
    // CreateQueue is idempotent only for identical attributes; a changed config updates the queue instead.
    if (!QUEUE_EXISTS_ERRORS.has(errorName(err) ?? '')) throw err;
  }
  const { QueueUrl } = await clients.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
  if (!QueueUrl) throw new Error(`GetQueueUrl ${name} returned no URL`);
  await clients.sqs.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: attributes }));
  return QueueUrl;
}

async function ensureBucket(clients: AwsClients, bucketName: string): Promise<void> {
  const region = await clients.s3.config.region();
  try {
    await clients.s3.send(
      new CreateBucketCommand({
        Bucket: bucketName,
        // us-east-1 is the one region that rejects an explicit LocationConstraint.
        ...(region === 'us-east-1'
          ? {}
          : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } }),
      }),
    );
  } catch (err) {
    const name = errorName(err);
    if (name === 'BucketAlreadyOwnedByYou') return;
    if (name !== 'BucketAlreadyExists') throw err;
    // s3rver answers BucketAlreadyExists even to the owner; HeadBucket tells "ours" from "someone else's".
    await clients.s3.send(new HeadBucketCommand({ Bucket: bucketName }));
  }
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
