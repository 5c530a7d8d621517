import { createRequire } from 'node:module';
import {
  CreateTableCommand,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { DescribeImagesCommand, EC2Client, RegisterImageCommand } from '@aws-sdk/client-ec2';
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_CREDENTIALS } from '../../adapters/clients';
import { startEc2Simulator } from '../../local/ec2-simulator';
import {
  type AslDefinition,
  dynamoDbTaskFailure,
  type ExecutionDescription,
  ec2TaskFailure,
  type LocalLambdaContext,
  LocalStepFunctions,
  lambdaTaskFailure,
  resolveDefinition,
  type StepFunctionsServer,
  sdkTaskFailure,
  startStepFunctionsServer,
  type TaskDispatch,
} from '../../local/step-functions';
import { startTestStack, type TestStack } from '../support/emulators';

type AslValidator = (
  definition: unknown,
  options?: { checkPaths?: boolean; checkArn?: boolean },
) => { isValid: boolean; errorsText: (separator?: string) => string };
const aslValidator = createRequire(import.meta.url)('asl-validator') as AslValidator;

const REGION = 'us-east-1';
const ACCOUNT = '000000000000';
const TABLE = 'sfn-itest';
const LAMBDA_ARN = (name: string) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;
// Production-sized timings: the tests only finish quickly if the overrides apply.
const PRODUCTION_WAIT_SECONDS = 3600;

let stack: TestStack;

/** Polls until `check` returns a value, failing after `timeoutMs`. */
async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A promise the test resolves, and one that says when someone started waiting on it. */
function gate() {
  let open!: () => void;
  let entered!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  const reached = new Promise<void>((resolve) => {
    entered = resolve;
  });
  return { open, opened, reached, entered };
}

async function getItem(pk: string) {
  const { Item } = await stack.clients.dynamodb.send(
    new GetItemCommand({ TableName: TABLE, Key: { pk: { S: pk } }, ConsistentRead: true }),
  );
  return Item;
}

function dynamoDispatch(extra: Omit<TaskDispatch, 'clients'> = {}): TaskDispatch {
  return { clients: { dynamodb: stack.clients.dynamodb }, ...extra };
}

async function run(
  service: LocalStepFunctions,
  stateMachineName: string,
  input: unknown,
  name?: string,
): Promise<ExecutionDescription> {
  const { executionArn } = service.startExecution({ stateMachineName, name, input: JSON.stringify(input) });
  return service.waitForExecution(executionArn, 20_000);
}

beforeAll(async () => {
  stack = await startTestStack();
  await stack.clients.dynamodb.send(
    new CreateTableCommand({
      TableName: TABLE,
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  await eventually('the test table to be ACTIVE', async () => {
    const { Table } = await stack.clients.dynamodb.send(new DescribeTableCommand({ TableName: TABLE }));
    return Table?.TableStatus === 'ACTIVE' ? true : undefined;
  });
});

afterAll(async () => {
  await stack?.stop();
});

describe('Promise.withResolvers', () => {
  it('is available once the module is loaded (Node 20 lacks it)', () => {
    const { promise, resolve } = (
      Promise as unknown as { withResolvers: <T>() => { promise: Promise<T>; resolve: (v: T) => void } }
    ).withResolvers<number>();
    resolve(7);
    return expect(promise).resolves.toBe(7);
  });
});

describe('a CDK-synthesized state machine', () => {
  let template: Record<string, unknown>;
  let stateMachineId: string;
  let tableId: string;
  let functionId: string;

  beforeAll(() => {
    // Path metadata as `cdk synth` writes it, so the machine can be found by its construct path.
    const app = new App({ context: { 'aws:cdk:enable-path-metadata': true } });
    const cdkStack = new Stack(app, 'SfnLocal');
    const table = new dynamodb.Table(cdkStack, 'Items', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    });
    const fn = new lambda.Function(cdkStack, 'Greeter', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline("exports.handler = async (e) => ({ greeting: 'hello ' + e.who });"),
    });
    const record = new tasks.CallAwsService(cdkStack, 'RecordExecution', {
      service: 'dynamodb',
      action: 'putItem',
      parameters: {
        TableName: table.tableName,
        Item: {
          pk: { 'S.$': '$$.Execution.Name' },
          executionId: { 'S.$': '$$.Execution.Id' },
          who: { 'S.$': '$.who' },
        },
      },
      iamResources: [table.tableArn],
      resultPath: sfn.JsonPath.DISCARD,
    });
    const count = new tasks.DynamoUpdateItem(cdkStack, 'CountRuns', {
      table,
      key: { pk: tasks.DynamoAttributeValue.fromString('counter') },
      updateExpression: 'ADD runs :one',
      expressionAttributeValues: { ':one': tasks.DynamoAttributeValue.fromNumber(1) },
      returnValues: tasks.DynamoReturnValues.UPDATED_NEW,
      resultSelector: { 'runs.$': '$.Attributes.runs.N' },
      resultPath: '$.counter',
    });
    const greet = new tasks.LambdaInvoke(cdkStack, 'Greet', {
      lambdaFunction: fn,
      payload: sfn.TaskInput.fromObject({ 'who.$': '$.who', 'executionId.$': '$$.Execution.Id' }),
      resultSelector: { 'greeting.$': '$.Payload.greeting', 'status.$': '$.StatusCode' },
      resultPath: '$.greet',
    });
    const direct = new tasks.LambdaInvoke(cdkStack, 'GreetDirectly', {
      lambdaFunction: fn,
      payloadResponseOnly: true,
      resultPath: '$.direct',
    });
    const read = new tasks.DynamoGetItem(cdkStack, 'ReadBack', {
      table,
      key: { pk: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$$.Execution.Name')) },
      consistentRead: true,
      resultSelector: { 'who.$': '$.Item.who.S' },
      resultPath: '$.stored',
    });
    const machine = new sfn.StateMachine(cdkStack, 'Machine', {
      definitionBody: sfn.DefinitionBody.fromChainable(
        record.next(count).next(greet).next(direct).next(read),
      ),
      timeout: Duration.hours(1),
    });
    template = Template.fromStack(cdkStack).toJSON();
    stateMachineId = cdkStack.getLogicalId(machine.node.defaultChild as sfn.CfnStateMachine);
    tableId = cdkStack.getLogicalId(table.node.defaultChild as dynamodb.CfnTable);
    functionId = cdkStack.getLogicalId(fn.node.defaultChild as lambda.CfnFunction);
  });

  const resolve = () => ({
    ref: (id: string) => {
      if (id === tableId) return TABLE;
      throw new Error(`unexpected Ref ${id}`);
    },
    getAtt: (id: string, attr: string) => {
      if (id === functionId && attr === 'Arn') return LAMBDA_ARN('greeter');
      if (id === tableId && attr === 'Arn') return `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${TABLE}`;
      throw new Error(`unexpected GetAtt ${id}.${attr}`);
    },
  });

  it('resolves the DefinitionString and passes asl-validator', () => {
    const definition = resolveDefinition(template, stateMachineId, resolve());
    expect(definition.StartAt).toBe('RecordExecution');
    expect(definition.States.RecordExecution).toMatchObject({
      Type: 'Task',
      Resource: 'arn:aws:states:::aws-sdk:dynamodb:putItem',
      Parameters: { TableName: TABLE },
    });
    expect(definition.States.Greet).toMatchObject({
      Resource: 'arn:aws:states:::lambda:invoke',
      Parameters: { FunctionName: LAMBDA_ARN('greeter') },
    });
    expect(definition.States.GreetDirectly).toMatchObject({ Resource: LAMBDA_ARN('greeter') });

    // asl-validator 4 writes QueryLanguage into the states it checks: give it a copy.
    const result = aslValidator(structuredClone(definition), { checkPaths: true, checkArn: true });
    expect(result.errorsText('\n')).toBe('');
    expect(result.isValid).toBe(true);
  });

  it('finds the state machine by its CDK path too, and names what it cannot resolve', () => {
    const byPath = resolveDefinition(template, 'SfnLocal/Machine/Resource', resolve());
    expect(byPath.StartAt).toBe('RecordExecution');
    expect(() => resolveDefinition(template, 'Nope', resolve())).toThrow(
      /No AWS::StepFunctions::StateMachine "Nope".*Machine/,
    );
    expect(() =>
      resolveDefinition(template, stateMachineId, {
        ...resolve(),
        ref: () => {
          throw new Error('no table here');
        },
      }),
    ).toThrow('no table here');
  });

  it('runs locally: real DynamoDB writes against dynalite, local Lambda functions, the output', async () => {
    const events: unknown[] = [];
    const service = new LocalStepFunctions();
    service.register('cdk-machine', resolveDefinition(template, stateMachineId, resolve()), {
      clients: { dynamodb: stack.clients.dynamodb },
      lambdas: {
        [LAMBDA_ARN('greeter')]: async (event: { who: string }) => {
          events.push(event);
          return { greeting: `hello ${event.who}` };
        },
      },
    });

    const first = await run(service, 'cdk-machine', { who: 'kiln' }, 'first-run');
    expect(first).toMatchObject({ status: 'SUCCEEDED', name: 'first-run' });
    expect(JSON.parse(first.output ?? 'null')).toEqual({
      who: 'kiln',
      counter: { runs: '1' },
      greet: { greeting: 'hello kiln', status: 200 },
      direct: { greeting: 'hello kiln' },
      stored: { who: 'kiln' },
    });
    expect(await getItem('first-run')).toEqual({
      pk: { S: 'first-run' },
      executionId: { S: first.executionArn },
      who: { S: 'kiln' },
    });
    // The LambdaInvoke payload carried $$.Execution.Id; payloadResponseOnly sent the state input.
    expect(events).toEqual([
      { who: 'kiln', executionId: first.executionArn },
      { who: 'kiln', counter: { runs: '1' }, greet: { greeting: 'hello kiln', status: 200 } },
    ]);

    const second = await run(service, 'cdk-machine', { who: 'again' });
    expect(second.status).toBe('SUCCEEDED');
    expect(JSON.parse(second.output ?? 'null').counter).toEqual({ runs: '2' });
    await service.stop();
  });
});

describe('Retry and Catch on the names AWS uses', () => {
  it('retries and catches DynamoDB.ConditionalCheckFailedException and Lambda error names', async () => {
    await stack.clients.dynamodb.send(
      new PutItemCommand({ TableName: TABLE, Item: { pk: { S: 'slot' }, holder: { S: 'someone-else' } } }),
    );
    const flakyCalls: number[] = [];
    class CopyNotReady extends Error {
      override name = 'CopyNotReady';
    }
    const definition: AslDefinition = {
      StartAt: 'Acquire',
      States: {
        Acquire: {
          Type: 'Task',
          Resource: 'arn:aws:states:::dynamodb:updateItem',
          Parameters: {
            TableName: TABLE,
            Key: { pk: { S: 'slot' } },
            UpdateExpression: 'SET holder = :me',
            ConditionExpression: 'attribute_not_exists(holder)',
            ExpressionAttributeValues: { ':me': { 'S.$': '$$.Execution.Id' } },
          },
          Retry: [
            {
              ErrorEquals: ['DynamoDB.ConditionalCheckFailedException'],
              IntervalSeconds: 30,
              MaxAttempts: 2,
              BackoffRate: 2,
            },
          ],
          Catch: [
            {
              ErrorEquals: ['DynamoDB.ConditionalCheckFailedException'],
              ResultPath: '$.acquireError',
              Next: 'Flaky',
            },
          ],
          Next: 'Flaky',
        },
        Flaky: {
          Type: 'Task',
          Resource: 'arn:aws:states:::lambda:invoke',
          Parameters: { FunctionName: 'flaky', Payload: { 'retryCount.$': '$$.State.RetryCount' } },
          Retry: [{ ErrorEquals: ['CopyNotReady'], IntervalSeconds: 60, MaxAttempts: 5, BackoffRate: 1 }],
          ResultSelector: { 'value.$': '$.Payload' },
          ResultPath: '$.flaky',
          Next: 'Doomed',
        },
        Doomed: {
          Type: 'Task',
          Resource: LAMBDA_ARN('doomed'),
          Catch: [{ ErrorEquals: ['ImageRejected'], ResultPath: '$.doomedError', Next: 'Done' }],
          End: true,
        },
        Done: {
          Type: 'Pass',
          Parameters: { 'entered.$': '$$.State.EnteredTime', 'name.$': '$$.State.Name' },
          ResultPath: '$.done',
          End: true,
        },
      },
    };
    const service = new LocalStepFunctions({ retryIntervalOverrideMs: 1 });
    service.register(
      'retry-catch',
      definition,
      dynamoDispatch({
        lambdas: {
          flaky: async (event: { retryCount: number }) => {
            flakyCalls.push(event.retryCount);
            if (flakyCalls.length < 3) throw new CopyNotReady('copy still pending');
            return 'copied';
          },
          doomed: async () => {
            const err = new Error('the image was rejected');
            err.name = 'ImageRejected';
            throw err;
          },
        },
      }),
    );

    const done = await run(service, 'retry-catch', { job: 'j-1' });
    expect(done.status).toBe('SUCCEEDED');
    const output = JSON.parse(done.output ?? 'null');
    expect(output.acquireError.Error).toBe('DynamoDB.ConditionalCheckFailedException');
    expect(output.acquireError.Cause).toMatch(/conditional request failed/i);
    expect(output.flaky).toEqual({ value: 'copied' });
    expect(output.doomedError).toEqual({ Error: 'ImageRejected', Cause: 'the image was rejected' });
    expect(output.done.name).toBe('Done');
    expect(Date.parse(output.done.entered)).toBeGreaterThanOrEqual(done.startDate.getTime());
    // $$.State.RetryCount as the retried state's Parameters saw it.
    expect(flakyCalls).toEqual([0, 1, 2]);
    const retries = service
      .history(done.executionArn)
      .filter((e) => e.type === 'StateRetried' && 'state' in e && e.state.name === 'Acquire');
    expect(retries).toHaveLength(2);
    expect((await getItem('slot'))?.holder).toEqual({ S: 'someone-else' });
    await service.stop();
  });

  it('fails the execution with <Service>.<Error>Exception for an uncaught SDK integration error', async () => {
    const service = new LocalStepFunctions();
    service.register(
      'sdk-error',
      {
        StartAt: 'Conditional',
        States: {
          Conditional: {
            Type: 'Task',
            Resource: 'arn:aws:states:::aws-sdk:dynamodb:putItem',
            Parameters: {
              TableName: TABLE,
              Item: { pk: { S: 'slot' } },
              ConditionExpression: 'attribute_not_exists(pk)',
            },
            End: true,
          },
        },
      },
      dynamoDispatch(),
    );
    const failed = await run(service, 'sdk-error', {});
    expect(failed).toMatchObject({ status: 'FAILED', error: 'DynamoDb.ConditionalCheckFailedException' });
    expect(failed.cause).toMatch(/conditional request failed/i);
    expect(failed.stopDate).toBeInstanceOf(Date);
    await service.stop();
  });
});

describe('time compression', () => {
  it('runs production-length Wait states (nested in Map and Parallel too) in milliseconds', async () => {
    const mapped: Array<{ region: string; executionId: string }> = [];
    const definition: AslDefinition = {
      StartAt: 'WaitFixed',
      States: {
        WaitFixed: { Type: 'Wait', Seconds: PRODUCTION_WAIT_SECONDS, Next: 'Backoff' },
        Backoff: { Type: 'Pass', Parameters: { seconds: 300 }, ResultPath: '$.poll', Next: 'WaitPath' },
        WaitPath: { Type: 'Wait', SecondsPath: '$.poll.seconds', Next: 'PerRegion' },
        PerRegion: {
          Type: 'Map',
          ItemsPath: '$.regions',
          MaxConcurrency: 2,
          ItemSelector: { 'region.$': '$$.Map.Item.Value', 'executionId.$': '$$.Execution.Id' },
          ItemProcessor: {
            StartAt: 'WaitInMap',
            States: {
              WaitInMap: { Type: 'Wait', Seconds: PRODUCTION_WAIT_SECONDS, Next: 'Copy' },
              Copy: {
                Type: 'Task',
                Resource: 'arn:aws:states:::lambda:invoke',
                Parameters: { FunctionName: 'copy', 'Payload.$': '$' },
                Retry: [{ ErrorEquals: ['States.ALL'], IntervalSeconds: 600, MaxAttempts: 3 }],
                OutputPath: '$.Payload',
                End: true,
              },
            },
          },
          ResultPath: '$.copies',
          Next: 'Both',
        },
        Both: {
          Type: 'Parallel',
          Branches: [
            {
              StartAt: 'WaitInBranch',
              States: {
                WaitInBranch: { Type: 'Wait', Seconds: PRODUCTION_WAIT_SECONDS, Next: 'Mark' },
                Mark: {
                  Type: 'Task',
                  Resource: 'arn:aws:states:::dynamodb:putItem',
                  Parameters: { TableName: TABLE, Item: { pk: { 'S.$': '$$.Execution.Name' } } },
                  ResultPath: null,
                  End: true,
                },
              },
            },
            { StartAt: 'Noop', States: { Noop: { Type: 'Pass', End: true } } },
          ],
          ResultPath: null,
          End: true,
        },
      },
    };
    const service = new LocalStepFunctions({ waitOverrideMs: 5, retryIntervalOverrideMs: 1 });
    service.register(
      'waits',
      definition,
      dynamoDispatch({
        lambdas: {
          copy: async (event: { region: string; executionId: string }) => {
            mapped.push(event);
            if (mapped.filter((m) => m.region === event.region).length === 1)
              throw new Error('first try fails');
            return { region: event.region, imageId: `ami-${event.region}` };
          },
        },
      }),
    );

    const started = Date.now();
    const done = await run(
      service,
      'waits',
      { regions: ['eu-west-1', 'ap-south-1', 'us-west-2'] },
      'compressed',
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(done.status).toBe('SUCCEEDED');
    expect(JSON.parse(done.output ?? 'null').copies).toEqual([
      { region: 'eu-west-1', imageId: 'ami-eu-west-1' },
      { region: 'ap-south-1', imageId: 'ami-ap-south-1' },
      { region: 'us-west-2', imageId: 'ami-us-west-2' },
    ]);
    // Map iterations reach the Task handlers and see the execution's id.
    expect(mapped).toHaveLength(6);
    expect(new Set(mapped.map((m) => m.executionId))).toEqual(new Set([done.executionArn]));
    expect(await getItem('compressed')).toEqual({ pk: { S: 'compressed' } });
    await service.stop();
  });

  it('leaves the waits alone when a state machine opts out', async () => {
    const service = new LocalStepFunctions({ waitOverrideMs: 1 });
    service.register(
      'real-wait',
      { StartAt: 'Long', States: { Long: { Type: 'Wait', Seconds: PRODUCTION_WAIT_SECONDS, End: true } } },
      {},
      { waitOverrideMs: null },
    );
    const { executionArn } = service.startExecution({ stateMachineName: 'real-wait' });
    await expect(service.waitForExecution(executionArn, 200)).rejects.toThrow(/still RUNNING/);
    service.stopExecution(executionArn);
    expect(service.describeExecution(executionArn).status).toBe('ABORTED');
    await service.stop();
  });
});

describe('registration', () => {
  it('refuses what cannot run locally, naming the state and resource', () => {
    const service = new LocalStepFunctions();
    expect(() =>
      service.register(
        'bad',
        {
          StartAt: 'Send',
          States: { Send: { Type: 'Task', Resource: 'arn:aws:states:::sqs:sendMessage', End: true } },
        },
        {},
      ),
    ).toThrow(/Send: unsupported Task resource "arn:aws:states:::sqs:sendMessage"/);
    expect(() =>
      service.register(
        'no-client',
        {
          StartAt: 'Describe',
          States: {
            Describe: { Type: 'Task', Resource: 'arn:aws:states:::aws-sdk:ec2:describeImages', End: true },
          },
        },
        {},
      ),
    ).toThrow(/no client for service "ec2"/);
    expect(() =>
      service.register(
        'jsonata',
        {
          QueryLanguage: 'JSONata',
          StartAt: 'P',
          States: { P: { Type: 'Pass', End: true } },
        } as AslDefinition,
        {},
      ),
    ).toThrow(/JSONata/);
    expect(() =>
      service.register(
        'misnamed-override',
        { StartAt: 'Poll', States: { Poll: { Type: 'Wait', Seconds: 5, End: true } } } as AslDefinition,
        {},
        { waitOverridesByState: { Pol: 1 } },
      ),
    ).toThrow(/waitOverridesByState names "Pol", which is not a Wait state/);
  });

  it('rejects bad execution input and names as the API does', () => {
    const service = new LocalStepFunctions();
    service.register('p', { StartAt: 'P', States: { P: { Type: 'Pass', End: true } } }, {});
    expect(() => service.startExecution({ stateMachineName: 'p', input: '{nope' })).toThrow(
      expect.objectContaining({ name: 'InvalidExecutionInput' }),
    );
    expect(() => service.startExecution({ stateMachineName: 'p', name: 'has space' })).toThrow(
      expect.objectContaining({ name: 'InvalidName' }),
    );
    expect(() => service.startExecution({ stateMachineName: 'missing' })).toThrow(
      expect.objectContaining({ name: 'StateMachineDoesNotExist' }),
    );
  });
});

describe('the wire-level server with the real SFNClient', () => {
  let service: LocalStepFunctions;
  let server: StepFunctionsServer;
  let client: SFNClient;
  let stateMachineArn: string;
  let afterGate: string[];
  let currentGate: ReturnType<typeof gate>;

  beforeAll(async () => {
    afterGate = [];
    currentGate = gate();
    service = new LocalStepFunctions({ waitOverrideMs: 1, retryIntervalOverrideMs: 1 });
    ({ stateMachineArn } = service.register(
      'wire',
      {
        StartAt: 'Hold',
        States: {
          Hold: {
            Type: 'Task',
            Resource: 'arn:aws:states:::lambda:invoke',
            Parameters: { FunctionName: 'hold', 'Payload.$': '$' },
            ResultSelector: { 'held.$': '$.Payload' },
            ResultPath: '$.hold',
            Next: 'After',
          },
          After: {
            Type: 'Task',
            Resource: LAMBDA_ARN('after'),
            Parameters: { 'execution.$': '$$.Execution.Name' },
            ResultPath: '$.after',
            End: true,
          },
        },
      },
      {
        lambdas: {
          hold: async (event: { hold?: boolean }) => {
            if (!event.hold) return 'passed';
            currentGate.entered();
            await currentGate.opened;
            return 'released';
          },
          after: async (event: { execution: string }) => {
            afterGate.push(event.execution);
            return 'after';
          },
        },
      },
    ));
    server = await startStepFunctionsServer(service, { port: 0 });
    client = new SFNClient({
      region: REGION,
      endpoint: server.url,
      credentials: { ...LOCAL_CREDENTIALS },
      maxAttempts: 1,
    });
  });

  afterAll(async () => {
    client?.destroy();
    await service?.stop();
    await server?.close();
  });

  const describeUntilDone = (executionArn: string) =>
    eventually<DescribeExecutionCommandOutput>(`${executionArn} to end`, async () => {
      const out = await client.send(new DescribeExecutionCommand({ executionArn }));
      return out.status === 'RUNNING' ? undefined : out;
    });

  it('starts an execution and describes it until SUCCEEDED', async () => {
    const started = await client.send(
      new StartExecutionCommand({ stateMachineArn, name: 'wire-ok', input: JSON.stringify({ n: 1 }) }),
    );
    expect(started.executionArn).toBe(`arn:aws:states:${REGION}:${ACCOUNT}:execution:wire:wire-ok`);
    expect(started.startDate).toBeInstanceOf(Date);

    const done = await describeUntilDone(started.executionArn ?? '');
    expect(done).toMatchObject({ status: 'SUCCEEDED', name: 'wire-ok', stateMachineArn });
    expect(JSON.parse(done.output ?? 'null')).toEqual({ n: 1, hold: { held: 'passed' }, after: 'after' });
    expect(done.startDate?.getTime()).toBe(started.startDate?.getTime());
    expect(done.stopDate?.getTime()).toBeGreaterThanOrEqual(done.startDate?.getTime() ?? 0);
    expect(afterGate).toEqual(['wire-ok']);

    await expect(
      client.send(
        new StartExecutionCommand({ stateMachineArn, name: 'wire-ok', input: JSON.stringify({ n: 1 }) }),
      ),
    ).rejects.toMatchObject({ name: 'ExecutionAlreadyExists' });
  });

  it('stops a running execution: ABORTED, and it goes no further', async () => {
    const input = JSON.stringify({ hold: true });
    const started = await client.send(
      new StartExecutionCommand({ stateMachineArn, name: 'wire-stop', input }),
    );
    await currentGate.reached;

    // The same name and input while running is the same execution; another input is a conflict.
    const again = await client.send(new StartExecutionCommand({ stateMachineArn, name: 'wire-stop', input }));
    expect(again.executionArn).toBe(started.executionArn);
    await expect(
      client.send(new StartExecutionCommand({ stateMachineArn, name: 'wire-stop', input: '{"hold":false}' })),
    ).rejects.toMatchObject({ name: 'ExecutionAlreadyExists' });

    const running = await client.send(
      new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING' }),
    );
    expect(running.executions?.map((e) => e.name)).toEqual(['wire-stop']);

    const stopped = await client.send(
      new StopExecutionCommand({
        executionArn: started.executionArn,
        error: 'Kiln.Cancelled',
        cause: 'by the test',
      }),
    );
    expect(stopped.stopDate).toBeInstanceOf(Date);
    const described = await describeUntilDone(started.executionArn ?? '');
    expect(described).toMatchObject({ status: 'ABORTED', error: 'Kiln.Cancelled', cause: 'by the test' });

    // Let the held Task finish: the interpreter must not move on to the next state.
    currentGate.open();
    await new Promise((resolve) => setImmediate(resolve));
    expect(afterGate).not.toContain('wire-stop');
    expect(service.describeExecution(started.executionArn ?? '').status).toBe('ABORTED');

    const aborted = await client.send(
      new ListExecutionsCommand({ stateMachineArn, statusFilter: 'ABORTED' }),
    );
    expect(aborted.executions?.map((e) => e.name)).toEqual(['wire-stop']);
    const page = await client.send(new ListExecutionsCommand({ stateMachineArn, maxResults: 1 }));
    expect(page.executions).toHaveLength(1);
    expect(page.nextToken).toBeDefined();
  });

  it('answers unknown executions and state machines with the API error names', async () => {
    await expect(
      client.send(
        new DescribeExecutionCommand({
          executionArn: `arn:aws:states:${REGION}:${ACCOUNT}:execution:wire:nope`,
        }),
      ),
    ).rejects.toMatchObject({ name: 'ExecutionDoesNotExist' });
    await expect(
      client.send(
        new StartExecutionCommand({
          stateMachineArn: `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:nope`,
        }),
      ),
    ).rejects.toMatchObject({ name: 'StateMachineDoesNotExist' });
    await expect(
      client.send(new DescribeExecutionCommand({ executionArn: 'not-an-arn' })),
    ).rejects.toMatchObject({ name: 'InvalidArn' });
  });
});

describe('error names of Task failures', () => {
  const serviceError = (name: string, message: string) =>
    Object.assign(new Error(message), { name, $fault: 'client', $metadata: { httpStatusCode: 400 } });

  it('maps every EC2 service error to Ec2.Ec2Exception with the code in the Cause', () => {
    const err = serviceError(
      'ResourceCountLimitExceeded',
      'You have reached the limit of active import tasks.',
    );
    const expected = {
      error: 'Ec2.Ec2Exception',
      cause: 'ResourceCountLimitExceeded: You have reached the limit of active import tasks.',
    };
    expect(ec2TaskFailure(err)).toEqual(expected);
    expect(sdkTaskFailure('ec2', err)).toEqual(expected);
    expect(sdkTaskFailure('ec2', new Error('socket hang up'))).toEqual({
      error: 'Ec2.SdkClientException',
      cause: 'socket hang up',
    });
  });

  it('names other services <Service>.<Error>Exception and the optimized DynamoDB integration DynamoDB.<Error>', () => {
    const conditional = serviceError('ConditionalCheckFailedException', 'The conditional request failed');
    expect(sdkTaskFailure('dynamodb', conditional).error).toBe('DynamoDb.ConditionalCheckFailedException');
    expect(dynamoDbTaskFailure(conditional).error).toBe('DynamoDB.ConditionalCheckFailedException');
    expect(sdkTaskFailure('s3', serviceError('NoSuchKey', 'gone')).error).toBe('S3.NoSuchKeyException');
    expect(sdkTaskFailure('autoscaling', serviceError('ScalingActivityInProgress', 'busy')).error).toBe(
      'AutoScaling.ScalingActivityInProgressException',
    );
    expect(lambdaTaskFailure(Object.assign(new Error('nope'), { name: 'CopyNotReady' }))).toEqual({
      error: 'CopyNotReady',
      cause: 'nope',
    });
  });

  it('maps an error the real EC2Client parsed from an EC2 error response', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((_req, res) => {
      res.writeHead(400, { 'content-type': 'text/xml' });
      res.end(
        '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InvalidSnapshot.NotFound</Code>' +
          "<Message>The snapshot 'snap-0123' does not exist.</Message></Error></Errors><RequestID>r-1</RequestID></Response>",
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const ec2 = new EC2Client({
      region: REGION,
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { ...LOCAL_CREDENTIALS },
      maxAttempts: 1,
    });
    try {
      const service = new LocalStepFunctions();
      service.register(
        'ec2-error',
        {
          StartAt: 'Register',
          States: {
            Register: {
              Type: 'Task',
              Resource: 'arn:aws:states:::aws-sdk:ec2:registerImage',
              Parameters: { Name: 'kiln-test', RootDeviceName: '/dev/xvda' },
              Catch: [{ ErrorEquals: ['Ec2.Ec2Exception'], ResultPath: '$.error', Next: 'Caught' }],
              End: true,
            },
            Caught: { Type: 'Pass', End: true },
          },
        },
        { clients: { ec2 } },
      );
      const done = await run(service, 'ec2-error', {});
      expect(done.status).toBe('SUCCEEDED');
      expect(JSON.parse(done.output ?? 'null').error).toEqual({
        Error: 'Ec2.Ec2Exception',
        Cause: "InvalidSnapshot.NotFound: The snapshot 'snap-0123' does not exist.",
      });
      // The same call outside the interpreter fails with the code as the SDK error name.
      await expect(ec2.send(new RegisterImageCommand({ Name: 'x' }))).rejects.toMatchObject({
        name: 'InvalidSnapshot.NotFound',
      });
      await service.stop();
    } finally {
      ec2.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('resolveDefinition intrinsics', () => {
  const machine = (properties: Record<string, unknown>) => ({
    Resources: {
      Queue: { Type: 'AWS::SQS::Queue' },
      Fn: { Type: 'AWS::Lambda::Function' },
      SM: { Type: 'AWS::StepFunctions::StateMachine', Properties: properties },
    },
  });
  const resolver = {
    ref: (id: string) => `ref-of-${id}`,
    getAtt: (id: string, attr: string) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${id}-${attr}`,
    accountId: '123456789012',
  };
  const task = (resource: unknown) => ({
    'Fn::Join': [
      '',
      ['{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"', resource, '","End":true}}}'],
    ],
  });

  it('resolves Fn::Sub (variables, pseudo parameters, Ref, GetAtt, escaped literals) and DefinitionSubstitutions', () => {
    const definition = resolveDefinition(
      machine({
        DefinitionString: {
          'Fn::Sub': [
            // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub syntax
            '{"Comment":"${Queue} in ${AWS::AccountId} ${!kept}","StartAt":"T","States":{"T":{"Type":"Task","Resource":"${Fn.Arn}","Parameters":{"q":"${q}","s":"${!sub}"},"End":true}}}',
            { q: { 'Fn::Select': [1, { 'Fn::Split': ['/', 'a/b/c'] }] } },
          ],
        },
        DefinitionSubstitutions: { sub: { Ref: 'AWS::Region' } },
      }),
      'SM',
      resolver,
    );
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal Fn::Sub leaves behind
    expect(definition.Comment).toBe('ref-of-Queue in 123456789012 ${kept}');
    expect(definition.States.T).toMatchObject({
      Resource: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:Fn-Arn`,
      Parameters: { q: 'b', s: 'us-east-1' },
    });
  });

  it('names the intrinsic or logical id it cannot resolve, and where', () => {
    expect(() =>
      resolveDefinition(machine({ DefinitionString: task({ 'Fn::ImportValue': 'x' }) }), 'SM', resolver),
    ).toThrow(
      /DefinitionString\.Fn::Join\[1\]\[1\]\.Fn::ImportValue: the intrinsic Fn::ImportValue is not supported/,
    );
    expect(() =>
      resolveDefinition(machine({ DefinitionString: task({ Ref: 'Missing' }) }), 'SM', resolver),
    ).toThrow(/Ref to "Missing", which the template does not declare/);
    expect(() =>
      resolveDefinition(
        machine({ DefinitionString: task({ 'Fn::GetAtt': ['Nope', 'Arn'] }) }),
        'SM',
        resolver,
      ),
    ).toThrow(/Fn::GetAtt of "Nope"/);
    expect(() => resolveDefinition(machine({ DefinitionString: '{"StartAt":' }), 'SM', resolver)).toThrow(
      /not JSON/,
    );
  });
});

describe('stopping', () => {
  it('signals a Task that never returns, ends with TIMED_OUT past TimeoutSeconds, and stop() aborts the rest', async () => {
    const signals: AbortSignal[] = [];
    const service = new LocalStepFunctions();
    service.register(
      'stuck',
      {
        StartAt: 'Stuck',
        States: { Stuck: { Type: 'Task', Resource: LAMBDA_ARN('stuck'), End: true } },
      },
      {
        lambdas: {
          stuck: (_event: unknown, context: LocalLambdaContext) => {
            signals.push(context.signal);
            return new Promise(() => {});
          },
        },
      },
    );
    service.register(
      'slow',
      {
        TimeoutSeconds: 1,
        StartAt: 'Long',
        States: { Long: { Type: 'Wait', Seconds: PRODUCTION_WAIT_SECONDS, End: true } },
      },
      {},
    );

    const timedOut = await run(service, 'slow', {});
    expect(timedOut).toMatchObject({ status: 'TIMED_OUT', error: 'States.Timeout' });

    const { executionArn } = service.startExecution({ stateMachineName: 'stuck' });
    await eventually('the stuck Task to start', async () => (signals.length ? true : undefined));
    await service.stop();
    expect(service.describeExecution(executionArn)).toMatchObject({ status: 'ABORTED' });
    expect(signals[0]?.aborted).toBe(true);
    expect(() => service.startExecution({ stateMachineName: 'stuck' })).toThrow(/stopped/);
  });
});

describe('EC2 through the EC2 simulator', () => {
  it('imports, polls and registers; a refused import is caught as Ec2.Ec2Exception with the code in the Cause', async () => {
    const ec2Sim = await startEc2Simulator({ importLimit: 1, durations: { pending: 20, active: 200 } });
    const ec2 = new EC2Client({
      region: REGION,
      endpoint: ec2Sim.url,
      credentials: { ...LOCAL_CREDENTIALS },
      maxAttempts: 1,
    });
    const service = new LocalStepFunctions({ waitOverrideMs: 10 });
    try {
      service.register(
        'import',
        {
          StartAt: 'Import',
          States: {
            Import: {
              Type: 'Task',
              Resource: 'arn:aws:states:::aws-sdk:ec2:importSnapshot',
              Parameters: {
                'ClientToken.$': '$$.Execution.Name',
                DiskContainer: { Format: 'RAW', UserBucket: { S3Bucket: 'artifacts', 'S3Key.$': '$.key' } },
              },
              ResultSelector: { 'taskId.$': '$.ImportTaskId' },
              ResultPath: '$.import',
              Catch: [{ ErrorEquals: ['Ec2.Ec2Exception'], ResultPath: '$.error', Next: 'Refused' }],
              Next: 'Poll',
            },
            Poll: { Type: 'Wait', Seconds: 30, Next: 'Describe' },
            Describe: {
              Type: 'Task',
              Resource: 'arn:aws:states:::aws-sdk:ec2:describeImportSnapshotTasks',
              Parameters: { 'ImportTaskIds.$': 'States.Array($.import.taskId)' },
              ResultSelector: { 'detail.$': '$.ImportSnapshotTasks[0].SnapshotTaskDetail' },
              ResultPath: '$.status',
              Next: 'Done?',
            },
            'Done?': {
              Type: 'Choice',
              Choices: [{ Variable: '$.status.detail.Status', StringEquals: 'completed', Next: 'Register' }],
              Default: 'Poll',
            },
            Register: {
              Type: 'Task',
              Resource: 'arn:aws:states:::aws-sdk:ec2:registerImage',
              Parameters: {
                'Name.$': '$$.Execution.Name',
                Architecture: 'x86_64',
                RootDeviceName: '/dev/xvda',
                VirtualizationType: 'hvm',
                EnaSupport: true,
                BlockDeviceMappings: [
                  { DeviceName: '/dev/xvda', Ebs: { 'SnapshotId.$': '$.status.detail.SnapshotId' } },
                ],
              },
              ResultSelector: { 'imageId.$': '$.ImageId' },
              ResultPath: '$.image',
              End: true,
            },
            Refused: { Type: 'Pass', End: true },
          },
        },
        { clients: { ec2 } },
      );

      const first = service.startExecution({
        stateMachineName: 'import',
        name: 'first',
        input: '{"key":"a.raw"}',
      });
      await eventually('the first import to be in progress', async () =>
        ec2Sim.sim.stats(REGION).activeImports === 1 ? true : undefined,
      );
      const refused = await run(service, 'import', { key: 'b.raw' }, 'second');
      expect(refused.status).toBe('SUCCEEDED');
      const { error } = JSON.parse(refused.output ?? 'null');
      expect(error.Error).toBe('Ec2.Ec2Exception');
      expect(error.Cause).toMatch(/^ResourceCountLimitExceeded: /);

      const registered = await service.waitForExecution(first.executionArn, 20_000);
      expect(registered.status).toBe('SUCCEEDED');
      const { image } = JSON.parse(registered.output ?? 'null');
      const { Images } = await ec2.send(new DescribeImagesCommand({ ImageIds: [image.imageId] }));
      expect(Images?.[0]?.Name).toBe('first');
    } finally {
      await service.stop();
      ec2.destroy();
      await ec2Sim.stop();
    }
  });
});
