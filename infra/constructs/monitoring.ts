import { Aws, Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { queueKey } from '../definitions';
import { kilnMetric, METRIC, METRIC_SOURCES, summedCounter } from '../metrics';
import type { Api } from './api';
import type { BuildPool } from './build-pool';
import type { JobQueues } from './job-queues';
import type { KilnFunction } from './kiln-function';

export interface MonitoringProps {
  readonly prefix: string;
  readonly alarmTopic: sns.ITopic;
  readonly api: Api;
  readonly queues: JobQueues;
  readonly pools: readonly BuildPool[];
  /** Functions whose errors and durations the dashboard shows. */
  readonly functions: readonly KilnFunction[];
  /** Window over which the job error rate is computed. @default Duration.minutes(30) */
  readonly errorRateWindow?: Duration;
  /** Failed / finished jobs above this percentage alarm. @default 10 */
  readonly errorRateThresholdPercent?: number;
  /** Fewer finished jobs than this in a window is too few to judge a rate. @default 3 */
  readonly errorRateMinJobs?: number;
  /** A queued (visible) job older than this alarms. @default Duration.minutes(15) */
  readonly queuedAgeThreshold?: Duration;
  /** 95th percentile of queue wait above this alarms. @default Duration.minutes(10) */
  readonly queueWaitP95Threshold?: Duration;
  /** API 5xx responses above this percentage of requests alarm. @default 5 */
  readonly api5xxThresholdPercent?: number;
}

const DEFAULTS = {
  errorRateWindow: Duration.minutes(30),
  errorRateThresholdPercent: 10,
  errorRateMinJobs: 3,
  queuedAgeThreshold: Duration.minutes(15),
  queueWaitP95Threshold: Duration.minutes(10),
  api5xxThresholdPercent: 5,
} as const;

/** The SLI alarms (all notifying the alarm topic) and one dashboard of the whole pipeline. */
export class Monitoring extends Construct {
  readonly jobErrorRate: cloudwatch.Alarm;
  readonly queueWaitP95: cloudwatch.Alarm;
  readonly api5xxRate: cloudwatch.Alarm;
  /** By queueKey(pool, priority). */
  readonly queuedAge: ReadonlyMap<string, cloudwatch.Alarm>;
  readonly deadLetters: ReadonlyMap<string, cloudwatch.Alarm>;
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const action = new cwActions.SnsAction(props.alarmTopic);
    const notify = (alarm: cloudwatch.Alarm): cloudwatch.Alarm => {
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
      return alarm;
    };
    const allAlarms: cloudwatch.Alarm[] = [];
    const track = (alarm: cloudwatch.Alarm): cloudwatch.Alarm => {
      allAlarms.push(notify(alarm));
      return alarm;
    };

    // Job error rate: failed / (failed + succeeded) over the window.
    const window = props.errorRateWindow ?? DEFAULTS.errorRateWindow;
    const minJobs = props.errorRateMinJobs ?? DEFAULTS.errorRateMinJobs;
    const failedSum = summedCounter(METRIC.jobsFailed, 'failed', window);
    const succeededSum = summedCounter(METRIC.jobsSucceeded, 'succeeded', window);
    const failed = new cloudwatch.MathExpression({ ...failedSum, period: window, label: 'Jobs failed' });
    const succeeded = new cloudwatch.MathExpression({
      ...succeededSum,
      period: window,
      label: 'Jobs succeeded',
    });
    const errorRate = new cloudwatch.MathExpression({
      label: 'Job error rate (%)',
      expression: `IF((failed + succeeded) >= ${minJobs}, 100 * failed / (failed + succeeded), 0)`,
      usingMetrics: { failed, succeeded },
      period: window,
    });
    this.jobErrorRate = track(
      new cloudwatch.Alarm(this, 'JobErrorRate', {
        alarmName: `${props.prefix}-job-error-rate`,
        alarmDescription: `More than ${props.errorRateThresholdPercent ?? DEFAULTS.errorRateThresholdPercent}% of the jobs that finished in ${window.toMinutes()} minutes failed (at least ${minJobs} finished).`,
        metric: errorRate,
        threshold: props.errorRateThresholdPercent ?? DEFAULTS.errorRateThresholdPercent,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );

    const queueWait = kilnMetric(METRIC.queueWaitSeconds, METRIC_SOURCES.agent, {
      statistic: 'p95',
      period: Duration.minutes(15),
      label: 'Queue wait p95 (s)',
    });
    const waitThreshold = props.queueWaitP95Threshold ?? DEFAULTS.queueWaitP95Threshold;
    this.queueWaitP95 = track(
      new cloudwatch.Alarm(this, 'QueueWaitP95', {
        alarmName: `${props.prefix}-queue-wait-p95`,
        alarmDescription: `95% of jobs should start within ${waitThreshold.toMinutes()} minutes of submission.`,
        metric: queueWait,
        threshold: waitThreshold.toSeconds(),
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );

    // ApproximateAgeOfOldestMessage also counts messages of running jobs, which stay in flight for
    // the whole build; it only says a job waits when messages are visible too.
    const ageThreshold = props.queuedAgeThreshold ?? DEFAULTS.queuedAgeThreshold;
    const queuedAge = new Map<string, cloudwatch.Alarm>();
    const deadLetters = new Map<string, cloudwatch.Alarm>();
    for (const q of props.queues.all) {
      const key = queueKey(q.definition.pool, q.definition.priority);
      const id = `${q.definition.pool}-${q.definition.priority}`;
      const minute = { period: Duration.minutes(1), statistic: 'Maximum' };
      queuedAge.set(
        key,
        track(
          new cloudwatch.Alarm(this, `QueuedAge-${id}`, {
            alarmName: `${props.prefix}-queued-age-${id}`,
            alarmDescription: `A job has waited in ${q.definition.queueName} for over ${ageThreshold.toMinutes()} minutes: is the pool scaling and are its agents running?`,
            metric: new cloudwatch.MathExpression({
              label: 'Oldest message age while jobs wait (s)',
              expression: 'IF(visible > 0, age, 0)',
              usingMetrics: {
                visible: q.queue.metricApproximateNumberOfMessagesVisible(minute),
                age: q.queue.metricApproximateAgeOfOldestMessage(minute),
              },
              period: Duration.minutes(1),
            }),
            threshold: ageThreshold.toSeconds(),
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluationPeriods: 5,
            datapointsToAlarm: 5,
            treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          }),
        ),
      );
      // The DLQ consumer empties the DLQ within seconds, so "not empty" also counts what it received.
      deadLetters.set(
        key,
        track(
          new cloudwatch.Alarm(this, `DeadLetters-${id}`, {
            alarmName: `${props.prefix}-dead-letters-${id}`,
            alarmDescription: `A job message reached ${q.definition.deadLetterQueueName}: the job was marked FAILED; find why in its record and its agent's logs.`,
            metric: new cloudwatch.MathExpression({
              label: 'Dead-lettered messages',
              expression: 'FILL(visible, 0) + FILL(inFlight, 0) + FILL(received, 0)',
              usingMetrics: {
                visible: q.deadLetterQueue.metricApproximateNumberOfMessagesVisible(minute),
                inFlight: q.deadLetterQueue.metricApproximateNumberOfMessagesNotVisible(minute),
                received: q.deadLetterQueue.metricNumberOfMessagesReceived({
                  period: Duration.minutes(1),
                  statistic: 'Sum',
                }),
              },
              period: Duration.minutes(1),
            }),
            threshold: 0,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluationPeriods: 1,
            treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          }),
        ),
      );
    }
    this.queuedAge = queuedAge;
    this.deadLetters = deadLetters;

    const apiPeriod = Duration.minutes(5);
    const requests = props.api.httpApi.metricCount({ period: apiPeriod, statistic: 'Sum' });
    const serverErrors = props.api.httpApi.metricServerError({ period: apiPeriod, statistic: 'Sum' });
    const api5xxThreshold = props.api5xxThresholdPercent ?? DEFAULTS.api5xxThresholdPercent;
    this.api5xxRate = track(
      new cloudwatch.Alarm(this, 'Api5xxRate', {
        alarmName: `${props.prefix}-api-5xx-rate`,
        alarmDescription: `More than ${api5xxThreshold}% of API requests failed with a 5xx in 5 minutes (at least 10 requests).`,
        metric: new cloudwatch.MathExpression({
          label: 'API 5xx rate (%)',
          expression: 'IF(FILL(requests, 0) >= 10, 100 * FILL(errors, 0) / requests, 0)',
          usingMetrics: { requests, errors: serverErrors },
          period: apiPeriod,
        }),
        threshold: api5xxThreshold,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }),
    );

    this.dashboard = this.buildDashboard(props, { failed, succeeded, errorRate, allAlarms });
  }

  private buildDashboard(
    props: MonitoringProps,
    parts: {
      failed: cloudwatch.IMetric;
      succeeded: cloudwatch.IMetric;
      errorRate: cloudwatch.IMetric;
      allAlarms: readonly cloudwatch.Alarm[];
    },
  ): cloudwatch.Dashboard {
    const fiveMinutes = Duration.minutes(5);
    const agentMetric = (name: string, statistic: string, label: string) =>
      kilnMetric(name, METRIC_SOURCES.agent, { statistic, period: fiveMinutes, label });
    const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${props.prefix}-pipeline`,
      defaultInterval: Duration.hours(6),
    });
    dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({
        title: 'Alarms',
        alarms: [...parts.allAlarms],
        width: 24,
        height: 4,
      }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Jobs',
        width: 12,
        left: [
          kilnMetric(METRIC.jobsSubmitted, METRIC_SOURCES.api, { period: fiveMinutes, label: 'Submitted' }),
          agentMetric(METRIC.jobsStarted, 'Sum', 'Started'),
          parts.succeeded,
          parts.failed,
        ],
      }),
      new cloudwatch.GraphWidget({ title: 'Job error rate (%)', width: 12, left: [parts.errorRate] }),
    );
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Queue wait, build and upload (s)',
        width: 24,
        left: [
          agentMetric(METRIC.queueWaitSeconds, 'p50', 'Queue wait p50'),
          agentMetric(METRIC.queueWaitSeconds, 'p95', 'Queue wait p95'),
          agentMetric(METRIC.buildSeconds, 'p95', 'Build p95'),
          agentMetric(METRIC.uploadSeconds, 'p95', 'Upload p95'),
        ],
      }),
    );
    for (const pool of props.pools) {
      dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: `Pool ${pool.pool.name}: jobs`,
          width: 12,
          left: [pool.backlog, pool.work],
        }),
        new cloudwatch.GraphWidget({
          title: `Pool ${pool.pool.name}: instances`,
          width: 12,
          left: ['GroupInServiceInstances', 'GroupPendingInstances', 'GroupDesiredCapacity'].map(
            (metricName) =>
              new cloudwatch.Metric({
                namespace: 'AWS/AutoScaling',
                metricName,
                dimensionsMap: { AutoScalingGroupName: pool.group.autoScalingGroupName },
                statistic: 'Maximum',
                period: Duration.minutes(1),
              }),
          ),
        }),
      );
    }
    dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'API requests and errors',
        width: 12,
        left: [
          props.api.httpApi.metricCount({ period: fiveMinutes, statistic: 'Sum' }),
          props.api.httpApi.metricClientError({ period: fiveMinutes, statistic: 'Sum' }),
          props.api.httpApi.metricServerError({ period: fiveMinutes, statistic: 'Sum' }),
        ],
      }),
      new cloudwatch.GraphWidget({
        title: 'Function errors',
        width: 12,
        left: props.functions.map((f) => f.function.metricErrors({ period: fiveMinutes, label: f.node.id })),
      }),
    );
    return dashboard;
  }

  /** Console link to the dashboard. */
  get dashboardUrl(): string {
    return `https://console.aws.amazon.com/cloudwatch/home?region=${Aws.REGION}#dashboards:name=${this.dashboard.dashboardName}`;
  }
}
