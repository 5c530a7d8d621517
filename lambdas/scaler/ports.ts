/**
 * What the fleet scaler needs from the outside world. The AWS implementations are in
 * adapters/autoscaling.ts and adapters/agent-status.ts; local mode points the same adapters at
 * the Auto Scaling simulator, the SQS emulator and dynalite.
 */
import type { QueueDepth } from '../../core/scaling';

/** One instance of a group as DescribeAutoScalingGroups lists it. */
export interface GroupInstance {
  instanceId: string;
  /** `Pending`, `Pending:Wait`, `InService`, `Terminating:Wait`, … */
  lifecycleState: string;
  healthStatus: string;
  protectedFromScaleIn: boolean;
}

export interface GroupView {
  name: string;
  minSize: number;
  maxSize: number;
  desiredCapacity: number;
  instances: readonly GroupInstance[];
}

export interface ScalingGroups {
  /** The named groups that exist, by name. */
  describe(groupNames: readonly string[]): Promise<Map<string, GroupView>>;
  setDesiredCapacity(groupName: string, desiredCapacity: number): Promise<void>;
  /**
   * Terminates one instance of its group. With `decrement` the group's desired capacity drops by
   * one (scale-in by name); without it the group launches a replacement.
   * Resolves false when the instance is no longer in a group (already gone).
   */
  terminate(instanceId: string, decrement: boolean): Promise<boolean>;
}

/** Launch times of instances (DescribeAutoScalingGroups does not list them). */
export interface InstanceLaunchTimes {
  /** Instances it does not know yet are left out. */
  launchTimes(instanceIds: readonly string[]): Promise<Map<string, Date>>;
}

export interface QueueDepths {
  depth(queueUrl: string): Promise<QueueDepth>;
}

/** What an agent last reported about itself (adapters/agent-status.ts writes it). */
export interface AgentRecord {
  agentId: string;
  pool: string;
  busySlots: number;
  slots: number;
  /** ISO time the agent last had a job. */
  lastBusyAt?: string;
  /** ISO time of the report: the agent's heartbeat. */
  at: string;
  /** False once the agent stopped taking work. */
  accepting: boolean;
  /** Epoch milliseconds of the agent's recent claims, oldest first: the pool's arrival rate. */
  recentClaims: readonly number[];
}

export interface AgentRecords {
  /** Every record of the pool, including those of instances already gone. */
  list(pool: string): Promise<AgentRecord[]>;
}
