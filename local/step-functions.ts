/**
 * The local Step Functions service of local mode (see local/step-functions/*):
 *
 *   const definition = resolveDefinition(template, 'RegisterStateMachine1A2B3C4D', { ref, getAtt });
 *   const sfn = new LocalStepFunctions({ waitOverrideMs: 10, retryIntervalOverrideMs: 10 });
 *   sfn.register('register', definition, { clients: { ec2, dynamodb }, lambdas });
 *   const server = await startStepFunctionsServer(sfn); // SFNClient({ endpoint: server.url })
 *
 * Loading this module installs the `Promise.withResolvers` polyfill aws-local-stepfunctions needs on Node 20.
 */
import './step-functions/polyfill';

export {
  type AslDefinition,
  type AslState,
  findStateMachines,
  type IntrinsicResolver,
  resolveDefinition,
  type StateMachineResource,
  walkStates,
} from './step-functions/definition';
export {
  type CommandModule,
  commandName,
  type LocalLambda,
  type LocalLambdaContext,
  parseTaskResource,
  type SdkClient,
  type StateHandler,
  SUPPORTED_RESOURCES,
  type TaskCall,
  type TaskDispatch,
  type TaskResource,
  toJson,
} from './step-functions/dispatch';
export { installPromiseWithResolvers } from './step-functions/polyfill';
export {
  type StepFunctionsServer,
  type StepFunctionsServerOptions,
  startStepFunctionsServer,
} from './step-functions/server';
export {
  type ExecutionDescription,
  type ExecutionEvent,
  type ExecutionListItem,
  type ExecutionStatus,
  LocalStepFunctions,
  type LocalStepFunctionsOptions,
  type RegisterOptions,
  type StartExecutionRequest,
  type StartExecutionResult,
  type StateMachineDescription,
  StepFunctionsError,
  type StepFunctionsErrorCode,
  type TimeCompression,
} from './step-functions/service';
export {
  dynamoDbTaskFailure,
  ec2TaskFailure,
  LocalRuntimeError,
  lambdaTaskFailure,
  SDK_SERVICE_PASCAL_NAMES,
  sdkServicePascalName,
  sdkTaskFailure,
  TaskError,
  type TaskFailure,
} from './step-functions/task-errors';
