/**
 * The agents table (AGENTS_TABLE in infra/definitions.ts): each agent writes its status record
 * there, and the fleet scaler reads a pool's records. The writer also holds the instance's
 * scale-in protection while the agent has a job, so Auto Scaling itself can never pick a busy
 * instance.
 */
import { type DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { AgentStatus, AgentStatusReporter } from '../agent/ports';
import { AGENTS_TABLE } from '../infra/definitions';
import type { AgentRecord, AgentRecords } from '../lambdas/scaler/ports';

/** The agent's own instance's scale-in protection (adapters/autoscaling.ts OwnInstanceScaling). */
export interface ScaleInProtection {
  setProtected(protectedFromScaleIn: boolean): Promise<void>;
}

export interface AgentStatusWriterOptions {
  documents: DynamoDBDocumentClient;
  tableName: string;
  /** Absent when the agent is not in an Auto Scaling group (a fixed local fleet). */
  protection?: ScaleInProtection;
  /** Told about a failed protection change; the status is written anyway and the change retried on the next report. */
  onProtectionError?: (error: unknown, wanted: boolean) => void;
  /** Claims older than this are dropped from the record. @default 600 */
  claimHistorySeconds?: number;
  /** At most this many claims are kept. @default 500 */
  maxClaims?: number;
  /** The record expires (DynamoDB TTL) this long after the agent's last report. @default 86400 */
  recordTtlSeconds?: number;
}

/**
 * Implements the agent's AgentStatusReporter. Reports are applied one at a time, in the order the
 * agent made them, so an older report can never overwrite a newer one.
 */
export class DynamoAgentStatus implements AgentStatusReporter {
  private chain: Promise<void> = Promise.resolve();
  private previousBusy = 0;
  /** Last protection state the group accepted; unknown until the first report sets it. */
  private protectedNow: boolean | undefined;
  private claims: number[] = [];

  constructor(private readonly options: AgentStatusWriterOptions) {}

  report(status: AgentStatus): Promise<void> {
    const run = this.chain.then(() => this.apply(status));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async apply(status: AgentStatus): Promise<void> {
    const at = Date.parse(status.at);
    // Every claim is reported as it happens (busy slots go up), so the increments are the claims.
    for (let n = status.busySlots - this.previousBusy; n > 0; n -= 1) this.claims.push(at);
    this.previousBusy = status.busySlots;
    const keepAfter = at - (this.options.claimHistorySeconds ?? 600) * 1000;
    this.claims = this.claims.filter((c) => c > keepAfter).slice(-(this.options.maxClaims ?? 500));

    // Protect before the record says busy; unprotect after it says idle. A stopping agent's
    // instance is on its way out and refuses protection changes.
    const wanted = status.busySlots > 0;
    if (wanted) await this.protect(status, true);
    await this.write(status, at);
    if (!wanted) await this.protect(status, false);
  }

  private async protect(status: AgentStatus, wanted: boolean): Promise<void> {
    const { protection } = this.options;
    if (!protection || !status.accepting || this.protectedNow === wanted) return;
    try {
      await protection.setProtected(wanted);
      this.protectedNow = wanted;
    } catch (error) {
      this.options.onProtectionError?.(error, wanted);
    }
  }

  private async write(status: AgentStatus, at: number): Promise<void> {
    const record: AgentRecord & { expiresAtEpoch: number } = {
      agentId: status.agentId,
      pool: status.pool,
      busySlots: status.busySlots,
      slots: status.slots,
      ...(status.lastBusyAt ? { lastBusyAt: status.lastBusyAt } : {}),
      at: status.at,
      accepting: status.accepting,
      recentClaims: [...this.claims],
      expiresAtEpoch: Math.floor(at / 1000) + (this.options.recordTtlSeconds ?? 86_400),
    };
    await this.options.documents.send(new PutCommand({ TableName: this.options.tableName, Item: record }));
  }
}

export class DynamoAgentRecords implements AgentRecords {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async list(pool: string): Promise<AgentRecord[]> {
    const records: AgentRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.documents.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: '#pool = :pool',
          ExpressionAttributeNames: { '#pool': AGENTS_TABLE.partitionKey.name },
          ExpressionAttributeValues: { ':pool': pool },
          ...(startKey ? { ExclusiveStartKey: startKey } : {}),
        }),
      );
      for (const item of out.Items ?? []) records.push(recordOf(item));
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return records;
  }
}

function recordOf(item: Record<string, unknown>): AgentRecord {
  const claims = Array.isArray(item.recentClaims) ? item.recentClaims.map(Number) : [];
  return {
    agentId: String(item.agentId),
    pool: String(item.pool),
    busySlots: Number(item.busySlots ?? 0),
    slots: Number(item.slots ?? 1),
    ...(typeof item.lastBusyAt === 'string' ? { lastBusyAt: item.lastBusyAt } : {}),
    at: String(item.at),
    accepting: item.accepting !== false,
    recentClaims: claims.filter((c) => Number.isFinite(c)),
  };
}
