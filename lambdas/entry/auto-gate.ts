import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { buildStores, clientsFromEnv, readRuntimeSettings } from '../composition';
import { runAutoGate } from '../gate/auto-gate';
import { makeLogger } from '../observability';

const settings = readRuntimeSettings(process.env);
const { autoGate } = buildStores(settings, clientsFromEnv(process.env));
const logger = makeLogger('kiln-auto-gate');

export const handler = middy()
  .use(injectLambdaContext(logger))
  .handler(async () => {
    if (!autoGate) throw new Error('KILN_SLOTS_TABLE_NAME is not set: the auto gate has no semaphore');
    const report = await runAutoGate(autoGate, new Date());
    logger.info('auto gate ran', { ...report });
    return report;
  });
