/**
 * In-process emulators for the three AWS services local mode talks to, each on its own
 * 127.0.0.1 port chosen by the OS: dynalite (DynamoDB, in memory), fauxqs (SQS; its S3 is
 * unused because it keeps objects in memory) and s3rver (S3, on disk under dataDir).
 */
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import dynalite from 'dynalite';
import { buildApp } from 'fauxqs';
import S3rver from 's3rver';
import type { Endpoints } from '../adapters/clients';

/** The region local clients sign for; fauxqs takes it from the signature into queue ARNs. */
export const LOCAL_REGION = 'us-east-1';

const HOST = '127.0.0.1';

export interface RunningEmulators {
  endpoints: Required<Pick<Endpoints, 'dynamodb' | 'sqs' | 's3'>>;
  stop(): Promise<void>;
}

interface Running {
  endpoint: string;
  stop(): Promise<void>;
}

export async function startEmulators(opts: { dataDir: string }): Promise<RunningEmulators> {
  const s3Dir = join(opts.dataDir, 's3');
  await mkdir(s3Dir, { recursive: true });

  const started = await Promise.allSettled([startDynamo(), startSqs(), startS3(s3Dir)]);
  const running = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failure = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) {
    await Promise.allSettled(running.map((r) => r.stop()));
    throw failure.reason;
  }
  const [dynamodb, sqs, s3] = running as [Running, Running, Running];

  let stopping: Promise<void> | undefined;
  return {
    endpoints: { dynamodb: dynamodb.endpoint, sqs: sqs.endpoint, s3: s3.endpoint },
    stop() {
      stopping ??= Promise.allSettled([dynamodb.stop(), sqs.stop(), s3.stop()]).then((results) => {
        const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
        if (errors.length > 0) throw new AggregateError(errors, 'stopping the emulators failed');
      });
      return stopping;
    },
  };
}

async function startDynamo(): Promise<Running> {
  // Tables still go through CREATING (as in AWS) so callers keep their wait, just briefly.
  const server = dynalite({ createTableMs: 20, deleteTableMs: 20, updateTableMs: 20 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    endpoint: endpointOf(server),
    // dynalite's close also shuts its in-memory LevelDB; pooled SDK sockets must be cut or it waits for them.
    stop: () => closeHttpServer(server),
  };
}

async function startSqs(): Promise<Running> {
  const app = buildApp({ logger: false });
  try {
    await app.listen({ host: HOST, port: 0 });
  } catch (err) {
    await app.close();
    throw err;
  }
  // fastify was built with forceCloseConnections, and fauxqs ends pending long polls in preClose.
  return { endpoint: endpointOf(app.server), stop: async () => void (await app.close()) };
}

async function startS3(directory: string): Promise<Running> {
  const s3rver = new S3rver({ address: HOST, port: 0, silent: true, directory });
  const address = await s3rver.run();
  const server = s3rver.httpServer;
  if (!server) throw new Error('s3rver did not expose its HTTP server');
  return {
    endpoint: `http://${HOST}:${address.port}`,
    stop: () => closeHttpServer(server),
  };
}

function endpointOf(server: Server): string {
  const address = server.address() as AddressInfo | null;
  if (!address || typeof address === 'string') throw new Error('emulator is not listening on TCP');
  return `http://${HOST}:${address.port}`;
}

function closeHttpServer(server: Server): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}
