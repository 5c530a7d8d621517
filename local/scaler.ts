/**
 * Local mode's fleet scaling: one Auto Scaling group per pool on the Auto Scaling simulator
 * (an instance = a real agent process of the local fleet), scaled by the SAME scaler as in AWS
 * (lambdas/scaler) on a timer, reading the SQS emulator, the agents table on dynalite, and the
 * simulator through the real SDK clients.
 */
import {
  type AutoScalingClient,
  CreateAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
} from '@aws-sdk/client-auto-scaling';
import { DynamoAgentRecords } from '../adapters/agent-status';
import { AwsScalingGroups, Ec2LaunchTimes, SqsQueueDepths } from '../adapters/autoscaling';
import { type AwsClients, makeAutoScalingClient, makeEc2Client } from '../adapters/clients';
import type { KilnConfig } from '../core/config';
import { PRIORITIES, type Priority } from '../core/job';
import { type ScalingSettings, scalingConfigFor } from '../core/scaling';
import { autoScalingGroupName, ENV, queueKey, TERMINATION_HOOK_NAME } from '../infra/definitions';
import { FleetScaler, type PoolTick, type ScaledPool } from '../lambdas/scaler/scaler';
import { fleetLauncher, type RunningAutoScalingSimulator, startAutoScalingSimulator } from './autoscaling';
import type { LocalFleet } from './fleet';

export interface LocalAutoscaleOptions {
  /** How often the scaler decides. @default 1000 */
  intervalMs?: number;
  /** Launch → agent process start (the instance's boot). @default 0 */
  bootDelayMs?: number;
  /**
   * The decision's settings (core/scaling.ts). Defaults: the AWS ones, with a local boot estimate
   * of 3 s, a boot deadline of 60 s, and the decision interval above.
   */
  settings?: Partial<ScalingSettings>;
  /** Claims over this many seconds size the warm headroom; 0 turns it off. @default 60 */
  arrivalWindowSeconds?: number;
  /** Heartbeat timeout of the termination hook (30..7200, as AWS). @default 30 */
  hookTimeoutSeconds?: number;
  /** How often agents read their instance metadata for lifecycle notices. @default 250 */
  lifecyclePollMs?: number;
}

export interface LocalAutoscalingDeps {
  config: KilnConfig;
  region: string;
  clients: AwsClients;
  fleet: LocalFleet;
  queueUrls: Readonly<Record<string, string>>;
  agentsTableName: string;
  log?: (line: string) => void;
}

export interface LocalAutoscaling {
  /** The Auto Scaling (and EC2 DescribeInstances) endpoint. */
  endpoint: string;
  simulator: RunningAutoScalingSimulator;
  scaler: FleetScaler;
  /** Pool → its group's name. */
  groups: Record<string, string>;
  /** Runs one round of decisions now (tests use it instead of waiting for the timer). */
  tickNow(): Promise<PoolTick[]>;
  stop(): Promise<void>;
}

export const LOCAL_SCALING_DEFAULTS = {
  intervalMs: 1000,
  bootDelayMs: 0,
  bootSeconds: 3,
  bootDeadlineSeconds: 60,
  arrivalWindowSeconds: 60,
  hookTimeoutSeconds: 30,
  lifecyclePollMs: 250,
} as const;

export async function startLocalAutoscaling(
  deps: LocalAutoscalingDeps,
  options: LocalAutoscaleOptions = {},
): Promise<LocalAutoscaling> {
  const log = deps.log ?? (() => undefined);
  const intervalMs = options.intervalMs ?? LOCAL_SCALING_DEFAULTS.intervalMs;
  // The launcher needs the simulator's own URLs, known once it listens.
  let simulator: RunningAutoScalingSimulator | undefined;
  simulator = await startAutoScalingSimulator({
    bootDelayMs: options.bootDelayMs ?? LOCAL_SCALING_DEFAULTS.bootDelayMs,
    onLaunchError: (instance, error) =>
      log(`autoscaling: launching ${instance.instanceId} failed: ${String(error)}`),
    launcher: fleetLauncher(deps.fleet, {
      env: (instance) => ({
        [ENV.autoScalingGroup]: instance.groupName,
        [ENV.autoScalingEndpoint]: simulator?.url,
        [ENV.imdsEndpoint]: simulator?.imdsEndpoint(instance.instanceId),
        [ENV.agentsTableName]: deps.agentsTableName,
        [ENV.lifecyclePollMs]: String(options.lifecyclePollMs ?? LOCAL_SCALING_DEFAULTS.lifecyclePollMs),
      }),
    }),
  });
  const running = simulator;
  const autoscaling = makeAutoScalingClient(deps.region, running.url);
  const ec2 = makeEc2Client(deps.region, running.url);
  try {
    const groups: Record<string, string> = {};
    for (const pool of deps.config.pools) {
      groups[pool.name] = autoScalingGroupName(deps.config.prefix, pool.name);
      await createGroup(autoscaling, deps.config, pool, options);
    }
    const decisionIntervalSeconds = intervalMs / 1000;
    const pools: ScaledPool[] = deps.config.pools.map((pool) => ({
      pool: pool.name,
      groupName: groups[pool.name] as string,
      queueUrls: Object.fromEntries(
        PRIORITIES.map((p) => [p, deps.queueUrls[queueKey(pool.name, p)] as string]),
      ) as Record<Priority, string>,
      scaling: scalingConfigFor(pool, {
        bootSeconds: LOCAL_SCALING_DEFAULTS.bootSeconds,
        bootDeadlineSeconds: LOCAL_SCALING_DEFAULTS.bootDeadlineSeconds,
        decisionIntervalSeconds,
        ...options.settings,
      }),
    }));
    const bootDeadline = Math.max(...pools.map((p) => p.scaling.bootDeadlineSeconds));
    const scaler = new FleetScaler(
      {
        groups: new AwsScalingGroups(autoscaling),
        launchTimes: new Ec2LaunchTimes(ec2),
        queues: new SqsQueueDepths(deps.clients.sqs),
        agents: new DynamoAgentRecords(deps.clients.documents, deps.agentsTableName),
        log: {
          info: (message, extra) => log(`scaler: ${describeTick(message, extra)}`),
          warn: (message, extra) => log(`scaler: ${message} ${JSON.stringify(extra ?? {})}`),
        },
      },
      pools,
      {
        silenceSeconds: Math.max(bootDeadline, 4 * deps.config.heartbeatSeconds),
        arrivalWindowSeconds: options.arrivalWindowSeconds ?? LOCAL_SCALING_DEFAULTS.arrivalWindowSeconds,
        drainGraceSeconds: 2 * deps.config.heartbeatSeconds,
      },
    );

    let ticking: Promise<PoolTick[]> | undefined;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const tickNow = () => {
      ticking ??= scaler
        .tick()
        .catch((error: unknown) => {
          log(`scaler: tick failed: ${String(error)}`);
          return [] as PoolTick[];
        })
        .finally(() => {
          ticking = undefined;
        });
      return ticking;
    };
    const loop = () => {
      void tickNow().then(() => {
        if (!stopped) timer = setTimeout(loop, intervalMs);
      });
    };
    loop();

    let stopping: Promise<void> | undefined;
    return {
      endpoint: running.url,
      simulator: running,
      scaler,
      groups,
      tickNow,
      stop() {
        stopping ??= (async () => {
          stopped = true;
          if (timer) clearTimeout(timer);
          await ticking;
          await running.stop();
          autoscaling.destroy();
          ec2.destroy();
        })();
        return stopping;
      },
    };
  } catch (error) {
    await running.stop();
    autoscaling.destroy();
    ec2.destroy();
    throw error;
  }
}

async function createGroup(
  client: AutoScalingClient,
  config: KilnConfig,
  pool: KilnConfig['pools'][number],
  options: LocalAutoscaleOptions,
): Promise<void> {
  const name = autoScalingGroupName(config.prefix, pool.name);
  await client.send(
    new CreateAutoScalingGroupCommand({
      AutoScalingGroupName: name,
      MinSize: pool.minCapacity,
      MaxSize: pool.maxCapacity,
      DesiredCapacity: pool.minCapacity,
      MixedInstancesPolicy: {
        LaunchTemplate: {
          LaunchTemplateSpecification: { LaunchTemplateName: `${config.prefix}-agent-${pool.name}` },
          Overrides: pool.instanceTypes.map((t) => ({ InstanceType: t })),
        },
      },
      Tags: [
        { Key: 'kiln:pool', Value: pool.name, PropagateAtLaunch: true },
        { Key: 'kiln:arch', Value: pool.arch, PropagateAtLaunch: true },
      ],
      LifecycleHookSpecificationList: [
        {
          LifecycleHookName: TERMINATION_HOOK_NAME,
          LifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
          HeartbeatTimeout: options.hookTimeoutSeconds ?? LOCAL_SCALING_DEFAULTS.hookTimeoutSeconds,
          DefaultResult: 'CONTINUE',
        },
      ],
    }),
  );
  const out = await client.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }));
  if (out.AutoScalingGroups?.length !== 1) throw new Error(`group ${name} was not created`);
}

function describeTick(message: string, extra: Record<string, unknown> | undefined): string {
  if (!extra) return message;
  const applied = extra.applied as PoolTick['applied'] | undefined;
  const parts = [`${extra.pool}: desired ${extra.desiredCapacity}`];
  if (applied?.terminated.length) parts.push(`scaled in ${applied.terminated.join(', ')}`);
  if (applied?.replaced.length) parts.push(`replaced ${applied.replaced.join(', ')}`);
  const reasons = (extra.reasons as string[] | undefined) ?? [];
  const errors = (extra.errors as string[] | undefined) ?? [];
  return `${parts.join('; ')} (${[...reasons, ...errors].join('; ')})`;
}
