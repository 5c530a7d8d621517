import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { SQSEvent } from 'aws-lambda';
import { buildStores, clientsFromEnv, readRuntimeSettings } from '../composition';
import { failDeadLetteredJob } from '../dlq/dead-letters';
import { METRIC, MetricUnit, makeLogger, makeMetrics } from '../observability';

const settings = readRuntimeSettings(process.env);
const { store } = buildStores(settings, clientsFromEnv(process.env));
const logger = makeLogger('kiln-dlq');
const metrics = makeMetrics('kiln-dlq');

export const handler = middy<SQSEvent>()
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics))
  .handler(async (event) => {
    let failed = 0;
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
      if (outcome.result === 'failed') failed += 1;
      logger.warn('dead-lettered job', { ...outcome, queue: record.eventSourceARN });
    }
    metrics.addMetric(METRIC.jobsFailed, MetricUnit.Count, failed);
  });
