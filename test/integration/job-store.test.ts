import { afterAll, beforeAll, describe } from 'vitest';
import { DynamoJobStore } from '../../adapters/dynamodb-job-store';
import { jobStoreContract } from '../contract/job-store.contract';
import { startTestStack, type TestStack } from '../support/emulators';
import { MemoryJobStore } from '../support/memory-job-store';

describe('DynamoJobStore on dynalite', () => {
  let stack: TestStack | undefined;

  beforeAll(async () => {
    stack = await startTestStack({ prefix: 'storetest' });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  jobStoreContract('DynamoJobStore', async () => {
    if (!stack) throw new Error('the test stack did not start');
    return {
      store: new DynamoJobStore({
        documents: stack.clients.documents,
        tableName: stack.resources.tableName,
        recordRetentionDays: 14,
      }),
    };
  });
});

describe('MemoryJobStore', () => {
  jobStoreContract('MemoryJobStore', async () => ({ store: new MemoryJobStore() }));
});
