import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { makeClients } from '../../adapters/clients';
import type { KilnConfigInput } from '../../core/config';
import { queueKey } from '../../infra/definitions';
import { KilnClient } from '../../local/client';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../local/stack';

/** Short leases and fast timers so recovery paths run in seconds. */
export const FAST_CONFIG: KilnConfigInput = {
  leaseSeconds: 4,
  heartbeatSeconds: 1,
  dispatchGraceSeconds: 1,
  leaseGraceSeconds: 1,
  maxAttempts: 3,
};

export interface E2EStack extends LocalStack {
  alice: KilnClient;
  bob: KilnClient;
  clients: ReturnType<typeof makeClients>;
  /** Visible + in-flight messages of a pool/priority queue. */
  queueDepth(pool: string, priority?: 'high' | 'normal' | 'low'): Promise<number>;
}

export async function startE2EStack(options: LocalStackOptions = {}): Promise<E2EStack> {
  const stack = await startLocalStack({
    agentsPerPool: 0,
    sweepIntervalMs: 300,
    ...options,
    config: { ...FAST_CONFIG, ...options.config },
    agentEnv: { KILN_POLL_SECONDS: '2', KILN_LOG_FLUSH_MS: '100', ...options.agentEnv },
  });
  const clients = makeClients({ region: stack.state.region, endpoints: stack.state.endpoints });
  return Object.assign(stack, {
    alice: new KilnClient(stack.state.apiUrl, stack.state.tokens.alice),
    bob: new KilnClient(stack.state.apiUrl, stack.state.tokens.bob),
    clients,
    async queueDepth(pool: string, priority: 'high' | 'normal' | 'low' = 'normal') {
      const out = await clients.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: stack.state.queueUrls[queueKey(pool, priority)],
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      return (
        Number(out.Attributes?.ApproximateNumberOfMessages ?? 0) +
        Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
      );
    },
  });
}

/** Polls `check` until it returns a value other than undefined, or throws at the deadline. */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  deadlineMs = 30_000,
  intervalMs = 50,
): Promise<T> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Process state from /proc, or undefined once the process is gone; a zombie ('Z') has already died. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/** True while any live (non-zombie) process belongs to the group led by `pgid`. */
export function groupAlive(pgid: number): boolean {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') return true;
    } catch {
      // exited while we looked
    }
  }
  return false;
}

export function processAlive(pid: number): boolean {
  const state = procState(pid);
  return state !== undefined && state !== 'Z';
}

export const X86 = 'general-x86_64';
export const ARM = 'general-aarch64';

/** A script job for the x86 pool. */
export function scriptJob(script: string, extra: Record<string, unknown> = {}) {
  return {
    arch: 'x86_64',
    format: 'raw',
    recipe: { builder: 'script', script, artifact: 'image.raw' },
    ...extra,
  };
}
