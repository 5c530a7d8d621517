import { request } from 'node:http';
import type { APIGatewayProxyEventV2WithIAMAuthorizer, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ROUTES, type RouteName } from '../../lambdas/api/routes';
import {
  MAX_PAYLOAD_BYTES,
  type RouteHandler,
  type RunningHttpServer,
  startHttpServer,
} from '../../local/http-server';

const ALICE = 'arn:aws:iam::123456789012:user/alice';
const BOB = 'arn:aws:sts::210987654321:assumed-role/Developer/bob-session';
const TOKENS = { 'token-alice': ALICE, 'token-bob': BOB };

interface Call {
  route: RouteName;
  event: APIGatewayProxyEventV2WithIAMAuthorizer;
  context: Context;
  remainingMs: number;
}

let calls: Call[] = [];
/** What every handler answers; tests replace it. */
let respond: (route: RouteName) => Promise<APIGatewayProxyResultV2> = async () => ({
  statusCode: 200,
  body: '{}',
});
let server: RunningHttpServer;

function handlers(): Record<RouteName, RouteHandler> {
  return Object.fromEntries(
    ROUTES.map((r) => [
      r.name,
      async (event: APIGatewayProxyEventV2WithIAMAuthorizer, context: Context) => {
        calls.push({ route: r.name, event, context, remainingMs: context.getRemainingTimeInMillis() });
        return respond(r.name);
      },
    ]),
  ) as Record<RouteName, RouteHandler>;
}

beforeAll(async () => {
  server = await startHttpServer({ port: 0, handlers: handlers(), tokens: TOKENS, onHandlerError: () => {} });
});

afterAll(async () => {
  await server?.close();
});

beforeEach(() => {
  calls = [];
  respond = async () => ({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{}' });
});

function call(path: string, init: RequestInit & { token?: string } = {}): Promise<Response> {
  const { token, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (token) headers.set('authorization', `Bearer ${token}`);
  return fetch(`${server.url}${path}`, { ...rest, headers, signal: AbortSignal.timeout(20_000) });
}

describe('startHttpServer', () => {
  it('listens on 127.0.0.1 at the port the OS picked', () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
  });

  it('refuses to bind anything but loopback', async () => {
    await expect(
      startHttpServer({ port: 0, host: '0.0.0.0', handlers: handlers(), tokens: {} }),
    ).rejects.toThrow(/loopback/);
  });
});

describe('the API Gateway v2 event', () => {
  it('carries the route, path parameters, query, headers, body and the caller from the token', async () => {
    const body = JSON.stringify({ reason: 'no longer needed' });
    const res = await call('/jobs/job%2042/cancel?x=1&x=2&note=a%20b', {
      method: 'POST',
      token: 'token-alice',
      headers: { 'content-type': 'application/json', 'X-Custom-Header': 'Value' },
      body,
    });
    expect(res.status).toBe(200);
    expect(calls).toHaveLength(1);
    const { route, event, context, remainingMs } = calls[0] as Call;

    expect(route).toBe('cancelJob');
    expect(event.version).toBe('2.0');
    expect(event.routeKey).toBe('POST /jobs/{id}/cancel');
    expect(event.rawPath).toBe('/jobs/job%2042/cancel');
    expect(event.pathParameters).toEqual({ id: 'job 42' });
    expect(event.rawQueryString).toBe('x=1&x=2&note=a%20b');
    expect(event.queryStringParameters).toEqual({ x: '1,2', note: 'a b' });
    expect(event.headers['x-custom-header']).toBe('Value');
    expect(event.headers['content-type']).toBe('application/json');
    expect(event.body).toBe(body);
    expect(event.isBase64Encoded).toBe(false);

    const rc = event.requestContext;
    expect(rc.routeKey).toBe('POST /jobs/{id}/cancel');
    expect(rc.http).toMatchObject({ method: 'POST', path: '/jobs/job%2042/cancel', sourceIp: '127.0.0.1' });
    expect(rc.requestId).toBeTruthy();
    expect(res.headers.get('apigw-requestid')).toBe(rc.requestId);
    expect(Math.abs(rc.timeEpoch - Date.now())).toBeLessThan(60_000);
    expect(rc.stage).toBe('$default');
    expect(rc.authorizer.iam).toMatchObject({
      userArn: ALICE,
      accountId: '123456789012',
      principalOrgId: null,
      cognitoIdentity: null,
    });
    expect(rc.authorizer.iam.userId).toMatch(/^AIDA[A-Z2-7]{16}$/);

    expect(context.functionName).toBe('cancelJob');
    expect(context.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(remainingMs).toBeGreaterThan(0);
  });

  it('leaves out query, path parameters and body when the request has none', async () => {
    const res = await call('/jobs', { token: 'token-alice' });
    expect(res.status).toBe(200);
    const { route, event } = calls[0] as Call;
    expect(route).toBe('listJobs');
    expect(event.routeKey).toBe('GET /jobs');
    expect(event.rawQueryString).toBe('');
    expect(event.queryStringParameters).toBeUndefined();
    expect(event.pathParameters).toBeUndefined();
    expect(event.body).toBeUndefined();
  });

  it('dispatches each route of ROUTES to its own handler', async () => {
    for (const r of ROUTES) {
      calls = [];
      const res = await call(r.path.replace('{id}', 'j-1'), {
        method: r.method,
        token: 'token-bob',
        ...(r.method === 'POST' ? { body: '{}' } : {}),
      });
      expect(res.status).toBe(200);
      expect(calls.map((c) => [c.route, c.event.routeKey])).toEqual([[r.name, `${r.method} ${r.path}`]]);
    }
  });

  it('names a role session caller by its session ARN, role id and session name', async () => {
    await call('/jobs/j-2', { token: 'token-bob' });
    const iam = (calls[0] as Call).event.requestContext.authorizer.iam;
    expect(iam.userArn).toBe(BOB);
    expect(iam.accountId).toBe('210987654321');
    expect(iam.userId).toMatch(/^AROA[A-Z2-7]{16}:bob-session$/);
  });
});

describe('authentication', () => {
  it.each([
    ['no Authorization header', undefined],
    ['an unknown token', 'token-mallory'],
    ['a name inherited from Object.prototype', 'constructor'],
  ])('answers 401 without calling a handler for %s', async (_, token) => {
    const res = await call('/jobs', { method: 'POST', body: '{}', ...(token ? { token } : {}) });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
    expect(calls).toHaveLength(0);
  });
});

describe('routing', () => {
  it.each([
    ['GET', '/nothing-here'],
    ['DELETE', '/jobs/j-1'],
    ['GET', '/jobs/j-1/cancel'],
    ['GET', '/jobs/'],
    ['GET', '/jobs/a/b'],
  ])('answers 404 for %s %s', async (method, path) => {
    const res = await call(path, { method, token: 'token-alice' });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
    expect(calls).toHaveLength(0);
  });
});

describe('the handler result', () => {
  it('is written back with its status, headers and body', async () => {
    respond = async () => ({
      statusCode: 202,
      headers: { 'Content-Type': 'application/json', 'x-kiln-job': 'j-9', 'x-count': 3 },
      body: JSON.stringify({ jobId: 'j-9', status: 'QUEUED' }),
    });
    const res = await call('/jobs', { method: 'POST', token: 'token-alice', body: '{}' });
    expect(res.status).toBe(202);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('x-kiln-job')).toBe('j-9');
    expect(res.headers.get('x-count')).toBe('3');
    expect(await res.json()).toEqual({ jobId: 'j-9', status: 'QUEUED' });
  });

  it('is a 200 JSON reply when the handler returns a string', async () => {
    respond = async () => '{"plain":true}';
    const res = await call('/jobs/j-1', { token: 'token-alice' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ plain: true });
  });

  it('is a 500 in the contract shape when the handler throws', async () => {
    respond = async () => {
      throw new Error('boom');
    };
    const res = await call('/jobs/j-1', { token: 'token-alice' });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: { code: 'INTERNAL', message: 'Internal Server Error' } });
  });
});

describe('payload size', () => {
  it('passes a large body under the limit through untouched', async () => {
    const body = 'a'.repeat(2 * 1024 * 1024);
    const res = await call('/jobs', { method: 'POST', token: 'token-alice', body });
    expect(res.status).toBe(200);
    expect((calls[0] as Call).event.body).toBe(body);
  });

  it('answers 413 for a body over 10 MB with Content-Length, without calling a handler', async () => {
    const res = await call('/jobs', {
      method: 'POST',
      token: 'token-alice',
      body: Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x61),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
    expect(calls).toHaveLength(0);
  });

  it('answers 413 for a chunked body that grows past 10 MB, without calling a handler', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${server.url}/jobs`, {
        method: 'POST',
        headers: { authorization: 'Bearer token-alice', 'transfer-encoding': 'chunked' },
        timeout: 20_000,
      });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('timeout', () => req.destroy(new Error('no reply')));
      req.on('error', reject);
      const chunk = Buffer.alloc(1024 * 1024, 0x62);
      let sent = 0;
      const pump = () => {
        while (sent <= MAX_PAYLOAD_BYTES) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    expect(status).toBe(413);
    expect(JSON.parse(body)).toMatchObject({ error: { code: 'PAYLOAD_TOO_LARGE' } });
    expect(calls).toHaveLength(0);
  });
});
