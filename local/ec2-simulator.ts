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
import type { IncomingMessage, ServerResponse } from 'node:http';
import { credentialRegion, MISSING_CREDENTIAL_SCOPE, readBody } from './aws-query/request';
import { answerQuery, startLoopbackServer } from './aws-query/server';
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

export async function startEc2Simulator(opts: StartEc2SimulatorOptions = {}): Promise<RunningEc2Simulator> {
  const sim = opts.sim ?? new Ec2Simulator(opts);
  const server = await startLoopbackServer(
    (req, res) => {
      void handleEc2Request(sim, req, res);
    },
    { port: opts.port },
  );
  return { url: server.url, sim, stop: server.stop };
}

/** The request listener behind `startEc2Simulator`, for mounting the simulator elsewhere. */
export async function handleEc2Request(
  sim: Ec2Simulator,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  await answerQuery(
    res,
    async (requestId) => {
      const { action, region, params } = await readRequest(req);
      const handler = Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined;
      if (!handler)
        throw new Ec2Error('InvalidAction', `The action ${action} is not valid for this web service.`);
      if (params.bool('DryRun')) {
        throw new Ec2Error('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
      }
      return responseDocument(action, requestId, await handler(sim, region, params));
    },
    (err, requestId) => {
      const error =
        err instanceof Ec2Error
          ? err
          : new Ec2Error(
              'InternalError',
              `An internal error has occurred: ${(err as Error)?.message ?? err}`,
              500,
            );
      return { status: error.httpStatus, xml: errorDocument(error.code, error.message, requestId) };
    },
  );
}

async function readRequest(
  req: IncomingMessage,
): Promise<{ action: string; region: string; params: QueryParams }> {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  let raw: string;
  if (req.method === 'POST')
    raw = await readBody(
      req,
      () => new Ec2Error('RequestEntityTooLarge', 'The request body is too large.', 413),
    );
  else if (req.method === 'GET') raw = url.search.slice(1);
  else throw new Ec2Error('InvalidHttpRequest', `The HTTP method ${req.method} is not supported.`, 405);
  const params = QueryParams.parse(raw);
  const region = credentialRegion(
    req.headers.authorization ?? url.searchParams.get('X-Amz-Credential') ?? '',
  );
  if (!region) throw new Ec2Error('MissingAuthenticationToken', MISSING_CREDENTIAL_SCOPE, 401);
  const action = params.str('Action');
  if (!action) throw new Ec2Error('MissingAction', 'The request must contain the parameter Action');
  return { action, region, params };
}
