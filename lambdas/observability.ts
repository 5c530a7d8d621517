import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/** CloudWatch namespace of every Kiln metric (the alarms in infra/ read it). */
export const METRICS_NAMESPACE = 'Kiln';

export const METRIC = {
  jobsSubmitted: 'JobsSubmitted',
  /** Submits refused (bad input, key reuse, errors). */
  jobsRejected: 'JobsRejected',
  /** Idempotency-Key replays answered with the existing job. */
  jobsReplayed: 'JobsReplayed',
  jobsStarted: 'JobsStarted',
  jobsSucceeded: 'JobsSucceeded',
  jobsFailed: 'JobsFailed',
  queueWaitSeconds: 'QueueWaitSeconds',
  buildSeconds: 'BuildSeconds',
  uploadSeconds: 'UploadSeconds',
  jobsRedispatched: 'JobsRedispatched',
  leasesRecovered: 'LeasesRecovered',
  /** Import slots given back by the reaper after their execution died. */
  slotsReclaimed: 'SlotsReclaimed',
} as const;

export { MetricUnit };

export function makeLogger(serviceName: string): Logger {
  return new Logger({ serviceName });
}

export function makeMetrics(serviceName: string): Metrics {
  return new Metrics({ namespace: METRICS_NAMESPACE, serviceName });
}
