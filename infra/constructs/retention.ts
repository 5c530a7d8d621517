import { Aws, Duration, Stack, Token } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import {
  parseRetentionConfig,
  RETENTION_TAGS,
  type RetentionConfig,
  type RetentionConfigInput,
} from '../../core/retention';
import { S3_LAYOUT } from '../../lambdas/api/routes';
import { METRICS_NAMESPACE } from '../../lambdas/observability';
import { RETENTION_METRIC, RETENTION_SERVICE } from '../../lambdas/retention/metrics';
import { RETENTION_ENV } from '../../lambdas/retention/settings';
import { JOBS_TABLE } from '../definitions';
import { acknowledge, arnFinding } from '../nag';
import { KilnFunction } from './kiln-function';

/** Entry of the retention function, relative to the source root. */
export const RETENTION_ENTRY = 'lambdas/entry/retention.ts';

/** The jobs-table index the run lists SUCCEEDED jobs from. */
const STATUS_INDEX = 'byStatus';

export interface RetentionProps {
  /** The deployment id: the `kiln:deployment` tag value on everything it owns (config.prefix). */
  readonly prefix: string;
  /** Repository root holding the entry and package-lock.json. */
  readonly sourceRoot: string;
  /** The jobs table: SUCCEEDED jobs are listed and marked EXPIRED. */
  readonly table: dynamodb.ITable;
  /** The artifacts bucket: objects under `artifacts/` are listed and deleted. */
  readonly bucket: s3.IBucket;
  /**
   * The job events bus: marking a job EXPIRED is announced there, like every transition (the
   * function publishes when the environment names the bus). @default - no events published
   */
  readonly eventBus?: events.IEventBus;
  /** The shared function environment (KILN_CONFIG, KILN_TABLE_NAME, KILN_BUCKET_NAME, …). */
  readonly environment: Readonly<Record<string, string>>;
  /** Retention settings (core/retention.ts). @default the defaults there: 3/14/14 days, home region only */
  readonly retention?: RetentionConfigInput;
  /** When the cleanup runs. @default daily at 03:17 UTC */
  readonly schedule?: scheduler.ScheduleExpression;
  /** Scheduled runs only plan and report; nothing is deleted. @default false */
  readonly dryRun?: boolean;
  /** @default Duration.minutes(15): a run stops starting steps a minute before it, the next finishes */
  readonly timeout?: Duration;
  /** Notified when the alarms change state. @default - no notification */
  readonly alarmTopic?: sns.ITopic;
  /** Window of the failure alarm; match it to the schedule. @default Duration.days(1) */
  readonly alarmPeriod?: Duration;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

const DEFAULTS = {
  schedule: scheduler.ScheduleExpression.cron({ minute: '17', hour: '3' }),
  timeout: Duration.minutes(15),
  alarmPeriod: Duration.days(1),
} as const;

/**
 * The scheduled cleanup: an EventBridge Scheduler schedule invoking the retention function, whose
 * role may delete only what carries this deployment's tag (and never what carries a pin), and two
 * alarms: a run that failed anything, and a cleanup that stopped running.
 */
export class Retention extends Construct {
  readonly function: KilnFunction;
  readonly schedule: scheduler.Schedule;
  readonly scheduleRole: iam.Role;
  /** Any failed step, failed listing or function error. */
  readonly failureAlarm: cloudwatch.Alarm;
  /** No run reported for two alarm periods. */
  readonly notRunningAlarm: cloudwatch.Alarm;
  readonly config: RetentionConfig;

  constructor(scope: Construct, id: string, props: RetentionProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.config = parseRetentionConfig(props.retention ?? {});

    this.function = new KilnFunction(this, 'Function', {
      entry: RETENTION_ENTRY,
      sourceRoot: props.sourceRoot,
      description: 'expires old images, snapshots and artifacts',
      environment: { ...props.environment, [RETENTION_ENV.config]: JSON.stringify(this.config) },
      timeout: props.timeout ?? DEFAULTS.timeout,
      ...(props.logRetention ? { logRetention: props.logRetention } : {}),
    });
    // A failed run is finished by the next scheduled one; a Lambda retry would only overlap it.
    this.function.function.configureAsyncInvoke({ retryAttempts: 0 });
    this.grant(props, stack);

    // A role of its own (rather than the stack-wide one the target would make), trusted only by
    // this account's schedules, so its one grant is acknowledged where it is made.
    this.scheduleRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: 'Kiln: lets EventBridge Scheduler start the retention cleanup',
    });
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: `Kiln ${props.prefix}: expire old images, snapshots and artifacts`,
      schedule: props.schedule ?? DEFAULTS.schedule,
      target: new targets.LambdaInvoke(this.function.function, {
        role: this.scheduleRole,
        input: scheduler.ScheduleTargetInput.fromObject({ dryRun: props.dryRun ?? false }),
        // Only throttles and service errors get here: the run itself is idempotent.
        retryAttempts: 2,
        maxEventAge: Duration.hours(1),
      }),
    });

    this.acknowledgeScheduleRole();

    const period = props.alarmPeriod ?? DEFAULTS.alarmPeriod;
    const metric = (metricName: string, statistic = 'Sum') =>
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { service: RETENTION_SERVICE },
        statistic,
        period,
      });
    this.failureAlarm = new cloudwatch.Alarm(this, 'Failures', {
      alarmName: `${props.prefix}-retention-failures`,
      alarmDescription:
        'The retention cleanup failed a deletion or a listing, or crashed. See docs/retention.md; the next run retries.',
      metric: new cloudwatch.MathExpression({
        label: 'Retention failures',
        expression: 'FILL(failed, 0) + FILL(errors, 0)',
        usingMetrics: {
          failed: metric(RETENTION_METRIC.failed),
          errors: this.function.function.metricErrors({ period, statistic: 'Sum' }),
        },
        period,
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    // Every run (dry runs too) reports what it planned; silence means the schedule or the function broke.
    this.notRunningAlarm = new cloudwatch.Alarm(this, 'NotRunning', {
      alarmName: `${props.prefix}-retention-not-running`,
      alarmDescription: `The retention cleanup has reported no run for ${2 * period.toHours()} hours: images and snapshots pile up towards the account's limits.`,
      metric: metric(RETENTION_METRIC.planned, 'SampleCount'),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 2,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    if (props.alarmTopic) {
      const action = new cwActions.SnsAction(props.alarmTopic);
      for (const alarm of [this.failureAlarm, this.notRunningAlarm]) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
  }

  /** Regions the run lists and deletes in: the stack's own and the configured ones. */
  get regions(): string[] {
    const home = Stack.of(this).region;
    return [home, ...this.config.regions.filter((r) => Token.isUnresolved(home) || r !== home)];
  }

  private grant(props: RetentionProps, stack: Stack): void {
    const role = this.function.role;
    const arnsOf = (resource: 'image' | 'snapshot') =>
      this.regions.map((region) =>
        stack.formatArn({ service: 'ec2', region, account: '', resource, resourceName: '*' }),
      );
    const images = arnsOf('image');
    const snapshots = arnsOf('snapshot');
    const ours = { StringEquals: { [`aws:ResourceTag/${RETENTION_TAGS.deployment}`]: props.prefix } };

    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ListImagesAndSnapshots',
        actions: ['ec2:DescribeImages', 'ec2:DescribeSnapshots'],
        resources: ['*'],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'DeleteOnlyThisDeploymentsImages',
        actions: ['ec2:DeregisterImage'],
        resources: images,
        conditions: ours,
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'DeleteOnlyThisDeploymentsSnapshots',
        actions: ['ec2:DeleteSnapshot'],
        resources: snapshots,
        conditions: ours,
      }),
    );
    // The run marks what it is about to delete, so a run that dies is finished by the next; this
    // is the only tag it may write, and only on what is already the deployment's.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'MarkExpiring',
        actions: ['ec2:CreateTags'],
        resources: [...images, ...snapshots],
        conditions: {
          ...ours,
          'ForAllValues:StringEquals': { 'aws:TagKeys': [RETENTION_TAGS.expiring] },
        },
      }),
    );
    // Whatever the code decides, IAM refuses to delete a pinned image or snapshot (a pin is any
    // value but "false", as in core/retention.ts; IAM cannot trim, so " false" pins here too).
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'NeverDeletePinned',
        effect: iam.Effect.DENY,
        actions: ['ec2:DeregisterImage', 'ec2:DeleteSnapshot'],
        resources: [...images, ...snapshots],
        conditions: {
          Null: { [`aws:ResourceTag/${RETENTION_TAGS.keep}`]: 'false' },
          StringNotEqualsIgnoreCase: { [`aws:ResourceTag/${RETENTION_TAGS.keep}`]: 'false' },
        },
      }),
    );

    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ListArtifacts',
        actions: ['s3:ListBucket'],
        resources: [props.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${S3_LAYOUT.artifactPrefix}*`] } },
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'DeleteArtifacts',
        actions: ['s3:DeleteObject'],
        resources: [props.bucket.arnForObjects(`${S3_LAYOUT.artifactPrefix}*`)],
      }),
    );

    const index = JOBS_TABLE.globalSecondaryIndexes.find((i) => i.indexName === STATUS_INDEX);
    if (!index) throw new Error(`the jobs table has no ${STATUS_INDEX} index`);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadAndExpireJobs',
        // GetItem reads a job before the compare-and-set UpdateItem that marks it EXPIRED.
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        resources: [props.table.tableArn],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ListSucceededJobs',
        actions: ['dynamodb:Query'],
        resources: [`${props.table.tableArn}/index/${index.indexName}`],
      }),
    );
    props.eventBus?.grantPutEventsTo(role);
    this.acknowledge(props, role);
  }

  private acknowledge(props: RetentionProps, role: iam.Role): void {
    const stack = Stack.of(this);
    const finding = (arn: string) => `AwsSolutions-IAM5[Resource::${nagText(stack, arn)}]`;
    for (const region of this.regions) {
      const arnOf = (resource: string) =>
        stack.formatArn({ service: 'ec2', region, account: '', resource, resourceName: '*' });
      acknowledge(
        role,
        finding(arnOf('image')),
        `AMI ids are assigned per job; DeregisterImage and CreateTags are limited by condition to images tagged ${RETENTION_TAGS.deployment}=${props.prefix}, and pinned ones are denied.`,
      );
      acknowledge(
        role,
        finding(arnOf('snapshot')),
        `Snapshot ids are assigned by EC2; DeleteSnapshot and CreateTags are limited by condition to snapshots tagged ${RETENTION_TAGS.deployment}=${props.prefix}, and pinned ones are denied.`,
      );
    }
    acknowledge(
      role,
      'AwsSolutions-IAM5[Resource::*]',
      'ec2:DescribeImages and ec2:DescribeSnapshots support no resource-level permissions.',
    );
    acknowledge(
      role,
      finding(props.bucket.arnForObjects(`${S3_LAYOUT.artifactPrefix}*`)),
      'Retention deletes whichever expired artifact it finds; artifacts are keyed by job id, and nothing outside artifacts/ may be deleted.',
    );
  }

  /** The schedule target's grant covers the function's versions and aliases too (`arn:*`). */
  private acknowledgeScheduleRole(): void {
    acknowledge(
      this.scheduleRole,
      `AwsSolutions-IAM5[${arnFinding(this.function.function, ':*')}]`,
      'EventBridge Scheduler invokes this one function, by any version or alias (the scheduler target grant).',
    );
  }
}

/**
 * An ARN as cdk-nag prints it in a finding: references as `<AWS::Region>` or `<LogicalId.Arn>`,
 * literals as they are. Derived from the synthesized value, so a stack with a concrete region or
 * an imported bucket gets the right acknowledgement too.
 */
function nagText(stack: Stack, arn: string): string {
  const render = (value: unknown): string => {
    if (typeof value === 'string') return value;
    const v = value as Record<string, unknown>;
    if (Array.isArray(v['Fn::Join'])) {
      const [separator, parts] = v['Fn::Join'] as [string, unknown[]];
      return parts.map(render).join(separator);
    }
    if (typeof v.Ref === 'string') return `<${v.Ref}>`;
    if (Array.isArray(v['Fn::GetAtt'])) return `<${(v['Fn::GetAtt'] as string[]).join('.')}>`;
    throw new Error(`cannot render ${JSON.stringify(value)} as cdk-nag does`);
  };
  return render(stack.resolve(arn));
}
