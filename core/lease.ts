import type { Job } from './job';
import { isTerminal, LEASED_STATUSES } from './transitions';

export interface LeasePolicy {
  /** Failed claims (lost leases) allowed before the job is FAILED. */
  maxAttempts: number;
  /** How long a claim or heartbeat keeps the lease, in seconds. */
  leaseSeconds: number;
}

/** Claims that count against `maxAttempts`: hand-backs on shutdown are not failures. */
export function failedAttempts(job: Job): number {
  return job.attempts - job.handBacks;
}

export function leaseExpired(job: Job, now: Date): boolean {
  return job.lease !== undefined && job.lease.expiresAt <= now.getTime();
}

export type DeliveryDecision =
  | { action: 'claim' }
  | { action: 'drop'; reason: string }
  | { action: 'requeue'; reason: string }
  /** A cancel was requested and no agent is running the job: finish it as CANCELLED. */
  | { action: 'cancel'; reason: string }
  | { action: 'fail'; reason: string };

/**
 * What an agent does with a queue message for `job`. SQS delivers at least once, so a message can
 * arrive for a job that is already running, finished, or whose previous agent died.
 */
export function decideDelivery(job: Job | undefined, now: Date, policy: LeasePolicy): DeliveryDecision {
  if (!job) return { action: 'drop', reason: 'job record does not exist' };
  if (job.status === 'QUEUED') {
    return job.cancelRequested ? { action: 'cancel', reason: 'cancel requested' } : { action: 'claim' };
  }
  if (isTerminal(job.status) || job.status === 'REGISTERING') {
    return { action: 'drop', reason: `job is already ${job.status}` };
  }
  if (LEASED_STATUSES.includes(job.status)) {
    if (!leaseExpired(job, now))
      return { action: 'drop', reason: `held by ${job.lease?.holder ?? 'an agent'}` };
    return recoverExpiredLease(job, policy);
  }
  return { action: 'drop', reason: `job is ${job.status}` };
}

/** A leased job whose lease ran out: back to the queue, or FAILED once out of attempts. */
export function recoverExpiredLease(job: Job, policy: LeasePolicy): DeliveryDecision {
  const holder = job.lease?.holder ?? 'unknown agent';
  if (job.cancelRequested) {
    // The user was told the job would be cancelled; the agent that should have done it is gone.
    return {
      action: 'cancel',
      reason: `cancel requested; the lease of ${holder} expired before it stopped the build`,
    };
  }
  const failed = failedAttempts(job);
  if (failed >= policy.maxAttempts) {
    return {
      action: 'fail',
      reason: `agent lost: the lease of ${holder} expired while the job was ${job.status}; giving up after ${failed} attempt(s) (maxAttempts ${policy.maxAttempts})`,
    };
  }
  return {
    action: 'requeue',
    reason: `lease of ${holder} expired while ${job.status} (attempt ${job.attempts})`,
  };
}

export interface SweepPolicy extends LeasePolicy {
  /** A QUEUED job not marked dispatched after this long is sent to its queue again. */
  dispatchGraceSeconds: number;
  /** A lease expired this long ago is recovered by the sweeper (agents recover sooner on delivery). */
  leaseGraceSeconds: number;
}

export type SweepDecision =
  | { action: 'none' }
  | { action: 'dispatch' }
  /** An auto rebuild waits for a fleet-wide slot; the auto gate admits it (lambdas/gate). */
  | { action: 'admit' }
  | DeliveryDecision;

/** The sweeper's safety net for jobs whose message was never sent or whose agent vanished. */
export function decideSweep(job: Job, now: Date, policy: SweepPolicy): SweepDecision {
  if (job.status === 'QUEUED') {
    if (job.cancelRequested) return { action: 'cancel', reason: 'cancel requested' };
    if (job.dispatchedAt) return { action: 'none' };
    if (job.buildType === 'auto') return { action: 'admit' };
    const age = now.getTime() - Date.parse(job.updatedAt);
    return age >= policy.dispatchGraceSeconds * 1000 ? { action: 'dispatch' } : { action: 'none' };
  }
  if (LEASED_STATUSES.includes(job.status) && job.lease) {
    const overdue = now.getTime() - job.lease.expiresAt;
    if (overdue >= policy.leaseGraceSeconds * 1000) return recoverExpiredLease(job, policy);
  }
  return { action: 'none' };
}
