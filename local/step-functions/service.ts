/**
 * The Step Functions service of local mode: state machines registered from their synthesized
 * definitions, executions run in the background by aws-local-stepfunctions, each Task dispatched
 * to the real SDK call (or a local function) against local endpoints, with the API semantics of
 * StartExecution / DescribeExecution / StopExecution / ListExecutions.
 */
import './polyfill';
import { randomUUID } from 'node:crypto';
import {
  ExecutionAbortedError,
  ExecutionError,
  ExecutionTimeoutError,
  type RunOptions,
  StateMachine,
} from 'aws-local-stepfunctions';
import type { AslDefinition, AslState } from './definition';
import { walkStates } from './definition';
import {
  callTask,
  checkDispatch,
  parseTaskResource,
  SUPPORTED_RESOURCES,
  type TaskCall,
  type TaskDispatch,
  type TaskResource,
} from './dispatch';
import { LocalRuntimeError } from './task-errors';

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';

/** What DescribeExecution answers. `input` and `output` are JSON text, as in the API. */
export interface ExecutionDescription {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: ExecutionStatus;
  input: string;
  output?: string;
  error?: string;
  cause?: string;
  startDate: Date;
  stopDate?: Date;
}

export type ExecutionListItem = Pick<
  ExecutionDescription,
  'executionArn' | 'stateMachineArn' | 'name' | 'status' | 'startDate' | 'stopDate'
>;

export interface StateMachineDescription {
  stateMachineArn: string;
  name: string;
  /** The definition as JSON text. */
  definition: string;
  status: 'ACTIVE';
  type: 'STANDARD';
  creationDate: Date;
}

/** Error codes of the Step Functions API this service raises (the error's `name`). */
export type StepFunctionsErrorCode =
  | 'ExecutionAlreadyExists'
  | 'ExecutionDoesNotExist'
  | 'StateMachineDoesNotExist'
  | 'InvalidArn'
  | 'InvalidName'
  | 'InvalidExecutionInput'
  | 'ValidationException';

export class StepFunctionsError extends Error {
  override readonly name: StepFunctionsErrorCode;
  constructor(code: StepFunctionsErrorCode, message: string) {
    super(message);
    this.name = code;
  }
}

/** An event of aws-local-stepfunctions' execution log (StateEntered, StateRetried, ...). */
export type ExecutionEvent =
  ReturnType<StateMachine['run']>['eventLogs'] extends AsyncGenerator<infer E> ? E : never;

export interface TimeCompression {
  /** Every Wait state waits this many milliseconds instead of its Seconds/Timestamp. */
  waitOverrideMs?: number;
  /** Every Retry waits this many milliseconds between attempts instead of its interval and back-off. */
  retryIntervalOverrideMs?: number;
}

export interface LocalStepFunctionsOptions extends TimeCompression {
  /** Region in ARNs. @default 'us-east-1' */
  region?: string;
  /** Account in ARNs. @default '000000000000' */
  accountId?: string;
  /** Events kept per execution for `history()` (the oldest are dropped). @default 1000 */
  historyLimit?: number;
}

/**
 * Milliseconds for one Wait state, or a function drawn once per execution: many executions
 * polling one resource with the same fixed wait move in lockstep, where AWS's real waits drift.
 */
export type WaitOverride = number | (() => number);

export interface RegisterOptions {
  /** Overrides the service's time compression for this state machine; null turns it off. */
  waitOverrideMs?: number | null;
  retryIntervalOverrideMs?: number | null;
  /**
   * Per Wait state, milliseconds that replace `waitOverrideMs` for that state: a poll that must
   * notice a finished import quickly can be compressed harder than the others.
   */
  waitOverridesByState?: Readonly<Record<string, WaitOverride>>;
  /**
   * Validate the definition with the library's asl-validator (ARNs and paths checked).
   * @default true
   */
  validate?: boolean;
}

export interface StartExecutionRequest {
  /** Either the name or the ARN of a registered state machine. */
  stateMachineName?: string;
  stateMachineArn?: string;
  /** Unique per state machine; a random UUID when absent. */
  name?: string;
  /** JSON text. @default '{}' */
  input?: string;
}

export interface StartExecutionResult {
  executionArn: string;
  startDate: Date;
}

interface RegisteredStateMachine {
  name: string;
  arn: string;
  definition: AslDefinition;
  dispatch: TaskDispatch;
  /** Task states by name (names are unique across nested Map/Parallel scopes). */
  tasks: Map<string, TaskResource | 'custom'>;
  waitStates: string[];
  retryStates: string[];
  waitOverrideMs: number | undefined;
  waitOverridesByState: Readonly<Record<string, WaitOverride>>;
  retryIntervalOverrideMs: number | undefined;
  creationDate: Date;
}

interface ExecutionRecord {
  description: ExecutionDescription;
  machine: RegisteredStateMachine;
  controller: AbortController;
  abortRun: () => void;
  settled: Promise<void>;
  history: ExecutionEvent[];
}

/** `$$.State` as the interpreter reads it; kept current as states are entered. */
interface StateContext {
  Name: string;
  EnteredTime: string;
  RetryCount: number;
}

const MAX_TIMER_SECONDS = Math.floor(0x7fffffff / 1000);

type TaskHandlers = NonNullable<NonNullable<RunOptions['overrides']>['taskResourceLocalHandlers']>;
type JsonValue = Parameters<StateMachine['run']>[0];

export class LocalStepFunctions {
  readonly region: string;
  readonly accountId: string;
  private readonly options: LocalStepFunctionsOptions;
  private readonly machines = new Map<string, RegisteredStateMachine>();
  private readonly executions = new Map<string, ExecutionRecord>();
  private stopped = false;

  constructor(options: LocalStepFunctionsOptions = {}) {
    this.options = options;
    this.region = options.region ?? 'us-east-1';
    this.accountId = options.accountId ?? '000000000000';
  }

  stateMachineArn(name: string): string {
    return `arn:aws:states:${this.region}:${this.accountId}:stateMachine:${name}`;
  }

  executionArn(stateMachineName: string, executionName: string): string {
    return `arn:aws:states:${this.region}:${this.accountId}:execution:${stateMachineName}:${executionName}`;
  }

  /**
   * Registers (or replaces, for executions started afterwards) a state machine. Throws on what
   * cannot run locally: JSONata or `Assign`, an unsupported Task resource without a
   * `dispatch.states` handler, a missing client or local function, state names reused across
   * nested scopes, or (with `validate`) an invalid definition.
   */
  register(
    name: string,
    definition: AslDefinition,
    dispatch: TaskDispatch,
    options: RegisterOptions = {},
  ): { stateMachineArn: string } {
    checkName(name, 'state machine');
    // A copy: neither the caller nor a validator that annotates definitions can change it later.
    definition = structuredClone(definition);
    const problems: string[] = [];
    const tasks = new Map<string, TaskResource | 'custom'>();
    const waitStates: string[] = [];
    const retryStates: string[] = [];
    const seen = new Map<string, string>();

    if ((definition as { QueryLanguage?: unknown }).QueryLanguage === 'JSONata') {
      problems.push('QueryLanguage JSONata is not supported by the local interpreter (JSONPath only)');
    }
    walkStates(definition, (stateName, state, path) => {
      const where = [...path, stateName].join(' › ');
      const json = JSON.stringify(state);
      const previous = seen.get(stateName);
      if (previous !== undefined && previous !== json) {
        problems.push(
          `state name "${stateName}" is used twice with different definitions (overrides are keyed by name)`,
        );
      }
      seen.set(stateName, json);
      const s = state as AslState & Record<string, unknown>;
      if (s.QueryLanguage === 'JSONata') problems.push(`${where}: JSONata is not supported (JSONPath only)`);
      if ('Assign' in s)
        problems.push(`${where}: Assign (variables) is not supported by the local interpreter`);
      for (const field of ['ItemReader', 'ItemBatcher', 'ResultWriter']) {
        if (field in s) problems.push(`${where}: Map ${field} (distributed map) is not supported locally`);
      }
      if ('Retry' in s) retryStates.push(stateName);
      if (s.Type === 'Wait') waitStates.push(stateName);
      if (s.Type !== 'Task') return;
      if (dispatch.states?.[stateName]) {
        tasks.set(stateName, 'custom');
        return;
      }
      const resource = typeof s.Resource === 'string' ? parseTaskResource(s.Resource) : undefined;
      if (!resource) {
        problems.push(
          `${where}: unsupported Task resource ${JSON.stringify(s.Resource)} (supported: ${SUPPORTED_RESOURCES.join(
            ', ',
          )}; or give a handler in dispatch.states)`,
        );
        return;
      }
      const missing = checkDispatch(resource, s.Parameters, dispatch);
      if (missing) problems.push(`${where}: ${missing}`);
      tasks.set(stateName, resource);
    });
    // An override keyed by a name the definition does not have would silently do nothing.
    for (const state of Object.keys(options.waitOverridesByState ?? {})) {
      if (!waitStates.includes(state)) {
        problems.push(`waitOverridesByState names "${state}", which is not a Wait state of this definition`);
      }
    }
    if (problems.length) {
      throw new Error(`State machine "${name}" cannot run locally:\n- ${problems.join('\n- ')}`);
    }
    if (options.validate ?? true) {
      // The library validates (its asl-validator, ARNs and JSONPaths checked) on construction.
      new StateMachine(definition);
    }

    const pick = (own: number | null | undefined, service: number | undefined) =>
      own === null ? undefined : (own ?? service);
    const machine: RegisteredStateMachine = {
      name,
      arn: this.stateMachineArn(name),
      definition,
      dispatch,
      tasks,
      waitStates,
      retryStates,
      waitOverrideMs: pick(options.waitOverrideMs, this.options.waitOverrideMs),
      waitOverridesByState: options.waitOverridesByState ?? {},
      retryIntervalOverrideMs: pick(options.retryIntervalOverrideMs, this.options.retryIntervalOverrideMs),
      creationDate: this.machines.get(name)?.creationDate ?? new Date(),
    };
    this.machines.set(name, machine);
    return { stateMachineArn: machine.arn };
  }

  describeStateMachine(nameOrArn: string): StateMachineDescription {
    const m = this.machine(nameOrArn);
    return {
      stateMachineArn: m.arn,
      name: m.name,
      definition: JSON.stringify(m.definition),
      status: 'ACTIVE',
      type: 'STANDARD',
      creationDate: m.creationDate,
    };
  }

  listStateMachines(): Array<
    Pick<StateMachineDescription, 'stateMachineArn' | 'name' | 'type' | 'creationDate'>
  > {
    return [...this.machines.values()].map((m) => ({
      stateMachineArn: m.arn,
      name: m.name,
      type: 'STANDARD' as const,
      creationDate: m.creationDate,
    }));
  }

  /**
   * Starts an execution in the background. The same name again: the running execution's answer
   * if the input is the same, otherwise ExecutionAlreadyExists (also once it has ended).
   */
  startExecution(request: StartExecutionRequest): StartExecutionResult {
    if (this.stopped) throw new Error('LocalStepFunctions has been stopped');
    const ref = request.stateMachineArn ?? request.stateMachineName;
    if (!ref) throw new StepFunctionsError('ValidationException', 'stateMachineArn is required');
    const machine = this.machine(ref);
    const name = request.name ?? randomUUID();
    checkName(name, 'execution');
    const input = request.input ?? '{}';
    let parsedInput: JsonValue;
    try {
      parsedInput = JSON.parse(input) as JsonValue;
    } catch (err) {
      throw new StepFunctionsError(
        'InvalidExecutionInput',
        `Invalid State Machine Execution Input: ${(err as Error).message}`,
      );
    }

    const executionArn = this.executionArn(machine.name, name);
    const existing = this.executions.get(executionArn);
    if (existing) {
      const { description } = existing;
      if (description.status === 'RUNNING' && description.input === input) {
        return { executionArn, startDate: description.startDate };
      }
      throw new StepFunctionsError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    }

    const controller = new AbortController();
    const stateContext: StateContext = { Name: '', EnteredTime: '', RetryCount: 0 };
    const call = (stateName: string): TaskCall => ({
      executionArn,
      stateName,
      region: this.region,
      accountId: this.accountId,
      signal: controller.signal,
    });
    const handlers: TaskHandlers = {};
    for (const [stateName, resource] of machine.tasks) {
      handlers[stateName] = async (taskInput) => {
        // After a stop, the library still re-runs a Task whose retry back-off the stop cut short.
        if (controller.signal.aborted) throw new LocalRuntimeError('The execution has stopped');
        try {
          const custom = machine.dispatch.states?.[stateName];
          const task =
            resource === 'custom'
              ? Promise.resolve(custom?.(taskInput, call(stateName)))
              : callTask(resource, taskInput, machine.dispatch, call(stateName));
          // Settle with the stop, so a Task that never returns leaves no timer or state behind.
          const result = await untilAborted(task, controller.signal);
          return (result ?? null) as JsonValue;
        } catch (err) {
          stateContext.RetryCount += 1;
          throw err;
        }
      };
    }
    const everyState = (
      names: string[],
      ms: number | undefined,
      byState: Readonly<Record<string, WaitOverride>> = {},
    ) => {
      const entries = names.flatMap((n): Array<[string, number]> => {
        const override = byState[n];
        const value = typeof override === 'function' ? override() : (override ?? ms);
        return value === undefined ? [] : [[n, value]];
      });
      return entries.length === 0 ? undefined : Object.fromEntries(entries);
    };

    const startDate = new Date();
    const description: ExecutionDescription = {
      executionArn,
      stateMachineArn: machine.arn,
      name,
      status: 'RUNNING',
      input,
      startDate,
    };
    // The library's context object: it adds Execution.Input and Execution.StartTime itself.
    const context = {
      Execution: { Id: executionArn, Name: name, RedriveCount: 0 },
      StateMachine: { Id: machine.arn, Name: machine.name },
      State: stateContext,
    };
    const runnable = trackStates(machine.definition, stateContext);
    // Node's timers hold at most 2^31-1 ms: a longer TimeoutSeconds (AWS allows a year) would fire at once.
    if ((runnable.TimeoutSeconds ?? 0) > MAX_TIMER_SECONDS) delete runnable.TimeoutSeconds;
    const interpreter = new StateMachine(runnable, {
      validationOptions: { noValidate: true },
    });
    const run = interpreter.run(parsedInput, {
      context,
      overrides: {
        taskResourceLocalHandlers: handlers,
        waitTimeOverrides: everyState(
          machine.waitStates,
          machine.waitOverrideMs,
          machine.waitOverridesByState,
        ),
        retryIntervalOverrides: everyState(machine.retryStates, machine.retryIntervalOverrideMs),
      },
    });
    const record: ExecutionRecord = {
      description,
      machine,
      controller,
      abortRun: run.abort,
      history: [],
      settled: run.result.then(
        (output) => this.finish(record, 'SUCCEEDED', { output: JSON.stringify(output ?? null) }),
        (err: unknown) => this.finish(record, ...failureOf(err)),
      ),
    };
    this.executions.set(executionArn, record);
    void this.collectHistory(record, run.eventLogs);
    return { executionArn, startDate };
  }

  describeExecution(executionArn: string): ExecutionDescription {
    return { ...this.execution(executionArn).description };
  }

  /** Aborts a running execution (ABORTED, with the given error and cause); a no-op once it has ended. */
  stopExecution(executionArn: string, details: { error?: string; cause?: string } = {}): { stopDate: Date } {
    const record = this.execution(executionArn);
    if (record.description.status === 'RUNNING') {
      this.finish(record, 'ABORTED', { error: details.error, cause: details.cause });
      record.abortRun();
    }
    return { stopDate: record.description.stopDate ?? new Date() };
  }

  /** Executions of a state machine (name or ARN), newest first. */
  listExecutions(stateMachine: string, status?: ExecutionStatus): ExecutionListItem[] {
    const machine = this.machine(stateMachine);
    return [...this.executions.values()]
      .filter((r) => r.machine.arn === machine.arn && (!status || r.description.status === status))
      .map(({ description: d }) => ({
        executionArn: d.executionArn,
        stateMachineArn: d.stateMachineArn,
        name: d.name,
        status: d.status,
        startDate: d.startDate,
        ...(d.stopDate ? { stopDate: d.stopDate } : {}),
      }))
      .reverse()
      .sort((a, b) => b.startDate.getTime() - a.startDate.getTime());
  }

  /** Resolves once the execution has ended (whatever its status), or rejects after `timeoutMs`. */
  async waitForExecution(executionArn: string, timeoutMs = 30_000): Promise<ExecutionDescription> {
    const record = this.execution(executionArn);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`Execution ${executionArn} still ${record.description.status} after ${timeoutMs} ms`),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([record.settled, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return this.describeExecution(executionArn);
  }

  /** The interpreter's event log of an execution (StateEntered, StateRetried, StateFailed, ...). */
  history(executionArn: string): ExecutionEvent[] {
    return [...this.execution(executionArn).history];
  }

  /** Aborts every running execution; no execution can start afterwards. */
  async stop(): Promise<void> {
    this.stopped = true;
    const running = [...this.executions.values()].filter((r) => r.description.status === 'RUNNING');
    for (const record of running) {
      this.finish(record, 'ABORTED', {
        error: 'States.Aborted',
        cause: 'The local Step Functions service stopped',
      });
      record.abortRun();
    }
    await Promise.allSettled(running.map((r) => r.settled));
  }

  private finish(
    record: ExecutionRecord,
    status: Exclude<ExecutionStatus, 'RUNNING'>,
    details: { output?: string; error?: string; cause?: string },
  ): void {
    const d = record.description;
    if (d.status !== 'RUNNING') return;
    d.status = status;
    d.stopDate = new Date();
    if (details.output !== undefined) d.output = details.output;
    if (details.error !== undefined) d.error = details.error;
    if (details.cause !== undefined) d.cause = details.cause;
    // Whatever is still in flight (an SDK call, a local function, a sibling Map iteration) stops.
    record.controller.abort();
  }

  private async collectHistory(
    record: ExecutionRecord,
    events: AsyncGenerator<ExecutionEvent>,
  ): Promise<void> {
    const limit = this.options.historyLimit ?? 1000;
    try {
      for await (const event of events) {
        record.history.push(event);
        if (record.history.length > limit) record.history.shift();
      }
    } catch {
      // The log ends with the execution; nothing to report from here.
    }
  }

  private machine(nameOrArn: string): RegisteredStateMachine {
    let name = nameOrArn;
    if (nameOrArn.startsWith('arn:')) {
      const m = /^arn:[\w-]+:states:[^:]+:[^:]+:stateMachine:([^:]+)$/.exec(nameOrArn);
      if (!m?.[1]) throw new StepFunctionsError('InvalidArn', `Invalid Arn: '${nameOrArn}'`);
      name = m[1];
    }
    const machine = this.machines.get(name);
    if (!machine || (nameOrArn.startsWith('arn:') && machine.arn !== nameOrArn)) {
      throw new StepFunctionsError(
        'StateMachineDoesNotExist',
        `State Machine Does Not Exist: '${nameOrArn}'`,
      );
    }
    return machine;
  }

  private execution(executionArn: string): ExecutionRecord {
    if (!/^arn:[\w-]+:states:[^:]+:[^:]+:execution:[^:]+:[^:]+$/.test(executionArn)) {
      throw new StepFunctionsError('InvalidArn', `Invalid Arn: '${executionArn}'`);
    }
    const record = this.executions.get(executionArn);
    if (!record)
      throw new StepFunctionsError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
    return record;
  }
}

function untilAborted<T>(task: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new LocalRuntimeError('The execution has stopped'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new LocalRuntimeError('The execution has stopped'));
    signal.addEventListener('abort', onAbort, { once: true });
    task.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function failureOf(err: unknown): [Exclude<ExecutionStatus, 'RUNNING'>, { error?: string; cause?: string }] {
  if (err instanceof ExecutionAbortedError) return ['ABORTED', {}];
  if (err instanceof ExecutionTimeoutError) {
    return [
      'TIMED_OUT',
      { error: 'States.Timeout', cause: 'The execution ran longer than its TimeoutSeconds' },
    ];
  }
  if (err instanceof ExecutionError && err.cause instanceof Error) {
    return ['FAILED', { error: err.cause.name, cause: err.cause.message }];
  }
  return ['FAILED', { error: 'States.Runtime', cause: err instanceof Error ? err.message : String(err) }];
}

/**
 * The definition the interpreter runs for one execution: the same states, with each `States`
 * object behind a proxy that records the state being entered in `$$.State` (the library reads a
 * state from `States[name]` right before evaluating its paths, in the same tick).
 */
function trackStates(definition: AslDefinition, state: StateContext): AslDefinition {
  type Scope = { States: Record<string, AslState> };
  const wrappedStates = new WeakMap<object, AslState>();
  const wrapScope = <S extends Scope>(scope: S): S => ({
    ...scope,
    States: new Proxy(scope.States, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver) as AslState | undefined;
        if (typeof key !== 'string' || !value || !Object.hasOwn(target, key)) return value;
        state.Name = key;
        state.EnteredTime = new Date().toISOString();
        state.RetryCount = 0;
        return wrapState(value);
      },
    }),
  });
  const wrapState = (s: AslState): AslState => {
    const nested = s as { ItemProcessor?: Scope; Iterator?: Scope; Branches?: Scope[] };
    if (!nested.ItemProcessor && !nested.Iterator && !nested.Branches) return s;
    const known = wrappedStates.get(s);
    if (known) return known;
    const wrapped = {
      ...s,
      ...(nested.ItemProcessor ? { ItemProcessor: wrapScope(nested.ItemProcessor) } : {}),
      ...(nested.Iterator ? { Iterator: wrapScope(nested.Iterator) } : {}),
      ...(nested.Branches ? { Branches: nested.Branches.map(wrapScope) } : {}),
    } as AslState;
    wrappedStates.set(s, wrapped);
    return wrapped;
  };
  return wrapScope(definition);
}

/** Step Functions' rule for state machine and execution names. */
function checkName(name: string, what: string): void {
  const forbidden = /[\s<>{}[\]?*"#%\\^|~`$&,;:/]/;
  const control = [...name].some((ch) => {
    const code = ch.codePointAt(0) ?? 0;
    return code <= 0x1f || (code >= 0x7f && code <= 0x9f);
  });
  if (name.length < 1 || name.length > 80 || forbidden.test(name) || control) {
    throw new StepFunctionsError('InvalidName', `Invalid Name: '${name}' is not a valid ${what} name`);
  }
}
