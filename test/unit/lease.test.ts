import { describe, expect, it } from 'vitest';
import { JOB_STATUSES, type Job, type JobStatus } from '../../core/job';
import {
  decideDelivery,
  decideSweep,
  failedAttempts,
  type LeasePolicy,
  leaseExpired,
  recoverExpiredLease,
  type SweepPolicy,
} from '../../core/lease';
import { applyPlan, planTransition } from '../../core/transitions';

const NOW = new Date('2032-07-01T12:00:00.000Z');
const T = NOW.getTime();
const HOLDER = 'agent-i-0feed';

const POLICY: LeasePolicy = { maxAttempts: 3, leaseSeconds: 120 };
const SWEEP: SweepPolicy = { ...POLICY, dispatchGraceSeconds: 60, leaseGraceSeconds: 30 };

const at = (ms: number) => new Date(T + ms).toISOString();

function job(status: JobStatus, extra: Partial<Job> = {}): Job {
  return {
    jobId: 'j-lease',
    owner: 'arn:aws:iam::111122223333:user/bob',
    pool: 'general-x86_64',
    buildType: 'explicit',
    priority: 'normal',
    arch: 'x86_64',
    format: 'raw',
    recipe: { builder: 'script', script: 'make', artifact: 'image.raw' },
    targets: [],
    labels: {},
    timeoutSeconds: 3600,
    status,
    createdAt: at(-3_600_000),
    updatedAt: at(-60_000),
    attempts: 1,
    handBacks: 0,
    requestHash: 'h',
    images: [],
    history: [],
    ...extra,
  };
}

const live = { holder: HOLDER, expiresAt: T + 30_000 };
const expired = { holder: HOLDER, expiresAt: T - 1 };

describe('failedAttempts and leaseExpired', () => {
  it.each([
    [0, 0, 0],
    [3, 0, 3],
    [3, 2, 1],
    [5, 5, 0],
  ])('attempts %i with %i hand-backs count as %i failures', (attempts, handBacks, failed) => {
    expect(failedAttempts(job('RUNNING', { attempts, handBacks }))).toBe(failed);
  });

  it.each([
    ['no lease', undefined, false],
    ['a lease expiring later', { holder: HOLDER, expiresAt: T + 1 }, false],
    ['a lease expiring exactly now', { holder: HOLDER, expiresAt: T }, true],
    ['a lease expired earlier', expired, true],
  ] as const)('%s → expired %s', (_label, lease, result) => {
    expect(leaseExpired(job('RUNNING', lease ? { lease } : {}), NOW)).toBe(result);
  });
});

describe('decideDelivery', () => {
  it('drops a message for a job that does not exist', () => {
    expect(decideDelivery(undefined, NOW, POLICY)).toEqual({
      action: 'drop',
      reason: 'job record does not exist',
    });
  });

  /** What a delivery does for each status, with a live lease on the leased ones. */
  const BY_STATUS: Record<JobStatus, 'claim' | 'drop'> = {
    QUEUED: 'claim',
    RUNNING: 'drop',
    UPLOADING: 'drop',
    REGISTERING: 'drop',
    SUCCEEDED: 'drop',
    FAILED: 'drop',
    CANCELLED: 'drop',
    TIMED_OUT: 'drop',
    EXPIRED: 'drop',
  };

  it.each(JOB_STATUSES)('%s with a live lease where it has one', (status) => {
    const leased = status === 'RUNNING' || status === 'UPLOADING';
    const decision = decideDelivery(job(status, leased ? { lease: live } : {}), NOW, POLICY);
    expect(decision.action).toBe(BY_STATUS[status]);
    if (decision.action === 'drop') {
      expect(decision.reason).toContain(leased ? HOLDER : status);
    }
  });

  it('claims a QUEUED job whatever its earlier attempts', () => {
    expect(decideDelivery(job('QUEUED', { attempts: 7, handBacks: 0 }), NOW, POLICY)).toEqual({
      action: 'claim',
    });
  });

  it('cancels a QUEUED job whose cancel was requested', () => {
    expect(decideDelivery(job('QUEUED', { cancelRequested: true }), NOW, POLICY)).toEqual({
      action: 'cancel',
      reason: 'cancel requested',
    });
  });

  it.each(['RUNNING', 'UPLOADING'] as const)(
    'leaves a %s job with a live lease and a cancel request to its agent',
    (s) => {
      const d = decideDelivery(job(s, { lease: live, cancelRequested: true }), NOW, POLICY);
      expect(d.action).toBe('drop');
    },
  );

  interface ExpiredCase {
    status: 'RUNNING' | 'UPLOADING';
    attempts: number;
    handBacks: number;
    expiresAt: number;
    action: 'requeue' | 'fail';
  }
  const EXPIRED_CASES: ExpiredCase[] = [
    { status: 'RUNNING', attempts: 1, handBacks: 0, expiresAt: T - 1, action: 'requeue' },
    { status: 'RUNNING', attempts: 1, handBacks: 0, expiresAt: T, action: 'requeue' },
    { status: 'RUNNING', attempts: 2, handBacks: 0, expiresAt: T - 1, action: 'requeue' },
    { status: 'RUNNING', attempts: 3, handBacks: 0, expiresAt: T - 1, action: 'fail' },
    { status: 'RUNNING', attempts: 4, handBacks: 0, expiresAt: T - 1, action: 'fail' },
    { status: 'UPLOADING', attempts: 3, handBacks: 0, expiresAt: T - 1, action: 'fail' },
    { status: 'UPLOADING', attempts: 2, handBacks: 0, expiresAt: T - 1, action: 'requeue' },
    // hand-backs are not failures
    { status: 'RUNNING', attempts: 3, handBacks: 1, expiresAt: T - 1, action: 'requeue' },
    { status: 'RUNNING', attempts: 5, handBacks: 3, expiresAt: T - 1, action: 'requeue' },
    { status: 'UPLOADING', attempts: 6, handBacks: 3, expiresAt: T - 1, action: 'fail' },
  ];

  it.each(EXPIRED_CASES)(
    '$status, lease expired at $expiresAt, $attempts attempts / $handBacks hand-backs → $action',
    ({ status, attempts, handBacks, expiresAt, action }) => {
      const j = job(status, { attempts, handBacks, lease: { holder: HOLDER, expiresAt } });
      const d = decideDelivery(j, NOW, POLICY);
      expect(d.action).toBe(action);
      expect(d).toEqual(recoverExpiredLease(j, POLICY));
      if (d.action === 'fail' || d.action === 'requeue') {
        expect(d.reason).toContain(HOLDER);
        expect(d.reason).toContain(status);
      }
      if (d.action === 'fail') {
        expect(d.reason).toContain(`${attempts - handBacks} attempt(s)`);
        expect(d.reason).toContain(`maxAttempts ${POLICY.maxAttempts}`);
      }
    },
  );

  it('maxAttempts 1 fails the first lost lease', () => {
    const d = decideDelivery(job('RUNNING', { attempts: 1, lease: expired }), NOW, {
      ...POLICY,
      maxAttempts: 1,
    });
    expect(d.action).toBe('fail');
  });
});

describe('decideSweep', () => {
  const GRACE = SWEEP.dispatchGraceSeconds * 1000;
  const LEASE_GRACE = SWEEP.leaseGraceSeconds * 1000;

  interface SweepCase {
    what: string;
    job: Job;
    action: 'none' | 'dispatch' | 'requeue' | 'fail' | 'cancel';
  }
  const CASES: SweepCase[] = [
    { what: 'undispatched QUEUED, just written', job: job('QUEUED', { updatedAt: at(0) }), action: 'none' },
    {
      what: 'undispatched QUEUED, 1 ms before grace',
      job: job('QUEUED', { updatedAt: at(-GRACE + 1) }),
      action: 'none',
    },
    {
      what: 'undispatched QUEUED, exactly at grace',
      job: job('QUEUED', { updatedAt: at(-GRACE) }),
      action: 'dispatch',
    },
    {
      what: 'undispatched QUEUED, long after grace',
      job: job('QUEUED', { updatedAt: at(-10 * GRACE) }),
      action: 'dispatch',
    },
    {
      what: 'dispatched QUEUED, long after grace',
      job: job('QUEUED', { updatedAt: at(-10 * GRACE), dispatchedAt: at(-10 * GRACE) }),
      action: 'none',
    },
    {
      what: 'undispatched QUEUED with a cancel request',
      job: job('QUEUED', { updatedAt: at(-10 * GRACE), cancelRequested: true }),
      action: 'cancel',
    },
    { what: 'RUNNING with a live lease', job: job('RUNNING', { lease: live }), action: 'none' },
    {
      what: 'RUNNING, lease expired within leaseGrace',
      job: job('RUNNING', { lease: { holder: HOLDER, expiresAt: T - LEASE_GRACE + 1 } }),
      action: 'none',
    },
    {
      what: 'RUNNING, lease expired exactly leaseGrace ago',
      job: job('RUNNING', { lease: { holder: HOLDER, expiresAt: T - LEASE_GRACE } }),
      action: 'requeue',
    },
    {
      what: 'UPLOADING, lease expired long ago',
      job: job('UPLOADING', { lease: { holder: HOLDER, expiresAt: T - 100 * LEASE_GRACE } }),
      action: 'requeue',
    },
    {
      what: 'RUNNING, lease expired after leaseGrace, out of attempts',
      job: job('RUNNING', { attempts: 3, lease: { holder: HOLDER, expiresAt: T - LEASE_GRACE } }),
      action: 'fail',
    },
    {
      what: 'RUNNING, lease expired after leaseGrace, 3 attempts of which 1 handed back',
      job: job('RUNNING', {
        attempts: 3,
        handBacks: 1,
        lease: { holder: HOLDER, expiresAt: T - LEASE_GRACE },
      }),
      action: 'requeue',
    },
    { what: 'RUNNING without a lease', job: job('RUNNING'), action: 'none' },
    { what: 'REGISTERING, old', job: job('REGISTERING', { updatedAt: at(-100 * GRACE) }), action: 'none' },
    ...(['SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'EXPIRED'] as const).map(
      (s): SweepCase => ({ what: `${s}, old`, job: job(s, { updatedAt: at(-100 * GRACE) }), action: 'none' }),
    ),
  ];

  it.each(CASES)('$what → $action', ({ job: j, action }) => {
    expect(decideSweep(j, NOW, SWEEP).action).toBe(action);
  });

  it('recovers a lease the same way a delivery would, once past the grace', () => {
    const j = job('RUNNING', { attempts: 2, lease: { holder: HOLDER, expiresAt: T - LEASE_GRACE } });
    expect(decideSweep(j, NOW, SWEEP)).toEqual(decideDelivery(j, NOW, POLICY));
  });

  it('leaseGraceSeconds 0 recovers at the instant the lease expires', () => {
    const j = job('RUNNING', { lease: { holder: HOLDER, expiresAt: T } });
    expect(decideSweep(j, NOW, { ...SWEEP, leaseGraceSeconds: 0 }).action).toBe('requeue');
  });
});

describe('a cancel request on a job whose agent died', () => {
  // The user was told 202: the job must end CANCELLED (or at least be acted upon), not sit QUEUED
  // with a flag that makes every agent drop it and the sweeper ignore it.
  it('does not leave the job QUEUED where neither agents nor the sweeper will act on it', () => {
    const running = job('RUNNING', {
      attempts: 1,
      cancelRequested: true,
      dispatchedAt: at(-3_600_000),
      lease: { holder: HOLDER, expiresAt: T - 10 * SWEEP.leaseGraceSeconds * 1000 },
    });
    const decision = decideSweep(running, NOW, SWEEP);
    if (decision.action !== 'requeue') {
      // Any other decision does not leave the job QUEUED.
      expect(decision.action).not.toBe('none');
      return;
    }
    // What the sweeper does on requeue: the QUEUED transition, then a send and markDispatched.
    const queued = {
      ...applyPlan(running, planTransition(running, { to: 'QUEUED', reason: decision.reason }, NOW)),
      dispatchedAt: NOW.toISOString(),
    };
    const later = new Date(T + 3_600_000);
    const delivery = decideDelivery(queued, later, POLICY);
    const sweep = decideSweep(queued, later, SWEEP);
    const stuck = queued.status === 'QUEUED' && delivery.action === 'drop' && sweep.action === 'none';
    expect(stuck, `requeued job: delivery ${JSON.stringify(delivery)}, sweep ${JSON.stringify(sweep)}`).toBe(
      false,
    );
  });
});
