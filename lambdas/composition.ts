/**
 * Composition root of the Lambdas: reads and validates the environment once, builds the AWS
 * clients and adapters, and hands them to the handlers. Local mode builds the same handlers
 * through `buildApi` with its own endpoints.
 */

import type { AwsClients } from '../adapters/clients';
import { DynamoSemaphore } from '../adapters/dynamodb-semaphore';
import {
  clientsFromEnv,
  jobStoreFor,
  type RuntimeSettings,
  readRuntimeSettings,
} from '../adapters/runtime-settings';
import { S3ArtifactStore } from '../adapters/s3-artifacts';
import { SqsDispatcher, SqsQueueStats } from '../adapters/sqs-queues';
import { AUTO_BUILDS } from '../core/admission';
import { makeApiHandlers } from './api/handlers';
import type { JobDispatcher } from './api/ports';
import { JobService } from './api/service';
import { type AutoGateDeps, admit } from './gate/auto-gate';
import { makeLogger, makeMetrics } from './observability';

export interface ApiBuildOptions {
  settings: RuntimeSettings;
  clients: AwsClients;
  clock?: () => Date;
  /** Test hook: wraps the dispatcher (e.g. to inject a crash between the job write and the send). */
  wrapDispatcher?: (dispatcher: JobDispatcher) => JobDispatcher;
}

export { clientsFromEnv, readRuntimeSettings };

export function buildStores(settings: RuntimeSettings, clients: AwsClients) {
  const store = jobStoreFor(settings, clients);
  const dispatcher = new SqsDispatcher(clients.sqs, settings.queueUrls);
  const autoGate: AutoGateDeps | undefined = settings.slotsTableName
    ? {
        store,
        dispatcher,
        semaphore: new DynamoSemaphore(clients.documents, settings.slotsTableName),
        cap: settings.config.autoBuildCap,
      }
    : undefined;
  return {
    store,
    artifacts: new S3ArtifactStore(clients.s3, settings.bucketName),
    dispatcher,
    ...(autoGate ? { autoGate } : {}),
  };
}

export function buildApi(options: ApiBuildOptions) {
  const { store, artifacts, dispatcher, autoGate } = buildStores(options.settings, options.clients);
  const logger = makeLogger('kiln-api');
  const service = new JobService({
    store,
    dispatcher: options.wrapDispatcher ? options.wrapDispatcher(dispatcher) : dispatcher,
    ...(autoGate
      ? {
          admission: { admit: (job, now) => admit(autoGate, job, now) },
          autoSlots: { read: () => autoGate.semaphore.read(AUTO_BUILDS) },
        }
      : {}),
    queueStats: new SqsQueueStats(options.clients.sqs, options.settings.queueUrls),
    logs: artifacts,
    links: artifacts,
    config: options.settings.config,
    clock: options.clock ?? (() => new Date()),
    onDispatchError: (jobId, error) =>
      logger.warn('enqueue failed; the sweeper will send the job', { jobId, error: error as Error }),
  });
  return makeApiHandlers({ service, logger, metrics: makeMetrics('kiln-api') });
}

let cached: ReturnType<typeof buildApi> | undefined;

/** The handlers as a Lambda builds them: from the environment, once per container. */
export function apiHandlersFromEnv(): ReturnType<typeof buildApi> {
  cached ??= buildApi({ settings: readRuntimeSettings(process.env), clients: clientsFromEnv(process.env) });
  return cached;
}
