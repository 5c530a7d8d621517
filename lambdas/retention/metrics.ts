import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MetricUnit } from '../observability';
import type { RetentionReport } from './run';

/** The `service` dimension of the retention function's metrics (the alarm reads exactly this). */
export const RETENTION_SERVICE = 'kiln-retention';

/** Counters each run emits once, in namespace Kiln (METRICS_NAMESPACE). */
export const RETENTION_METRIC = {
  /** Deletions in the run's plan (a dry run emits this one too). */
  planned: 'RetentionPlanned',
  /** Deletions done, or found already done by an earlier run. */
  deleted: 'RetentionDeleted',
  /** Steps that failed plus listings that failed: the alarm fires on any. */
  failed: 'RetentionFailed',
  jobsExpired: 'RetentionJobsExpired',
  /** Deletions left for the next run by maxDeletionsPerRun. */
  deferred: 'RetentionDeferred',
} as const;

export function addRetentionMetrics(metrics: Metrics, report: RetentionReport): void {
  metrics.addMetric(RETENTION_METRIC.planned, MetricUnit.Count, report.planned);
  metrics.addMetric(RETENTION_METRIC.deleted, MetricUnit.Count, report.deleted);
  metrics.addMetric(RETENTION_METRIC.failed, MetricUnit.Count, report.failed);
  metrics.addMetric(RETENTION_METRIC.jobsExpired, MetricUnit.Count, report.jobsExpired);
  metrics.addMetric(RETENTION_METRIC.deferred, MetricUnit.Count, report.plan.deferred);
}
