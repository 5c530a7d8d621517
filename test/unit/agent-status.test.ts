import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoAgentStatus, type ScaleInProtection } from '../../adapters/agent-status';
import type { AgentStatus } from '../../agent/ports';

/** The document client's `send`, recording each PutItem in order; a put can be held back. */
function fakeDocuments(events: string[]) {
  const items: Array<Record<string, unknown>> = [];
  const held: Array<() => void> = [];
  let holdNext = false;
  const documents = {
    async send(command: { input: { Item?: Record<string, unknown> } }) {
      const item = command.input.Item ?? {};
      if (holdNext) {
        holdNext = false;
        await new Promise<void>((r) => held.push(r));
      }
      items.push(item);
      events.push(`put busy=${item.busySlots}`);
      return {};
    },
  };
  return {
    documents: documents as unknown as DynamoDBDocumentClient,
    items,
    holdNextPut: () => {
      holdNext = true;
    },
    release: () => held.shift()?.(),
  };
}

class FakeProtection implements ScaleInProtection {
  failNext = 0;
  calls: boolean[] = [];
  constructor(private readonly events: string[]) {}
  async setProtected(p: boolean) {
    this.events.push(`protect ${p}`);
    if (this.failNext > 0) {
      this.failNext -= 1;
      throw new Error('ValidationError');
    }
    this.calls.push(p);
  }
}

const T0 = Date.parse('2030-01-01T00:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const status = (busySlots: number, s: number, extra: Partial<AgentStatus> = {}): AgentStatus => ({
  agentId: 'i-1',
  pool: 'p',
  busySlots,
  slots: 2,
  at: at(s),
  accepting: true,
  jobIds: [],
  ...(busySlots > 0 ? { lastBusyAt: at(s) } : {}),
  ...extra,
});

describe('DynamoAgentStatus (the agent status reporter)', () => {
  it('protects the instance before the record says busy, and unprotects it after the record says idle', async () => {
    const events: string[] = [];
    const docs = fakeDocuments(events);
    const protection = new FakeProtection(events);
    const reporter = new DynamoAgentStatus({ documents: docs.documents, tableName: 't', protection });
    await reporter.report(status(0, 0)); // start-up: a restarted agent clears stale protection
    await reporter.report(status(1, 1)); // claim
    await reporter.report(status(1, 2)); // heartbeat
    await reporter.report(status(2, 3)); // second claim
    await reporter.report(status(1, 4)); // one finished
    await reporter.report(status(0, 5)); // idle
    expect(events).toEqual([
      'put busy=0',
      'protect false',
      'protect true',
      'put busy=1',
      'put busy=1',
      'put busy=2',
      'put busy=1',
      'put busy=0',
      'protect false',
    ]);
    expect(docs.items.at(-1)).toMatchObject({
      pool: 'p',
      agentId: 'i-1',
      busySlots: 0,
      slots: 2,
      at: at(5),
      accepting: true,
      expiresAtEpoch: Math.floor(T0 / 1000) + 5 + 86_400,
    });
  });

  it('counts each claim (busy slots going up) in the record, and forgets claims past the history window', async () => {
    const events: string[] = [];
    const docs = fakeDocuments(events);
    const reporter = new DynamoAgentStatus({
      documents: docs.documents,
      tableName: 't',
      claimHistorySeconds: 60,
    });
    await reporter.report(status(1, 0));
    await reporter.report(status(2, 1));
    await reporter.report(status(0, 10));
    await reporter.report(status(1, 30));
    expect(docs.items.at(-1)?.recentClaims).toEqual([T0, T0 + 1000, T0 + 30_000]);
    await reporter.report(status(0, 65));
    expect(docs.items.at(-1)?.recentClaims).toEqual([T0 + 30_000]);
  });

  it('writes the status even when protection fails, and retries the protection on the next report', async () => {
    const events: string[] = [];
    const docs = fakeDocuments(events);
    const protection = new FakeProtection(events);
    const errors: boolean[] = [];
    const reporter = new DynamoAgentStatus({
      documents: docs.documents,
      tableName: 't',
      protection,
      onProtectionError: (_e, wanted) => errors.push(wanted),
    });
    protection.failNext = 1;
    await reporter.report(status(1, 0));
    await reporter.report(status(1, 1));
    expect(events).toEqual(['protect true', 'put busy=1', 'protect true', 'put busy=1']);
    expect(errors).toEqual([true]);
    expect(protection.calls).toEqual([true]);
  });

  it('leaves protection alone once the agent stops taking work (its instance is going away)', async () => {
    const events: string[] = [];
    const docs = fakeDocuments(events);
    const protection = new FakeProtection(events);
    const reporter = new DynamoAgentStatus({ documents: docs.documents, tableName: 't', protection });
    await reporter.report(status(1, 0));
    await reporter.report(status(0, 1, { accepting: false }));
    expect(events).toEqual(['protect true', 'put busy=1', 'put busy=0']);
    expect(docs.items.at(-1)?.accepting).toBe(false);
  });

  it('applies reports in the order the agent made them, even when a write is slow', async () => {
    const events: string[] = [];
    const docs = fakeDocuments(events);
    const reporter = new DynamoAgentStatus({ documents: docs.documents, tableName: 't' });
    docs.holdNextPut();
    const first = reporter.report(status(1, 0));
    const second = reporter.report(status(0, 1));
    await new Promise((r) => setTimeout(r, 20));
    expect(events).toEqual([]);
    docs.release();
    await Promise.all([first, second]);
    expect(docs.items.map((i) => i.busySlots)).toEqual([1, 0]);
  });
});
