import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { LIMITS } from '../../core/job';
import { METRIC, MetricUnit } from '../observability';
import {
  type ApiEvent,
  type ApiResult,
  callerOf,
  header,
  httpErrors,
  json,
  parseJsonBody,
  pathId,
} from './middleware';
import type { RouteName } from './routes';
import type { JobService } from './service';

export type ApiHandler = (event: ApiEvent, context: Context) => Promise<ApiResult>;

export interface HandlerDeps {
  service: JobService;
  logger: Logger;
  metrics: Metrics;
}

function wrap(
  deps: HandlerDeps,
  fn: (event: ApiEvent) => Promise<ApiResult>,
  emitsMetrics = false,
): ApiHandler {
  const base = middy<ApiEvent, ApiResult>().use(injectLambdaContext(deps.logger));
  // Only routes that record metrics flush them; the others would publish empty EMF documents.
  const withMetrics = emitsMetrics ? base.use(logMetrics(deps.metrics)) : base;
  return withMetrics.use(httpErrors(deps.logger)).handler(fn) as unknown as ApiHandler;
}

/** One wrapped handler per route; each Lambda entry exports one of these. */
export function makeApiHandlers(deps: HandlerDeps): Record<RouteName, ApiHandler> {
  const { service, metrics } = deps;
  return {
    submitJob: wrap(
      deps,
      async (event) => {
        try {
          const body = parseJsonBody(event, LIMITS.maxBodyBytes);
          const { job, replayed } = await service.submit(
            callerOf(event),
            body,
            header(event, 'idempotency-key'),
          );
          metrics.addMetric(replayed ? METRIC.jobsReplayed : METRIC.jobsSubmitted, MetricUnit.Count, 1);
          return json(202, job);
        } catch (error) {
          metrics.addMetric(METRIC.jobsRejected, MetricUnit.Count, 1);
          throw error;
        }
      },
      true,
    ),
    getJob: wrap(deps, async (event) => json(200, await service.get(callerOf(event), pathId(event)))),
    listJobs: wrap(deps, async (event) => {
      const q = event.queryStringParameters ?? {};
      return json(200, await service.list(callerOf(event), q));
    }),
    cancelJob: wrap(deps, async (event) => json(202, await service.cancel(callerOf(event), pathId(event)))),
    getJobLogs: wrap(deps, async (event) =>
      json(200, await service.logs(callerOf(event), pathId(event), event.queryStringParameters?.cursor)),
    ),
    getArtifact: wrap(deps, async (event) =>
      json(200, await service.artifact(callerOf(event), pathId(event))),
    ),
    listPools: wrap(deps, async (event) => {
      // Any authenticated caller may see the fleet's state; it names no one's jobs.
      callerOf(event);
      return json(200, await service.pools());
    }),
  };
}
