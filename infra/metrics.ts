/**
 * The custom metrics the alarms and the dashboard read. Names and namespace come from the code that
 * emits them (lambdas/observability.ts); the `service` values are the names each emitter passes to
 * `makeMetrics`. A metric is identified by its full dimension set, so an alarm only sees what is
 * emitted with exactly `{service}`.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { METRIC, METRICS_NAMESPACE } from '../lambdas/observability';

export { METRIC, METRICS_NAMESPACE };

export const METRIC_SOURCES = {
  api: 'kiln-api',
  agent: 'kiln-agent',
  sweeper: 'kiln-sweeper',
  dlqConsumer: 'kiln-dlq',
  /** The register workflow's last step records the outcome of jobs with image targets. */
  register: 'kiln-register',
} as const;
export type MetricSource = (typeof METRIC_SOURCES)[keyof typeof METRIC_SOURCES];

/**
 * Who records a job's final outcome: the agent for builds it ran, the register workflow for jobs
 * with images, the sweeper and the DLQ consumer for jobs no agent could finish.
 */
export const JOB_OUTCOME_SOURCES = {
  [METRIC.jobsSucceeded]: [METRIC_SOURCES.agent, METRIC_SOURCES.register],
  [METRIC.jobsFailed]: [
    METRIC_SOURCES.agent,
    METRIC_SOURCES.sweeper,
    METRIC_SOURCES.dlqConsumer,
    METRIC_SOURCES.register,
  ],
} as const;

export function kilnMetric(
  metricName: string,
  service: MetricSource,
  options: { statistic?: string; period?: Duration; label?: string } = {},
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service },
    statistic: options.statistic ?? 'Sum',
    period: options.period ?? Duration.minutes(5),
    ...(options.label ? { label: options.label } : {}),
  });
}

/**
 * Sum of one counter over every service that emits it, as a math expression whose missing points
 * count as zero (an idle service publishes nothing).
 */
export function summedCounter(
  metricName: keyof typeof JOB_OUTCOME_SOURCES,
  idPrefix: string,
  period: Duration,
): { expression: string; usingMetrics: Record<string, cloudwatch.IMetric> } {
  const usingMetrics: Record<string, cloudwatch.IMetric> = {};
  JOB_OUTCOME_SOURCES[metricName].forEach((service, i) => {
    usingMetrics[`${idPrefix}${i}`] = kilnMetric(metricName, service, { period });
  });
  const expression = Object.keys(usingMetrics)
    .map((id) => `FILL(${id}, 0)`)
    .join(' + ');
  return { expression: `(${expression})`, usingMetrics };
}
