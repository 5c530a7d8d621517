/**
 * One call for an integration test's `beforeAll`: fresh emulators, SDK clients pointed at them,
 * and the table, queues and bucket a config needs.
 *
 *   let stack: TestStack;
 *   beforeAll(async () => { stack = await startTestStack({ maxReceiveCount: 2 }); });
 *   afterAll(() => stack?.stop());
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AwsClients,
  destroyClients,
  type Endpoints,
  LOCAL_CREDENTIALS,
  makeClients,
} from '../../adapters/clients';
import { type KilnConfig, type KilnConfigInput, parseConfig } from '../../core/config';
import { ENV } from '../../infra/definitions';
import { LOCAL_REGION, startEmulators } from '../../local/emulators';
import { createResources, type LocalResources } from '../../local/resources';

export interface TestStack {
  config: KilnConfig;
  region: string;
  endpoints: Required<Pick<Endpoints, 'dynamodb' | 'sqs' | 's3'>>;
  clients: AwsClients;
  resources: LocalResources;
  /** Scratch directory of this stack (s3rver's store lives under it); removed by stop(). */
  dataDir: string;
  /**
   * Environment for a child process (agent, Lambda entry) to reach this stack the way it would
   * read its configuration in AWS.
   */
  env: Record<string, string>;
  /** Clients made here are destroyed too; destroy any extra clients you made yourself first. */
  stop(): Promise<void>;
}

export async function startTestStack(config?: KilnConfigInput): Promise<TestStack> {
  const parsed = parseConfig(config ?? {});
  const dataDir = await mkdtemp(join(tmpdir(), 'kiln-test-'));
  let emulators: Awaited<ReturnType<typeof startEmulators>> | undefined;
  let clients: AwsClients | undefined;
  const teardown = async () => {
    if (clients) destroyClients(clients);
    try {
      await emulators?.stop();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  };

  try {
    emulators = await startEmulators({ dataDir });
    clients = makeClients({ region: LOCAL_REGION, endpoints: emulators.endpoints });
    const resources = await createResources(clients, parsed);
    const { endpoints } = emulators;
    let stopping: Promise<void> | undefined;
    return {
      config: parsed,
      region: LOCAL_REGION,
      endpoints,
      clients,
      resources,
      dataDir,
      env: {
        [ENV.config]: JSON.stringify(parsed),
        [ENV.tableName]: resources.tableName,
        [ENV.bucketName]: resources.bucketName,
        [ENV.queueUrls]: JSON.stringify(resources.queueUrls),
        [ENV.dynamodbEndpoint]: endpoints.dynamodb,
        [ENV.sqsEndpoint]: endpoints.sqs,
        [ENV.s3Endpoint]: endpoints.s3,
        AWS_REGION: LOCAL_REGION,
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      },
      stop() {
        stopping ??= teardown();
        return stopping;
      },
    };
  } catch (err) {
    await teardown().catch(() => {});
    throw err;
  }
}
