/**
 * Resource definitions shared by the CDK app and the local stack, so both create the same table,
 * indexes and queues. Plain data: no aws-cdk-lib import, so local mode can load it cheaply.
 */
import { deadLetterQueueName, type KilnConfig, queueName, queueSlots } from '../core/config';
import type { Priority } from '../core/job';

export interface KeyAttribute {
  readonly name: string;
  readonly type: 'S' | 'N';
}

export interface IndexDefinition {
  readonly indexName: string;
  readonly partitionKey: KeyAttribute;
  readonly sortKey: KeyAttribute;
}

export interface TableDefinition {
  readonly partitionKey: KeyAttribute;
  readonly timeToLiveAttribute: string;
  readonly globalSecondaryIndexes: readonly IndexDefinition[];
}

/**
 * The jobs table. `createdKey` = `${createdAt}#${jobId}` sorts a caller's jobs newest first;
 * `ownerStatus` = `${owner}#${status}` serves `GET /jobs?status=`; `byStatus` lets the sweeper
 * find queued and leased jobs without a scan.
 */
export const JOBS_TABLE: TableDefinition = {
  partitionKey: { name: 'jobId', type: 'S' },
  timeToLiveAttribute: 'expiresAtEpoch',
  globalSecondaryIndexes: [
    {
      indexName: 'byOwner',
      partitionKey: { name: 'owner', type: 'S' },
      sortKey: { name: 'createdKey', type: 'S' },
    },
    {
      indexName: 'byOwnerStatus',
      partitionKey: { name: 'ownerStatus', type: 'S' },
      sortKey: { name: 'createdKey', type: 'S' },
    },
    {
      indexName: 'byStatus',
      partitionKey: { name: 'status', type: 'S' },
      sortKey: { name: 'updatedAt', type: 'S' },
    },
  ],
};

/**
 * Counting semaphores (import slots, later other fleet-wide caps): one item per semaphore with
 * `holderCount` and one attribute per holder, named by the holder's execution ARN.
 */
export const SLOTS_TABLE = {
  partitionKey: { name: 'name', type: 'S' },
} as const satisfies Pick<TableDefinition, 'partitionKey'>;

export function slotsTableName(prefix: string): string {
  return `${prefix}-slots`;
}

/** The semaphore that caps concurrent EC2 import-snapshot tasks in the deployment's region. */
export const IMPORT_SLOTS = 'ec2-import-snapshot';

export function registerStateMachineName(prefix: string): string {
  return `${prefix}-register`;
}

export function jobsTableName(prefix: string): string {
  return `${prefix}-jobs`;
}

export function artifactsBucketName(prefix: string, account = 'local'): string {
  return `${prefix}-artifacts-${account}`;
}

export interface QueueDefinition {
  readonly pool: string;
  readonly priority: Priority;
  readonly queueName: string;
  readonly deadLetterQueueName: string;
  readonly visibilityTimeoutSeconds: number;
  readonly maxReceiveCount: number;
  readonly messageRetentionSeconds: number;
}

/** One queue (and DLQ) per pool × priority class. */
export function queueDefinitions(config: KilnConfig): QueueDefinition[] {
  return queueSlots(config).map(({ pool, priority }) => ({
    pool,
    priority,
    queueName: queueName(config.prefix, pool, priority),
    deadLetterQueueName: deadLetterQueueName(config.prefix, pool, priority),
    // The agent extends visibility on every heartbeat; a dead agent's message reappears after one lease.
    visibilityTimeoutSeconds: config.leaseSeconds,
    maxReceiveCount: config.maxReceiveCount,
    messageRetentionSeconds: 14 * 24 * 3600,
  }));
}

/** Key of a queue in the `KILN_QUEUE_URLS` map. */
export function queueKey(pool: string, priority: Priority): string {
  return `${pool}/${priority}`;
}

/** Environment variables read by the composition roots of the Lambdas and the agent. */
export const ENV = {
  /** JSON of the validated KilnConfig (see core/config.ts). */
  config: 'KILN_CONFIG',
  tableName: 'KILN_TABLE_NAME',
  bucketName: 'KILN_BUCKET_NAME',
  /** JSON object: `${pool}/${priority}` → queue URL. */
  queueUrls: 'KILN_QUEUE_URLS',
  /** Agent only: the pool this agent serves. */
  pool: 'KILN_POOL',
  /** Agent only: a stable id for this agent (instance id in AWS). */
  agentId: 'KILN_AGENT_ID',
  /** Agent only: parent directory of per-job working directories. */
  workDir: 'KILN_WORK_DIR',
  slotsTableName: 'KILN_SLOTS_TABLE_NAME',
  /** ARN of the register state machine (agent and sweeper start executions). */
  registerStateMachineArn: 'KILN_REGISTER_STATE_MACHINE_ARN',
  /** Optional endpoint overrides (local mode). */
  dynamodbEndpoint: 'KILN_DYNAMODB_ENDPOINT',
  sqsEndpoint: 'KILN_SQS_ENDPOINT',
  s3Endpoint: 'KILN_S3_ENDPOINT',
  sfnEndpoint: 'KILN_SFN_ENDPOINT',
  eventsEndpoint: 'KILN_EVENTS_ENDPOINT',
  /** Agent only: keep the instance's kiln:job-ids tag current (set on EC2 instances). */
  tagInstance: 'KILN_TAG_INSTANCE',
  /** The EventBridge bus job events go to; absent = no events. */
  eventBusName: 'KILN_EVENT_BUS_NAME',
  ec2Endpoint: 'KILN_EC2_ENDPOINT',
  /** Fleet scaling (issue 6): the agents table; defaults to agentsTableName(prefix). */
  agentsTableName: 'KILN_AGENTS_TABLE_NAME',
  /** Agent only: its Auto Scaling group; set, the agent holds scale-in protection and honours lifecycle hooks. */
  autoScalingGroup: 'KILN_AUTOSCALING_GROUP',
  /** Scaler only: JSON object pool → Auto Scaling group name. */
  autoScalingGroups: 'KILN_AUTOSCALING_GROUPS',
  /** Scaler only: JSON of Partial<ScalingSettings> (core/scaling.ts) for every pool. */
  scalingSettings: 'KILN_SCALING_SETTINGS',
  /** Agent only: how often the lifecycle watcher reads instance metadata (ms). */
  lifecyclePollMs: 'KILN_LIFECYCLE_POLL_MS',
  /** Optional endpoint overrides (local mode): Auto Scaling, EC2 for the scaler, instance metadata. */
  autoScalingEndpoint: 'KILN_AUTOSCALING_ENDPOINT',
  imdsEndpoint: 'KILN_IMDS_ENDPOINT',
} as const;

// ── Fleet scaling (issue 6): agent status records, group and lifecycle hook names ──────────────

/**
 * Agent status records, one per agent (instance), read by the fleet scaler: busy slots, last busy
 * time, last report (heartbeat), recent claims. Keyed by pool so the scaler reads one partition
 * per pool and an agent's IAM policy can be limited to its own pool's partition.
 */
export const AGENTS_TABLE = {
  partitionKey: { name: 'pool', type: 'S' },
  sortKey: { name: 'agentId', type: 'S' },
  timeToLiveAttribute: 'expiresAtEpoch',
} as const satisfies Pick<TableDefinition, 'partitionKey' | 'timeToLiveAttribute'> & {
  sortKey: KeyAttribute;
};

export function agentsTableName(prefix: string): string {
  return `${prefix}-agents`;
}

/** The Auto Scaling group of a pool. */
export function autoScalingGroupName(prefix: string, pool: string): string {
  return `${prefix}-${pool}`;
}

/** The termination lifecycle hook on every pool's group: the agent hands its jobs back, then completes it. */
export const TERMINATION_HOOK_NAME = 'kiln-hand-back';
