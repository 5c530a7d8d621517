import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { EC2Client } from '@aws-sdk/client-ec2';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { makeEc2Client } from '../../adapters/clients';
import { clientsFromEnv, jobStoreFor } from '../../adapters/runtime-settings';
import { ENV } from '../../infra/definitions';
import { makeLogger, makeMetrics } from '../observability';
import { Ec2RetentionImages } from '../retention/ec2-images';
import { addRetentionMetrics, RETENTION_SERVICE } from '../retention/metrics';
import { runRetention } from '../retention/run';
import { S3RetentionArtifacts } from '../retention/s3-artifacts';
import { readRetentionSettings } from '../retention/settings';

/** Composition root of the retention function: environment read once per container. */
const settings = readRetentionSettings(process.env);
const logger = makeLogger(RETENTION_SERVICE);
const clients = clientsFromEnv(process.env);
const ec2Clients = new Map<string, EC2Client>();
const ec2For = (region: string): EC2Client => {
  let client = ec2Clients.get(region);
  if (!client) {
    client = makeEc2Client(region, process.env[ENV.ec2Endpoint]);
    ec2Clients.set(region, client);
  }
  return client;
};
const ports = {
  images: new Ec2RetentionImages({ ec2For }),
  artifacts: new S3RetentionArtifacts(clients.s3, settings.bucketName),
  // Marking a job EXPIRED is a transition like any other: it is announced on the job events bus.
  jobs: jobStoreFor({ ...settings, queueUrls: {} }, clients, (jobId, error) =>
    logger.warn('could not announce EXPIRED on the job events bus', { jobId, error: error as Error }),
  ),
};
const metrics = makeMetrics(RETENTION_SERVICE);

/** Stop starting steps this long before the Lambda timeout, so the report and metrics go out. */
const SAFETY_MARGIN_MS = 60_000;

export interface RetentionEvent {
  /** Plan only: list, decide, report; change nothing. */
  dryRun?: boolean;
}

export const handler = middy<RetentionEvent, unknown, Error, Context>()
  .use(injectLambdaContext(logger))
  .use(logMetrics(metrics))
  .handler(async (event, context) => {
    const budget = Math.max(1_000, context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS);
    const report = await runRetention(
      { ports, rules: settings.rules, homeRegion: settings.homeRegion },
      new Date(),
      { dryRun: event?.dryRun === true, signal: AbortSignal.timeout(budget) },
    );
    addRetentionMetrics(metrics, report);
    for (const problem of report.problems)
      logger.error('listing failed; left out of this run', { ...problem });
    for (const step of report.execution?.steps ?? []) {
      if (step.outcome === 'failed') logger.error('retention step failed', { ...step });
    }
    logger.info(report.dryRun ? 'retention dry run' : 'retention run', {
      regions: report.regions,
      planned: report.planned,
      deleted: report.deleted,
      failed: report.failed,
      jobsExpired: report.jobsExpired,
      deferred: report.plan.deferred,
      aborted: report.execution?.aborted ?? false,
    });
    // The whole plan comes back to whoever invoked it (a dry run is read from here).
    return {
      dryRun: report.dryRun,
      at: report.at,
      regions: report.regions,
      problems: report.problems,
      planned: report.planned,
      deleted: report.deleted,
      failed: report.failed,
      jobsExpired: report.jobsExpired,
      deferred: report.plan.deferred,
      aborted: report.execution?.aborted ?? false,
      actions: report.plan.actions,
      failures: (report.execution?.steps ?? []).filter((s) => s.outcome === 'failed'),
    };
  });
