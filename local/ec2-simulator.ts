/**
 * A wire-level EC2 Query-API simulator for local mode and tests: the real @aws-sdk/client-ec2,
 * given `endpoint: url`, imports snapshots, registers, copies, tags, shares, deregisters and
 * deletes against it, with AWS's limits (e.g. `ResourceCountLimitExceeded` past the import
 * concurrency limit). The region of each call is its SigV4 credential scope; state is per
 * region. Signatures are not verified: any static credentials do.
 *
 *   const ec2 = await startEc2Simulator({ now: () => clock });
 *   const client = new EC2Client({ region: 'us-east-1', endpoint: ec2.url, credentials });
 *   ec2.sim.stats('us-east-1').peakActiveImports;
 *
 * Supported actions: ImportSnapshot, DescribeImportSnapshotTasks, CancelImportTask,
 * RegisterImage, DescribeImages, CopyImage, CreateTags, ModifyImageAttribute,
 * DescribeImageAttribute, DeregisterImage, DescribeSnapshots, DeleteSnapshot.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ACTIONS } from './ec2-simulator/actions';
import { Ec2Error } from './ec2-simulator/model';
import { QueryParams } from './ec2-simulator/query';
import { Ec2Simulator, type Ec2SimulatorOptions } from './ec2-simulator/simulator';
import { errorDocument, responseDocument } from './ec2-simulator/xml';

export type {
  BlockDeviceMappingView,
  EbsView,
  Filter,
  ImageState,
  ImageView,
  ImportTaskInfo,
  ImportTaskStatus,
  ImportTaskView,
  SnapshotState,
  SnapshotView,
  TagSpecification,
  Tags,
} from './ec2-simulator/model';
export { Ec2Error } from './ec2-simulator/model';
export type {
  CopyImageInput,
  DescribeImagesInput,
  DescribeImportSnapshotTasksInput,
  DescribeSnapshotsInput,
  Ec2Durations,
  Ec2SimulatorOptions,
  Ec2Stats,
  ImageAttribute,
  ImportSnapshotInput,
  LaunchPermissionItem,
  ModifyImageAttributeInput,
  RegisterImageInput,
  SeedImage,
  SeedSnapshot,
  TimelinePoint,
} from './ec2-simulator/simulator';
export { Ec2Simulator } from './ec2-simulator/simulator';

export interface StartEc2SimulatorOptions extends Ec2SimulatorOptions {
  /** Port on 127.0.0.1; 0 (default) lets the OS choose. */
  port?: number;
  /** Serve an existing simulator instead of creating one from the options. */
  sim?: Ec2Simulator;
}

export interface RunningEc2Simulator {
  /** `http://127.0.0.1:<port>`: the EC2Client's `endpoint`. */
  url: string;
  sim: Ec2Simulator;
  stop(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;

export async function startEc2Simulator(opts: StartEc2SimulatorOptions = {}): Promise<RunningEc2Simulator> {
  const sim = opts.sim ?? new Ec2Simulator(opts);
  const server = createServer((req, res) => {
    void handleEc2Request(sim, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let stopping: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    sim,
    stop() {
      stopping ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // SDK clients keep sockets alive; close() alone would wait for them.
        server.closeAllConnections();
      });
      return stopping;
    },
  };
}

/** The request listener behind `startEc2Simulator`, for mounting the simulator elsewhere. */
export async function handleEc2Request(
  sim: Ec2Simulator,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const requestId = randomUUID();
  let status = 200;
  let xml: string;
  try {
    const { action, region, params } = await readRequest(req);
    const handler = Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined;
    if (!handler)
      throw new Ec2Error('InvalidAction', `The action ${action} is not valid for this web service.`);
    if (params.bool('DryRun')) {
      throw new Ec2Error('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
    }
    xml = responseDocument(action, requestId, await handler(sim, region, params));
  } catch (err) {
    const error =
      err instanceof Ec2Error
        ? err
        : new Ec2Error(
            'InternalError',
            `An internal error has occurred: ${(err as Error)?.message ?? err}`,
            500,
          );
    status = error.httpStatus;
    xml = errorDocument(error.code, error.message, requestId);
  }
  const body = Buffer.from(xml, 'utf8');
  res.writeHead(status, {
    'content-type': 'text/xml;charset=UTF-8',
    'content-length': body.byteLength,
    'x-amzn-requestid': requestId,
  });
  res.end(body);
}

async function readRequest(
  req: IncomingMessage,
): Promise<{ action: string; region: string; params: QueryParams }> {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  let raw: string;
  if (req.method === 'POST') raw = await readBody(req);
  else if (req.method === 'GET') raw = url.search.slice(1);
  else throw new Ec2Error('InvalidHttpRequest', `The HTTP method ${req.method} is not supported.`, 405);
  const params = QueryParams.parse(raw);
  const region = regionOf(req.headers.authorization ?? url.searchParams.get('X-Amz-Credential') ?? '');
  if (!region) {
    throw new Ec2Error(
      'MissingAuthenticationToken',
      'The request must contain a SigV4 Authorization header whose credential scope names the region.',
      401,
    );
  }
  const action = params.str('Action');
  if (!action) throw new Ec2Error('MissingAction', 'The request must contain the parameter Action');
  return { action, region, params };
}

/** `Credential=AKID/20240101/eu-west-1/ec2/aws4_request` → `eu-west-1`. */
function regionOf(credential: string): string | undefined {
  return /(?:Credential=)?[^/\s,=]+\/\d{8}\/([a-z0-9-]+)\/[a-z0-9-]+\/aws4_request/.exec(credential)?.[1];
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.byteLength;
    if (size > MAX_BODY_BYTES)
      throw new Ec2Error('RequestEntityTooLarge', 'The request body is too large.', 413);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}
