/**
 * The instance metadata service (IMDSv2) of the simulator's instances, one per instance under
 * `/imds/<instance-id>`: PUT /latest/api/token for a session token, then GET
 * /latest/meta-data/<path> carrying it in `X-aws-ec2-metadata-token`. As on EC2, a request
 * without a valid token is refused with 401 and an unknown path is 404.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AutoScalingSimulator } from './simulator';

export const IMDS_PREFIX = '/imds/';

export class InstanceMetadataService {
  private readonly tokens = new Map<string, { instanceId: string; expiresAt: number }>();

  constructor(private readonly sim: AutoScalingSimulator) {}

  handle(req: IncomingMessage, res: ServerResponse, path: string): void {
    const { status, body, headers } = this.answer(req, path);
    const bytes = Buffer.from(body, 'utf8');
    res.writeHead(status, { 'content-type': 'text/plain', 'content-length': bytes.byteLength, ...headers });
    res.end(bytes);
  }

  private answer(req: IncomingMessage, path: string): Reply {
    const match = /^\/imds\/([^/]+)(\/.*)$/.exec(path);
    if (!match) return reply(404, 'Not Found');
    const instanceId = match[1] as string;
    const rest = match[2] as string;
    if (rest === '/latest/api/token') {
      if (req.method !== 'PUT') return reply(405, 'Method Not Allowed');
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21_600) return reply(400, 'Bad Request');
      const token = randomBytes(32).toString('base64url');
      this.tokens.set(token, { instanceId, expiresAt: Date.now() + ttl * 1000 });
      return reply(200, token, { 'x-aws-ec2-metadata-token-ttl-seconds': String(ttl) });
    }
    if (!rest.startsWith('/latest/meta-data/')) return reply(404, 'Not Found');
    if (req.method !== 'GET') return reply(405, 'Method Not Allowed');
    const token = this.tokens.get(String(req.headers['x-aws-ec2-metadata-token'] ?? ''));
    if (!token || token.instanceId !== instanceId || token.expiresAt < Date.now()) {
      return reply(401, 'Unauthorized');
    }
    const value = this.sim.metadata(instanceId, rest.slice('/latest/meta-data/'.length));
    return value === undefined ? reply(404, 'Not Found') : reply(200, value);
  }
}

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string>;
}

function reply(status: number, body: string, headers: Record<string, string> = {}): Reply {
  return { status, body, headers };
}
