import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoSemaphore, holdersOf } from '../../adapters/dynamodb-semaphore';
import type { ExecutionStatus } from '../../core/registration';

export interface SlotReaperDeps {
  documents: DynamoDBDocumentClient;
  tableName: string;
  statusOf: (executionArn: string) => Promise<ExecutionStatus>;
}

/** Import-slot holders are attributes named by the holding execution's ARN (infra/register/workflow.ts). */
function executionHolders(item: Record<string, unknown>): string[] {
  return holdersOf(item).filter((k) => k.startsWith('arn:') && k.includes(':execution:'));
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
  for (const holder of executionHolders(out.Item)) {
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
export function readSemaphore(documents: DynamoDBDocumentClient, tableName: string, semaphore: string) {
  return new DynamoSemaphore(documents, tableName).read(semaphore);
}
