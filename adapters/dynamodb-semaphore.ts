import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';

/** Attributes of a semaphore item that are not holders. */
const RESERVED = new Set(['name', 'holderCount']);

export function holdersOf(item: Record<string, unknown> | undefined): string[] {
  return item ? Object.keys(item).filter((k) => !RESERVED.has(k)) : [];
}

/**
 * A counting semaphore in one DynamoDB item: `holderCount` plus one attribute per holder, each
 * change a single conditional update (so it runs on dynalite too). The register workflow takes
 * import slots with the same item layout from Step Functions; this is the TypeScript side, used for
 * fleet-wide caps such as concurrent auto rebuilds.
 */
export class DynamoSemaphore {
  constructor(
    private readonly documents: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  private async ensure(name: string): Promise<void> {
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { name, holderCount: 0 },
          ConditionExpression: 'attribute_not_exists(#n)',
          ExpressionAttributeNames: { '#n': 'name' },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /** True if `holder` now holds a slot (also when it already did). */
  async acquire(name: string, holder: string, limit: number, at: Date): Promise<boolean> {
    await this.ensure(name);
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { name },
          UpdateExpression: 'SET #h = :at ADD holderCount :one',
          ConditionExpression: 'holderCount < :limit AND attribute_not_exists(#h)',
          ExpressionAttributeNames: { '#h': holder },
          ExpressionAttributeValues: { ':at': at.toISOString(), ':one': 1, ':limit': limit },
        }),
      );
      return true;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      return (await this.read(name)).holders.includes(holder);
    }
  }

  /** True if `holder` held a slot and gave it back. */
  async release(name: string, holder: string): Promise<boolean> {
    try {
      await this.documents.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { name },
          UpdateExpression: 'REMOVE #h ADD holderCount :minus',
          ConditionExpression: 'attribute_exists(#h)',
          ExpressionAttributeNames: { '#h': holder },
          ExpressionAttributeValues: { ':minus': -1 },
        }),
      );
      return true;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      return false;
    }
  }

  async read(name: string): Promise<{ count: number; holders: string[] }> {
    const out = await this.documents.send(
      new GetCommand({ TableName: this.tableName, Key: { name }, ConsistentRead: true }),
    );
    return { count: Number(out.Item?.holderCount ?? 0), holders: holdersOf(out.Item) };
  }
}
