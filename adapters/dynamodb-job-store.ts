import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  type QueryCommandOutput,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { ConflictError, LeaseLostError, ValidationError } from '../core/errors';
import type { Job, JobStatus, Registration } from '../core/job';
import { isTerminal, LEASED_STATUSES, type TransitionPlan } from '../core/transitions';
import { JOBS_TABLE } from '../infra/definitions';
import type { ApiJobStore, CreateResult, ListQuery, Page } from '../lambdas/api/ports';

const JOBS_TABLE_INDEX_PARTITION: Readonly<Record<string, string>> = Object.fromEntries(
  JOBS_TABLE.globalSecondaryIndexes.map((i) => [i.indexName, i.partitionKey.name]),
);

/** Attributes the table keeps beside the job itself, for its indexes and TTL. */
interface DerivedAttributes {
  createdKey: string;
  ownerStatus: string;
  expiresAtEpoch?: number;
}

const DERIVED: ReadonlyArray<keyof DerivedAttributes> = ['createdKey', 'ownerStatus', 'expiresAtEpoch'];

export interface DynamoJobStoreOptions {
  documents: DynamoDBDocumentClient;
  tableName: string;
  /** Finished jobs are removed by TTL this many days after they finish. */
  recordRetentionDays: number;
}

function toJob(item: Record<string, unknown> | undefined): Job | undefined {
  if (!item) return undefined;
  const job = { ...item };
  for (const key of DERIVED) delete job[key];
  return job as unknown as Job;
}

function encodeToken(key: Record<string, unknown> | undefined): string | undefined {
  return key ? Buffer.from(JSON.stringify(key)).toString('base64url') : undefined;
}

function decodeToken(token: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through to the error below
  }
  throw new ValidationError('nextToken: not a token this API returned; start again without it');
}

/**
 * The jobs table. Every state change is one UpdateItem conditioned on the current status (and,
 * for a leased job, on the lease holder), so two writers can never both win.
 */
export class DynamoJobStore implements ApiJobStore {
  private readonly documents: DynamoDBDocumentClient;
  private readonly tableName: string;
  private readonly retentionSeconds: number;

  constructor(options: DynamoJobStoreOptions) {
    this.documents = options.documents;
    this.tableName = options.tableName;
    this.retentionSeconds = options.recordRetentionDays * 24 * 3600;
  }

  async create(job: Job): Promise<CreateResult> {
    const item: Job & DerivedAttributes = {
      ...job,
      createdKey: `${job.createdAt}#${job.jobId}`,
      ownerStatus: `${job.owner}#${job.status}`,
    };
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: 'attribute_not_exists(jobId)',
        }),
      );
      return { created: true, job };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const existing = await this.get(job.jobId);
      if (!existing)
        throw new ConflictError(`job ${job.jobId} is being written concurrently; retry`, { cause: error });
      return { created: false, job: existing };
    }
  }

  async get(jobId: string): Promise<Job | undefined> {
    const out = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: { jobId }, ConsistentRead: true }),
    );
    return toJob(out.Item);
  }

  async listByOwner(owner: string, query: ListQuery): Promise<Page<Job>> {
    const input: QueryCommandInput = query.status
      ? {
          TableName: this.tableName,
          IndexName: 'byOwnerStatus',
          KeyConditionExpression: 'ownerStatus = :k',
          ExpressionAttributeValues: { ':k': `${owner}#${query.status}` },
        }
      : {
          TableName: this.tableName,
          IndexName: 'byOwner',
          KeyConditionExpression: '#owner = :k',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':k': owner },
        };
    return this.query({ ...input, ScanIndexForward: false }, query.limit, query.nextToken);
  }

  /** Jobs in one status, oldest change first (for the sweeper). */
  async listByStatus(status: JobStatus, limit: number, nextToken?: string): Promise<Page<Job>> {
    return this.query(
      {
        TableName: this.tableName,
        IndexName: 'byStatus',
        KeyConditionExpression: '#status = :s',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':s': status },
        ScanIndexForward: true,
      },
      limit,
      nextToken,
    );
  }

  private async query(input: QueryCommandInput, limit: number, nextToken?: string): Promise<Page<Job>> {
    const startKey = nextToken ? decodeToken(nextToken) : undefined;
    if (startKey) {
      // A token only continues the listing it came from: its partition must be the one queried.
      const [partition] = Object.values(input.ExpressionAttributeValues ?? {});
      const keyName = input.IndexName ? JOBS_TABLE_INDEX_PARTITION[input.IndexName] : undefined;
      if (!keyName || startKey[keyName] !== partition) {
        throw new ValidationError('nextToken: not a token of this listing; start again without it');
      }
    }
    let out: QueryCommandOutput;
    try {
      out = await this.documents.send(
        new QueryCommand({ ...input, Limit: limit, ...(startKey ? { ExclusiveStartKey: startKey } : {}) }),
      );
    } catch (error) {
      if (startKey && (error as { name?: string }).name === 'ValidationException') {
        throw new ValidationError('nextToken: not a token this API returned; start again without it', {
          cause: error,
        });
      }
      throw error;
    }
    const items = (out.Items ?? []).map((i) => toJob(i) as Job);
    const token = encodeToken(out.LastEvaluatedKey);
    return token ? { items, nextToken: token } : { items };
  }

  async apply(plan: TransitionPlan): Promise<Job> {
    const names: Record<string, string> = { '#status': 'status', '#history': 'history' };
    const values: Record<string, unknown> = { ':from': plan.from, ':entry': [plan.history] };
    const sets: string[] = ['#history = list_append(#history, :entry)'];
    const fields: Record<string, unknown> = {
      ...plan.set,
      ownerStatus: `${plan.owner}#${plan.to}`,
    };
    if (isTerminal(plan.to) && plan.set.finishedAt) {
      fields.expiresAtEpoch = Math.floor(Date.parse(plan.set.finishedAt) / 1000) + this.retentionSeconds;
    }
    let i = 0;
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      const n = `#f${i}`;
      const v = `:v${i}`;
      i += 1;
      names[n] = key;
      values[v] = value;
      sets.push(`${n} = ${v}`);
    }
    const removes = plan.remove.map((key, j) => {
      names[`#r${j}`] = key;
      return `#r${j}`;
    });
    let condition = '#status = :from';
    if (plan.expectHolder) {
      names['#lease'] = 'lease';
      names['#holder'] = 'holder';
      values[':holder'] = plan.expectHolder;
      condition += ' AND #lease.#holder = :holder';
    }
    const refusal = plan.expectHolder
      ? `job ${plan.jobId}: ${plan.from} → ${plan.to} refused, the job is no longer ${plan.from} under lease of ${plan.expectHolder}`
      : `job ${plan.jobId}: ${plan.from} → ${plan.to} refused, the job is no longer ${plan.from}`;
    return this.conditionalUpdate(
      {
        Key: { jobId: plan.jobId },
        UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
        ConditionExpression: `attribute_exists(jobId) AND ${condition}`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
      (cause) =>
        plan.expectHolder ? new LeaseLostError(refusal, { cause }) : new ConflictError(refusal, { cause }),
    );
  }

  async markDispatched(jobId: string, at: Date): Promise<void> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { jobId },
          UpdateExpression: 'SET dispatchedAt = :at',
          ConditionExpression: '#status = :queued',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':at': at.toISOString(), ':queued': 'QUEUED' },
        }),
      );
    } catch (error) {
      // Already claimed or cancelled: the dispatch mark no longer matters.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  async requestCancel(jobId: string, at: Date): Promise<Job> {
    return this.conditionalUpdate(
      {
        Key: { jobId },
        UpdateExpression: 'SET cancelRequested = :t, updatedAt = :at',
        ConditionExpression: '#status IN (:s0, :s1)',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':t': true,
          ':at': at.toISOString(),
          ':s0': LEASED_STATUSES[0],
          ':s1': LEASED_STATUSES[1],
        },
      },
      (cause) => new ConflictError(`job ${jobId} is not running; nothing to cancel`, { cause }),
    );
  }

  /** One conditional UpdateItem returning the new job; a failed condition becomes `refused(cause)`. */
  private async conditionalUpdate(
    input: Omit<UpdateCommandInput, 'TableName' | 'ReturnValues'>,
    refused: (cause: unknown) => Error,
  ): Promise<Job> {
    try {
      const out = await this.documents.send(
        new UpdateCommand({ ...input, TableName: this.tableName, ReturnValues: 'ALL_NEW' }),
      );
      return toJob(out.Attributes) as Job;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw refused(error);
      throw error;
    }
  }

  /**
   * Hands a REGISTERING job to a new register execution, if `from` is still the execution it
   * names (so two sweepers cannot both start one).
   */
  async replaceRegistration(
    jobId: string,
    from: string | undefined,
    to: Registration,
    at: Date,
  ): Promise<Job> {
    return this.conditionalUpdate(
      {
        Key: { jobId },
        UpdateExpression: 'SET registration = :to, updatedAt = :at',
        ConditionExpression: from
          ? '#status = :registering AND registration.executionName = :from'
          : '#status = :registering AND attribute_not_exists(registration)',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':to': to,
          ':at': at.toISOString(),
          ':registering': 'REGISTERING',
          ...(from ? { ':from': from } : {}),
        },
      },
      (cause) =>
        new ConflictError(`job ${jobId} is no longer registering under ${from ?? 'no execution'}`, { cause }),
    );
  }

  /** Extends the lease of `holder`; returns the job so the agent sees a cancel request. */
  async renewLease(jobId: string, holder: string, expiresAt: number): Promise<Job> {
    return this.conditionalUpdate(
      {
        Key: { jobId },
        UpdateExpression: 'SET #lease.expiresAt = :exp',
        ConditionExpression: '#status IN (:s0, :s1) AND #lease.#holder = :holder',
        ExpressionAttributeNames: { '#status': 'status', '#lease': 'lease', '#holder': 'holder' },
        ExpressionAttributeValues: {
          ':exp': expiresAt,
          ':holder': holder,
          ':s0': LEASED_STATUSES[0],
          ':s1': LEASED_STATUSES[1],
        },
      },
      (cause) => new LeaseLostError(`job ${jobId}: lease of ${holder} is gone`, { cause }),
    );
  }
}
