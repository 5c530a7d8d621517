/**
 * Local stand-in for the HTTP API (API Gateway, payload format 2.0, IAM auth): it turns each
 * request into the event API Gateway would hand the route's Lambda, calls the same handler, and
 * writes the handler's result back the way API Gateway does. A bearer token takes the place of
 * SigV4: it names the caller's IAM principal.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type {
  APIGatewayProxyEventV2WithIAMAuthorizer,
  APIGatewayProxyResultV2,
  APIGatewayProxyStructuredResultV2,
  Context,
} from 'aws-lambda';
import { ROUTES, type RouteDefinition, type RouteName } from '../lambdas/api/routes';

export type RouteHandler = (
  event: APIGatewayProxyEventV2WithIAMAuthorizer,
  context: Context,
) => Promise<APIGatewayProxyResultV2>;

export interface HttpServerOptions {
  /** 0 picks a free port. */
  port: number;
  handlers: Record<RouteName, RouteHandler>;
  /** Bearer token → IAM principal ARN of its holder. Read on every request, so it may change. */
  tokens: Record<string, string>;
  /** Loopback only; 127.0.0.1 by default. */
  host?: string;
  /** What getRemainingTimeInMillis counts down from (API Gateway's integration timeout is 30 s). */
  timeoutMs?: number;
  /** Where a handler's exception goes; API Gateway hides it from the caller and Lambda logs it. */
  onHandlerError?: (error: unknown, route: RouteName) => void;
}

export interface RunningHttpServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** API Gateway's request payload quota for HTTP APIs. */
export const MAX_PAYLOAD_BYTES = 10 * 1024 * 1024;

// The account that "owns" the local API, as requestContext.accountId names the API owner's account.
const LOCAL_ACCOUNT_ID = '000000000000';
const LOCAL_REGION = 'us-east-1';
// After an early error reply the rest of the body is read and dropped, so the client sees the reply
// rather than a reset; past this much the connection is cut instead.
const MAX_DISCARD_BYTES = 4 * MAX_PAYLOAD_BYTES;

interface CompiledRoute {
  readonly route: RouteDefinition;
  readonly routeKey: string;
  readonly pattern: RegExp;
  readonly parameterNames: readonly string[];
}

export async function startHttpServer(opts: HttpServerOptions): Promise<RunningHttpServer> {
  const host = opts.host ?? '127.0.0.1';
  if (!isLoopback(host)) throw new Error(`the local API binds to loopback only, not ${host}`);
  const missing = ROUTES.filter((r) => typeof opts.handlers[r.name] !== 'function').map((r) => r.name);
  if (missing.length > 0) throw new Error(`no handler for route(s) ${missing.join(', ')}`);
  const routes = ROUTES.map(compileRoute);
  const inFlight = new Set<Promise<void>>();
  let closing: Promise<void> | undefined;

  const server = createServer((req, res) => {
    // A keep-alive client may still send on an open connection while close() drains.
    if (closing) res.setHeader('connection', 'close');
    const work = handleRequest(req, res, routes, opts).catch((err) => {
      // Reaching here means the reply itself failed (e.g. the client went away mid-write).
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    });
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  });
  // Slow-loris guards a real API Gateway has too; generous for a local client.
  server.headersTimeout = 30_000;
  server.requestTimeout = 120_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}`,
    port,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve, reject) =>
          server.close((err) => (err ? reject(err) : resolve())),
        );
        server.closeIdleConnections();
        // Handlers already running finish and answer, so nothing touches the emulators after close.
        await Promise.allSettled([...inFlight]);
        server.closeAllConnections();
        await closed;
      })();
      return closing;
    },
  };
}

async function handleRequest(
  req: IncomingMessage,
  res: ServerResponse,
  routes: readonly CompiledRoute[],
  opts: HttpServerOptions,
): Promise<void> {
  const startedAt = Date.now();
  const requestId = randomBytes(12).toString('base64url');
  res.setHeader('apigw-requestid', requestId);

  const requestTarget = req.url ?? '/';
  const queryStart = requestTarget.indexOf('?');
  const rawPath = queryStart < 0 ? requestTarget : requestTarget.slice(0, queryStart);
  const rawQueryString = queryStart < 0 ? '' : requestTarget.slice(queryStart + 1);
  const method = (req.method ?? 'GET').toUpperCase();

  const matched = matchRoute(routes, method, rawPath);
  if (!matched) return rejectEarly(req, res, 404, 'NOT_FOUND', `no route for ${method} ${rawPath}`);

  const principalArn = authenticate(req, opts.tokens);
  if (!principalArn) {
    res.setHeader('www-authenticate', 'Bearer');
    return rejectEarly(
      req,
      res,
      401,
      'UNAUTHENTICATED',
      'send "Authorization: Bearer <token>" with a known token',
    );
  }

  const declaredLength = Number(req.headers['content-length'] ?? '0');
  if (declaredLength > MAX_PAYLOAD_BYTES)
    return rejectEarly(req, res, 413, 'PAYLOAD_TOO_LARGE', tooLargeMessage());
  const body = await readBody(req, MAX_PAYLOAD_BYTES);
  if (body === TOO_LARGE) return rejectEarly(req, res, 413, 'PAYLOAD_TOO_LARGE', tooLargeMessage());

  const sourceIp = req.socket.remoteAddress ?? '127.0.0.1';
  const headers = eventHeaders(req, sourceIp);
  const cookies = req.headers.cookie?.split(/;\s*/).filter((c) => c.length > 0);
  const domainName = req.headers.host ?? 'localhost';
  const { route, routeKey } = matched.compiled;

  const event: APIGatewayProxyEventV2WithIAMAuthorizer = {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString,
    ...(cookies && cookies.length > 0 ? { cookies } : {}),
    headers,
    ...(rawQueryString ? { queryStringParameters: queryParameters(rawQueryString) } : {}),
    requestContext: {
      accountId: LOCAL_ACCOUNT_ID,
      apiId: 'local',
      domainName,
      domainPrefix: domainName.split('.')[0] ?? domainName,
      http: {
        method,
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp,
        userAgent: req.headers['user-agent'] ?? '',
      },
      requestId,
      routeKey,
      stage: '$default',
      time: clfTime(new Date(startedAt)),
      timeEpoch: startedAt,
      authorizer: { iam: iamIdentity(principalArn, authToken(req) ?? '') },
    },
    ...(matched.pathParameters ? { pathParameters: matched.pathParameters } : {}),
    ...(body.length > 0 ? { body: body.toString('utf8') } : {}),
    isBase64Encoded: false,
  };

  const context = lambdaContext(route.name, startedAt + (opts.timeoutMs ?? 30_000));
  let result: APIGatewayProxyResultV2;
  try {
    result = await opts.handlers[route.name](event, context);
  } catch (err) {
    (opts.onHandlerError ?? defaultOnHandlerError)(err, route.name);
    return sendJson(res, 500, { error: { code: 'INTERNAL', message: 'Internal Server Error' } });
  }
  try {
    writeResult(res, result);
  } catch (err) {
    // API Gateway answers a malformed Lambda response (bad status, bad header) with a 500.
    (opts.onHandlerError ?? defaultOnHandlerError)(err, route.name);
    if (!res.headersSent)
      sendJson(res, 500, { error: { code: 'INTERNAL', message: 'Internal Server Error' } });
  }
}

function compileRoute(route: RouteDefinition): CompiledRoute {
  const parameterNames: string[] = [];
  const source = route.path
    .split('/')
    .map((segment) => {
      const param = /^\{([A-Za-z0-9_]+)\}$/.exec(segment);
      if (!param?.[1]) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      parameterNames.push(param[1]);
      return '([^/]+)';
    })
    .join('/');
  return {
    route,
    routeKey: `${route.method} ${route.path}`,
    pattern: new RegExp(`^${source}$`),
    parameterNames,
  };
}

function matchRoute(
  routes: readonly CompiledRoute[],
  method: string,
  rawPath: string,
): { compiled: CompiledRoute; pathParameters?: Record<string, string> } | undefined {
  for (const compiled of routes) {
    if (compiled.route.method !== method) continue;
    const m = compiled.pattern.exec(rawPath);
    if (!m) continue;
    if (compiled.parameterNames.length === 0) return { compiled };
    const pathParameters: Record<string, string> = {};
    for (const [i, name] of compiled.parameterNames.entries()) {
      const value = safeDecode(m[i + 1] ?? '');
      // A path whose parameter does not decode cannot name any job.
      if (value === undefined) return undefined;
      pathParameters[name] = value;
    }
    return { compiled, pathParameters };
  }
  return undefined;
}

function authToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m?.[1];
}

function authenticate(req: IncomingMessage, tokens: Record<string, string>): string | undefined {
  const token = authToken(req);
  // Own properties only: a token like "constructor" must not match Object.prototype.
  if (!token || !Object.hasOwn(tokens, token)) return undefined;
  const principal = tokens[token];
  return typeof principal === 'string' && principal.length > 0 ? principal : undefined;
}

/** What API Gateway's IAM authorizer reports about the signer, derived stably from the ARN. */
function iamIdentity(
  principalArn: string,
  token: string,
): APIGatewayProxyEventV2WithIAMAuthorizer['requestContext']['authorizer']['iam'] {
  const parts = principalArn.split(':');
  const accountId = /^\d{12}$/.test(parts[4] ?? '') ? (parts[4] as string) : LOCAL_ACCOUNT_ID;
  const resource = parts.slice(5).join(':');
  let userId: string;
  if (resource.startsWith('assumed-role/')) {
    // For a role session AWS reports "<role id>:<session name>".
    const session = resource.split('/')[2] ?? 'session';
    userId = `${uniqueId('AROA', principalArn.split('/').slice(0, 2).join('/'))}:${session}`;
  } else if (resource === 'root') {
    userId = accountId;
  } else {
    userId = uniqueId('AIDA', principalArn);
  }
  return {
    accessKey: uniqueId('ASIA', `token:${token}`),
    accountId,
    callerId: userId,
    cognitoIdentity: null,
    // API Gateway sends null for a caller outside an AWS Organization; the type says string.
    principalOrgId: null as unknown as string,
    userArn: principalArn,
    userId,
  };
}

/** An IAM-style unique id (prefix + 16 upper-case base32 characters), stable for the same input. */
function uniqueId(prefix: string, seed: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const digest = createHash('sha256').update(seed).digest();
  let out = prefix;
  for (let i = 0; i < 16; i++) out += alphabet[(digest[i] ?? 0) % 32];
  return out;
}

function eventHeaders(req: IncomingMessage, sourceIp: string): Record<string, string> {
  const headers: Record<string, string> = {};
  // API Gateway joins repeated headers with commas and moves cookies to event.cookies.
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (name === 'cookie' || !values) continue;
    headers[name] = values.join(',');
  }
  headers['x-forwarded-for'] = headers['x-forwarded-for']
    ? `${headers['x-forwarded-for']}, ${sourceIp}`
    : sourceIp;
  headers['x-forwarded-proto'] = 'http';
  headers['x-forwarded-port'] = String(req.socket.localPort ?? '');
  headers['x-amzn-trace-id'] =
    `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString('hex')}`;
  return headers;
}

function queryParameters(rawQueryString: string): Record<string, string> {
  // Repeated keys arrive as one comma-joined value, as in payload format 2.0.
  const out: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(rawQueryString)) {
    out[key] = Object.hasOwn(out, key) ? `${out[key]},${value}` : value;
  }
  return out;
}

function lambdaContext(functionName: string, deadline: number): Context {
  const unsupported = (what: string) => () => {
    throw new Error(`context.${what} is not supported locally: return a value or a promise`);
  };
  const awsRequestId = randomUUID();
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:function:${functionName}`,
    memoryLimitInMB: '256',
    awsRequestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `${day}/[$LATEST]${awsRequestId.replaceAll('-', '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported('done'),
    fail: unsupported('fail'),
    succeed: unsupported('succeed'),
  };
}

function writeResult(res: ServerResponse, result: APIGatewayProxyResultV2): void {
  if (!isStructuredResult(result)) {
    // Payload format 2.0: anything but an object with statusCode is the body of a 200 JSON reply.
    const body = typeof result === 'string' ? result : JSON.stringify(result ?? null);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(result.headers ?? {}))
    headers[name.toLowerCase()] = String(value);
  if (result.cookies && result.cookies.length > 0) headers['set-cookie'] = result.cookies;
  const body =
    result.body === undefined
      ? Buffer.alloc(0)
      : Buffer.from(result.body, result.isBase64Encoded ? 'base64' : 'utf8');
  headers['content-length'] = String(body.length);
  const status = result.statusCode ?? 200;
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new Error(`handler returned an invalid statusCode ${status}`);
  }
  res.writeHead(status, headers);
  res.end(body);
}

function isStructuredResult(result: APIGatewayProxyResultV2): result is APIGatewayProxyStructuredResultV2 {
  return typeof result === 'object' && result !== null && typeof result.statusCode === 'number';
}

const TOO_LARGE = Symbol('too large');

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | typeof TOO_LARGE> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.off('end', onEnd);
        resolve(TOO_LARGE);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve(Buffer.concat(chunks, size));
    req.on('data', onData);
    req.on('end', onEnd);
    req.once('error', reject);
  });
}

/** Replies before the handler runs and discards whatever body the client is still sending. */
function rejectEarly(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
): void {
  // Reading the unwanted body to its end (instead of closing) lets the client finish sending and
  // read the reply; closing mid-upload shows up on the client as a reset, not as this status.
  let discarded = 0;
  // A client that gives up mid-upload is no error of ours; without a listener it would be thrown.
  req.on('error', () => {});
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > MAX_DISCARD_BYTES) req.socket.destroy();
  });
  req.resume();
  sendJson(res, status, { error: { code, message } });
}

function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  const body = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function tooLargeMessage(): string {
  return `request body exceeds ${MAX_PAYLOAD_BYTES} bytes`;
}

function safeDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Common Log Format time, as in requestContext.time ("12/Mar/2020:19:03:58 +0000"). */
function clfTime(d: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${months[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

function defaultOnHandlerError(error: unknown, route: RouteName): void {
  console.error(`[local-api] ${route} handler failed:`, error);
}
