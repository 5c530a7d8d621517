/**
 * The AWS side of fleet scaling: the scaler's view of the groups (Auto Scaling), launch times
 * (EC2), queue depths (SQS); and an agent's calls about its own instance (scale-in protection,
 * lifecycle actions). Local mode points the same clients at the Auto Scaling simulator.
 */
import {
  type AutoScalingClient,
  CompleteLifecycleActionCommand,
  DescribeAutoScalingGroupsCommand,
  RecordLifecycleActionHeartbeatCommand,
  SetDesiredCapacityCommand,
  SetInstanceProtectionCommand,
  TerminateInstanceInAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { LifecycleActions, LifecycleResult } from '../agent/lifecycle';
import type { QueueDepth } from '../core/scaling';
import type { GroupView, InstanceLaunchTimes, QueueDepths, ScalingGroups } from '../lambdas/scaler/ports';
import type { ScaleInProtection } from './agent-status';

/** DescribeAutoScalingGroups takes at most 100 names per call. */
const GROUP_NAMES_PER_CALL = 100;
/** A filter takes at most 200 values. */
const INSTANCE_IDS_PER_CALL = 200;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export class AwsScalingGroups implements ScalingGroups {
  constructor(private readonly client: AutoScalingClient) {}

  async describe(groupNames: readonly string[]): Promise<Map<string, GroupView>> {
    const groups = new Map<string, GroupView>();
    for (const names of chunks(groupNames, GROUP_NAMES_PER_CALL)) {
      let nextToken: string | undefined;
      do {
        const out = await this.client.send(
          new DescribeAutoScalingGroupsCommand({
            AutoScalingGroupNames: names,
            MaxRecords: 100,
            ...(nextToken ? { NextToken: nextToken } : {}),
          }),
        );
        for (const g of out.AutoScalingGroups ?? []) {
          if (!g.AutoScalingGroupName) continue;
          groups.set(g.AutoScalingGroupName, {
            name: g.AutoScalingGroupName,
            minSize: g.MinSize ?? 0,
            maxSize: g.MaxSize ?? 0,
            desiredCapacity: g.DesiredCapacity ?? 0,
            instances: (g.Instances ?? []).flatMap((i) =>
              i.InstanceId
                ? [
                    {
                      instanceId: i.InstanceId,
                      lifecycleState: i.LifecycleState ?? 'Pending',
                      healthStatus: i.HealthStatus ?? 'Healthy',
                      protectedFromScaleIn: i.ProtectedFromScaleIn ?? false,
                    },
                  ]
                : [],
            ),
          });
        }
        nextToken = out.NextToken;
      } while (nextToken);
    }
    return groups;
  }

  async setDesiredCapacity(groupName: string, desiredCapacity: number): Promise<void> {
    await this.client.send(
      new SetDesiredCapacityCommand({
        AutoScalingGroupName: groupName,
        DesiredCapacity: desiredCapacity,
        HonorCooldown: false,
      }),
    );
  }

  async terminate(instanceId: string, decrement: boolean): Promise<boolean> {
    try {
      await this.client.send(
        new TerminateInstanceInAutoScalingGroupCommand({
          InstanceId: instanceId,
          ShouldDecrementDesiredCapacity: decrement,
        }),
      );
      return true;
    } catch (error) {
      // Already terminated (or detached) between the describe and this call: nothing to do.
      if (isValidationError(error) && /not found/i.test((error as Error).message)) return false;
      throw error;
    }
  }
}

/** Launch times from EC2; a filter (unlike InstanceIds) ignores ids EC2 does not know yet. */
export class Ec2LaunchTimes implements InstanceLaunchTimes {
  constructor(private readonly client: EC2Client) {}

  async launchTimes(instanceIds: readonly string[]): Promise<Map<string, Date>> {
    const out = new Map<string, Date>();
    for (const ids of chunks(instanceIds, INSTANCE_IDS_PER_CALL)) {
      let nextToken: string | undefined;
      do {
        const page = await this.client.send(
          new DescribeInstancesCommand({
            Filters: [{ Name: 'instance-id', Values: ids }],
            MaxResults: 1000,
            ...(nextToken ? { NextToken: nextToken } : {}),
          }),
        );
        for (const r of page.Reservations ?? []) {
          for (const i of r.Instances ?? [])
            if (i.InstanceId && i.LaunchTime) out.set(i.InstanceId, i.LaunchTime);
        }
        nextToken = page.NextToken;
      } while (nextToken);
    }
    return out;
  }
}

export class SqsQueueDepths implements QueueDepths {
  constructor(private readonly client: SQSClient) {}

  async depth(queueUrl: string): Promise<QueueDepth> {
    const out = await this.client.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return {
      visible: Number(out.Attributes?.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  }
}

/** An agent's calls about its own instance in its own group. */
export class OwnInstanceScaling implements ScaleInProtection, LifecycleActions {
  constructor(
    private readonly client: AutoScalingClient,
    private readonly groupName: string,
    private readonly instanceId: string,
    private readonly terminationHookName: string,
  ) {}

  async setProtected(protectedFromScaleIn: boolean): Promise<void> {
    await this.client.send(
      new SetInstanceProtectionCommand({
        AutoScalingGroupName: this.groupName,
        InstanceIds: [this.instanceId],
        ProtectedFromScaleIn: protectedFromScaleIn,
      }),
    );
  }

  async complete(result: LifecycleResult): Promise<void> {
    await this.client.send(
      new CompleteLifecycleActionCommand({
        AutoScalingGroupName: this.groupName,
        LifecycleHookName: this.terminationHookName,
        InstanceId: this.instanceId,
        LifecycleActionResult: result,
      }),
    );
  }

  async heartbeat(): Promise<void> {
    await this.client.send(
      new RecordLifecycleActionHeartbeatCommand({
        AutoScalingGroupName: this.groupName,
        LifecycleHookName: this.terminationHookName,
        InstanceId: this.instanceId,
      }),
    );
  }
}

export function isValidationError(error: unknown): boolean {
  return error instanceof Error && error.name === 'ValidationError';
}
