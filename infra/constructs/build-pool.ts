import { ArnFormat, Aws, Duration, RemovalPolicy, Stack, Tags } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { KilnConfig, PoolConfig } from '../../core/config';
import { autoScalingGroupName, TERMINATION_HOOK_NAME } from '../definitions';
import type { JobResources } from '../grants';
import { acknowledge, arnFinding } from '../nag';
import { agentUserDataCommands } from './agent-user-data';
import type { JobQueue } from './job-queues';
import type { Network } from './network';

/** Tag keys an agent may set on its own instance (e.g. `kiln:job-id`), so people can find a job's instance. */
export const AGENT_TAG_KEY_PATTERN = 'kiln:*';

export interface BuildPoolProps {
  readonly config: KilnConfig;
  readonly pool: PoolConfig;
  readonly network: Network;
  readonly resources: JobResources;
  readonly agentBundle: s3assets.Asset;
  readonly nodeMajor: number;
  readonly fleetActivityTopic: sns.ITopic;
  /** The register workflow the agent hands uploaded artifacts to. */
  readonly registerStateMachine: sfn.IStateMachine;
  /** Root volume size; builds write whole disk images to it. @default 100 */
  readonly rootVolumeGiB?: number;
  /** Boot time until an instance takes jobs (the group's default instance warm-up). @default Duration.minutes(3) */
  readonly instanceWarmup?: Duration;
  /**
   * How long a terminating instance waits for its agent to hand its jobs back and complete the
   * termination lifecycle action; CONTINUE after that. @default Duration.minutes(3)
   */
  readonly handBackTimeout?: Duration;
  /** Retention of agent and boot logs. @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

const DEFAULTS = {
  rootVolumeGiB: 100,
  instanceWarmup: Duration.minutes(3),
  handBackTimeout: Duration.minutes(3),
  logRetention: logs.RetentionDays.ONE_MONTH,
} as const;

const ONE_MINUTE = Duration.minutes(1);

/**
 * One pool of build instances: a launch template for the pool's architecture, an instance role
 * limited to the pool's own queues, and an Auto Scaling group from zero with no scaling policy:
 * the fleet scaler (constructs/scaler.ts) sets its desired capacity and terminates idle instances
 * by name. Agents hold scale-in protection while busy, and a termination lifecycle hook lets an
 * agent hand its jobs back before its instance goes (docs/adr/0003-scaling-policy.md).
 */
export class BuildPool extends Construct {
  readonly pool: PoolConfig;
  readonly role: iam.Role;
  readonly launchTemplate: ec2.LaunchTemplate;
  readonly group: autoscaling.AutoScalingGroup;
  /** The group's name, known at synth (`${prefix}-${pool}`), for policies and the scaler. */
  readonly groupName: string;
  /** Holds a terminating instance until its agent has handed its jobs back. */
  readonly terminationHook: autoscaling.LifecycleHook;
  readonly agentLogs: logs.LogGroup;
  readonly queues: readonly JobQueue[];
  /** Messages waiting in the pool's queues (visible, not yet received). */
  readonly backlog: cloudwatch.MathExpression;
  /** Messages waiting plus messages held by running jobs. */
  readonly work: cloudwatch.MathExpression;

  constructor(scope: Construct, id: string, props: BuildPoolProps) {
    super(scope, id);
    const { pool, config, resources } = props;
    this.pool = pool;
    this.groupName = autoScalingGroupName(config.prefix, pool.name);
    this.queues = resources.queues.forPool(pool.name);

    this.agentLogs = new logs.LogGroup(this, 'AgentLogs', {
      retention: props.logRetention ?? DEFAULTS.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.role = new iam.Role(this, 'InstanceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `Kiln build agent of pool ${pool.name}`,
      // Session Manager is how a person gets onto a build instance (no SSH key, no inbound port).
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonSSMManagedInstanceCore')],
    });
    acknowledge(
      this.role,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
      'AmazonSSMManagedInstanceCore is the AWS-maintained minimum for Session Manager and follows the SSM agent as it changes; it grants no data access.',
    );
    this.grantAgentAccess(props);

    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.network.vpc,
      description: `Kiln build agents of pool ${pool.name}: no inbound; outbound for AWS APIs, packages and build inputs`,
      allowAllOutbound: true,
    });

    const userData = ec2.UserData.forLinux();
    userData.addCommands(
      ...agentUserDataCommands({
        pool: pool.name,
        region: Aws.REGION,
        nodeMajor: props.nodeMajor,
        bundleBucket: props.agentBundle.s3BucketName,
        bundleKey: props.agentBundle.s3ObjectKey,
        configJson: JSON.stringify(config),
        queueUrlsJson: resources.queues.queueUrlsJson(pool.name),
        tableName: resources.jobs.table.tableName,
        bucketName: resources.artifacts.bucket.bucketName,
        logGroupName: this.agentLogs.logGroupName,
        registerStateMachineArn: props.registerStateMachine.stateMachineArn,
        eventBusName: props.resources.jobs.eventBus.eventBusName,
        autoScalingGroupName: this.groupName,
      }),
    );

    this.launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: ec2.MachineImage.latestAmazonLinux2023({
        cpuType: pool.arch === 'aarch64' ? ec2.AmazonLinuxCpuType.ARM_64 : ec2.AmazonLinuxCpuType.X86_64,
      }),
      userData,
      role: this.role,
      securityGroup,
      requireImdsv2: true,
      httpPutResponseHopLimit: 1,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(props.rootVolumeGiB ?? DEFAULTS.rootVolumeGiB, {
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            encrypted: true,
            deleteOnTermination: true,
          }),
        },
      ],
    });

    const warmup = props.instanceWarmup ?? DEFAULTS.instanceWarmup;
    this.group = new autoscaling.AutoScalingGroup(this, 'Group', {
      autoScalingGroupName: this.groupName,
      vpc: props.network.vpc,
      vpcSubnets: props.network.agentSubnets,
      minCapacity: pool.minCapacity,
      maxCapacity: pool.maxCapacity,
      mixedInstancesPolicy: {
        launchTemplate: this.launchTemplate,
        // Most preferred type first, as the config lists them.
        launchTemplateOverrides: pool.instanceTypes.map((t) => ({ instanceType: new ec2.InstanceType(t) })),
        instancesDistribution: {
          // On-demand only: a Spot interruption kills a build midway.
          onDemandBaseCapacity: 0,
          onDemandPercentageAboveBaseCapacity: 100,
          onDemandAllocationStrategy: autoscaling.OnDemandAllocationStrategy.PRIORITIZED,
        },
      },
      healthChecks: autoscaling.HealthChecks.ec2({ gracePeriod: Duration.minutes(5) }),
      defaultInstanceWarmup: warmup,
      groupMetrics: [autoscaling.GroupMetrics.all()],
      notifications: [{ topic: props.fleetActivityTopic }],
    });
    acknowledge(
      this.group,
      'AwsSolutions-EC26',
      "cdk-nag 3.0.2's EC26 reads the group's LaunchTemplate property and throws on a MixedInstancesPolicy; the launch template's only volume (the root) is encrypted, which test/infra/fleet.test.ts asserts.",
    );
    // Above the launch template's own Name tag (its construct path), so the console shows the pool.
    Tags.of(this.launchTemplate).add('Name', `${config.prefix}-agent-${pool.name}`, { priority: 300 });
    Tags.of(this.group).add('kiln:pool', pool.name);
    Tags.of(this.group).add('kiln:arch', pool.arch);

    const visible = this.queueMetrics((q) => q.metricApproximateNumberOfMessagesVisible, 'v');
    const inFlight = this.queueMetrics((q) => q.metricApproximateNumberOfMessagesNotVisible, 'f');
    this.backlog = new cloudwatch.MathExpression({
      label: `${pool.name} queued jobs`,
      expression: fillSum(Object.keys(visible)),
      usingMetrics: visible,
      period: ONE_MINUTE,
    });
    this.work = new cloudwatch.MathExpression({
      label: `${pool.name} queued and running jobs`,
      expression: fillSum([...Object.keys(visible), ...Object.keys(inFlight)]),
      usingMetrics: { ...visible, ...inFlight },
      period: ONE_MINUTE,
    });
    this.terminationHook = this.group.addLifecycleHook('HandBack', {
      lifecycleHookName: TERMINATION_HOOK_NAME,
      lifecycleTransition: autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
      heartbeatTimeout: props.handBackTimeout ?? DEFAULTS.handBackTimeout,
      // A dead agent cannot complete it: the instance goes anyway once the timeout passes.
      defaultResult: autoscaling.DefaultResult.CONTINUE,
    });
    this.grantOwnGroup();
  }

  /** ARN pattern of this pool's group (its ARN holds a generated id, so the name is what can be fixed). */
  get groupArnPattern(): string {
    return Stack.of(this).formatArn({
      service: 'autoscaling',
      resource: 'autoScalingGroup',
      resourceName: `*:autoScalingGroupName/${this.groupName}`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
  }

  /** The cdk-nag finding a policy on `groupArnPattern` raises (IAM5: the generated id is a wildcard). */
  get groupArnFinding(): string {
    return `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup:*:autoScalingGroupName/${this.groupName}]`;
  }

  /** Scale-in protection and lifecycle actions, on the agent's own group only. */
  private grantOwnGroup(): void {
    const arn = this.groupArnPattern;
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ProtectAndDrainOwnGroup',
        actions: [
          'autoscaling:SetInstanceProtection',
          'autoscaling:CompleteLifecycleAction',
          'autoscaling:RecordLifecycleActionHeartbeat',
        ],
        resources: [arn],
      }),
    );
    acknowledge(
      this.role,
      this.groupArnFinding,
      "A group's ARN carries an id generated at creation; the wildcard stands for that id only, the group name is fixed.",
    );
  }

  /** Lets the pool's agents write their status records, in their own pool's partition only. */
  allowStatusReports(agentsTable: dynamodb.ITable): void {
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReportOwnStatus',
        actions: ['dynamodb:PutItem'],
        resources: [agentsTable.tableArn],
        conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [this.pool.name] } },
      }),
    );
  }

  private grantAgentAccess(props: BuildPoolProps): void {
    const { resources } = props;
    const stack = Stack.of(this);
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ConsumeOwnPoolQueues',
        actions: [
          'sqs:ReceiveMessage',
          'sqs:ChangeMessageVisibility',
          'sqs:DeleteMessage',
          'sqs:GetQueueAttributes',
        ],
        resources: this.queues.map((q) => q.queue.queueArn),
      }),
    );
    // Claims, heartbeats and transitions are conditional updates of an existing record.
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'UpdateJobRecords',
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        resources: [resources.jobs.table.tableArn],
      }),
    );
    resources.artifacts.grantWriteJobObjects(this.role);
    props.registerStateMachine.grantStartExecution(this.role);
    resources.jobs.eventBus.grantPutEventsTo(this.role);
    acknowledge(
      this.role,
      `AwsSolutions-IAM5[${arnFinding(resources.artifacts.bucket, '/artifacts/*')}]`,
      'An agent writes artifacts/<jobId>/... for whichever job it claims, so the job id cannot be fixed in the policy; it cannot read or delete objects.',
    );
    acknowledge(
      this.role,
      `AwsSolutions-IAM5[${arnFinding(resources.artifacts.bucket, '/logs/*')}]`,
      'An agent appends logs/<jobId>/... chunks for whichever job it claims, so the job id cannot be fixed in the policy; it cannot read or delete objects.',
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'DownloadAgentBundle',
        actions: ['s3:GetObject'],
        resources: [props.agentBundle.bucket.arnForObjects(props.agentBundle.s3ObjectKey)],
      }),
    );
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ShipAgentLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents', 'logs:DescribeLogStreams'],
        resources: [this.agentLogs.logGroupArn],
      }),
    );
    const instances = stack.formatArn({ service: 'ec2', resource: 'instance', resourceName: '*' });
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'TagOwnInstanceWithJobs',
        actions: ['ec2:CreateTags', 'ec2:DeleteTags'],
        resources: [instances],
        conditions: {
          // biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable, resolved by IAM per request
          StringEquals: { 'aws:ARN': '${ec2:SourceInstanceARN}' },
          'ForAllValues:StringLike': { 'aws:TagKeys': [AGENT_TAG_KEY_PATTERN] },
        },
      }),
    );
    acknowledge(
      this.role,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*]',
      "The instance id is only known at launch; the aws:ARN = ec2:SourceInstanceARN condition limits tagging to the caller's own instance and to kiln:* keys.",
    );
  }

  private queueMetrics(
    pick: (q: JobQueue['queue']) => (props?: cloudwatch.MetricOptions) => cloudwatch.Metric,
    idPrefix: string,
  ): Record<string, cloudwatch.IMetric> {
    const metrics: Record<string, cloudwatch.IMetric> = {};
    this.queues.forEach((q, i) => {
      metrics[`${idPrefix}${i}`] = pick(q.queue).call(q.queue, { period: ONE_MINUTE, statistic: 'Maximum' });
    });
    return metrics;
  }
}

function fillSum(ids: readonly string[]): string {
  return ids.map((id) => `FILL(${id}, 0)`).join(' + ');
}
