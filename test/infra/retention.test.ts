/**
 * The retention construct in a stack of its own, beside the project's jobs table, artifacts bucket
 * and alarm topic as stand-ins, synthesized with the cdk-nag AwsSolutions checks (which fail the
 * synth on any unacknowledged finding).
 */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { App, Duration, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import { AwsSolutionsChecks, type NagPack } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { parseRetentionConfig, RETENTION_TAGS, type RetentionConfigInput } from '../../core/retention';
import { Alerting } from '../../infra/constructs/alerting';
import { ArtifactStore } from '../../infra/constructs/artifact-store';
import { JobStore } from '../../infra/constructs/job-store';
import { RETENTION_ENTRY, Retention, type RetentionProps } from '../../infra/constructs/retention';
import { REPO_ROOT } from '../../infra/paths';
import { makeMetrics } from '../../lambdas/observability';
import { addRetentionMetrics, RETENTION_METRIC, RETENTION_SERVICE } from '../../lambdas/retention/metrics';
import type { RetentionReport } from '../../lambdas/retention/run';
import { RETENTION_ENV } from '../../lambdas/retention/settings';
import {
  actionsOf,
  CDK_JSON,
  type CfnResource,
  propOf,
  resourcesOf,
  resourcesOfType,
  type Statement,
  statementsOfRole,
} from './synth';

const PREFIX = 'kiln';

function stubSourceRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'kiln-retention-src-'));
  mkdirSync(dirname(join(root, RETENTION_ENTRY)), { recursive: true });
  writeFileSync(join(root, RETENTION_ENTRY), 'export const handler = async () => undefined;\n');
  copyFileSync(join(REPO_ROOT, 'package-lock.json'), join(root, 'package-lock.json'));
  return root;
}

interface Built {
  app: App;
  stack: Stack;
  retention: Retention;
  resources: Record<string, CfnResource>;
  id: (construct: IConstruct) => string;
}

function build(
  overrides: Partial<Omit<RetentionProps, 'retention'>> & { retention?: RetentionConfigInput } = {},
  stackProps: StackProps = {},
): Built {
  const app = new App({
    outdir: mkdtempSync(join(tmpdir(), 'kiln-retention-out-')),
    context: { ...CDK_JSON.context, 'aws:cdk:bundling-stacks': [] },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  const stack = new Stack(app, 'RetentionTest', stackProps);
  const jobs = new JobStore(stack, 'Jobs', { prefix: PREFIX });
  const artifacts = new ArtifactStore(stack, 'Artifacts', { prefix: PREFIX });
  const alerting = new Alerting(stack, 'Alerting', { prefix: PREFIX });
  const retention = new Retention(stack, 'Retention', {
    prefix: PREFIX,
    sourceRoot: stubSourceRoot(),
    table: jobs.table,
    bucket: artifacts.bucket,
    eventBus: jobs.eventBus,
    environment: { KILN_CONFIG: '{}', KILN_TABLE_NAME: 't', KILN_BUCKET_NAME: 'b' },
    retention: { regions: ['eu-west-1'] },
    alarmTopic: alerting.alarmTopic,
    ...overrides,
  });
  // Throws with the cdk-nag report if any finding is left unacknowledged.
  app.synth();
  const resources = Template.fromStack(stack).toJSON().Resources as Record<string, CfnResource>;
  const id = (construct: IConstruct) =>
    stack.resolve((construct.node.defaultChild as unknown as { logicalId: string }).logicalId) as string;
  return { app, stack, retention, resources, id };
}

const sorted = (items: unknown[]) =>
  [...items].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

const only = <T>(items: T[]): T => {
  expect(items).toHaveLength(1);
  return items[0] as T;
};

const built = build();
const role = () => statementsOfRole(built.resources, built.id(built.retention.function.role));
const statementsWith = (action: string) => role().filter((st) => actionsOf(st).includes(action));

describe('retention schedule', () => {
  it('EventBridge Scheduler invokes the function daily (no dry run), through a role of its own', () => {
    const [, schedule] = only(resourcesOfType(built.resources, 'AWS::Scheduler::Schedule'));
    expect(propOf(schedule, 'ScheduleExpression')).toBe('cron(17 3 * * ? *)');
    expect(propOf(schedule, 'FlexibleTimeWindow')).toEqual({ Mode: 'OFF' });
    const target = propOf<Record<string, unknown>>(schedule, 'Target');
    expect(target.Arn).toEqual({ 'Fn::GetAtt': [built.id(built.retention.function.function), 'Arn'] });
    expect(JSON.parse(target.Input as string)).toEqual({ dryRun: false });
    expect(target.RoleArn).toEqual({ 'Fn::GetAtt': [built.id(built.retention.scheduleRole), 'Arn'] });
    expect(target.RetryPolicy).toEqual({ MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 });

    const scheduleRole = built.resources[built.id(built.retention.scheduleRole)];
    const trust = JSON.stringify(propOf(scheduleRole, 'AssumeRolePolicyDocument'));
    expect(trust).toContain('scheduler.amazonaws.com');
    expect(trust).toContain('aws:SourceAccount');
    const grants = statementsOfRole(built.resources, built.id(built.retention.scheduleRole));
    expect(grants.flatMap(actionsOf)).toEqual(['lambda:InvokeFunction']);
  });

  it('takes another schedule, and can run in dry-run mode only', () => {
    const b = build({ schedule: scheduler.ScheduleExpression.rate(Duration.hours(6)), dryRun: true });
    const [, schedule] = only(resourcesOfType(b.resources, 'AWS::Scheduler::Schedule'));
    expect(propOf(schedule, 'ScheduleExpression')).toBe('rate(6 hours)');
    expect(JSON.parse(propOf<{ Input: string }>(schedule, 'Target').Input)).toEqual({ dryRun: true });
  });

  it('the function gets the retention settings, 15 minutes, and no Lambda-level retry', () => {
    const fn = built.resources[built.id(built.retention.function.function)];
    expect(propOf(fn, 'Timeout')).toBe(900);
    const env = propOf<{ Variables: Record<string, string> }>(fn, 'Environment').Variables;
    expect(JSON.parse(env[RETENTION_ENV.config] as string)).toEqual(
      parseRetentionConfig({ regions: ['eu-west-1'] }),
    );
    expect(env.KILN_CONFIG).toBe('{}');
    const [, invokeConfig] = only(resourcesOfType(built.resources, 'AWS::Lambda::EventInvokeConfig'));
    expect(propOf(invokeConfig, 'MaximumRetryAttempts')).toBe(0);
  });
});

describe('retention permissions', () => {
  /** EC2 ARNs as synthesized: the stack's own region is a token, a listed one a literal. */
  const arnsFor = (...types: string[]) =>
    sorted(
      types.flatMap((type) => [
        {
          'Fn::Join': [
            '',
            ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, `::${type}/*`],
          ],
        },
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ec2:eu-west-1::${type}/*`]] },
      ]),
    );
  const ours = { StringEquals: { [`aws:ResourceTag/${RETENTION_TAGS.deployment}`]: PREFIX } };

  it('deregisters and deletes only images and snapshots tagged with this deployment, in its regions', () => {
    const deregister = only(statementsWith('ec2:DeregisterImage').filter((st) => st.Effect === 'Allow'));
    expect(actionsOf(deregister)).toEqual(['ec2:DeregisterImage']);
    expect(sorted(resourcesOf(deregister))).toEqual(arnsFor('image'));
    expect(deregister.Condition).toEqual(ours);
    const deleteSnapshot = only(statementsWith('ec2:DeleteSnapshot').filter((st) => st.Effect === 'Allow'));
    expect(sorted(resourcesOf(deleteSnapshot))).toEqual(arnsFor('snapshot'));
    expect(deleteSnapshot.Condition).toEqual(ours);
  });

  it('may write one tag, kiln:expiring, and only on what is already this deployment’s', () => {
    const tag = only(statementsWith('ec2:CreateTags'));
    expect(sorted(resourcesOf(tag))).toEqual(arnsFor('image', 'snapshot'));
    expect(tag.Condition).toEqual({
      ...ours,
      'ForAllValues:StringEquals': { 'aws:TagKeys': [RETENTION_TAGS.expiring] },
    });
  });

  it('an explicit Deny keeps pinned images and snapshots, whatever the code decides', () => {
    const deny = only(role().filter((st) => st.Effect === 'Deny'));
    expect(actionsOf(deny).sort()).toEqual(['ec2:DeleteSnapshot', 'ec2:DeregisterImage']);
    expect(sorted(resourcesOf(deny))).toEqual(arnsFor('image', 'snapshot'));
    expect(deny.Condition).toEqual({
      Null: { [`aws:ResourceTag/${RETENTION_TAGS.keep}`]: 'false' },
      StringNotEqualsIgnoreCase: { [`aws:ResourceTag/${RETENTION_TAGS.keep}`]: 'false' },
    });
  });

  it('deletes S3 objects only under artifacts/, lists only that prefix, reads none', () => {
    const bucket = built.id(
      built.retention.node.scope?.node.findChild('Artifacts').node.findChild('Bucket') as IConstruct,
    );
    const del = only(statementsWith('s3:DeleteObject'));
    expect(actionsOf(del)).toEqual(['s3:DeleteObject']);
    expect(resourcesOf(del)).toEqual([
      { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucket, 'Arn'] }, '/artifacts/*']] },
    ]);
    const list = only(statementsWith('s3:ListBucket'));
    expect(resourcesOf(list)).toEqual([{ 'Fn::GetAtt': [bucket, 'Arn'] }]);
    expect(list.Condition).toEqual({ StringLike: { 's3:prefix': ['artifacts/*'] } });
  });

  it('updates jobs only in the jobs table, queries only its byStatus index', () => {
    const table = built.id(
      built.retention.node.scope?.node.findChild('Jobs').node.findChild('Table') as IConstruct,
    );
    const update = only(statementsWith('dynamodb:UpdateItem'));
    expect(actionsOf(update).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    expect(resourcesOf(update)).toEqual([{ 'Fn::GetAtt': [table, 'Arn'] }]);
    const query = only(statementsWith('dynamodb:Query'));
    expect(resourcesOf(query)).toEqual([
      { 'Fn::Join': ['', [{ 'Fn::GetAtt': [table, 'Arn'] }, '/index/byStatus']] },
    ]);
  });

  it('announces EXPIRED on the job events bus, and only there', () => {
    const bus = built.id(
      built.retention.node.scope?.node.findChild('Jobs').node.findChild('Events') as IConstruct,
    );
    const put = only(statementsWith('events:PutEvents'));
    expect(actionsOf(put)).toEqual(['events:PutEvents']);
    expect(resourcesOf(put)).toEqual([{ 'Fn::GetAtt': [bus, 'Arn'] }]);
  });

  it('holds nothing else: every action is listed here, and only Describe calls use "*"', () => {
    const allowed = role()
      .filter((st) => st.Effect === 'Allow')
      .flatMap(actionsOf)
      .sort();
    expect([...new Set(allowed)]).toEqual([
      'dynamodb:GetItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
      'ec2:CreateTags',
      'ec2:DeleteSnapshot',
      'ec2:DeregisterImage',
      'ec2:DescribeImages',
      'ec2:DescribeSnapshots',
      'events:PutEvents',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      's3:DeleteObject',
      's3:ListBucket',
    ]);
    for (const st of role()) {
      if (!resourcesOf(st).includes('*')) continue;
      for (const action of actionsOf(st)) expect(action).toMatch(/^ec2:Describe(Images|Snapshots)$/);
    }
  });

  it('a stack in a concrete region listed again in the config gets each region once', () => {
    const b = build({ retention: { regions: ['us-east-1', 'eu-west-1'] } }, { env: { region: 'us-east-1' } });
    expect(b.retention.regions).toEqual(['us-east-1', 'eu-west-1']);
    const statements = statementsOfRole(b.resources, b.id(b.retention.function.role));
    const deregister = only(
      statements.filter(
        (st: Statement) => st.Effect === 'Allow' && actionsOf(st).includes('ec2:DeregisterImage'),
      ),
    );
    expect(resourcesOf(deregister)).toHaveLength(2);
  });
});

describe('retention alarms', () => {
  const alarms = () =>
    Object.fromEntries(
      resourcesOfType(built.resources, 'AWS::CloudWatch::Alarm').map(([, a]) => [
        propOf<string>(a, 'AlarmName'),
        a,
      ]),
    );
  const topic = () => ({
    Ref: built.id(
      built.retention.node.scope?.node.findChild('Alerting').node.findChild('AlarmTopic') as IConstruct,
    ),
  });

  it('fires on any failed step or listing (the function’s own metric) or a crash, and notifies the topic', () => {
    const alarm = alarms()[`${PREFIX}-retention-failures`];
    expect(propOf(alarm, 'Threshold')).toBe(1);
    expect(propOf(alarm, 'ComparisonOperator')).toBe('GreaterThanOrEqualToThreshold');
    expect(propOf(alarm, 'AlarmActions')).toEqual([topic()]);
    const metrics = propOf<Array<Record<string, unknown>>>(alarm, 'Metrics');
    expect(metrics.find((m) => m.ReturnData !== false)?.Expression).toBe('FILL(failed, 0) + FILL(errors, 0)');
    const failed = metrics.find((m) => m.Id === 'failed')?.MetricStat as {
      Metric: unknown;
      Stat: string;
      Period: number;
    };
    expect(failed).toEqual({
      Metric: {
        Namespace: 'Kiln',
        MetricName: RETENTION_METRIC.failed,
        Dimensions: [{ Name: 'service', Value: RETENTION_SERVICE }],
      },
      Stat: 'Sum',
      Period: 86_400,
    });
    const errors = metrics.find((m) => m.Id === 'errors')?.MetricStat as {
      Metric: { MetricName: string; Dimensions: unknown };
    };
    expect(errors.Metric.MetricName).toBe('Errors');
    expect(errors.Metric.Dimensions).toEqual([
      { Name: 'FunctionName', Value: { Ref: built.id(built.retention.function.function) } },
    ]);
  });

  it('fires when no run has reported for two days', () => {
    const alarm = alarms()[`${PREFIX}-retention-not-running`];
    expect(propOf(alarm, 'MetricName')).toBe(RETENTION_METRIC.planned);
    expect(propOf(alarm, 'Namespace')).toBe('Kiln');
    expect(propOf(alarm, 'Statistic')).toBe('SampleCount');
    expect(propOf(alarm, 'EvaluationPeriods')).toBe(2);
    expect(propOf(alarm, 'TreatMissingData')).toBe('breaching');
    expect(propOf(alarm, 'ComparisonOperator')).toBe('LessThanThreshold');
  });

  it('reads exactly what the function emits: namespace, service dimension, metric names', () => {
    const metrics = makeMetrics(RETENTION_SERVICE);
    const report = {
      planned: 3,
      deleted: 2,
      failed: 1,
      jobsExpired: 1,
      plan: { deferred: 0 },
    } as unknown as RetentionReport;
    addRetentionMetrics(metrics, report);
    const emf = metrics.serializeMetrics() as unknown as {
      _aws: {
        CloudWatchMetrics: Array<{
          Namespace: string;
          Dimensions: string[][];
          Metrics: Array<{ Name: string }>;
        }>;
      };
      service: string;
      [name: string]: unknown;
    };
    const [directive] = emf._aws.CloudWatchMetrics;
    expect(directive?.Namespace).toBe('Kiln');
    expect(directive?.Dimensions).toEqual([['service']]);
    expect(emf.service).toBe(RETENTION_SERVICE);
    expect(directive?.Metrics.map((m) => m.Name).sort()).toEqual(Object.values(RETENTION_METRIC).sort());
    expect(emf[RETENTION_METRIC.failed]).toBe(1);
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('passes, and every acknowledgement in the construct answers a finding there', () => {
    const report = new AwsSolutionsChecks().validateScope(built.app);
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
    const pack = new AwsSolutionsChecks() as unknown as { isAcknowledged: () => boolean };
    pack.isAcknowledged = () => false;
    const raw = (pack as unknown as NagPack)
      .validateScope(built.app)
      .violations.flatMap((v) =>
        v.violatingResources.map((r) => ({ id: v.ruleName, path: r.constructPath ?? '' })),
      );
    const acknowledgements: Array<{ id: string; path: string }> = [];
    const visit = (c: IConstruct) => {
      for (const entry of c.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const key of Object.keys(entry.data as Record<string, string>)) {
          const id = key.replace(/^annotation::/i, '');
          if (id.startsWith('AwsSolutions-')) acknowledgements.push({ id, path: c.node.path });
        }
      }
      for (const child of c.node.children) visit(child);
    };
    visit(built.retention);
    expect(acknowledgements.length).toBeGreaterThan(0);
    for (const ack of acknowledgements) {
      expect(
        raw.some((f) => f.id === ack.id && (f.path === ack.path || f.path.startsWith(`${ack.path}/`))),
        `${ack.id} at ${ack.path}`,
      ).toBe(true);
    }
  });
});
