import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { makeSfnClient } from '../../adapters/clients';
import { SfnRegistrations } from '../../adapters/step-functions';
import { retentionDaysOf } from '../../core/registration';
import { ENV, IMPORT_SLOTS } from '../../infra/definitions';
import { buildStores, clientsFromEnv, readRuntimeSettings } from '../composition';
import { METRIC, MetricUnit, makeLogger, makeMetrics } from '../observability';
import { reapSlots } from '../register/reaper';
import { sweep } from '../sweeper/sweep';

const settings = readRuntimeSettings(process.env);
const clients = clientsFromEnv(process.env);
const { store, dispatcher, autoGate } = buildStores(settings, clients);
const region = process.env.AWS_REGION ?? 'us-east-1';
const registerArn = process.env[ENV.registerStateMachineArn];
const slotsTable = process.env[ENV.slotsTableName];
const registrations = registerArn
  ? new SfnRegistrations(makeSfnClient(region, process.env[ENV.sfnEndpoint]), registerArn)
  : undefined;
const logger = makeLogger('kiln-sweeper');
const metrics = makeMetrics('kiln-sweeper');

export const handler = middy()
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics))
  .handler(async () => {
    const now = new Date();
    const report = await sweep(
      {
        store,
        dispatcher,
        policy: settings.config,
        maxJobsPerStatus: 1000,
        ...(autoGate ? { autoGate } : {}),
        ...(registrations
          ? {
              registration: {
                registrations,
                target: { homeRegion: region, retentionDays: retentionDaysOf(settings.config.retention) },
                policy: { registerAttempts: settings.config.registerAttempts, startGraceSeconds: 120 },
              },
            }
          : {}),
      },
      now,
    );
    const reclaimed =
      registrations && slotsTable
        ? await reapSlots(
            {
              documents: clients.documents,
              tableName: slotsTable,
              statusOf: (arn) => registrations.statusOfArn(arn),
            },
            IMPORT_SLOTS,
          )
        : [];
    metrics.addMetric(METRIC.jobsRedispatched, MetricUnit.Count, report.dispatched.length);
    metrics.addMetric(
      METRIC.leasesRecovered,
      MetricUnit.Count,
      report.requeued.length + report.failed.length,
    );
    metrics.addMetric(METRIC.jobsFailed, MetricUnit.Count, report.failed.length);
    metrics.addMetric(METRIC.slotsReclaimed, MetricUnit.Count, reclaimed.length);
    logger.info('sweep done', { ...report, reclaimed });
    return { ...report, reclaimed };
  });
