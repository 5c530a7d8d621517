import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ExecutionStatus } from '../../core/registration';

export interface SlotReaperDeps {
  documents: DynamoDBDocumentClient;
  tableName: string;
  statusOf: (executionArn: string) => Promise<ExecutionStatus>;
}

/** Holders are attributes named by the holding execution's ARN (see infra/register/workflow.ts). */
function holdersOf(item: Record<string, unknown>): string[] {
  return Object.keys(item).filter((k) => k.startsWith('arn:') && k.includes(':execution:'));
}

/**
 * Gives back the slots of executions that ended without releasing them (stopped, timed out, or
 * failed outside a Catch). A RUNNING holder keeps its slot, however long its import takes.
 */
export async function reapSlots(deps: SlotReaperDeps, semaphore: string): Promise<string[]> {
  const out = await deps.documents.send(
    new GetCommand({ TableName: deps.tableName, Key: { name: semaphore }, ConsistentRead: true }),
  );
  if (!out.Item) return [];
  const reclaimed: string[] = [];
  for (const holder of holdersOf(out.Item)) {
    const status = await deps.statusOf(holder);
    if (status === 'RUNNING' || status === 'PENDING_REDRIVE') continue;
    try {
      await deps.documents.send(
        new UpdateCommand({
          TableName: deps.tableName,
          Key: { name: semaphore },
          UpdateExpression: 'REMOVE #h ADD holderCount :minus',
          ConditionExpression: 'attribute_exists(#h)',
          ExpressionAttributeNames: { '#h': holder },
          ExpressionAttributeValues: { ':minus': -1 },
        }),
      );
      reclaimed.push(holder);
    } catch (error) {
      // Released by its execution meanwhile.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }
  return reclaimed;
}

/** Current holders and count, for tests and the pools view. */
export async function readSemaphore(
  documents: DynamoDBDocumentClient,
  tableName: string,
  semaphore: string,
): Promise<{ count: number; holders: string[] }> {
  const out = await documents.send(
    new GetCommand({ TableName: tableName, Key: { name: semaphore }, ConsistentRead: true }),
  );
  return { count: Number(out.Item?.holderCount ?? 0), holders: out.Item ? holdersOf(out.Item) : [] };
}
