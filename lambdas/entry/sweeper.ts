import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { buildStores, clientsFromEnv, readRuntimeSettings } from '../composition';
import { METRIC, MetricUnit, makeLogger, makeMetrics } from '../observability';
import { sweep } from '../sweeper/sweep';

const settings = readRuntimeSettings(process.env);
const { store, dispatcher } = buildStores(settings, clientsFromEnv(process.env));
const logger = makeLogger('kiln-sweeper');
const metrics = makeMetrics('kiln-sweeper');

export const handler = middy()
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics))
  .handler(async () => {
    const report = await sweep(
      { store, dispatcher, policy: settings.config, maxJobsPerStatus: 1000 },
      new Date(),
    );
    metrics.addMetric(METRIC.jobsRedispatched, MetricUnit.Count, report.dispatched.length);
    metrics.addMetric(
      METRIC.leasesRecovered,
      MetricUnit.Count,
      report.requeued.length + report.failed.length,
    );
    logger.info('sweep done', { ...report });
    return report;
  });
