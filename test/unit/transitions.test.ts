import { describe, expect, it } from 'vitest';
import { InvalidTransitionError } from '../../core/errors';
import { JOB_STATUSES, type Job, type JobStatus } from '../../core/job';
import {
  allowedTransitions,
  applyPlan,
  canTransition,
  isTerminal,
  LEASED_STATUSES,
  planTransition,
  TERMINAL_STATUSES,
} from '../../core/transitions';

const CREATED = new Date('2031-03-04T05:06:07.000Z');
const NOW = new Date('2031-03-04T06:00:00.000Z');
const HOLDER = 'agent-i-0abc';

/**
 * The state machine as the design describes it, written out edge by edge: QUEUED → RUNNING →
 * UPLOADING → REGISTERING → SUCCEEDED → EXPIRED, the ways out to FAILED/CANCELLED/TIMED_OUT, and
 * the way back to QUEUED from the two leased statuses.
 */
const EXPECTED_EDGES = new Set<string>([
  'QUEUED>RUNNING',
  'QUEUED>CANCELLED',
  'QUEUED>FAILED',
  'RUNNING>UPLOADING',
  'RUNNING>QUEUED',
  'RUNNING>FAILED',
  'RUNNING>CANCELLED',
  'RUNNING>TIMED_OUT',
  'UPLOADING>REGISTERING',
  'UPLOADING>SUCCEEDED',
  'UPLOADING>QUEUED',
  'UPLOADING>FAILED',
  'UPLOADING>CANCELLED',
  'REGISTERING>SUCCEEDED',
  'REGISTERING>FAILED',
  'SUCCEEDED>EXPIRED',
]);

const EXPECTED_TERMINAL: JobStatus[] = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'EXPIRED'];
const EXPECTED_LEASED: JobStatus[] = ['RUNNING', 'UPLOADING'];

const PAIRS = JOB_STATUSES.flatMap((from) =>
  JOB_STATUSES.map((to) => ({ from, to, allowed: EXPECTED_EDGES.has(`${from}>${to}`) })),
);
const ALLOWED_PAIRS = PAIRS.filter((p) => p.allowed);
const REFUSED_PAIRS = PAIRS.filter((p) => !p.allowed);

/** A job as it would be stored in `status`, with a lease when the status is a leased one. */
function jobIn(status: JobStatus, extra: Partial<Job> = {}): Job {
  const leased = EXPECTED_LEASED.includes(status);
  return {
    jobId: 'j-0123456789abcdef',
    owner: 'arn:aws:iam::111122223333:user/alice',
    pool: 'general-x86_64',
    buildType: 'explicit',
    priority: 'normal',
    arch: 'x86_64',
    format: 'raw',
    recipe: { builder: 'script', script: 'make', artifact: 'out/image.raw' },
    targets: [],
    labels: {},
    timeoutSeconds: 3600,
    status,
    createdAt: CREATED.toISOString(),
    updatedAt: CREATED.toISOString(),
    attempts: status === 'QUEUED' ? 0 : 1,
    handBacks: 0,
    requestHash: 'hash',
    images: [],
    history: [{ status: 'QUEUED', at: CREATED.toISOString(), attempt: 0, reason: 'submitted' }],
    ...(status === 'QUEUED' ? { dispatchedAt: CREATED.toISOString() } : {}),
    ...(leased ? { lease: { holder: HOLDER, expiresAt: NOW.getTime() + 60_000 } } : {}),
    ...extra,
  };
}

describe('the transition table', () => {
  it('covers every pair of statuses', () => {
    expect(PAIRS).toHaveLength(JOB_STATUSES.length ** 2);
    expect(ALLOWED_PAIRS).toHaveLength(EXPECTED_EDGES.size);
  });

  it.each(JOB_STATUSES)('allowedTransitions(%s) lists exactly the expected edges', (from) => {
    const expected = JOB_STATUSES.filter((to) => EXPECTED_EDGES.has(`${from}>${to}`));
    expect([...allowedTransitions(from)].sort()).toEqual([...expected].sort());
  });

  it('terminal and leased statuses are the expected ones', () => {
    expect([...TERMINAL_STATUSES].sort()).toEqual([...EXPECTED_TERMINAL].sort());
    expect([...LEASED_STATUSES].sort()).toEqual([...EXPECTED_LEASED].sort());
    for (const s of JOB_STATUSES) expect(isTerminal(s)).toBe(EXPECTED_TERMINAL.includes(s));
  });

  it('no edge leaves a terminal status except SUCCEEDED → EXPIRED', () => {
    const out = ALLOWED_PAIRS.filter((p) => EXPECTED_TERMINAL.includes(p.from));
    expect(out.map((p) => `${p.from}>${p.to}`)).toEqual(['SUCCEEDED>EXPIRED']);
  });
});

describe.each(ALLOWED_PAIRS)('allowed: $from → $to', ({ from, to }) => {
  it('canTransition is true and planTransition builds a compare-and-set plan', () => {
    expect(canTransition(from, to)).toBe(true);
    const job = jobIn(from);
    const plan = planTransition(job, { to, reason: 'because' }, NOW);
    expect(plan.jobId).toBe(job.jobId);
    expect(plan.owner).toBe(job.owner);
    expect(plan.from).toBe(from);
    expect(plan.to).toBe(to);
    expect(plan.set.status).toBe(to);
    expect(plan.set.updatedAt).toBe(NOW.toISOString());
    expect(plan.history).toEqual({
      status: to,
      at: NOW.toISOString(),
      attempt: job.attempts,
      reason: 'because',
    });
  });

  it('sets finishedAt exactly when the target is terminal', () => {
    const plan = planTransition(jobIn(from), { to }, NOW);
    if (EXPECTED_TERMINAL.includes(to)) expect(plan.set.finishedAt).toBe(NOW.toISOString());
    else expect(plan.set).not.toHaveProperty('finishedAt');
  });

  it('removes the lease exactly when it leaves a leased status for an unleased one', () => {
    const plan = planTransition(jobIn(from), { to }, NOW);
    const leaving = EXPECTED_LEASED.includes(from) && !EXPECTED_LEASED.includes(to);
    expect(plan.remove.includes('lease')).toBe(leaving);
    expect(plan.set).not.toHaveProperty('lease');
  });

  it('compares the lease holder exactly when the job is in a leased status', () => {
    const plan = planTransition(jobIn(from), { to }, NOW);
    if (EXPECTED_LEASED.includes(from)) expect(plan.expectHolder).toBe(HOLDER);
    else expect(plan).not.toHaveProperty('expectHolder');
  });

  it('removes dispatchedAt exactly when the job goes back to QUEUED', () => {
    const plan = planTransition(jobIn(from), { to }, NOW);
    expect(plan.remove.includes('dispatchedAt')).toBe(to === 'QUEUED');
  });

  it('applyPlan yields the new status with the history entry appended, leaving the input alone', () => {
    const job = jobIn(from);
    const before = structuredClone(job);
    const next = applyPlan(job, planTransition(job, { to, reason: 'moved' }, NOW));
    expect(job).toEqual(before);
    expect(next.status).toBe(to);
    expect(next.updatedAt).toBe(NOW.toISOString());
    expect(next.history).toHaveLength(job.history.length + 1);
    expect(next.history.slice(0, -1)).toEqual(job.history);
    expect(next.history.at(-1)).toMatchObject({ status: to, at: NOW.toISOString(), reason: 'moved' });
    expect('lease' in next).toBe(EXPECTED_LEASED.includes(from) && EXPECTED_LEASED.includes(to));
    expect('dispatchedAt' in next).toBe(to !== 'QUEUED' && 'dispatchedAt' in job);
  });
});

describe.each(REFUSED_PAIRS)('refused: $from → $to', ({ from, to }) => {
  it('canTransition is false and planTransition throws InvalidTransitionError naming both', () => {
    expect(canTransition(from, to)).toBe(false);
    const job = jobIn(from);
    let caught: unknown;
    try {
      planTransition(job, { to }, NOW);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidTransitionError);
    const e = caught as InvalidTransitionError;
    expect(e.code).toBe('INVALID_TRANSITION');
    expect(e.httpStatus).toBe(409);
    expect(e.message).toContain(job.jobId);
    expect(e.message).toContain(`is ${from}`);
    expect(e.message).toContain(`become ${to}`);
  });
});

describe('plan details', () => {
  it('a claim (QUEUED → RUNNING) keeps the new lease, counts the attempt and compares only the status', () => {
    const job = jobIn('QUEUED', { attempts: 2, handBacks: 1 });
    const lease = { holder: HOLDER, expiresAt: NOW.getTime() + 120_000 };
    const plan = planTransition(
      job,
      {
        to: 'RUNNING',
        holder: HOLDER,
        reason: `claimed by ${HOLDER}`,
        set: { attempts: 3, lease, startedAt: NOW.toISOString() },
      },
      NOW,
    );
    expect(plan).not.toHaveProperty('expectHolder');
    expect(plan.set).toMatchObject({ status: 'RUNNING', attempts: 3, lease, startedAt: NOW.toISOString() });
    expect(plan.remove).toEqual([]);
    expect(plan.history).toEqual({
      status: 'RUNNING',
      at: NOW.toISOString(),
      attempt: 3,
      reason: `claimed by ${HOLDER}`,
      by: HOLDER,
    });
    const next = applyPlan(job, plan);
    expect(next.lease).toEqual(lease);
    expect(next.attempts).toBe(3);
    expect(next.dispatchedAt).toBe(job.dispatchedAt);
  });

  it('the holder named in the request is the one compared, whatever the stored lease says', () => {
    const plan = planTransition(jobIn('RUNNING'), { to: 'UPLOADING', holder: 'agent-other' }, NOW);
    expect(plan.expectHolder).toBe('agent-other');
    expect(plan.history.by).toBe('agent-other');
  });

  it('RUNNING → UPLOADING keeps the lease', () => {
    const job = jobIn('RUNNING');
    const next = applyPlan(job, planTransition(job, { to: 'UPLOADING', holder: HOLDER }, NOW));
    expect(next.lease).toEqual(job.lease);
  });

  it('clearLease removes the lease even between leased statuses, and drops a lease in `set`', () => {
    const job = jobIn('RUNNING');
    const plan = planTransition(
      job,
      { to: 'UPLOADING', clearLease: true, set: { lease: { holder: 'x', expiresAt: 1 } } },
      NOW,
    );
    expect(plan.remove).toContain('lease');
    expect(plan.set).not.toHaveProperty('lease');
    expect(applyPlan(job, plan)).not.toHaveProperty('lease');
  });

  it('a failure carries its error into the job and its reason into the history', () => {
    const job = jobIn('RUNNING');
    const error = { code: 'BUILD_FAILED', message: 'script exited with 2' };
    const next = applyPlan(
      job,
      planTransition(job, { to: 'FAILED', reason: 'script exited with 2', error, holder: HOLDER }, NOW),
    );
    expect(next.error).toEqual(error);
    expect(next.finishedAt).toBe(NOW.toISOString());
    expect(next.history.at(-1)).toEqual({
      status: 'FAILED',
      at: NOW.toISOString(),
      attempt: 1,
      reason: 'script exited with 2',
      by: HOLDER,
    });
  });

  it('a history entry leaves out reason and by when the request has none', () => {
    const plan = planTransition(jobIn('QUEUED'), { to: 'CANCELLED' }, NOW);
    expect(plan.history).toEqual({ status: 'CANCELLED', at: NOW.toISOString(), attempt: 0 });
  });

  it('a requeue from UPLOADING drops the lease and dispatchedAt but keeps attempts and artifact', () => {
    const artifact = { uri: 's3://b/k', sha256: 'a'.repeat(64), sizeBytes: 10 };
    const job = jobIn('UPLOADING', { attempts: 2, dispatchedAt: CREATED.toISOString(), artifact });
    const next = applyPlan(job, planTransition(job, { to: 'QUEUED', reason: 'lease expired' }, NOW));
    expect(next.status).toBe('QUEUED');
    expect(next).not.toHaveProperty('lease');
    expect(next).not.toHaveProperty('dispatchedAt');
    expect(next.attempts).toBe(2);
    expect(next.artifact).toEqual(artifact);
  });
});
