/** Settings every entry point (Lambdas, agent) reads from its environment, validated once. */

import { type KilnConfig, parseConfig } from '../core/config';
import { ConfigError, isKilnError } from '../core/errors';
import { ENV } from '../infra/definitions';
import { type AwsClients, makeClients } from './clients';
import { DynamoJobStore } from './dynamodb-job-store';
import { EventBridgePublisher, PublishingJobStore } from './job-events';
import type { QueueUrls } from './sqs-queues';

export interface RuntimeSettings {
  config: KilnConfig;
  tableName: string;
  bucketName: string;
  queueUrls: QueueUrls;
  /** Semaphores (auto-build cap); absent where the deployment has none. */
  slotsTableName?: string;
  /** Where job events go; absent = none are published. */
  eventBusName?: string;
}

function parseJsonObject(name: string, raw: string | undefined, problems: string[]): unknown {
  if (raw === undefined || raw === '') {
    problems.push(`${name} is not set`);
    return undefined;
  }
  try {
    return JSON.parse(raw) as unknown;
  } catch (error) {
    problems.push(`${name} is not valid JSON: ${(error as Error).message}`);
    return undefined;
  }
}

/** Reads every setting the Lambdas need and reports all problems at once. */
export function readRuntimeSettings(env: NodeJS.ProcessEnv): RuntimeSettings {
  const problems: string[] = [];
  const rawConfig = parseJsonObject(ENV.config, env[ENV.config], problems);
  let config: KilnConfig | undefined;
  if (rawConfig !== undefined) {
    try {
      config = parseConfig(rawConfig);
    } catch (error) {
      problems.push(isKilnError(error) ? error.message : String(error));
    }
  }
  const tableName = env[ENV.tableName];
  if (!tableName) problems.push(`${ENV.tableName} is not set`);
  const bucketName = env[ENV.bucketName];
  if (!bucketName) problems.push(`${ENV.bucketName} is not set`);
  const queueUrls = parseJsonObject(ENV.queueUrls, env[ENV.queueUrls], problems);
  if (
    queueUrls !== undefined &&
    (typeof queueUrls !== 'object' || queueUrls === null || Array.isArray(queueUrls))
  ) {
    problems.push(`${ENV.queueUrls} must be a JSON object of "pool/priority" → queue URL`);
  }
  if (problems.length > 0 || !config || !tableName || !bucketName) throw new ConfigError(problems);
  const slotsTableName = env[ENV.slotsTableName];
  const eventBusName = env[ENV.eventBusName];
  return {
    config,
    tableName,
    bucketName,
    queueUrls: queueUrls as QueueUrls,
    ...(slotsTableName ? { slotsTableName } : {}),
    ...(eventBusName ? { eventBusName } : {}),
  };
}

export function clientsFromEnv(env: NodeJS.ProcessEnv): AwsClients {
  const endpoints = {
    ...(env[ENV.dynamodbEndpoint] ? { dynamodb: env[ENV.dynamodbEndpoint] } : {}),
    ...(env[ENV.sqsEndpoint] ? { sqs: env[ENV.sqsEndpoint] } : {}),
    ...(env[ENV.s3Endpoint] ? { s3: env[ENV.s3Endpoint] } : {}),
    ...(env[ENV.eventsEndpoint] ? { events: env[ENV.eventsEndpoint] } : {}),
  };
  return makeClients({ region: env.AWS_REGION ?? 'us-east-1', endpoints });
}

/** The jobs table of an entry point: announcing every transition when the deployment has a bus. */
export function jobStoreFor(
  settings: RuntimeSettings,
  clients: AwsClients,
  onPublishError?: (jobId: string, error: unknown) => void,
): DynamoJobStore {
  const options = {
    documents: clients.documents,
    tableName: settings.tableName,
    recordRetentionDays: settings.config.jobRecordRetentionDays,
  };
  return settings.eventBusName
    ? new PublishingJobStore(
        options,
        new EventBridgePublisher(clients.events, settings.eventBusName),
        onPublishError,
      )
    : new DynamoJobStore(options);
}
