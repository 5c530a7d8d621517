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
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
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
import { errorDocument, responseDocument } from './ec2-simulator/xml';
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

const MAX_BODY_BYTES = 1024 * 1024;
const EC2_VERSION = '2016-11-15';

export async function startAutoScalingSimulator(
  opts: StartAutoScalingSimulatorOptions = {},
): Promise<RunningAutoScalingSimulator> {
  const sim = new AutoScalingSimulator(opts);
  const imds = new InstanceMetadataService(sim);
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if (path.startsWith(IMDS_PREFIX)) imds.handle(req, res, path);
    else void handleQuery(sim, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  let stopping: Promise<void> | undefined;
  return {
    url,
    sim,
    imdsEndpoint: (instanceId) => `${url}${IMDS_PREFIX}${instanceId}`,
    stop() {
      stopping ??= (async () => {
        await sim.shutdown();
        await new Promise<void>((resolve, reject) => {
          server.close((err) => (err ? reject(err) : resolve()));
          // SDK clients keep sockets alive; close() alone would wait for them.
          server.closeAllConnections();
        });
      })();
      return stopping;
    },
  };
}

async function handleQuery(
  sim: AutoScalingSimulator,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const requestId = randomUUID();
  let status = 200;
  let xml: string;
  let ec2 = false;
  try {
    if (req.method !== 'POST')
      throw new AutoScalingError('InvalidHttpRequest', `HTTP ${req.method} is not supported`, 405);
    const params = QueryParams.parse(await readBody(req));
    const action = params.str('Action') ?? '';
    ec2 = params.str('Version') === EC2_VERSION;
    const region = regionOf(req.headers.authorization ?? '');
    if (!region) {
      throw new AutoScalingError(
        'MissingAuthenticationToken',
        'The request must contain a SigV4 Authorization header whose credential scope names the region.',
        403,
      );
    }
    if (ec2) {
      if (action !== 'DescribeInstances') {
        throw new Ec2ApiError('InvalidAction', `The action ${action} is not valid for this web service.`);
      }
      xml = responseDocument(action, requestId, describeInstancesXml(sim, params));
    } else {
      const handler = Object.hasOwn(AUTOSCALING_ACTIONS, action) ? AUTOSCALING_ACTIONS[action] : undefined;
      if (!handler)
        throw new AutoScalingError(
          'InvalidAction',
          `The action ${action} is not valid for this web service.`,
        );
      xml = queryResponse(action, requestId, await handler(sim, region, params));
    }
  } catch (err) {
    if (ec2 || err instanceof Ec2ApiError) {
      const e = err instanceof Ec2ApiError ? err : new Ec2ApiError('InternalError', String(err), 500);
      status = e.httpStatus;
      xml = errorDocument(e.code, e.message, requestId);
    } else {
      const e =
        err instanceof AutoScalingError
          ? err
          : new AutoScalingError(
              'InternalFailure',
              `An internal error has occurred: ${(err as Error)?.message ?? err}`,
              500,
            );
      status = e.httpStatus;
      xml = queryError(e.type, e.code, e.message, requestId);
    }
  }
  const body = Buffer.from(xml, 'utf8');
  res.writeHead(status, {
    'content-type': 'text/xml;charset=UTF-8',
    'content-length': body.byteLength,
    'x-amzn-requestid': requestId,
  });
  res.end(body);
}

/** `Credential=AKID/20240101/eu-west-1/autoscaling/aws4_request` → `eu-west-1`. */
function regionOf(authorization: string): string | undefined {
  return /Credential=[^/\s,]+\/\d{8}\/([a-z0-9-]+)\/[a-z0-9-]+\/aws4_request/.exec(authorization)?.[1];
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.byteLength;
    if (size > MAX_BODY_BYTES)
      throw new AutoScalingError('RequestEntityTooLarge', 'The request body is too large.', 413);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
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
