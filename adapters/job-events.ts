import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { JOB_EVENT_DETAIL_TYPE, JOB_EVENT_SOURCE, type JobEvent, jobEventOf } from '../core/events';
import type { Job } from '../core/job';
import type { TransitionPlan } from '../core/transitions';
import type { CreateResult } from '../lambdas/api/ports';
import { DynamoJobStore, type DynamoJobStoreOptions } from './dynamodb-job-store';

export interface JobEventPublisher {
  publish(event: JobEvent): Promise<void>;
}

export class EventBridgePublisher implements JobEventPublisher {
  constructor(
    private readonly events: EventBridgeClient,
    private readonly eventBusName: string,
  ) {}

  async publish(event: JobEvent): Promise<void> {
    const out = await this.events.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: this.eventBusName,
            Source: JOB_EVENT_SOURCE,
            DetailType: JOB_EVENT_DETAIL_TYPE,
            Detail: JSON.stringify(event),
            Resources: [],
          },
        ],
      }),
    );
    if ((out.FailedEntryCount ?? 0) > 0) {
      const entry = out.Entries?.[0];
      throw new Error(`PutEvents refused the event: ${entry?.ErrorCode ?? ''} ${entry?.ErrorMessage ?? ''}`);
    }
  }
}

/**
 * The jobs table, announcing every transition it writes. The event goes out after the write and
 * before the caller's next step (e.g. the enqueue after a create), so a job's events leave in
 * order. The record stays the source of truth: a publish that fails is reported, not retried.
 */
export class PublishingJobStore extends DynamoJobStore {
  constructor(
    options: DynamoJobStoreOptions,
    private readonly publisher: JobEventPublisher,
    private readonly onPublishError: (jobId: string, error: unknown) => void = () => undefined,
  ) {
    super(options);
  }

  private async announce(job: Job): Promise<void> {
    try {
      await this.publisher.publish(jobEventOf(job));
    } catch (error) {
      this.onPublishError(job.jobId, error);
    }
  }

  override async create(job: Job): Promise<CreateResult> {
    const result = await super.create(job);
    if (result.created) await this.announce(result.job);
    return result;
  }

  override async apply(plan: TransitionPlan): Promise<Job> {
    const job = await super.apply(plan);
    await this.announce(job);
    return job;
  }
}
