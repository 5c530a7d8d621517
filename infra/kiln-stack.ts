import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { KilnConfig } from '../core/config';
import { AgentBundle } from './constructs/agent-bundle';
import { Alerting } from './constructs/alerting';
import { Api } from './constructs/api';
import { ArtifactStore } from './constructs/artifact-store';
import { Background } from './constructs/background';
import { BuildPool } from './constructs/build-pool';
import { JobQueues } from './constructs/job-queues';
import { JobStore } from './constructs/job-store';
import { Monitoring } from './constructs/monitoring';
import { Network } from './constructs/network';
import { Retention } from './constructs/retention';
import { Scaler } from './constructs/scaler';
import { ENV } from './definitions';
import type { JobResources } from './grants';
import { REPO_ROOT } from './paths';
import { Registration } from './register/registration';
import type { ExistingVpc } from './settings';

export interface KilnStackProps extends StackProps {
  readonly config: KilnConfig;
  /** @default - a new VPC (see Network) */
  readonly existingVpc?: ExistingVpc;
  /** @default - no e-mail subscription on the alarm topic */
  readonly alarmEmail?: string;
  /** Where Lambda and agent sources are bundled from. @default the repository root */
  readonly sourceRoot?: string;
  /** Node.js major version on build instances (AL2023 package `nodejs<major>`). @default 22 */
  readonly agentNodeMajor?: number;
}

/** The whole pipeline in one environment-agnostic stack. */
export class KilnStack extends Stack {
  readonly network: Network;
  readonly jobs: JobStore;
  readonly artifacts: ArtifactStore;
  readonly queues: JobQueues;
  readonly alerting: Alerting;
  readonly api: Api;
  readonly background: Background;
  readonly registration: Registration;
  readonly scaler: Scaler;
  readonly retention: Retention;
  readonly pools: readonly BuildPool[];
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: KilnStackProps) {
    super(scope, id, props);
    const { config } = props;
    const sourceRoot = props.sourceRoot ?? REPO_ROOT;
    const nodeMajor = props.agentNodeMajor ?? 22;

    this.network = new Network(this, 'Network', props.existingVpc ? { existingVpc: props.existingVpc } : {});
    this.jobs = new JobStore(this, 'Jobs', { prefix: config.prefix });
    this.artifacts = new ArtifactStore(this, 'Artifacts', { prefix: config.prefix });
    this.queues = new JobQueues(this, 'Queues', { config });
    this.alerting = new Alerting(this, 'Alerting', {
      prefix: config.prefix,
      ...(props.alarmEmail ? { alarmEmail: props.alarmEmail } : {}),
    });
    const resources: JobResources = { jobs: this.jobs, artifacts: this.artifacts, queues: this.queues };

    // What every function's composition root reads (lambdas/composition.ts).
    const environment = {
      [ENV.config]: JSON.stringify(config),
      [ENV.tableName]: this.jobs.table.tableName,
      [ENV.bucketName]: this.artifacts.bucket.bucketName,
      [ENV.queueUrls]: this.queues.queueUrlsJson(),
      [ENV.slotsTableName]: this.jobs.slotsTable.tableName,
      [ENV.eventBusName]: this.jobs.eventBus.eventBusName,
    };
    this.api = new Api(this, 'Api', { prefix: config.prefix, sourceRoot, resources, environment });
    this.registration = new Registration(this, 'Registration', {
      config,
      sourceRoot,
      resources,
      environment,
    });
    const registerEnvironment = {
      [ENV.registerStateMachineArn]: this.registration.workflow.stateMachine.stateMachineArn,
    };
    this.background = new Background(this, 'Background', {
      sourceRoot,
      resources,
      environment: { ...environment, ...registerEnvironment },
    });
    this.registration.grantRecover(this.background.sweeper.role);

    const agentBundle = new AgentBundle(this, 'AgentBundle', { sourceRoot, nodeMajor });
    this.pools = config.pools.map(
      (pool) =>
        new BuildPool(this, `Pool-${pool.name}`, {
          config,
          pool,
          network: this.network,
          resources,
          agentBundle: agentBundle.asset,
          nodeMajor,
          fleetActivityTopic: this.alerting.fleetActivityTopic,
          registerStateMachine: this.registration.workflow.stateMachine,
        }),
    );

    this.retention = new Retention(this, 'Retention', {
      prefix: config.prefix,
      sourceRoot,
      table: this.jobs.table,
      bucket: this.artifacts.bucket,
      eventBus: this.jobs.eventBus,
      environment: {
        [ENV.config]: environment[ENV.config],
        [ENV.tableName]: environment[ENV.tableName],
        [ENV.bucketName]: environment[ENV.bucketName],
        [ENV.eventBusName]: environment[ENV.eventBusName],
      },
      alarmTopic: this.alerting.alarmTopic,
      retention: config.retention,
    });

    // The benchmarked scaler replaces scaling policies: it names the idle instances that may go.
    this.scaler = new Scaler(this, 'Scaler', {
      config,
      sourceRoot,
      pools: this.pools,
      environment: { [ENV.config]: environment[ENV.config], [ENV.queueUrls]: environment[ENV.queueUrls] },
    });

    this.monitoring = new Monitoring(this, 'Monitoring', {
      prefix: config.prefix,
      alarmTopic: this.alerting.alarmTopic,
      api: this.api,
      queues: this.queues,
      pools: this.pools,
      functions: [
        ...this.api.functions.values(),
        this.background.sweeper,
        this.background.dlqConsumer,
        this.registration.recordResult,
        this.registration.copyImage,
        this.background.autoGate,
        this.scaler.function,
        this.retention.function,
      ],
    });

    new CfnOutput(this, 'ApiUrl', {
      value: this.api.url,
      description: 'Base URL of the Kiln API (SigV4, service execute-api)',
    });
    new CfnOutput(this, 'ArtifactsBucketName', { value: this.artifacts.bucket.bucketName });
    new CfnOutput(this, 'JobsTableName', { value: this.jobs.table.tableName });
    new CfnOutput(this, 'JobEventBusName', { value: this.jobs.eventBus.eventBusName });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alerting.alarmTopic.topicArn });
    new CfnOutput(this, 'RegisterStateMachineArn', {
      value: this.registration.workflow.stateMachine.stateMachineArn,
    });
    new CfnOutput(this, 'DashboardUrl', { value: this.monitoring.dashboardUrl });
    for (const pool of this.pools) {
      new CfnOutput(this, `AgentLogGroup-${pool.pool.name}`, {
        value: pool.agentLogs.logGroupName,
        description: `Agent and boot logs of pool ${pool.pool.name}, one stream per instance`,
      });
    }
  }
}
