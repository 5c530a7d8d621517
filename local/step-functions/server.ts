/**
 * The local Step Functions service on the wire: the AWS JSON 1.0 protocol that
 * `@aws-sdk/client-sfn` speaks (POST /, `X-Amz-Target: AWSStepFunctions.<Operation>`), so code
 * that starts and watches executions uses the real SDK with `endpoint: url`.
 *
 * Operations: StartExecution, DescribeExecution, StopExecution, ListExecutions,
 * DescribeStateMachine, ListStateMachines. Errors are `{"__type": "<Code>", "message": ...}` with
 * status 400, which the SDK throws as an error of that name. Timestamps are epoch seconds.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ExecutionStatus, type LocalStepFunctions, StepFunctionsError } from './service';

export interface StepFunctionsServerOptions {
  /** Port on 127.0.0.1; 0 (default) lets the OS choose. */
  port?: number;
}

export interface StepFunctionsServer {
  /** `http://127.0.0.1:<port>`, the `endpoint` of an SFNClient. */
  url: string;
  close(): Promise<void>;
}

const TARGET_PREFIX = 'AWSStepFunctions.';
const CONTENT_TYPE = 'application/x-amz-json-1.0';
const STATUSES: ReadonlySet<string> = new Set(['RUNNING', 'SUCCEEDED', 'FAILED', 'ABORTED', 'TIMED_OUT']);

class ProtocolError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Body = Record<string, unknown>;
type Operation = (service: LocalStepFunctions, body: Body) => unknown;

const OPERATIONS: Readonly<Record<string, Operation>> = {
  StartExecution(service, body) {
    const { executionArn, startDate } = service.startExecution({
      stateMachineArn: requiredString(body, 'stateMachineArn'),
      name: optionalString(body, 'name'),
      input: optionalString(body, 'input'),
    });
    return { executionArn, startDate: epochSeconds(startDate) };
  },
  DescribeExecution(service, body) {
    const d = service.describeExecution(requiredString(body, 'executionArn'));
    return {
      executionArn: d.executionArn,
      stateMachineArn: d.stateMachineArn,
      name: d.name,
      status: d.status,
      startDate: epochSeconds(d.startDate),
      ...(d.stopDate ? { stopDate: epochSeconds(d.stopDate) } : {}),
      input: d.input,
      inputDetails: { included: true },
      ...(d.output !== undefined ? { output: d.output, outputDetails: { included: true } } : {}),
      ...(d.error !== undefined ? { error: d.error } : {}),
      ...(d.cause !== undefined ? { cause: d.cause } : {}),
    };
  },
  StopExecution(service, body) {
    const { stopDate } = service.stopExecution(requiredString(body, 'executionArn'), {
      error: optionalString(body, 'error'),
      cause: optionalString(body, 'cause'),
    });
    return { stopDate: epochSeconds(stopDate) };
  },
  ListExecutions(service, body) {
    const statusFilter = optionalString(body, 'statusFilter');
    if (statusFilter !== undefined && !STATUSES.has(statusFilter)) {
      throw new ProtocolError('ValidationException', `Invalid statusFilter: ${statusFilter}`);
    }
    const all = service.listExecutions(
      requiredString(body, 'stateMachineArn'),
      statusFilter as ExecutionStatus | undefined,
    );
    const { page, nextToken } = paginate(all, body);
    return {
      executions: page.map((e) => ({
        executionArn: e.executionArn,
        stateMachineArn: e.stateMachineArn,
        name: e.name,
        status: e.status,
        startDate: epochSeconds(e.startDate),
        ...(e.stopDate ? { stopDate: epochSeconds(e.stopDate) } : {}),
      })),
      ...(nextToken ? { nextToken } : {}),
    };
  },
  DescribeStateMachine(service, body) {
    const d = service.describeStateMachine(requiredString(body, 'stateMachineArn'));
    return {
      stateMachineArn: d.stateMachineArn,
      name: d.name,
      status: d.status,
      definition: d.definition,
      roleArn: `arn:aws:iam::${service.accountId}:role/local-step-functions`,
      type: d.type,
      creationDate: epochSeconds(d.creationDate),
    };
  },
  ListStateMachines(service, body) {
    const { page, nextToken } = paginate(service.listStateMachines(), body);
    return {
      stateMachines: page.map((m) => ({ ...m, creationDate: epochSeconds(m.creationDate) })),
      ...(nextToken ? { nextToken } : {}),
    };
  },
};

export async function startStepFunctionsServer(
  service: LocalStepFunctions,
  options: StepFunctionsServerOptions = {},
): Promise<StepFunctionsServer> {
  const server = createServer((req, res) => {
    handle(service, req, res).catch((err: unknown) => {
      // Only a failure to write the response gets here.
      if (!res.headersSent) send(res, 500, { __type: 'InternalFailure', message: String(err) });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function handle(service: LocalStepFunctions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const raw = await readBody(req);
  try {
    if (req.method !== 'POST')
      throw new ProtocolError('UnknownOperationException', `${req.method} is not supported`);
    const target = String(req.headers['x-amz-target'] ?? '');
    const operation = target.startsWith(TARGET_PREFIX)
      ? OPERATIONS[target.slice(TARGET_PREFIX.length)]
      : undefined;
    if (!operation)
      throw new ProtocolError('UnknownOperationException', `Unknown operation: ${target || '(none)'}`);
    let body: unknown;
    try {
      body = raw.length ? JSON.parse(raw) : {};
    } catch {
      throw new ProtocolError('SerializationException', 'The request body is not JSON');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ProtocolError('SerializationException', 'The request body is not a JSON object');
    }
    send(res, 200, operation(service, body as Body));
  } catch (err) {
    if (err instanceof StepFunctionsError || err instanceof ProtocolError) {
      const code = err instanceof ProtocolError ? err.code : err.name;
      send(res, 400, { __type: code, message: err.message });
    } else {
      send(res, 500, {
        __type: 'InternalFailure',
        message: err instanceof Error ? err.message : String(err),
      });
    }
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': CONTENT_TYPE,
    'Content-Length': Buffer.byteLength(text),
    'x-amzn-RequestId': randomUUID(),
  });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function requiredString(body: Body, key: string): string {
  const value = body[key];
  if (typeof value !== 'string' || !value)
    throw new ProtocolError('ValidationException', `${key} is required`);
  return value;
}

function optionalString(body: Body, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new ProtocolError('ValidationException', `${key} must be a string`);
  return value;
}

/** `maxResults` (1–1000, default 100) and an opaque `nextToken` (an offset here). */
function paginate<T>(items: T[], body: Body): { page: T[]; nextToken?: string } {
  const max = body.maxResults === undefined || body.maxResults === 0 ? 100 : Number(body.maxResults);
  if (!Number.isInteger(max) || max < 1 || max > 1000) {
    throw new ProtocolError('ValidationException', 'maxResults must be between 1 and 1000');
  }
  const token = optionalString(body, 'nextToken');
  const start = token === undefined ? 0 : Number.parseInt(token, 10);
  if (!Number.isInteger(start) || start < 0)
    throw new ProtocolError('InvalidToken', `Invalid Token: '${token}'`);
  const page = items.slice(start, start + max);
  return start + max < items.length ? { page, nextToken: String(start + max) } : { page };
}

/** JSON 1.0 timestamps: epoch seconds, milliseconds as the fraction. */
function epochSeconds(date: Date): number {
  return date.getTime() / 1000;
}
