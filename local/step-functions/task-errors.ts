/**
 * The names Step Functions gives the errors of Task states, so that a definition's Retry and Catch
 * match the same names locally as in AWS.
 *
 * - AWS SDK integrations (`arn:aws:states:::aws-sdk:<service>:<action>`): `<Service>.<Error>`, both
 *   PascalCase, the error name always ending in `Exception` (`S3.BucketAlreadyExistsException`).
 *   EC2 is the exception to the rule: its API models no errors, so every EC2 service error is
 *   `Ec2.Ec2Exception` and the EC2 error code is only in the Cause.
 * - The optimized DynamoDB integration: `DynamoDB.<Error>` (`DynamoDB.ConditionalCheckFailedException`).
 * - Lambda: the function error's type (`errorType`), its message the Cause.
 */

/** PascalCase service names of SDK integrations whose naive capitalization is wrong. */
export const SDK_SERVICE_PASCAL_NAMES: Readonly<Record<string, string>> = {
  autoscaling: 'AutoScaling',
  cloudwatch: 'CloudWatch',
  cloudwatchlogs: 'CloudWatchLogs',
  dynamodb: 'DynamoDb',
  ec2: 'Ec2',
  ecr: 'Ecr',
  ecs: 'Ecs',
  eventbridge: 'EventBridge',
  iam: 'Iam',
  kms: 'Kms',
  s3: 'S3',
  secretsmanager: 'SecretsManager',
  sfn: 'Sfn',
  sns: 'Sns',
  sqs: 'Sqs',
  ssm: 'Ssm',
  sts: 'Sts',
};

/** The Error and Cause Step Functions reports for a failed Task. */
export interface TaskFailure {
  error: string;
  cause: string;
}

/**
 * An error a Task handler throws for aws-local-stepfunctions: the library matches Retry/Catch on
 * `name` and puts `message` in the Cause.
 */
export class TaskError extends Error {
  constructor(failure: TaskFailure) {
    super(failure.cause);
    this.name = failure.error;
  }
}

/**
 * A failure of the local machinery rather than of the task (an unsupported resource, a missing
 * client, a stopped execution): `States.Runtime`, which neither Retry nor Catch handles, as in AWS.
 */
export class LocalRuntimeError extends Error {
  // Read by aws-local-stepfunctions when deciding whether a Retry or Catch applies.
  readonly isRetryable = false;
  readonly isCatchable = false;

  constructor(message: string) {
    super(message);
    this.name = 'States.Runtime';
  }
}

export function sdkServicePascalName(service: string): string {
  return SDK_SERVICE_PASCAL_NAMES[service] ?? service.charAt(0).toUpperCase() + service.slice(1);
}

/** EC2 through an SDK integration: always `Ec2.Ec2Exception`, the code first in the Cause. */
export function ec2TaskFailure(err: unknown): TaskFailure {
  const { code, message } = describe(err);
  return { error: 'Ec2.Ec2Exception', cause: `${code}: ${message}` };
}

/** Any service through `arn:aws:states:::aws-sdk:<service>:<action>`. */
export function sdkTaskFailure(service: string, err: unknown): TaskFailure {
  const pascal = sdkServicePascalName(service);
  const { code, message } = describe(err);
  if (!isServiceError(err)) return { error: `${pascal}.SdkClientException`, cause: message };
  if (service === 'ec2') return ec2TaskFailure(err);
  return { error: `${pascal}.${code.endsWith('Exception') ? code : `${code}Exception`}`, cause: message };
}

/** DynamoDB through the optimized integration `arn:aws:states:::dynamodb:<action>`. */
export function dynamoDbTaskFailure(err: unknown): TaskFailure {
  const { code, message } = describe(err);
  return { error: isServiceError(err) ? `DynamoDB.${code}` : 'DynamoDB.SdkClientException', cause: message };
}

/** A local function standing in for a Lambda: its error's name is Lambda's errorType. */
export function lambdaTaskFailure(err: unknown): TaskFailure {
  if (err instanceof Error) return { error: err.name || 'Error', cause: err.message };
  return { error: 'Error', cause: typeof err === 'string' ? err : JSON.stringify(err) };
}

/** A service's answer (SDK v3 marks those with `$fault`), as opposed to a network or client failure. */
function isServiceError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && typeof (err as { $fault?: unknown }).$fault === 'string';
}

function describe(err: unknown): { code: string; message: string } {
  if (err instanceof Error) {
    const code = (err as { Code?: unknown }).Code;
    return { code: typeof code === 'string' && code ? code : err.name, message: err.message };
  }
  return { code: 'UnknownError', message: String(err) };
}
