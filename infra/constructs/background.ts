import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { JOB_EVENT_DETAIL_TYPE, JOB_EVENT_SOURCE } from '../../core/events';
import { BACKGROUND_FUNCTIONS } from '../../lambdas/api/routes';
import { grantAccess, type JobResources } from '../grants';
import { KilnFunction } from './kiln-function';

/** Entry of the function that reads every dead-letter queue and marks the job FAILED. */
export const DLQ_CONSUMER_ENTRY = 'lambdas/entry/dlq-consumer.ts';

export interface BackgroundProps {
  readonly sourceRoot: string;
  readonly resources: JobResources;
  readonly environment: Readonly<Record<string, string>>;
  /** How often the sweeper runs. @default Duration.minutes(1) */
  readonly sweepInterval?: Duration;
  /** @default Duration.seconds(50), under the interval so two sweeps rarely overlap */
  readonly sweeperTimeout?: Duration;
  /** Must not exceed the dead-letter queues' visibility timeout. @default Duration.seconds(30) */
  readonly dlqConsumerTimeout?: Duration;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

/** Work not behind the API: the sweeper (lost dispatches, expired leases) and the DLQ consumer. */
export class Background extends Construct {
  readonly sweeper: KilnFunction;
  readonly dlqConsumer: KilnFunction;
  readonly autoGate: KilnFunction;

  constructor(scope: Construct, id: string, props: BackgroundProps) {
    super(scope, id);
    const { resources } = props;

    this.sweeper = new KilnFunction(this, 'Sweeper', {
      entry: BACKGROUND_FUNCTIONS.sweeper.entry,
      sourceRoot: props.sourceRoot,
      description: 're-dispatches unsent jobs and recovers expired leases',
      environment: props.environment,
      timeout: props.sweeperTimeout ?? Duration.seconds(50),
      ...(props.logRetention ? { logRetention: props.logRetention } : {}),
    });
    grantAccess(this.sweeper.role, { table: 'write', queues: 'send', slots: 'write' }, resources);
    // The next sweep starts within a minute; a retried one would only overlap it.
    this.sweeper.function.configureAsyncInvoke({ retryAttempts: 0 });
    new events.Rule(this, 'SweepSchedule', {
      description: 'Kiln: run the sweeper',
      schedule: events.Schedule.rate(props.sweepInterval ?? Duration.minutes(1)),
      targets: [new targets.LambdaFunction(this.sweeper.function, { retryAttempts: 0 })],
    });

    // An auto rebuild leaving the build stages frees its slot: admit the next one at once rather
    // than at the next sweep.
    this.autoGate = new KilnFunction(this, 'AutoGate', {
      entry: BACKGROUND_FUNCTIONS.autoGate.entry,
      sourceRoot: props.sourceRoot,
      description: 'admits waiting auto rebuilds under the fleet-wide cap',
      environment: props.environment,
      timeout: Duration.seconds(30),
      ...(props.logRetention ? { logRetention: props.logRetention } : {}),
    });
    grantAccess(this.autoGate.role, { table: 'write', queues: 'send', slots: 'write' }, resources);
    new events.Rule(this, 'AutoBuildFinished', {
      description: 'Kiln: an auto rebuild left the build stages',
      eventBus: resources.jobs.eventBus,
      eventPattern: {
        source: [JOB_EVENT_SOURCE],
        detailType: [JOB_EVENT_DETAIL_TYPE],
        detail: {
          buildType: ['auto'],
          status: ['REGISTERING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT'],
        },
      },
      targets: [new targets.LambdaFunction(this.autoGate.function, { retryAttempts: 2 })],
    });

    this.dlqConsumer = new KilnFunction(this, 'DlqConsumer', {
      entry: DLQ_CONSUMER_ENTRY,
      sourceRoot: props.sourceRoot,
      description: 'marks jobs whose messages reached a dead-letter queue FAILED',
      environment: props.environment,
      timeout: props.dlqConsumerTimeout ?? Duration.seconds(30),
      ...(props.logRetention ? { logRetention: props.logRetention } : {}),
    });
    grantAccess(this.dlqConsumer.role, { table: 'write' }, resources);
    for (const q of resources.queues.all) {
      // Reading its event source is the mapping's own grant; the function itself may only write jobs.
      this.dlqConsumer.function.addEventSource(
        new SqsEventSource(q.deadLetterQueue, { batchSize: 10, reportBatchItemFailures: true }),
      );
    }
  }
}
