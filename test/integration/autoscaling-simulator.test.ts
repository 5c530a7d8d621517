import {
  type AutoScalingClient,
  CompleteLifecycleActionCommand,
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeLifecycleHooksCommand,
  type Instance,
  PutLifecycleHookCommand,
  RecordLifecycleActionHeartbeatCommand,
  SetDesiredCapacityCommand,
  SetInstanceProtectionCommand,
  TerminateInstanceInAutoScalingGroupCommand,
  UpdateAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { makeAutoScalingClient, makeEc2Client } from '../../adapters/clients';
import { Imdsv2 } from '../../agent/lifecycle';
import {
  AutoScalingSimulator,
  type InstanceInfo,
  type InstanceSoftware,
  type RunningAutoScalingSimulator,
  startAutoScalingSimulator,
  TERMINATING,
} from '../../local/autoscaling';
import { waitUntil } from '../support/local';

const REGION = 'eu-west-1';

/** Software that runs until stopped; `crash` makes it exit on its own. */
class FakeSoftware implements InstanceSoftware {
  stops = 0;
  private resolveExit!: () => void;
  readonly exited = new Promise<void>((r) => {
    this.resolveExit = r;
  });
  constructor(readonly info: InstanceInfo) {}
  stop(): Promise<void> {
    this.stops += 1;
    this.resolveExit();
    return this.exited;
  }
  crash(): void {
    this.resolveExit();
  }
}

describe('Auto Scaling simulator, through the real SDK', () => {
  let as: RunningAutoScalingSimulator;
  let client: AutoScalingClient;
  let started: FakeSoftware[];

  afterEach(async () => {
    client?.destroy();
    await as?.stop();
  });

  async function start(opts: { bootDelayMs?: number; restartDelayMs?: number } = {}) {
    started = [];
    as = await startAutoScalingSimulator({
      launcher: (info) => {
        const s = new FakeSoftware(info);
        started.push(s);
        return s;
      },
      bootDelayMs: opts.bootDelayMs ?? 0,
      restartDelayMs: opts.restartDelayMs ?? 10,
    });
    client = makeAutoScalingClient(REGION, as.url);
  }

  async function createGroup(
    extra: Partial<ConstructorParameters<typeof CreateAutoScalingGroupCommand>[0]> = {},
  ) {
    await client.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: 'pool-a',
        MinSize: 0,
        MaxSize: 3,
        LaunchTemplate: { LaunchTemplateName: 'agents', Version: '$Default' },
        Tags: [{ Key: 'kiln:pool', Value: 'a', PropagateAtLaunch: true }],
        ...extra,
      }),
    );
  }

  async function group() {
    const out = await client.send(
      new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ['pool-a'] }),
    );
    const g = out.AutoScalingGroups?.[0];
    if (!g) throw new Error('no group');
    return g;
  }

  const inService = async (n: number) =>
    waitUntil(`${n} InService`, async () => {
      const instances = (await group()).Instances ?? [];
      return instances.length === n && instances.every((i) => i.LifecycleState === 'InService')
        ? instances
        : undefined;
    });

  it('launches to desired capacity, boots instances into service and describes them (ASG and EC2)', async () => {
    await start({ bootDelayMs: 50 });
    await createGroup();
    await client.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: 'pool-a', DesiredCapacity: 2 }));
    const pending = (await group()).Instances ?? [];
    expect(pending.map((i) => i.LifecycleState)).toEqual(['Pending', 'Pending']);
    const instances = await inService(2);
    expect(started.map((s) => s.info.instanceId).sort()).toEqual(instances.map((i) => i.InstanceId).sort());
    expect(started[0]?.info.tags).toMatchObject({ 'kiln:pool': 'a', 'aws:autoscaling:groupName': 'pool-a' });
    const g = await group();
    expect(g).toMatchObject({ MinSize: 0, MaxSize: 3, DesiredCapacity: 2, HealthCheckType: 'EC2' });
    expect(g.AutoScalingGroupARN).toMatch(
      /^arn:aws:autoscaling:eu-west-1:\d{12}:autoScalingGroup:.+:autoScalingGroupName\/pool-a$/,
    );
    expect(instances[0]).toMatchObject({ HealthStatus: 'Healthy', ProtectedFromScaleIn: false });

    const ec2 = makeEc2Client(REGION, as.url);
    const out = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: 'instance-id', Values: [instances[0]?.InstanceId as string, 'i-0000000000000000'] },
        ],
      }),
    );
    const described = out.Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    expect(described).toHaveLength(1);
    expect(described[0]?.LaunchTime).toBeInstanceOf(Date);
    expect(described[0]?.State?.Name).toBe('running');
    await expect(
      ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-0000000000000000'] })),
    ).rejects.toMatchObject({
      name: 'InvalidInstanceID.NotFound',
    });
    ec2.destroy();
  });

  it('refuses capacity outside [min, max] and a decrement below min with ValidationError', async () => {
    await start();
    await createGroup({ MinSize: 1, MaxSize: 2 });
    await expect(
      client.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: 'pool-a', DesiredCapacity: 3 })),
    ).rejects.toMatchObject({ name: 'ValidationError', message: expect.stringMatching(/above max value 2/) });
    await expect(
      client.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: 'pool-a', DesiredCapacity: 0 })),
    ).rejects.toMatchObject({ name: 'ValidationError', message: expect.stringMatching(/below min value 1/) });
    const [only] = await inService(1);
    await expect(
      client.send(
        new TerminateInstanceInAutoScalingGroupCommand({
          InstanceId: only?.InstanceId,
          ShouldDecrementDesiredCapacity: true,
        }),
      ),
    ).rejects.toMatchObject({
      name: 'ValidationError',
      message: expect.stringMatching(/min size constraint/),
    });
    await expect(
      client.send(
        new TerminateInstanceInAutoScalingGroupCommand({
          InstanceId: 'i-0123456789abcdef0',
          ShouldDecrementDesiredCapacity: false,
        }),
      ),
    ).rejects.toMatchObject({ name: 'ValidationError', message: expect.stringMatching(/not found/) });
    await expect(
      client.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: 'pool-a', MinSize: 3 })),
    ).rejects.toMatchObject({ name: 'ValidationError' });
    await expect(createGroup()).rejects.toMatchObject({ name: 'AlreadyExistsFault' });
  });

  it('never picks a protected instance when desired capacity drops, and finishes once protection clears', async () => {
    await start();
    await createGroup();
    await client.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: 'pool-a', DesiredCapacity: 3 }));
    const instances = await inService(3);
    const ids = instances.map((i) => i.InstanceId as string);
    await client.send(
      new SetInstanceProtectionCommand({
        AutoScalingGroupName: 'pool-a',
        InstanceIds: [ids[0] as string, ids[1] as string],
        ProtectedFromScaleIn: true,
      }),
    );
    await client.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: 'pool-a', DesiredCapacity: 0 }));
    const left = await waitUntil('the unprotected instance gone', async () => {
      const now = (await group()).Instances ?? [];
      return now.length === 2 ? now : undefined;
    });
    expect(left.map((i) => i.InstanceId).sort()).toEqual([ids[0], ids[1]].sort());
    expect((await group()).DesiredCapacity).toBe(0);
    expect(as.sim.stats().terminations).toEqual([
      expect.objectContaining({ instanceId: ids[2], cause: 'scale-in', wasProtected: false }),
    ]);

    await client.send(
      new SetInstanceProtectionCommand({
        AutoScalingGroupName: 'pool-a',
        InstanceIds: [ids[0] as string],
        ProtectedFromScaleIn: false,
      }),
    );
    const last = await waitUntil('the unprotected one scaled in', async () => {
      const now = (await group()).Instances ?? [];
      return now.length === 1 ? now : undefined;
    });
    expect(last[0]?.InstanceId).toBe(ids[1]);
    expect(as.sim.stats().terminations.every((t) => !t.wasProtected)).toBe(true);
  });

  it('TerminateInstanceInAutoScalingGroup: by name (protection does not apply), with or without replacement', async () => {
    await start();
    await createGroup();
    await client.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: 'pool-a', DesiredCapacity: 2 }));
    const [a, b] = (await inService(2)) as [Instance, Instance];
    await client.send(
      new SetInstanceProtectionCommand({
        AutoScalingGroupName: 'pool-a',
        InstanceIds: [a.InstanceId as string],
        ProtectedFromScaleIn: true,
      }),
    );
    const out = await client.send(
      new TerminateInstanceInAutoScalingGroupCommand({
        InstanceId: a.InstanceId,
        ShouldDecrementDesiredCapacity: true,
      }),
    );
    expect(out.Activity).toMatchObject({ StatusCode: 'InProgress', AutoScalingGroupName: 'pool-a' });
    expect(out.Activity?.Description).toContain(a.InstanceId);
    expect((await group()).DesiredCapacity).toBe(1);
    await client.send(
      new TerminateInstanceInAutoScalingGroupCommand({
        InstanceId: b.InstanceId,
        ShouldDecrementDesiredCapacity: false,
      }),
    );
    const [replacement] = await inService(1);
    expect(replacement?.InstanceId).not.toBe(b.InstanceId);
    expect(replacement?.InstanceId).not.toBe(a.InstanceId);
    expect(
      started
        .filter((s) => s.stops > 0)
        .map((s) => s.info.instanceId)
        .sort(),
    ).toEqual([a.InstanceId, b.InstanceId].sort());
  });

  it('a termination hook holds the instance in Terminating:Wait until CompleteLifecycleAction; IMDS shows it', async () => {
    await start();
    await createGroup({
      LifecycleHookSpecificationList: [
        {
          LifecycleHookName: 'drain',
          LifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
          HeartbeatTimeout: 30,
          DefaultResult: 'CONTINUE',
        },
      ],
    });
    const hooks = await client.send(new DescribeLifecycleHooksCommand({ AutoScalingGroupName: 'pool-a' }));
    expect(hooks.LifecycleHooks).toEqual([
      expect.objectContaining({
        LifecycleHookName: 'drain',
        HeartbeatTimeout: 30,
        GlobalTimeout: 3000,
        DefaultResult: 'CONTINUE',
      }),
    ]);
    await client.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: 'pool-a', DesiredCapacity: 1 }));
    const [instance] = await inService(1);
    const id = instance?.InstanceId as string;
    const imds = new Imdsv2({ endpoint: as.imdsEndpoint(id) });
    expect(await imds.instanceId()).toBe(id);
    expect(await imds.targetLifecycleState()).toBe('InService');
    expect(await imds.spotInstanceAction()).toBeUndefined();
    const noToken = await fetch(`${as.imdsEndpoint(id)}/latest/meta-data/instance-id`);
    expect(noToken.status).toBe(401);

    await client.send(
      new TerminateInstanceInAutoScalingGroupCommand({
        InstanceId: id,
        ShouldDecrementDesiredCapacity: true,
      }),
    );
    expect((await group()).Instances?.[0]?.LifecycleState).toBe('Terminating:Wait');
    expect(await imds.targetLifecycleState()).toBe('Terminated');
    expect(started[0]?.stops).toBe(0);
    await client.send(
      new RecordLifecycleActionHeartbeatCommand({
        AutoScalingGroupName: 'pool-a',
        LifecycleHookName: 'drain',
        InstanceId: id,
      }),
    );
    await expect(
      client.send(
        new CompleteLifecycleActionCommand({
          AutoScalingGroupName: 'pool-a',
          LifecycleHookName: 'other',
          InstanceId: id,
          LifecycleActionResult: 'CONTINUE',
        }),
      ),
    ).rejects.toMatchObject({ name: 'ValidationError' });
    await client.send(
      new CompleteLifecycleActionCommand({
        AutoScalingGroupName: 'pool-a',
        LifecycleHookName: 'drain',
        InstanceId: id,
        LifecycleActionResult: 'CONTINUE',
      }),
    );
    await waitUntil('instance gone', async () =>
      ((await group()).Instances ?? []).length === 0 ? true : undefined,
    );
    expect(started[0]?.stops).toBe(1);
    await expect(
      client.send(
        new CompleteLifecycleActionCommand({
          AutoScalingGroupName: 'pool-a',
          LifecycleHookName: 'drain',
          InstanceId: id,
          LifecycleActionResult: 'CONTINUE',
        }),
      ),
    ).rejects.toMatchObject({
      name: 'ValidationError',
      message: expect.stringMatching(/No active Lifecycle Action/),
    });
    expect(as.sim.stats().lifecycleActionsCompleted).toBe(1);
  });

  it('refuses a hook timeout AWS would refuse', async () => {
    await start();
    await createGroup();
    await expect(
      client.send(
        new PutLifecycleHookCommand({
          AutoScalingGroupName: 'pool-a',
          LifecycleHookName: 'drain',
          LifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
          HeartbeatTimeout: 5,
        }),
      ),
    ).rejects.toMatchObject({ name: 'ValidationError' });
  });

  it('restarts software that exits on its own, as systemd restarts the agent', async () => {
    await start({ restartDelayMs: 10 });
    await createGroup();
    await client.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: 'pool-a', DesiredCapacity: 1 }));
    await inService(1);
    started[0]?.crash();
    await waitUntil('restarted', () => (started.length === 2 ? true : undefined));
    expect(started[1]?.info.instanceId).toBe(started[0]?.info.instanceId);
    expect(as.sim.stats().softwareRestarts).toBe(1);
  });

  it('a spot interruption shows in the metadata, then the instance is reclaimed and replaced', async () => {
    await start();
    await createGroup();
    await client.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: 'pool-a', DesiredCapacity: 1 }));
    const [instance] = await inService(1);
    const id = instance?.InstanceId as string;
    as.sim.interruptSpot(id, 200);
    const imds = new Imdsv2({ endpoint: as.imdsEndpoint(id) });
    expect(await imds.spotInstanceAction()).toMatchObject({ action: 'terminate' });
    const [replacement] = await waitUntil('replaced', async () => {
      const now = (await group()).Instances ?? [];
      return now.length === 1 && now[0]?.InstanceId !== id && now[0]?.LifecycleState === 'InService'
        ? now
        : undefined;
    });
    expect(replacement?.InstanceId).not.toBe(id);
    expect(as.sim.stats().terminations).toEqual([
      expect.objectContaining({ instanceId: id, cause: 'spot-reclaimed' }),
    ]);
  });
});

describe('Auto Scaling simulator: lifecycle timeouts (simulated time)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('an action nobody completes ends at the heartbeat timeout; a heartbeat pushes it back', async () => {
    vi.useFakeTimers();
    const stops: string[] = [];
    const sim = new AutoScalingSimulator({
      launcher: (info) => {
        let exit!: () => void;
        const exited = new Promise<void>((r) => {
          exit = r;
        });
        return {
          exited,
          stop: () => {
            stops.push(info.instanceId);
            exit();
            return exited;
          },
        };
      },
    });
    sim.createGroup(REGION, {
      name: 'g',
      minSize: 0,
      maxSize: 2,
      desiredCapacity: 1,
      launchTemplate: { launchTemplateName: 't' },
      lifecycleHooks: [
        { name: 'drain', transition: TERMINATING, heartbeatTimeout: 30, defaultResult: 'CONTINUE' },
      ],
    });
    await vi.advanceTimersByTimeAsync(0);
    const [instance] = sim.activeInstances('g');
    const id = instance?.instanceId as string;
    sim.terminateInstance(id, true);
    await vi.advanceTimersByTimeAsync(20_000);
    sim.recordLifecycleActionHeartbeat({ groupName: 'g', hookName: 'drain', instanceId: id });
    await vi.advanceTimersByTimeAsync(20_000);
    expect(stops).toEqual([]);
    expect(sim.describeGroups({ names: ['g'] }).groups[0]?.instances[0]?.lifecycleState).toBe(
      'Terminating:Wait',
    );
    await vi.advanceTimersByTimeAsync(10_000);
    expect(stops).toEqual([id]);
    expect(sim.stats().lifecycleActionsTimedOut).toBe(1);
    expect(sim.describeGroups({ names: ['g'] }).groups[0]?.instances).toEqual([]);
    await sim.shutdown();
  });
});
