import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config';
import { queueDefinitions, queueKey } from '../../infra/definitions';
import { JOB_OUTCOME_SOURCES, METRIC, METRICS_NAMESPACE } from '../../infra/metrics';
import {
  type CfnResource,
  logicalIdOf,
  propOf,
  resourcesOfType,
  type Synthesized,
  synthesize,
} from './synth';

let s: Synthesized;
beforeAll(() => {
  s = synthesize();
});

const config = parseConfig({});

interface AlarmQuery {
  Id: string;
  Expression?: string;
  ReturnData?: boolean;
  MetricStat?: {
    Metric: { Namespace: string; MetricName: string; Dimensions?: Array<{ Name: string; Value: unknown }> };
    Period: number;
    Stat: string;
  };
}

function alarmNamed(name: string): CfnResource {
  const found = resourcesOfType(s.resources, 'AWS::CloudWatch::Alarm').find(
    ([, a]) => a.Properties?.AlarmName === name,
  );
  if (!found) throw new Error(`no alarm ${name}`);
  return found[1];
}

function queries(alarm: CfnResource): Map<string, AlarmQuery> {
  return new Map(propOf<AlarmQuery[]>(alarm, 'Metrics').map((q) => [q.Id, q]));
}

function returned(alarm: CfnResource): AlarmQuery {
  const q = propOf<AlarmQuery[]>(alarm, 'Metrics').find((m) => m.ReturnData !== false);
  if (!q) throw new Error('alarm returns nothing');
  return q;
}

describe('job error rate alarm', () => {
  it('divides failed by finished (failed + succeeded) jobs over 30 minutes', () => {
    const alarm = alarmNamed(`${config.prefix}-job-error-rate`);
    expect(returned(alarm).Expression).toBe(
      'IF((failed + succeeded) >= 3, 100 * failed / (failed + succeeded), 0)',
    );
    expect(alarm.Properties).toMatchObject({ Threshold: 10, ComparisonOperator: 'GreaterThanThreshold' });
    const q = queries(alarm);
    const sum = (prefix: string, n: number) =>
      `(${Array.from({ length: n }, (_, i) => `FILL(${prefix}${i}, 0)`).join(' + ')})`;
    expect(q.get('failed')?.Expression).toBe(sum('failed', JOB_OUTCOME_SOURCES[METRIC.jobsFailed].length));
    expect(q.get('succeeded')?.Expression).toBe(
      sum('succeeded', JOB_OUTCOME_SOURCES[METRIC.jobsSucceeded].length),
    );
    const read = (prefix: string) =>
      [...q.values()]
        .filter((m) => m.Id.startsWith(prefix) && m.MetricStat)
        .map((m) => ({
          namespace: m.MetricStat?.Metric.Namespace,
          name: m.MetricStat?.Metric.MetricName,
          service: m.MetricStat?.Metric.Dimensions,
          period: m.MetricStat?.Period,
          stat: m.MetricStat?.Stat,
        }));
    expect(read('failed')).toEqual(
      JOB_OUTCOME_SOURCES[METRIC.jobsFailed].map((service) => ({
        namespace: METRICS_NAMESPACE,
        name: 'JobsFailed',
        service: [{ Name: 'service', Value: service }],
        period: 1800,
        stat: 'Sum',
      })),
    );
    expect(read('succeeded')).toEqual(
      ['kiln-agent', 'kiln-register'].map((service) => ({
        namespace: 'Kiln',
        name: 'JobsSucceeded',
        service: [{ Name: 'service', Value: service }],
        period: 1800,
        stat: 'Sum',
      })),
    );
  });
});

describe('queue alarms', () => {
  const definitions = queueDefinitions(config);

  it.each(definitions.map((d) => [d.queueName, d] as const))(
    '%s alarms when a visible job is older than 15 minutes',
    (_name, def) => {
      const alarm = alarmNamed(`${config.prefix}-queued-age-${def.pool}-${def.priority}`);
      expect(returned(alarm).Expression).toBe('IF(visible > 0, age, 0)');
      expect(alarm.Properties).toMatchObject({ Threshold: 900, EvaluationPeriods: 5, DatapointsToAlarm: 5 });
      const q = queries(alarm);
      const queue = s.stack.queues.all.find((x) => x.definition.queueName === def.queueName)?.queue;
      const dimension = [
        { Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalIdOf(queue as never, s), 'QueueName'] } },
      ];
      expect(q.get('visible')?.MetricStat?.Metric).toEqual({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: dimension,
      });
      expect(q.get('age')?.MetricStat?.Metric).toEqual({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateAgeOfOldestMessage',
        Dimensions: dimension,
      });
    },
  );

  it.each(definitions.map((d) => [d.deadLetterQueueName, d] as const))(
    '%s alarms as soon as a message reaches it',
    (_name, def) => {
      const alarm = alarmNamed(`${config.prefix}-dead-letters-${def.pool}-${def.priority}`);
      expect(returned(alarm).Expression).toBe('FILL(visible, 0) + FILL(inFlight, 0) + FILL(received, 0)');
      expect(alarm.Properties).toMatchObject({ Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
      const dlq = s.stack.queues.all.find((x) => x.definition.queueName === def.queueName)?.deadLetterQueue;
      const q = queries(alarm);
      for (const [id, metricName] of [
        ['visible', 'ApproximateNumberOfMessagesVisible'],
        ['inFlight', 'ApproximateNumberOfMessagesNotVisible'],
        ['received', 'NumberOfMessagesReceived'],
      ] as const) {
        expect(q.get(id)?.MetricStat?.Metric).toEqual({
          Namespace: 'AWS/SQS',
          MetricName: metricName,
          Dimensions: [
            { Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalIdOf(dlq as never, s), 'QueueName'] } },
          ],
        });
      }
    },
  );

  it('exist once per queue', () => {
    expect([...s.stack.monitoring.queuedAge.keys()].sort()).toEqual(
      definitions.map((d) => queueKey(d.pool, d.priority)).sort(),
    );
    expect(s.stack.monitoring.deadLetters.size).toBe(definitions.length);
  });
});

describe('API 5xx alarm', () => {
  it('divides 5xx responses by requests of this API', () => {
    const alarm = alarmNamed(`${config.prefix}-api-5xx-rate`);
    expect(returned(alarm).Expression).toBe(
      'IF(FILL(requests, 0) >= 10, 100 * FILL(errors, 0) / requests, 0)',
    );
    const q = queries(alarm);
    const api = { Name: 'ApiId', Value: { Ref: logicalIdOf(s.stack.api.httpApi, s) } };
    expect(q.get('requests')?.MetricStat?.Metric).toEqual({
      Namespace: 'AWS/ApiGateway',
      MetricName: 'Count',
      Dimensions: [api],
    });
    expect(q.get('errors')?.MetricStat?.Metric).toEqual({
      Namespace: 'AWS/ApiGateway',
      MetricName: '5xx',
      Dimensions: [api],
    });
    expect(alarm.Properties).toMatchObject({ Threshold: 5 });
  });
});

describe('queue wait alarm', () => {
  it('watches the 95th percentile of QueueWaitSeconds', () => {
    const alarm = alarmNamed(`${config.prefix}-queue-wait-p95`);
    expect(returned(alarm).MetricStat).toEqual({
      Metric: {
        Namespace: 'Kiln',
        MetricName: 'QueueWaitSeconds',
        Dimensions: [{ Name: 'service', Value: 'kiln-agent' }],
      },
      Period: 900,
      Stat: 'p95',
    });
    expect(alarm.Properties?.Threshold).toBe(600);
  });
});

describe('alarm notifications', () => {
  it('every SLI alarm notifies the alarm topic when it fires and when it clears', () => {
    const topic = { Ref: logicalIdOf(s.stack.alerting.alarmTopic, s) };
    const sli = resourcesOfType(s.resources, 'AWS::CloudWatch::Alarm').filter(
      ([, a]) => a.Properties?.AlarmName,
    );
    // Error rate, API 5xx, oldest message per queue, DLQ not empty per queue, and retention's two
    // (failures, not running).
    expect(sli).toHaveLength(3 + 2 * queueDefinitions(config).length + 2);
    for (const [id, alarm] of sli) {
      expect(alarm.Properties?.AlarmActions, id).toEqual([topic]);
      expect(alarm.Properties?.OKActions, id).toEqual([topic]);
    }
  });

  it('topics are encrypted with a rotated customer managed key CloudWatch may use', () => {
    const key = logicalIdOf(s.stack.alerting.key, s);
    for (const [, topic] of resourcesOfType(s.resources, 'AWS::SNS::Topic')) {
      expect(topic.Properties?.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [key, 'Arn'] });
    }
    const props = s.resources[key]?.Properties ?? {};
    expect(props.EnableKeyRotation).toBe(true);
    const statements = (props.KeyPolicy as { Statement: Array<Record<string, unknown>> }).Statement;
    expect(statements).toContainEqual(
      expect.objectContaining({
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      }),
    );
  });
});

describe('alarm topic policy', () => {
  it('lets CloudWatch alarms of this account publish, over TLS only', () => {
    const topic = { Ref: logicalIdOf(s.stack.alerting.alarmTopic, s) };
    const [, policy] = resourcesOfType(s.resources, 'AWS::SNS::TopicPolicy').find(
      ([, p]) => JSON.stringify(p.Properties?.Topics) === JSON.stringify([topic]),
    ) as [string, CfnResource];
    const statements = propOf<{ Statement: Array<Record<string, unknown>> }>(
      policy,
      'PolicyDocument',
    ).Statement;
    expect(statements).toContainEqual(
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: 'sns:Publish',
        Resource: topic,
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
  });
});

describe('dashboard and outputs', () => {
  it('has one dashboard', () => {
    const dashboards = resourcesOfType(s.resources, 'AWS::CloudWatch::Dashboard');
    expect(dashboards).toHaveLength(1);
    expect(dashboards[0]?.[1].Properties?.DashboardName).toBe(`${config.prefix}-pipeline`);
  });

  it('outputs the API URL, bucket, table and dashboard URL', () => {
    const outputs = s.template.toJSON().Outputs as Record<string, { Value: unknown }>;
    expect(Object.keys(outputs)).toEqual(
      expect.arrayContaining(['ApiUrl', 'ArtifactsBucketName', 'JobsTableName', 'DashboardUrl']),
    );
    expect(JSON.stringify(outputs.ApiUrl?.Value)).toContain('.execute-api.');
    expect(JSON.stringify(outputs.DashboardUrl?.Value)).toContain('#dashboards:name=');
  });
});
