/**
 * Turns the `access` column of lambdas/api/routes.ts into IAM statements, so each function can
 * touch exactly what its row says and nothing else.
 */
import * as iam from 'aws-cdk-lib/aws-iam';
import type { RouteDefinition } from '../lambdas/api/routes';
import type { ArtifactStore } from './constructs/artifact-store';
import type { JobQueues } from './constructs/job-queues';
import type { JobStore } from './constructs/job-store';

export type Access = RouteDefinition['access'];

/** A writer compares-and-sets on the record it just read, so `write` includes `read`. */
export const TABLE_ACTIONS = {
  read: ['dynamodb:GetItem', 'dynamodb:Query'],
  write: ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
} as const;

export const QUEUE_SEND_ACTIONS = ['sqs:SendMessage'] as const;
/** A semaphore holder creates the item once, then takes and gives back slots by conditional updates. */
export const SLOTS_WRITE_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'] as const;
export const SLOTS_READ_ACTIONS = ['dynamodb:GetItem'] as const;

/** Queue depth for the pools view. */
export const QUEUE_READ_ACTIONS = ['sqs:GetQueueAttributes'] as const;

export interface JobResources {
  readonly jobs: JobStore;
  readonly artifacts: ArtifactStore;
  readonly queues: JobQueues;
}

export function grantAccess(grantee: iam.IGrantable, access: Access, resources: JobResources): void {
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: [...TABLE_ACTIONS[access.table]],
      resources: resources.jobs.tableAndIndexArns(),
    }),
  );
  if (access.queues) {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: [...(access.queues === 'send' ? QUEUE_SEND_ACTIONS : QUEUE_READ_ACTIONS)],
        resources: resources.queues.all.map((q) => q.queue.queueArn),
      }),
    );
  }
  if (access.bucket === 'read') resources.artifacts.grantReadJobObjects(grantee);
  // Whoever writes a job transition announces it on the job events bus.
  if (access.table === 'write') resources.jobs.eventBus.grantPutEventsTo(grantee);
  if (access.slots) {
    const actions = access.slots === 'write' ? SLOTS_WRITE_ACTIONS : SLOTS_READ_ACTIONS;
    resources.jobs.slotsTable.grant(grantee, ...actions);
  }
}
