/** The loopback-only HTTP server of a Query-protocol simulator, and writing its XML answers. */
import { randomUUID } from 'node:crypto';
import { createServer, type RequestListener, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LoopbackServerOptions {
  /** Port on 127.0.0.1; 0 (default) lets the OS choose. */
  port?: number;
  /** Runs once before the server closes. */
  beforeClose?: () => Promise<void>;
}

export interface LoopbackServer {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Idempotent: closes the server and every open connection. */
  stop(): Promise<void>;
}

export async function startLoopbackServer(
  listener: RequestListener,
  opts: LoopbackServerOptions = {},
): Promise<LoopbackServer> {
  const server = createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const close = () =>
    new Promise<void>((resolve, reject) => {
      server.close((err) => (err ? reject(err) : resolve()));
      // SDK clients keep sockets alive; close() alone would wait for them.
      server.closeAllConnections();
    });
  let stopping: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    stop() {
      stopping ??= opts.beforeClose ? opts.beforeClose().then(close) : close();
      return stopping;
    },
  };
}

export interface XmlAnswer {
  status: number;
  xml: string;
}

/**
 * Answers one request under a fresh request id: `handle`'s XML with 200, or, when it throws,
 * `fail`'s status and error XML.
 */
export async function answerQuery(
  res: ServerResponse,
  handle: (requestId: string) => Promise<string>,
  fail: (err: unknown, requestId: string) => XmlAnswer,
): Promise<void> {
  const requestId = randomUUID();
  let answer: XmlAnswer;
  try {
    answer = { status: 200, xml: await handle(requestId) };
  } catch (err) {
    answer = fail(err, requestId);
  }
  const body = Buffer.from(answer.xml, 'utf8');
  res.writeHead(answer.status, {
    'content-type': 'text/xml;charset=UTF-8',
    'content-length': body.byteLength,
    'x-amzn-requestid': requestId,
  });
  res.end(body);
}
