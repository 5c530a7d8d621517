/**
 * Local mode's EventBridge: a wire-level PutEvents endpoint (AWS JSON 1.1, what the real
 * `@aws-sdk/client-eventbridge` sends) that keeps every event of its bus and hands them to
 * in-process subscribers, as rules on a bus would.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface BusEvent {
  id: string;
  source: string;
  detailType: string;
  detail: unknown;
  time: string;
  resources: string[];
}

export type Subscriber = (event: BusEvent) => void;

/** PutEvents limits AWS enforces. */
const MAX_ENTRIES = 10;
const MAX_ENTRY_BYTES = 256 * 1024;

interface PutEventsEntry {
  Source?: string;
  DetailType?: string;
  Detail?: string;
  EventBusName?: string;
  Resources?: string[];
  Time?: number;
}

export interface LocalEventBus {
  url: string;
  busName: string;
  events(): BusEvent[];
  subscribe(subscriber: Subscriber): () => void;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
  res.end(JSON.stringify(body));
}

export async function startLocalEventBus(busName: string, port = 0): Promise<LocalEventBus> {
  const log: BusEvent[] = [];
  const subscribers = new Set<Subscriber>();

  const server = createServer((req, res) => {
    void (async () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const body = await readBody(req);
      if (target !== 'AWSEvents.PutEvents') {
        reply(res, 400, { __type: 'UnknownOperationException', message: `${target} is not served locally` });
        return;
      }
      const { Entries: entries = [] } = JSON.parse(body || '{}') as { Entries?: PutEventsEntry[] };
      if (entries.length === 0 || entries.length > MAX_ENTRIES) {
        reply(res, 400, {
          __type: 'ValidationException',
          message: `PutEvents takes 1 to ${MAX_ENTRIES} entries`,
        });
        return;
      }
      let failed = 0;
      const results = entries.map((entry) => {
        if ((entry.EventBusName ?? 'default') !== busName) {
          failed += 1;
          return {
            ErrorCode: 'NotAuthorizedForSourceException',
            ErrorMessage: `no event bus named ${entry.EventBusName}`,
          };
        }
        if (
          Buffer.byteLength(JSON.stringify(entry)) > MAX_ENTRY_BYTES ||
          !entry.Source ||
          !entry.DetailType
        ) {
          failed += 1;
          return {
            ErrorCode: 'MalformedDetail',
            ErrorMessage: 'entry too large or missing Source/DetailType',
          };
        }
        let detail: unknown;
        try {
          detail = JSON.parse(entry.Detail ?? '{}');
        } catch {
          failed += 1;
          return { ErrorCode: 'MalformedDetail', ErrorMessage: 'Detail is not valid JSON' };
        }
        const event: BusEvent = {
          id: randomUUID(),
          source: entry.Source,
          detailType: entry.DetailType,
          detail,
          time: new Date((entry.Time ?? Date.now() / 1000) * 1000).toISOString(),
          resources: entry.Resources ?? [],
        };
        log.push(event);
        for (const subscriber of subscribers) {
          try {
            subscriber(event);
          } catch {
            // A subscriber's failure is its own, as a rule target's is in AWS.
          }
        }
        return { EventId: event.id };
      });
      reply(res, 200, { FailedEntryCount: failed, Entries: results });
    })().catch((error: unknown) => reply(res, 500, { __type: 'InternalException', message: String(error) }));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    busName,
    events: () => [...log],
    subscribe(subscriber) {
      subscribers.add(subscriber);
      return () => subscribers.delete(subscriber);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
