/**
 * The one place AWS SDK clients are built, for Lambdas, the agent and the local stack alike, so
 * that the emulator-specific settings live next to each other and nowhere else.
 */
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export interface Endpoints {
  dynamodb?: string;
  sqs?: string;
  s3?: string;
  events?: string;
}

export interface AwsClients {
  dynamodb: DynamoDBClient;
  documents: DynamoDBDocumentClient;
  sqs: SQSClient;
  s3: S3Client;
  events: EventBridgeClient;
}

export interface StaticCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface MakeClientsOptions {
  region: string;
  endpoints?: Endpoints;
  /**
   * Used for every client when given. Without it, a client with an endpoint override gets
   * LOCAL_CREDENTIALS and a client without one uses the default credential provider chain.
   */
  credentials?: StaticCredentials;
}

/**
 * s3rver only accepts this key pair (it checks the key id, not the V4 signature); dynalite and
 * fauxqs accept any well-formed SigV4 request, so one pair serves all three emulators.
 * Not frozen: the SDK tags the credentials object it is given, and throws if it cannot.
 */
export const LOCAL_CREDENTIALS: Readonly<StaticCredentials> = {
  accessKeyId: 'S3RVER',
  secretAccessKey: 'S3RVER',
};

// Three attempts absorb a throttle or a dropped connection; more only delays reporting a real outage.
const MAX_ATTEMPTS = 3;

export function makeClients(opts: MakeClientsOptions): AwsClients {
  const endpoints = opts.endpoints ?? {};
  const credentialsFor = (endpoint: string | undefined): StaticCredentials | undefined =>
    opts.credentials ?? (endpoint ? { ...LOCAL_CREDENTIALS } : undefined);
  const common = (endpoint: string | undefined) => ({
    region: opts.region,
    maxAttempts: MAX_ATTEMPTS,
    endpoint,
    credentials: credentialsFor(endpoint),
  });

  const dynamodb = new DynamoDBClient(common(endpoints.dynamodb));
  const documents = DynamoDBDocumentClient.from(dynamodb, {
    // Optional job fields are left undefined rather than deleted; DynamoDB rejects undefined.
    marshallOptions: { removeUndefinedValues: true },
  });

  // With an explicit endpoint the SQS client sends every call there, whatever host the queue URL
  // names (fauxqs hands out `sqs.<region>.localhost` URLs that do not resolve).
  const sqs = new SQSClient(common(endpoints.sqs));

  const s3 = new S3Client({
    ...common(endpoints.s3),
    ...(endpoints.s3
      ? {
          // Emulators on 127.0.0.1 cannot serve virtual-hosted bucket names.
          forcePathStyle: true,
          // Default flexible checksums send streamed bodies as aws-chunked with a trailer, which
          // s3rver stores verbatim (framing included); real S3 keeps the default integrity checks.
          requestChecksumCalculation: 'WHEN_REQUIRED' as const,
          responseChecksumValidation: 'WHEN_REQUIRED' as const,
        }
      : {}),
  });

  const events = new EventBridgeClient(common(endpoints.events));
  return { dynamodb, documents, sqs, s3, events };
}

/** Releases the clients' keep-alive sockets so a process (or an emulator shutdown) is not held open. */
export function destroyClients(clients: AwsClients): void {
  clients.dynamodb.destroy();
  clients.sqs.destroy();
  clients.s3.destroy();
  clients.events.destroy();
}

/** Step Functions client (the agent and sweeper start and inspect register executions). */
export function makeSfnClient(region: string, endpoint?: string): SFNClient {
  return new SFNClient({
    region,
    maxAttempts: MAX_ATTEMPTS,
    ...(endpoint ? { endpoint, credentials: { ...LOCAL_CREDENTIALS } } : {}),
  });
}

/** EC2 client for one region (the register workflow's copies and retention work per region). */
export function makeEc2Client(region: string, endpoint?: string): EC2Client {
  return new EC2Client({
    region,
    maxAttempts: MAX_ATTEMPTS,
    ...(endpoint ? { endpoint, credentials: { ...LOCAL_CREDENTIALS } } : {}),
  });
}

/** Auto Scaling client (the fleet scaler; an agent's scale-in protection and lifecycle actions). */
export function makeAutoScalingClient(region: string, endpoint?: string): AutoScalingClient {
  return new AutoScalingClient({
    region,
    maxAttempts: MAX_ATTEMPTS,
    ...(endpoint ? { endpoint, credentials: { ...LOCAL_CREDENTIALS } } : {}),
  });
}
