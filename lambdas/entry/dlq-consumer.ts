import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { SQSEvent } from 'aws-lambda';
import { buildStores, clientsFromEnv, readRuntimeSettings } from '../composition';
import { failDeadLetteredJob } from '../dlq/dead-letters';
import { makeLogger } from '../observability';

const settings = readRuntimeSettings(process.env);
const { store } = buildStores(settings, clientsFromEnv(process.env));
const logger = makeLogger('kiln-dlq');

export const handler = middy<SQSEvent>()
  .use(injectLambdaContext(logger))
  .handler(async (event) => {
    for (const record of event.Records) {
      const outcome = await failDeadLetteredJob(
        store,
        {
          body: record.body,
          receiveCount: Number(record.attributes.ApproximateReceiveCount ?? '0'),
          queueArn: record.eventSourceARN,
        },
        new Date(),
      );
      logger.warn('dead-lettered job', { ...outcome, queue: record.eventSourceARN });
    }
  });
