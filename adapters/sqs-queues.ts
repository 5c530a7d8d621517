import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { JobQueue, QueueMessage } from '../agent/ports';
import { ValidationError } from '../core/errors';
import { type Job, PRIORITIES, type Priority } from '../core/job';
import { queueKey } from '../infra/definitions';
import type { JobDispatcher, QueueDepth, QueueStats } from '../lambdas/api/ports';

export type QueueUrls = Readonly<Record<string, string>>;

function urlFor(urls: QueueUrls, pool: string, priority: Priority): string {
  const url = urls[queueKey(pool, priority)];
  if (!url) throw new ValidationError(`no queue for pool "${pool}" and priority "${priority}"`);
  return url;
}

/** Sends one message per job; the body carries only the job id, the record holds the rest. */
export class SqsDispatcher implements JobDispatcher {
  constructor(
    private readonly sqs: SQSClient,
    private readonly urls: QueueUrls,
  ) {}

  async dispatch(job: Pick<Job, 'jobId' | 'pool' | 'priority'>): Promise<void> {
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: urlFor(this.urls, job.pool, job.priority),
        MessageBody: JSON.stringify({ jobId: job.jobId }),
        MessageAttributes: { jobId: { DataType: 'String', StringValue: job.jobId } },
      }),
    );
  }
}

function toQueueMessage(queue: string, priority: Priority, m: Message): QueueMessage | undefined {
  if (!m.ReceiptHandle) return undefined;
  let jobId: unknown;
  try {
    jobId = (JSON.parse(m.Body ?? '') as { jobId?: unknown }).jobId;
  } catch {
    jobId = undefined;
  }
  return {
    jobId: typeof jobId === 'string' ? jobId : '',
    queue,
    priority,
    receipt: m.ReceiptHandle,
    receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? '1'),
  };
}

/**
 * One pool's queues, highest priority first. A receive first takes what is already waiting in
 * priority order, then long-polls every queue at once and takes the first message to arrive; a
 * message that arrives on another poll meanwhile is made visible again at once.
 */
export class SqsJobQueue implements JobQueue {
  constructor(
    private readonly sqs: SQSClient,
    /** The pool's queue of each priority class. */
    private readonly queues: ReadonlyArray<{ priority: Priority; url: string }>,
    private readonly visibilitySeconds: number,
  ) {}

  private async receiveFrom(
    { url, priority }: { url: string; priority: Priority },
    waitSeconds: number,
    signal?: AbortSignal,
  ): Promise<QueueMessage | undefined> {
    const out = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 1,
        WaitTimeSeconds: waitSeconds,
        VisibilityTimeout: this.visibilitySeconds,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
      signal ? { abortSignal: signal } : {},
    );
    const [first] = out.Messages ?? [];
    return first ? toQueueMessage(url, priority, first) : undefined;
  }

  async receive(
    waitSeconds: number,
    signal?: AbortSignal,
    order: readonly Priority[] = PRIORITIES,
  ): Promise<QueueMessage | undefined> {
    const ordered = order.flatMap((p) => this.queues.filter((q) => q.priority === p));
    for (const queue of ordered) {
      const m = await this.receiveFrom(queue, 0, signal);
      if (m) return m;
    }
    if (waitSeconds <= 0 || signal?.aborted) return undefined;
    return new Promise<QueueMessage | undefined>((resolve, reject) => {
      let settled = false;
      let pending = ordered.length;
      for (const queue of ordered) {
        this.receiveFrom(queue, waitSeconds, signal).then(
          (m) => {
            pending -= 1;
            if (m && !settled) {
              settled = true;
              resolve(m);
            } else if (m) {
              this.release(m).catch(() => undefined);
            }
            if (pending === 0 && !settled) {
              settled = true;
              resolve(undefined);
            }
          },
          (error: unknown) => {
            pending -= 1;
            if (!settled) {
              settled = true;
              reject(error);
            }
          },
        );
      }
    });
  }

  async extend(message: QueueMessage, seconds: number): Promise<void> {
    await this.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: message.queue,
        ReceiptHandle: message.receipt,
        VisibilityTimeout: seconds,
      }),
    );
  }

  async release(message: QueueMessage): Promise<void> {
    await this.extend(message, 0);
  }

  async ack(message: QueueMessage): Promise<void> {
    await this.sqs.send(
      new DeleteMessageCommand({ QueueUrl: message.queue, ReceiptHandle: message.receipt }),
    );
  }
}

export class SqsQueueStats implements QueueStats {
  constructor(
    private readonly sqs: SQSClient,
    private readonly urls: QueueUrls,
  ) {}

  async depth(pool: string, priority: Priority): Promise<QueueDepth> {
    const out = await this.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: urlFor(this.urls, pool, priority),
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return {
      visible: Number(out.Attributes?.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
    };
  }
}
