/**
 * What each Task state's `Resource` becomes locally: the real SDK v3 call against a local
 * endpoint, or a local function standing in for a Lambda. The caller injects the clients and
 * functions; this module maps the resource, the parameters, the result and the error names.
 */
import { randomUUID } from 'node:crypto';
import type { Context as LambdaContext } from 'aws-lambda';
import {
  dynamoDbTaskFailure,
  LocalRuntimeError,
  lambdaTaskFailure,
  sdkTaskFailure,
  TaskError,
} from './task-errors';

/** Any SDK v3 client (`EC2Client`, `DynamoDBClient`, ...). */
export interface SdkClient {
  send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown>;
}

/** A module exporting SDK v3 command classes (`import * as m from '@aws-sdk/client-…'`). */
export type CommandModule = Readonly<Record<string, unknown>>;

export interface LocalLambdaContext extends LambdaContext {
  /** The execution this invocation belongs to. */
  executionArn: string;
  /** The Task state invoking the function. */
  stateName: string;
  /** Aborted when the execution stops (stopExecution, failure, timeout, service stop). */
  signal: AbortSignal;
}

/**
 * A local function standing in for a Lambda. Declared through a method so that a handler typed
 * for its own event (`(event: MyEvent) => ...`) is accepted.
 */
export type LocalLambda = {
  invoke(event: unknown, context: LocalLambdaContext): unknown;
}['invoke'];

export interface TaskCall {
  executionArn: string;
  stateName: string;
  region: string;
  accountId: string;
  signal: AbortSignal;
}

/** Handles a Task state itself, whatever its Resource: the escape hatch. */
export type StateHandler = (input: unknown, call: TaskCall) => unknown;

export interface TaskDispatch {
  /**
   * SDK v3 clients keyed by the lowercase service name of `aws-sdk:<service>:<action>`
   * (`ec2`, `dynamodb`, `sqs`, ...). `dynamodb` also serves `arn:aws:states:::dynamodb:*`.
   */
  clients?: Readonly<Record<string, SdkClient | undefined>>;
  /**
   * Command modules for services whose SDK package is not built in (built in: dynamodb, ec2, s3,
   * sqs, sfn, autoscaling, eventbridge), keyed like `clients`.
   */
  commands?: Readonly<Record<string, CommandModule>>;
  /**
   * Local functions for `arn:aws:states:::lambda:invoke` (by the resolved `FunctionName`) and for
   * a Task whose Resource is a function ARN (CDK's `payloadResponseOnly`). Looked up by the exact
   * string first, then by the function name inside an ARN.
   */
  lambdas?: Readonly<Record<string, LocalLambda>>;
  /** Handlers by state name, used instead of the state's Resource. */
  states?: Readonly<Record<string, StateHandler>>;
}

export type TaskResource =
  | { kind: 'aws-sdk'; service: string; action: string }
  | { kind: 'dynamodb'; action: DynamoDbAction }
  | { kind: 'lambda-invoke' }
  | { kind: 'lambda-arn'; arn: string };

type DynamoDbAction = 'getItem' | 'putItem' | 'updateItem' | 'deleteItem';

export const SUPPORTED_RESOURCES = [
  'arn:aws:states:::aws-sdk:<service>:<action>',
  'arn:aws:states:::dynamodb:getItem|putItem|updateItem|deleteItem',
  'arn:aws:states:::lambda:invoke',
  'arn:aws:lambda:<region>:<account>:function:<name>',
] as const;

const AWS_SDK = /^arn:[\w-]+:states:::aws-sdk:([a-z0-9-]+):([A-Za-z0-9]+)$/;
const DYNAMODB = /^arn:[\w-]+:states:::dynamodb:(getItem|putItem|updateItem|deleteItem)$/;
const LAMBDA_INVOKE = /^arn:[\w-]+:states:::lambda:invoke$/;
const LAMBDA_ARN = /^arn:[\w-]+:lambda:[^:]*:[^:]*:function:([^:]+)(:[^:]+)?$/;

/** What a Task's Resource names, or undefined when it is not supported locally. */
export function parseTaskResource(resource: string): TaskResource | undefined {
  let m = AWS_SDK.exec(resource);
  if (m?.[1] && m[2]) return { kind: 'aws-sdk', service: m[1], action: m[2] };
  m = DYNAMODB.exec(resource);
  if (m?.[1]) return { kind: 'dynamodb', action: m[1] as DynamoDbAction };
  if (LAMBDA_INVOKE.test(resource)) return { kind: 'lambda-invoke' };
  if (LAMBDA_ARN.test(resource)) return { kind: 'lambda-arn', arn: resource };
  return undefined;
}

/** The command class an SDK integration action maps to: `putItem` → `PutItemCommand`. */
export function commandName(action: string): string {
  return `${action.charAt(0).toUpperCase()}${action.slice(1)}Command`;
}

const BUILT_IN_COMMANDS: Readonly<Record<string, () => Promise<CommandModule>>> = {
  autoscaling: () => import('@aws-sdk/client-auto-scaling'),
  dynamodb: () => import('@aws-sdk/client-dynamodb'),
  ec2: () => import('@aws-sdk/client-ec2'),
  eventbridge: () => import('@aws-sdk/client-eventbridge'),
  s3: () => import('@aws-sdk/client-s3'),
  sfn: () => import('@aws-sdk/client-sfn'),
  sqs: () => import('@aws-sdk/client-sqs'),
};

/** Problems a dispatch has for a resource that can be seen before running (missing client or function). */
export function checkDispatch(
  resource: TaskResource,
  parameters: unknown,
  dispatch: TaskDispatch,
): string | undefined {
  switch (resource.kind) {
    case 'aws-sdk':
      if (!dispatch.clients?.[resource.service])
        return `no client for service "${resource.service}" in dispatch.clients`;
      if (!dispatch.commands?.[resource.service] && !BUILT_IN_COMMANDS[resource.service]) {
        return `no command module for service "${resource.service}": pass it in dispatch.commands`;
      }
      return undefined;
    case 'dynamodb':
      return dispatch.clients?.dynamodb ? undefined : 'no client for service "dynamodb" in dispatch.clients';
    case 'lambda-invoke': {
      const name = (parameters as { FunctionName?: unknown } | undefined)?.FunctionName;
      if (typeof name === 'string' && !findLambda(dispatch, name)) return `no local function for "${name}"`;
      return undefined;
    }
    case 'lambda-arn':
      return findLambda(dispatch, resource.arn) ? undefined : `no local function for "${resource.arn}"`;
  }
}

/** Runs one Task: the SDK call or local function its resource names, with Step Functions' error names. */
export async function callTask(
  resource: TaskResource,
  input: unknown,
  dispatch: TaskDispatch,
  call: TaskCall,
): Promise<unknown> {
  switch (resource.kind) {
    case 'aws-sdk': {
      const { service, action } = resource;
      const client = dispatch.clients?.[service];
      if (!client)
        throw new LocalRuntimeError(`No client for service "${service}" (state "${call.stateName}")`);
      const Command = await commandClass(dispatch, service, action);
      let output: unknown;
      try {
        output = await client.send(new Command(input ?? {}), { abortSignal: call.signal });
      } catch (err) {
        throw new TaskError(sdkTaskFailure(service, err));
      }
      return sdkOutput(output);
    }
    case 'dynamodb': {
      const client = dispatch.clients?.dynamodb;
      if (!client)
        throw new LocalRuntimeError(`No client for service "dynamodb" (state "${call.stateName}")`);
      const Command = await commandClass(dispatch, 'dynamodb', resource.action);
      let output: unknown;
      try {
        output = await client.send(new Command(input ?? {}), { abortSignal: call.signal });
      } catch (err) {
        throw new TaskError(dynamoDbTaskFailure(err));
      }
      return sdkOutput(output);
    }
    case 'lambda-invoke': {
      const params = (input ?? {}) as { FunctionName?: unknown; Payload?: unknown };
      if (typeof params.FunctionName !== 'string') {
        throw new LocalRuntimeError(`State "${call.stateName}": lambda:invoke needs a FunctionName string`);
      }
      const payload = await invokeLocal(dispatch, params.FunctionName, params.Payload ?? {}, call);
      return { Payload: payload, StatusCode: 200, ExecutedVersion: '$LATEST' };
    }
    case 'lambda-arn':
      return invokeLocal(dispatch, resource.arn, input, call);
  }
}

async function invokeLocal(dispatch: TaskDispatch, functionName: string, event: unknown, call: TaskCall) {
  const found = findLambda(dispatch, functionName);
  if (!found) {
    throw new LocalRuntimeError(`No local function for "${functionName}" (state "${call.stateName}")`);
  }
  let result: unknown;
  try {
    result = await found.fn(event, lambdaContext(found.name, functionName, call));
  } catch (err) {
    throw new TaskError(lambdaTaskFailure(err));
  }
  return toJson(result);
}

function findLambda(
  dispatch: TaskDispatch,
  functionName: string,
): { fn: LocalLambda; name: string } | undefined {
  const lambdas: Readonly<Record<string, LocalLambda | undefined>> = dispatch.lambdas ?? {};
  const name = LAMBDA_ARN.exec(functionName)?.[1] ?? functionName;
  const fn = lambdas[functionName] ?? lambdas[name];
  return fn ? { fn, name } : undefined;
}

function lambdaContext(functionName: string, requested: string, call: TaskCall): LocalLambdaContext {
  const awsRequestId = randomUUID();
  const invokedFunctionArn = requested.startsWith('arn:')
    ? requested
    : `arn:aws:lambda:${call.region}:${call.accountId}:function:${functionName}`;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn,
    memoryLimitInMB: '128',
    awsRequestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/[$LATEST]${awsRequestId.replaceAll('-', '')}`,
    getRemainingTimeInMillis: () => 60_000,
    done: () => {},
    fail: () => {},
    succeed: () => {},
    executionArn: call.executionArn,
    stateName: call.stateName,
    signal: call.signal,
  };
}

type CommandClass = new (input: unknown) => unknown;

const loadedModules = new Map<string, Promise<CommandModule>>();

async function commandClass(dispatch: TaskDispatch, service: string, action: string): Promise<CommandClass> {
  let module = dispatch.commands?.[service];
  if (!module) {
    const load = BUILT_IN_COMMANDS[service];
    if (!load)
      throw new LocalRuntimeError(`No command module for service "${service}": pass it in dispatch.commands`);
    let loading = loadedModules.get(service);
    if (!loading) {
      loading = load();
      loadedModules.set(service, loading);
    }
    module = await loading;
  }
  const name = commandName(action);
  const Command = module[name];
  if (typeof Command !== 'function') {
    throw new LocalRuntimeError(`The SDK for "${service}" has no ${name} (action "${action}")`);
  }
  return Command as CommandClass;
}

/** The SDK output as Step Functions passes it on: without `$metadata`, as JSON. */
function sdkOutput(output: unknown): unknown {
  if (typeof output !== 'object' || output === null) return toJson(output);
  const { $metadata: _metadata, ...rest } = output as Record<string, unknown>;
  return toJson(rest);
}

/** A JSON value for the interpreter: Dates as ISO strings, binary as base64, undefined dropped. */
export function toJson(value: unknown): unknown {
  if (value === undefined) return null;
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
    if (typeof v === 'bigint') return Number(v);
    return v;
  });
  return text === undefined ? null : JSON.parse(text);
}
