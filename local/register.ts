/**
 * Local mode's register step: the EC2 simulator, and the register state machine exactly as the
 * CDK construct synthesizes it, run by the local Step Functions service with every Task
 * dispatched to a real SDK call against a local endpoint (or the workflow's Lambda code).
 */
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { type AwsClients, makeEc2Client } from '../adapters/clients';
import type { DynamoJobStore } from '../adapters/dynamodb-job-store';
import type { KilnConfig } from '../core/config';
import { registerStateMachineName } from '../infra/definitions';
import { RegisterWorkflow } from '../infra/register/workflow';
import { copyImageToRegion } from '../lambdas/register/copy-image';
import { type RecordEvent, recordRegistration } from '../lambdas/register/record';
import { type Ec2SimulatorOptions, startEc2Simulator } from './ec2-simulator';
import {
  type AslDefinition,
  findStateMachines,
  LocalStepFunctions,
  resolveDefinition,
  startStepFunctionsServer,
} from './step-functions';

const ACCOUNT = '000000000000';

export interface LocalRegistrationOptions {
  config: KilnConfig;
  region: string;
  clients: AwsClients;
  store: DynamoJobStore;
  slotsTableName: string;
  /** Simulated import timing and failures. */
  ec2?: Omit<Ec2SimulatorOptions, 'objectExists' | 'accountId'>;
  /** Every Wait state and Retry interval of the workflow takes this long locally. @default 100 */
  timeCompressionMs?: number;
  /**
   * The import poll locally: a slot stays held until its execution notices the import finished,
   * so this poll is compressed harder than the other waits. @default a quarter of timeCompressionMs
   */
  importPollMs?: number;
}

export interface LocalRegistration {
  stateMachineArn: string;
  sfnEndpoint: string;
  ec2Endpoint: string;
  service: LocalStepFunctions;
  ec2: Awaited<ReturnType<typeof startEc2Simulator>>['sim'];
  definition: AslDefinition;
  stop(): Promise<void>;
}

const functionArn = (region: string, name: string) => `arn:aws:lambda:${region}:${ACCOUNT}:function:${name}`;

/**
 * The construct in a bare stack with the local resources imported by name: the synthesized
 * definition is the deployed one, with local names where the deployment has its own.
 */
export function synthesizeRegisterDefinition(config: KilnConfig, region: string, slotsTableName: string) {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'KilnLocalRegister', { env: { account: ACCOUNT, region } });
  const names = {
    record: `${config.prefix}-record-registration`,
    copy: `${config.prefix}-copy-image`,
  };
  new RegisterWorkflow(stack, 'Register', {
    stateMachineName: registerStateMachineName(config.prefix),
    deploymentId: config.prefix,
    slotsTable: dynamodb.Table.fromTableName(stack, 'Slots', slotsTableName),
    importConcurrency: config.importConcurrency,
    recordResult: lambda.Function.fromFunctionArn(stack, 'RecordResult', functionArn(region, names.record)),
    copyImage: lambda.Function.fromFunctionArn(stack, 'CopyImage', functionArn(region, names.copy)),
    importRole: iam.Role.fromRoleName(stack, 'VmImport', `${config.prefix}-vmimport-${region}`),
  });
  const template = Template.fromStack(stack).toJSON() as object;
  const [machine] = findStateMachines(template);
  if (!machine) throw new Error('the register construct synthesized no state machine');
  const definition = resolveDefinition(template, machine.logicalId, {
    ref: (id) => {
      throw new Error(`unexpected Ref ${id} in the register definition`);
    },
    getAtt: (id, attr) => {
      throw new Error(`unexpected Fn::GetAtt ${id}.${attr} in the register definition`);
    },
    region,
    accountId: ACCOUNT,
  });
  return { definition, names, stateMachineName: registerStateMachineName(config.prefix) };
}

export async function startLocalRegistration(options: LocalRegistrationOptions): Promise<LocalRegistration> {
  const { config, region, clients, store } = options;
  const ec2 = await startEc2Simulator({
    ...options.ec2,
    accountId: ACCOUNT,
    // Imports read the artifact from the local S3, as VM Import reads it from S3.
    objectExists: async (bucket, key) => {
      try {
        const head = await clients.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return { sizeBytes: head.ContentLength ?? 0 };
      } catch {
        return undefined;
      }
    },
  });
  const { definition, names, stateMachineName } = synthesizeRegisterDefinition(
    config,
    region,
    options.slotsTableName,
  );
  const compression = options.timeCompressionMs ?? 100;
  const service = new LocalStepFunctions({
    region,
    accountId: ACCOUNT,
    waitOverrideMs: compression,
    retryIntervalOverrideMs: compression,
  });
  const ec2Clients = new Map<string, ReturnType<typeof makeEc2Client>>();
  const ec2For = (r: string) => {
    let client = ec2Clients.get(r);
    if (!client) {
      client = makeEc2Client(r, ec2.url);
      ec2Clients.set(r, client);
    }
    return client;
  };
  const { stateMachineArn } = service.register(
    stateMachineName,
    definition,
    {
      clients: { ec2: ec2For(region), dynamodb: clients.dynamodb },
      lambdas: {
        [functionArn(region, names.record)]: (event) =>
          recordRegistration(store, event as RecordEvent, new Date()),
        [functionArn(region, names.copy)]: (event) =>
          copyImageToRegion(ec2For, event as Parameters<typeof copyImageToRegion>[1]),
      },
    },
    { waitOverridesByState: { WaitForImport: options.importPollMs ?? compression / 4 } },
  );
  const server = await startStepFunctionsServer(service, { port: 0 });
  return {
    stateMachineArn,
    sfnEndpoint: server.url,
    ec2Endpoint: ec2.url,
    service,
    ec2: ec2.sim,
    definition,
    async stop() {
      await service.stop();
      await server.close();
      for (const c of ec2Clients.values()) c.destroy();
      await ec2.stop();
    },
  };
}
