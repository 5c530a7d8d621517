import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { KilnConfig } from '../../core/config';
import type { ScalingSettings } from '../../core/scaling';
import { AGENTS_TABLE, agentsTableName, ENV } from '../definitions';
import { acknowledge } from '../nag';
import type { BuildPool } from './build-pool';
import { KilnFunction } from './kiln-function';

/** Entry of the fleet scaler Lambda. */
export const SCALER_ENTRY = 'lambdas/entry/scaler.ts';

/** The decision's settings, and how the scaler reads the agents (lambdas/scaler/settings.ts). */
export type ScalerSettingsInput = Partial<ScalingSettings> & {
  /** Claims over this window size the warm headroom; 0 turns it off. @default 60 */
  arrivalWindowSeconds?: number;
  /** An agent silent this long counts as never reported in. @default max(boot deadline, 4 heartbeats) */
  silenceSeconds?: number;
  /** An agent that stopped taking work this long ago has left: its instance is released. @default 2 heartbeats */
  drainGraceSeconds?: number;
};

export interface ScalerProps {
  readonly config: KilnConfig;
  readonly sourceRoot: string;
  readonly pools: readonly BuildPool[];
  /** The functions' common environment: KILN_CONFIG and KILN_QUEUE_URLS. */
  readonly environment: Readonly<Record<string, string>>;
  /** @default the defaults of core/scaling.ts (10 s loop, 10 s idle timeout, 180 s boot deadline) */
  readonly settings?: ScalerSettingsInput;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The fleet scaler (docs/adr/0003-scaling-policy.md): a Lambda that an EventBridge rule invokes
 * every minute, and that runs `decideScale` for every pool about every 10 s until the next
 * invocation is due; reserved concurrency 1, so loops never overlap. It raises a group's desired
 * capacity, and scales in only by terminating idle instances it names. The agents table holds
 * each agent's status record, written by the agents of each pool in their own partition.
 */
export class Scaler extends Construct {
  readonly agentsTable: dynamodb.Table;
  readonly function: KilnFunction;
  readonly schedule: events.Rule;

  constructor(scope: Construct, id: string, props: ScalerProps) {
    super(scope, id);
    const { config, pools } = props;

    this.agentsTable = new dynamodb.Table(this, 'Agents', {
      tableName: agentsTableName(config.prefix),
      partitionKey: { name: AGENTS_TABLE.partitionKey.name, type: dynamodb.AttributeType.STRING },
      sortKey: { name: AGENTS_TABLE.sortKey.name, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: AGENTS_TABLE.timeToLiveAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      // Status records are rewritten every heartbeat; losing them costs one boot deadline at most.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    const groups = Object.fromEntries(pools.map((p) => [p.pool.name, p.groupName]));
    this.function = new KilnFunction(this, 'Function', {
      entry: SCALER_ENTRY,
      sourceRoot: props.sourceRoot,
      description:
        'scales each build pool on its queues: raises desired capacity, terminates idle instances by name',
      environment: {
        ...props.environment,
        [ENV.autoScalingGroups]: JSON.stringify(groups),
        [ENV.agentsTableName]: this.agentsTable.tableName,
        ...(props.settings ? { [ENV.scalingSettings]: JSON.stringify(props.settings) } : {}),
      },
      // One invocation loops for just under a minute, then hands over to the next.
      timeout: Duration.seconds(75),
      memorySize: 256,
      ...(props.logRetention ? { logRetention: props.logRetention } : {}),
    });
    // One loop at a time; a late or throttled invocation is dropped, not queued: the next comes within a minute.
    (this.function.function.node.defaultChild as lambda.CfnFunction).reservedConcurrentExecutions = 1;
    this.function.function.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.seconds(60) });
    this.schedule = new events.Rule(this, 'Schedule', {
      description: 'Kiln: run the fleet scaler loop',
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(this.function.function, { retryAttempts: 0 })],
    });

    this.grant(pools);
  }

  private grant(pools: readonly BuildPool[]): void {
    const role = this.function.role;
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'DescribeFleet',
        actions: ['autoscaling:DescribeAutoScalingGroups', 'ec2:DescribeInstances'],
        resources: ['*'],
      }),
    );
    acknowledge(
      role,
      'AwsSolutions-IAM5[Resource::*]',
      'DescribeAutoScalingGroups and DescribeInstances support no resource-level permissions; both only read.',
    );
    const groupArns = pools.map((p) => p.groupArnPattern);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ScaleOwnGroups',
        actions: ['autoscaling:SetDesiredCapacity', 'autoscaling:TerminateInstanceInAutoScalingGroup'],
        resources: groupArns,
      }),
    );
    for (const p of pools) {
      acknowledge(
        role,
        p.groupArnFinding,
        "A group's ARN carries an id generated at creation; the wildcard stands for that id only, the group name is fixed.",
      );
    }
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadQueueDepths',
        actions: ['sqs:GetQueueAttributes'],
        resources: pools.flatMap((p) => p.queues.map((q) => q.queue.queueArn)),
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadAgentStatus',
        actions: ['dynamodb:Query'],
        resources: [this.agentsTable.tableArn],
      }),
    );
    for (const p of pools) p.allowStatusReports(this.agentsTable);
  }
}
