import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config';
import { JOBS_TABLE, jobsTableName, queueDefinitions } from '../../infra/definitions';
import { logicalIdOf, resourcesOfType, type Synthesized, synthesize } from './synth';

let s: Synthesized;
beforeAll(() => {
  s = synthesize();
});

const config = parseConfig({});

describe('jobs table (agrees with JOBS_TABLE, as the local stack does)', () => {
  it('has the partition key, TTL attribute and indexes of the definition', () => {
    const tables = resourcesOfType(s.resources, 'AWS::DynamoDB::Table').filter(
      ([, t]) => t.Properties?.TableName === jobsTableName(config.prefix),
    );
    expect(tables).toHaveLength(1);
    const props = tables[0]?.[1].Properties ?? {};
    expect(props.KeySchema).toEqual([{ AttributeName: JOBS_TABLE.partitionKey.name, KeyType: 'HASH' }]);
    expect(props.TimeToLiveSpecification).toEqual({
      AttributeName: JOBS_TABLE.timeToLiveAttribute,
      Enabled: true,
    });
    const indexes = props.GlobalSecondaryIndexes as Array<Record<string, unknown>>;
    expect(indexes.map((i) => i.IndexName)).toEqual(
      JOBS_TABLE.globalSecondaryIndexes.map((i) => i.indexName),
    );
    for (const def of JOBS_TABLE.globalSecondaryIndexes) {
      expect(indexes).toContainEqual({
        IndexName: def.indexName,
        KeySchema: [
          { AttributeName: def.partitionKey.name, KeyType: 'HASH' },
          { AttributeName: def.sortKey.name, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      });
    }
    const attributes = props.AttributeDefinitions as Array<{ AttributeName: string; AttributeType: string }>;
    for (const key of [
      JOBS_TABLE.partitionKey,
      ...JOBS_TABLE.globalSecondaryIndexes.flatMap((i) => [i.partitionKey, i.sortKey]),
    ]) {
      expect(attributes).toContainEqual({ AttributeName: key.name, AttributeType: key.type });
    }
  });

  it('is on-demand, encrypted, point-in-time recoverable and kept on stack deletion', () => {
    s.template.hasResource('AWS::DynamoDB::Table', {
      Properties: {
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        // SSEEnabled without a key: the AWS managed key aws/dynamodb (KMS) instead of an AWS owned key.
        SSESpecification: { SSEEnabled: true },
        DeletionProtectionEnabled: true,
      },
      DeletionPolicy: 'Retain',
    });
  });
});

describe('queues (agree with queueDefinitions(config))', () => {
  const definitions = queueDefinitions(config);

  it('has one queue and one dead-letter queue per pool × priority, with the defined names', () => {
    const names = resourcesOfType(s.resources, 'AWS::SQS::Queue').map(([, q]) => q.Properties?.QueueName);
    expect(names.sort()).toEqual(definitions.flatMap((d) => [d.queueName, d.deadLetterQueueName]).sort());
  });

  it.each(definitions.map((d) => [d.queueName, d] as const))(
    '%s has the defined visibility, retention and redrive to its own DLQ',
    (_name, def) => {
      const q = s.stack.queues.all.find((x) => x.definition.queueName === def.queueName);
      if (!q) throw new Error(`no queue ${def.queueName}`);
      const props = s.resources[logicalIdOf(q.queue, s)]?.Properties;
      expect(props?.VisibilityTimeout).toBe(def.visibilityTimeoutSeconds);
      expect(props?.MessageRetentionPeriod).toBe(def.messageRetentionSeconds);
      expect(props?.RedrivePolicy).toEqual({
        deadLetterTargetArn: { 'Fn::GetAtt': [logicalIdOf(q.deadLetterQueue, s), 'Arn'] },
        maxReceiveCount: def.maxReceiveCount,
      });
      const dlq = s.resources[logicalIdOf(q.deadLetterQueue, s)]?.Properties;
      expect(dlq?.QueueName).toBe(def.deadLetterQueueName);
      expect(dlq?.MessageRetentionPeriod).toBe(def.messageRetentionSeconds);
    },
  );

  it('encrypts every queue and dead-letter queue and refuses requests without TLS', () => {
    const queues = resourcesOfType(s.resources, 'AWS::SQS::Queue');
    for (const [id, q] of queues) expect(q.Properties?.SqsManagedSseEnabled, id).toBe(true);
    const policies = resourcesOfType(s.resources, 'AWS::SQS::QueuePolicy').map(([, p]) =>
      JSON.stringify(p.Properties),
    );
    for (const [id] of queues) {
      const policy = policies.find((p) => p.includes(`"Ref":"${id}"`));
      expect(policy, id).toContain('"aws:SecureTransport":"false"');
    }
  });

  it('feeds every dead-letter queue to the DLQ consumer', () => {
    const mappings = resourcesOfType(s.resources, 'AWS::Lambda::EventSourceMapping').map(
      ([, m]) => m.Properties,
    );
    const consumer = logicalIdOf(s.stack.background.dlqConsumer.function, s);
    for (const q of s.stack.queues.all) {
      expect(mappings).toContainEqual(
        expect.objectContaining({
          EventSourceArn: { 'Fn::GetAtt': [logicalIdOf(q.deadLetterQueue, s), 'Arn'] },
          FunctionName: { Ref: consumer },
          FunctionResponseTypes: ['ReportBatchItemFailures'],
        }),
      );
    }
    expect(mappings).toHaveLength(s.stack.queues.all.length);
  });
});

describe('artifacts bucket', () => {
  it('blocks public access, encrypts, logs access and expires objects as a backstop', () => {
    const bucket = s.resources[logicalIdOf(s.stack.artifacts.bucket, s)]?.Properties ?? {};
    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(bucket.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
    });
    expect(bucket.LoggingConfiguration).toEqual({
      DestinationBucketName: { Ref: logicalIdOf(s.stack.artifacts.accessLogs, s) },
      LogFilePrefix: 'artifacts-bucket/',
    });
    const rules = (bucket.LifecycleConfiguration as { Rules: Array<Record<string, unknown>> }).Rules;
    expect(rules).toContainEqual(
      expect.objectContaining({ Prefix: 'artifacts/', ExpirationInDays: 30, Status: 'Enabled' }),
    );
    expect(rules).toContainEqual(expect.objectContaining({ Prefix: 'logs/', ExpirationInDays: 90 }));
    expect(rules).toContainEqual(
      expect.objectContaining({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }),
    );
  });

  it('denies requests without TLS', () => {
    const policy = resourcesOfType(s.resources, 'AWS::S3::BucketPolicy').find(
      ([, p]) =>
        JSON.stringify(p.Properties?.Bucket) ===
        JSON.stringify({ Ref: logicalIdOf(s.stack.artifacts.bucket, s) }),
    );
    expect(JSON.stringify(policy?.[1].Properties?.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
  });
});

describe('job events', () => {
  it('has an event bus for job events', () => {
    s.template.hasResourceProperties('AWS::Events::EventBus', { Name: `${config.prefix}-job-events` });
  });
});

describe('background functions', () => {
  it('runs the sweeper every minute', () => {
    s.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalIdOf(s.stack.background.sweeper.function, s), 'Arn'] },
        }),
      ],
    });
  });
});
