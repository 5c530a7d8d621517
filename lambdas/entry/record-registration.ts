import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { buildStores, clientsFromEnv, readRuntimeSettings } from '../composition';
import { METRIC, MetricUnit, makeLogger, makeMetrics } from '../observability';
import { type RecordEvent, recordRegistration } from '../register/record';

const settings = readRuntimeSettings(process.env);
const { store } = buildStores(settings, clientsFromEnv(process.env));
const logger = makeLogger('kiln-register');
const metrics = makeMetrics('kiln-register');

export const handler = middy<RecordEvent>()
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics))
  .handler(async (event) => {
    const outcome = await recordRegistration(store, event, new Date());
    if (outcome === 'recorded') {
      metrics.addMetric(
        event.outcome === 'SUCCEEDED' ? METRIC.jobsSucceeded : METRIC.jobsFailed,
        MetricUnit.Count,
        1,
      );
    }
    logger.info('registration recorded', { jobId: event.jobId, outcome, result: event.outcome });
    return { outcome };
  });
