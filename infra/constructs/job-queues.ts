import { Duration, Stack } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { KilnConfig } from '../../core/config';
import { type QueueDefinition, queueDefinitions, queueKey } from '../definitions';

export interface JobQueuesProps {
  readonly config: KilnConfig;
  /**
   * Visibility timeout of the dead-letter queues, which the DLQ consumer reads; Lambda requires it
   * to be at least the consumer's timeout. @default Duration.minutes(3)
   */
  readonly deadLetterVisibilityTimeout?: Duration;
}

export interface JobQueue {
  readonly definition: QueueDefinition;
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
}

/** One queue and one dead-letter queue per pool × priority class, from queueDefinitions(config). */
export class JobQueues extends Construct {
  readonly all: readonly JobQueue[];

  constructor(scope: Construct, id: string, props: JobQueuesProps) {
    super(scope, id);
    const deadLetterVisibilityTimeout = props.deadLetterVisibilityTimeout ?? Duration.minutes(3);
    this.all = queueDefinitions(props.config).map((definition) => {
      const group = new Construct(this, `${definition.pool}-${definition.priority}`);
      const deadLetterQueue = new sqs.Queue(group, 'Dlq', {
        queueName: definition.deadLetterQueueName,
        retentionPeriod: Duration.seconds(definition.messageRetentionSeconds),
        visibilityTimeout: deadLetterVisibilityTimeout,
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
      });
      const queue = new sqs.Queue(group, 'Queue', {
        queueName: definition.queueName,
        visibilityTimeout: Duration.seconds(definition.visibilityTimeoutSeconds),
        retentionPeriod: Duration.seconds(definition.messageRetentionSeconds),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: definition.maxReceiveCount },
      });
      return { definition, queue, deadLetterQueue };
    });
  }

  forPool(pool: string): JobQueue[] {
    return this.all.filter((q) => q.definition.pool === pool);
  }

  /** JSON for KILN_QUEUE_URLS: `${pool}/${priority}` → URL, resolved at deploy time. */
  queueUrlsJson(pool?: string): string {
    const selected = pool === undefined ? this.all : this.forPool(pool);
    const urls: Record<string, string> = {};
    for (const q of selected) urls[queueKey(q.definition.pool, q.definition.priority)] = q.queue.queueUrl;
    return Stack.of(this).toJsonString(urls);
  }
}
