/**
 * A wire-level Auto Scaling Query-API simulator for local mode and tests: the real
 * @aws-sdk/client-auto-scaling, given `endpoint: url`, creates groups, sets desired capacity,
 * terminates instances, toggles scale-in protection and completes lifecycle actions against it,
 * with Auto Scaling's limits (bounds, protection, lifecycle hooks; see ./autoscaling/simulator.ts).
 * The same server answers EC2's DescribeInstances for its instances (launch times), and serves
 * each instance's metadata (IMDSv2) under `/imds/<instance-id>`.
 *
 * In local mode an instance is a real agent process from the local fleet (`fleetLauncher`).
 *
 *   const as = await startAutoScalingSimulator({ launcher: fleetLauncher(fleet, …) });
 *   const client = new AutoScalingClient({ region, endpoint: as.url, credentials });
 *
 * Supported actions: CreateAutoScalingGroup, UpdateAutoScalingGroup, DeleteAutoScalingGroup,
 * DescribeAutoScalingGroups, SetDesiredCapacity, TerminateInstanceInAutoScalingGroup,
 * SetInstanceProtection, PutLifecycleHook, DescribeLifecycleHooks, CompleteLifecycleAction,
 * RecordLifecycleActionHeartbeat; EC2 DescribeInstances.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AUTOSCALING_ACTIONS, describeInstancesXml } from './autoscaling/actions';
import { IMDS_PREFIX, InstanceMetadataService } from './autoscaling/imds';
import { AutoScalingError, Ec2ApiError } from './autoscaling/model';
import { QueryParams } from './autoscaling/query';
import {
  AutoScalingSimulator,
  type AutoScalingSimulatorOptions,
  type InstanceInfo,
  type InstanceLauncher,
} from './autoscaling/simulator';
import { queryError, queryResponse } from './autoscaling/xml';
import { credentialRegion, MISSING_CREDENTIAL_SCOPE, readBody } from './aws-query/request';
import { answerQuery, startLoopbackServer } from './aws-query/server';
import { ec2ErrorDocument as errorDocument, ec2ResponseDocument as responseDocument } from './aws-query/xml';
import type { LocalFleet } from './fleet';

export type {
  ActivityView,
  GroupView,
  HookView,
  InstanceView,
  LifecycleState,
} from './autoscaling/model';
export { AutoScalingError, LAUNCHING, TERMINATING } from './autoscaling/model';
export type {
  AutoScalingSimulatorOptions,
  AutoScalingStats,
  InstanceInfo,
  InstanceLauncher,
  InstanceSoftware,
  TerminationRecord,
} from './autoscaling/simulator';
export { AutoScalingSimulator } from './autoscaling/simulator';

export interface StartAutoScalingSimulatorOptions extends AutoScalingSimulatorOptions {
  /** Port on 127.0.0.1; 0 (default) lets the OS choose. */
  port?: number;
}

export interface RunningAutoScalingSimulator {
  /** `http://127.0.0.1:<port>`: the AutoScalingClient's (and the scaler's EC2Client's) `endpoint`. */
  url: string;
  sim: AutoScalingSimulator;
  /** The IMDS endpoint an instance's agent uses (KILN_IMDS_ENDPOINT). */
  imdsEndpoint(instanceId: string): string;
  /** Stops every instance's software, then the server. */
  stop(): Promise<void>;
}

const EC2_VERSION = '2016-11-15';

export async function startAutoScalingSimulator(
  opts: StartAutoScalingSimulatorOptions = {},
): Promise<RunningAutoScalingSimulator> {
  const sim = new AutoScalingSimulator(opts);
  const imds = new InstanceMetadataService(sim);
  const server = await startLoopbackServer(
    (req, res) => {
      const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
      if (path.startsWith(IMDS_PREFIX)) imds.handle(req, res, path);
      else void handleQuery(sim, req, res);
    },
    // Stops every instance's software before the server.
    { port: opts.port, beforeClose: () => sim.shutdown() },
  );
  const { url } = server;
  return {
    url,
    sim,
    imdsEndpoint: (instanceId) => `${url}${IMDS_PREFIX}${instanceId}`,
    stop: server.stop,
  };
}

async function handleQuery(
  sim: AutoScalingSimulator,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  let ec2 = false;
  await answerQuery(
    res,
    async (requestId) => {
      if (req.method !== 'POST')
        throw new AutoScalingError('InvalidHttpRequest', `HTTP ${req.method} is not supported`, 405);
      const params = QueryParams.parse(
        await readBody(
          req,
          () => new AutoScalingError('RequestEntityTooLarge', 'The request body is too large.', 413),
        ),
      );
      const action = params.str('Action') ?? '';
      ec2 = params.str('Version') === EC2_VERSION;
      const region = credentialRegion(req.headers.authorization ?? '', { requirePrefix: true });
      if (!region) throw new AutoScalingError('MissingAuthenticationToken', MISSING_CREDENTIAL_SCOPE, 403);
      if (ec2) {
        if (action !== 'DescribeInstances') {
          throw new Ec2ApiError('InvalidAction', `The action ${action} is not valid for this web service.`);
        }
        return responseDocument(action, requestId, describeInstancesXml(sim, params));
      }
      const handler = Object.hasOwn(AUTOSCALING_ACTIONS, action) ? AUTOSCALING_ACTIONS[action] : undefined;
      if (!handler)
        throw new AutoScalingError(
          'InvalidAction',
          `The action ${action} is not valid for this web service.`,
        );
      return queryResponse(action, requestId, await handler(sim, region, params));
    },
    (err, requestId) => {
      if (ec2 || err instanceof Ec2ApiError) {
        const e = err instanceof Ec2ApiError ? err : new Ec2ApiError('InternalError', String(err), 500);
        return { status: e.httpStatus, xml: errorDocument(e.code, e.message, requestId) };
      }
      const e =
        err instanceof AutoScalingError
          ? err
          : new AutoScalingError(
              'InternalFailure',
              `An internal error has occurred: ${(err as Error)?.message ?? err}`,
              500,
            );
      return { status: e.httpStatus, xml: queryError(e.type, e.code, e.message, requestId) };
    },
  );
}

export interface FleetLauncherOptions {
  /** Extra environment of the instance's agent (endpoints, its group), per instance. */
  env: (instance: InstanceInfo) => NodeJS.ProcessEnv;
  /** An agent that has not exited this long after SIGTERM is killed. @default 15000 */
  stopDeadlineMs?: number;
}

/**
 * Instances whose software is a real agent process of the local fleet, serving the pool named
 * by the group's `kiln:pool` tag, with the instance id as its agent id (as on EC2).
 */
export function fleetLauncher(fleet: LocalFleet, options: FleetLauncherOptions): InstanceLauncher {
  return (instance) => {
    const pool = instance.tags['kiln:pool'];
    if (!pool) throw new Error(`group ${instance.groupName} has no kiln:pool tag to launch agents for`);
    const agent = fleet.spawn(pool, { agentId: instance.instanceId, env: options.env(instance) });
    return {
      exited: agent.exited,
      stop: () => fleet.kill(agent.agentId, 'SIGTERM', options.stopDeadlineMs ?? 15_000),
    };
  };
}
