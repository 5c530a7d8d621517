/**
 * What every job store must do, as one reusable suite: call `jobStoreContract(name, makeStore)`
 * from a test file. Each test works on its own owners and job ids, so the suite can run against a
 * shared table that other tests (or earlier tests of this suite) have written to.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError, LeaseLostError, ValidationError } from '../../core/errors';
import { type Job, type JobStatus, parseJobSpec } from '../../core/job';
import { newJob } from '../../core/submission';
import { applyPlan, planTransition, type TransitionPlan } from '../../core/transitions';
import type { JobStore } from '../support/memory-job-store';

export type { JobStore } from '../support/memory-job-store';

export interface StoreUnderTest {
  store: JobStore;
  cleanup?: () => Promise<void>;
}

const T0 = Date.parse('2034-05-06T07:08:09.000Z');
const at = (offsetMs: number) => new Date(T0 + offsetMs);
const MINUTE = 60_000;
const LEASE_MS = 120_000;

const unique = (kind: string) => `${kind}-${randomUUID()}`;

const FULL_BODY = {
  name: 'contract-image',
  buildType: 'scratch',
  priority: 'high',
  arch: 'aarch64',
  recipe: {
    builder: 'script',
    script: 'set -e\nmake image\n',
    artifact: 'out/image.vmdk',
    env: { RELEASE: '42' },
  },
  format: 'vmdk',
  targets: [{ type: 'aws-ami', regions: ['eu-west-1'], shareWith: ['123456789012'] }],
  timeoutSeconds: 900,
  labels: { team: 'os' },
};

interface JobOptions {
  owner?: string;
  jobId?: string;
  createdAt?: Date;
  status?: JobStatus;
  extra?: Partial<Job>;
}

function makeJob(options: JobOptions = {}): Job {
  const createdAt = options.createdAt ?? at(0);
  const job = newJob(parseJobSpec(FULL_BODY), {
    jobId: options.jobId ?? unique('j'),
    owner: options.owner ?? unique('arn:aws:iam::111122223333:user/owner'),
    pool: 'general-aarch64',
    requestHash: 'hash-of-the-spec',
    idempotencyKey: 'key-1',
    defaultTimeoutSeconds: 3600,
    now: createdAt,
  });
  return { ...job, ...(options.status ? { status: options.status } : {}), ...options.extra };
}

function rejection(result: PromiseSettledResult<unknown>): unknown {
  return result.status === 'rejected' ? result.reason : undefined;
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to be rejected');
}

const token = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

export function jobStoreContract(name: string, makeStore: () => Promise<StoreUnderTest>): void {
  describe(`job store contract: ${name}`, () => {
    let subject: StoreUnderTest | undefined;
    const store = (): JobStore => {
      if (!subject) throw new Error('the store was not made');
      return subject.store;
    };

    beforeAll(async () => {
      subject = await makeStore();
    });

    afterAll(async () => {
      await subject?.cleanup?.();
    });

    async function created(options: JobOptions = {}): Promise<Job> {
      const job = makeJob(options);
      const result = await store().create(job);
      expect(result.created).toBe(true);
      return job;
    }

    /** A stored job claimed by `holder`: RUNNING, one attempt, a lease until `now` + LEASE_MS. */
    async function claimed(holder: string, options: JobOptions = {}, now = at(MINUTE)): Promise<Job> {
      const job = await created(options);
      return store().apply(claimPlan(job, holder, now));
    }

    function claimPlan(job: Job, holder: string, now: Date): TransitionPlan {
      return planTransition(
        job,
        {
          to: 'RUNNING',
          holder,
          reason: `claimed by ${holder}`,
          set: {
            attempts: job.attempts + 1,
            lease: { holder, expiresAt: now.getTime() + LEASE_MS },
            startedAt: now.toISOString(),
          },
        },
        now,
      );
    }

    /** Every page of an owner's listing, checking each page's size. */
    async function listAll(
      owner: string,
      limit: number,
      status?: JobStatus,
    ): Promise<{ ids: string[]; pages: number }> {
      const ids: string[] = [];
      let nextToken: string | undefined;
      let pages = 0;
      do {
        const page = await store().listByOwner(owner, {
          limit,
          ...(status ? { status } : {}),
          ...(nextToken ? { nextToken } : {}),
        });
        pages += 1;
        expect(page.items.length).toBeLessThanOrEqual(limit);
        for (const job of page.items) {
          expect(job.owner).toBe(owner);
          if (status) expect(job.status).toBe(status);
        }
        ids.push(...page.items.map((j) => j.jobId));
        nextToken = page.nextToken;
        expect(pages).toBeLessThan(100);
      } while (nextToken);
      return { ids, pages };
    }

    describe('create and get', () => {
      it('round-trips a job with every field', async () => {
        const job = makeJob({
          extra: {
            artifact: { uri: 's3://bucket/key', sha256: 'f'.repeat(64), sizeBytes: 1234 },
            images: [{ region: 'eu-west-1', imageId: 'ami-1', snapshotId: 'snap-1' }],
          },
        });
        const result = await store().create(job);
        expect(result).toEqual({ created: true, job });
        expect(await store().get(job.jobId)).toEqual(job);
      });

      it('returns undefined for an unknown id', async () => {
        expect(await store().get(unique('j-missing'))).toBeUndefined();
      });

      it('keeps its own copy: changing a job after create or get changes nothing stored', async () => {
        const job = makeJob();
        const expected = structuredClone(job);
        await store().create(job);
        job.status = 'FAILED';
        job.history.push({ status: 'FAILED', at: at(0).toISOString(), attempt: 0 });
        job.recipe.script = 'changed';
        const got = await store().get(job.jobId);
        expect(got).toEqual(expected);
        if (got) {
          got.recipe.script = 'rm -rf /';
          got.history.length = 0;
        }
        expect(await store().get(job.jobId)).toEqual(expected);
      });

      it('a second create with the same id returns the existing job and writes nothing', async () => {
        const first = await created();
        const second = makeJob({
          jobId: first.jobId,
          owner: first.owner,
          createdAt: at(5 * MINUTE),
          extra: { requestHash: 'another-hash', name: 'other' },
        });
        const result = await store().create(second);
        expect(result).toEqual({ created: false, job: first });
        expect(await store().get(first.jobId)).toEqual(first);
      });

      it('two racing creates of one id: exactly one creates it', async () => {
        const a = makeJob();
        const b = { ...makeJob({ jobId: a.jobId, owner: a.owner }), requestHash: 'hash-b' };
        const [ra, rb] = await Promise.all([store().create(a), store().create(b)]);
        expect([ra.created, rb.created].filter(Boolean)).toHaveLength(1);
        const winner = ra.created ? a : b;
        expect(ra.job).toEqual(winner);
        expect(rb.job).toEqual(winner);
        expect(await store().get(a.jobId)).toEqual(winner);
      });
    });

    describe('apply', () => {
      it('writes the plan and returns the new job, as applyPlan computes it', async () => {
        const job = await created();
        const plan = claimPlan(job, 'agent-a', at(MINUTE));
        const next = await store().apply(plan);
        expect(next).toEqual(applyPlan(job, plan));
        expect(await store().get(job.jobId)).toEqual(next);
      });

      it('keeps its own copy: changing the plan or the returned job afterwards changes nothing stored', async () => {
        const job = await created();
        const plan = claimPlan(job, 'agent-a', at(MINUTE));
        const next = await store().apply(plan);
        const expected = structuredClone(next);
        if (plan.set.lease) plan.set.lease.holder = 'agent-mallory';
        plan.history.reason = 'rewritten';
        next.history.length = 0;
        if (next.lease) next.lease.expiresAt = 0;
        expect(await store().get(job.jobId)).toEqual(expected);
      });

      it('follows a job through to SUCCEEDED, removing the lease and setting finishedAt', async () => {
        const running = await claimed('agent-a');
        const artifact = { uri: 's3://b/a.qcow2', sha256: 'a'.repeat(64), sizeBytes: 42 };
        const uploadPlan = planTransition(running, { to: 'UPLOADING', holder: 'agent-a' }, at(2 * MINUTE));
        const uploading = await store().apply(uploadPlan);
        expect(uploading.lease).toEqual(running.lease);
        const donePlan = planTransition(
          uploading,
          { to: 'SUCCEEDED', holder: 'agent-a', set: { artifact } },
          at(3 * MINUTE),
        );
        const done = await store().apply(donePlan);
        expect(done).toEqual(applyPlan(uploading, donePlan));
        expect(done).not.toHaveProperty('lease');
        expect(done.finishedAt).toBe(at(3 * MINUTE).toISOString());
        expect(done.artifact).toEqual(artifact);
        expect(done.history.map((h) => h.status)).toEqual(['QUEUED', 'RUNNING', 'UPLOADING', 'SUCCEEDED']);
        expect(await store().get(running.jobId)).toEqual(done);
      });

      it('a requeue removes the lease and dispatchedAt', async () => {
        const job = await created();
        await store().markDispatched(job.jobId, at(10));
        const running = await store().apply(
          claimPlan((await store().get(job.jobId)) as Job, 'agent-a', at(MINUTE)),
        );
        expect(running.dispatchedAt).toBe(at(10).toISOString());
        const plan = planTransition(running, { to: 'QUEUED', reason: 'lease expired' }, at(5 * MINUTE));
        const queued = await store().apply(plan);
        expect(queued).toEqual(applyPlan(running, plan));
        expect(queued).not.toHaveProperty('lease');
        expect(queued).not.toHaveProperty('dispatchedAt');
        expect(await store().get(job.jobId)).toEqual(queued);
      });

      it('when two writers race with the same plan, exactly one wins (ConflictError for the other)', async () => {
        const jobs = await Promise.all(Array.from({ length: 4 }, () => created()));
        await Promise.all(
          jobs.map(async (job) => {
            const plan = claimPlan(job, 'agent-a', at(MINUTE));
            const results = await Promise.allSettled([store().apply(plan), store().apply(plan)]);
            expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
            expect(results.map(rejection).find(Boolean)).toBeInstanceOf(ConflictError);
            const stored = await store().get(job.jobId);
            expect(stored?.history).toHaveLength(2);
            expect(stored?.attempts).toBe(1);
          }),
        );
      });

      it('when two agents race to claim, the stored lease is the winner’s', async () => {
        const job = await created();
        const results = await Promise.allSettled([
          store().apply(claimPlan(job, 'agent-a', at(MINUTE))),
          store().apply(claimPlan(job, 'agent-b', at(MINUTE))),
        ]);
        const won = results.findIndex((r) => r.status === 'fulfilled');
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        expect(rejection(results[1 - won] as PromiseSettledResult<Job>)).toBeInstanceOf(ConflictError);
        const stored = await store().get(job.jobId);
        expect(stored?.lease?.holder).toBe(won === 0 ? 'agent-a' : 'agent-b');
      });

      it('when two writers race on a leased job, exactly one wins (LeaseLostError for the other)', async () => {
        const running = await claimed('agent-a');
        const plan = planTransition(running, { to: 'QUEUED', reason: 'lease expired' }, at(5 * MINUTE));
        const other = planTransition(running, { to: 'FAILED', reason: 'gave up' }, at(5 * MINUTE));
        const results = await Promise.allSettled([store().apply(plan), store().apply(other)]);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        expect(results.map(rejection).find(Boolean)).toBeInstanceOf(LeaseLostError);
        const stored = await store().get(running.jobId);
        expect(stored?.history).toHaveLength(3);
      });

      it('refuses a plan from another lease holder with LeaseLostError and changes nothing', async () => {
        const running = await claimed('agent-a');
        const plan = planTransition(running, { to: 'UPLOADING', holder: 'agent-b' }, at(2 * MINUTE));
        expect(plan.expectHolder).toBe('agent-b');
        const error = await caught(store().apply(plan));
        expect(error).toBeInstanceOf(LeaseLostError);
        expect(await store().get(running.jobId)).toEqual(running);
      });

      it('refuses a plan made from a stale status with ConflictError and changes nothing', async () => {
        const job = await created();
        const running = await store().apply(claimPlan(job, 'agent-a', at(MINUTE)));
        const stale = planTransition(job, { to: 'CANCELLED', reason: 'user' }, at(2 * MINUTE));
        expect(await caught(store().apply(stale))).toBeInstanceOf(ConflictError);
        expect(await store().get(job.jobId)).toEqual(running);
      });

      it('refuses a leased plan once the job left the leased status, with LeaseLostError', async () => {
        const running = await claimed('agent-a');
        await store().apply(planTransition(running, { to: 'QUEUED', reason: 'requeued' }, at(2 * MINUTE)));
        const late = planTransition(running, { to: 'UPLOADING', holder: 'agent-a' }, at(3 * MINUTE));
        expect(await caught(store().apply(late))).toBeInstanceOf(LeaseLostError);
        expect((await store().get(running.jobId))?.status).toBe('QUEUED');
      });

      it('refuses a plan for a job that does not exist, and does not create it', async () => {
        const ghost = makeJob();
        const error = await caught(store().apply(planTransition(ghost, { to: 'CANCELLED' }, at(MINUTE))));
        expect(error).toBeInstanceOf(ConflictError);
        expect(await store().get(ghost.jobId)).toBeUndefined();
      });
    });

    describe('listByOwner', () => {
      /** Five jobs of one owner created at distinct times, written out of order, plus another owner's. */
      async function seed(): Promise<{ owner: string; newestFirst: Job[] }> {
        const owner = unique('arn:aws:iam::111122223333:user/lister');
        const offsets = [3, 0, 4, 1, 2];
        const jobs = offsets.map((m) => makeJob({ owner, createdAt: at(m * MINUTE) }));
        for (const job of jobs) await store().create(job);
        const stranger = unique('arn:aws:iam::111122223333:user/stranger');
        await store().create(makeJob({ owner: stranger, createdAt: at(2 * MINUTE) }));
        await store().create(makeJob({ owner: stranger, createdAt: at(10 * MINUTE) }));
        const newestFirst = [...jobs].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
        return { owner, newestFirst };
      }

      it("lists only the owner's jobs, newest first", async () => {
        const { owner, newestFirst } = await seed();
        const page = await store().listByOwner(owner, { limit: 50 });
        expect(page.items.map((j) => j.jobId)).toEqual(newestFirst.map((j) => j.jobId));
        expect(page.items).toEqual(newestFirst);
        expect(page.nextToken).toBeUndefined();
      });

      it('returns nothing for an owner without jobs', async () => {
        const page = await store().listByOwner(unique('nobody'), { limit: 10 });
        expect(page).toEqual({ items: [] });
      });

      it('orders jobs created in the same instant by id, consistently across pages', async () => {
        const owner = unique('arn:aws:iam::111122223333:user/burst');
        const ids = ['j-b', 'j-d', 'j-a', 'j-c'].map((p) => `${p}-${randomUUID()}`);
        for (const jobId of ids) await store().create(makeJob({ owner, jobId, createdAt: at(MINUTE) }));
        const single = (await store().listByOwner(owner, { limit: 10 })).items.map((j) => j.jobId);
        expect(single).toEqual([...ids].sort().reverse());
        expect((await listAll(owner, 1)).ids).toEqual(single);
      });

      it.each([1, 2, 3, 5, 7])('pages of %i cover every job exactly once, in order', async (limit) => {
        const { owner, newestFirst } = await seed();
        const { ids, pages } = await listAll(owner, limit);
        expect(ids).toEqual(newestFirst.map((j) => j.jobId));
        expect(new Set(ids).size).toBe(ids.length);
        expect(pages).toBeGreaterThanOrEqual(Math.ceil(newestFirst.length / limit));
        expect(pages).toBeLessThanOrEqual(Math.ceil(newestFirst.length / limit) + 1);
      });

      it('filters by status, newest first, and pages through the filtered list', async () => {
        const { owner, newestFirst } = await seed();
        const [a, b, c, d] = newestFirst as [Job, Job, Job, Job, Job];
        await store().apply(claimPlan(b, 'agent-a', at(20 * MINUTE)));
        await store().apply(claimPlan(d, 'agent-b', at(21 * MINUTE)));
        await store().apply(planTransition(c, { to: 'CANCELLED', reason: 'user' }, at(22 * MINUTE)));

        const running = await store().listByOwner(owner, { limit: 10, status: 'RUNNING' });
        expect(running.items.map((j) => j.jobId)).toEqual([b.jobId, d.jobId]);
        expect(running.items.every((j) => j.status === 'RUNNING' && j.lease !== undefined)).toBe(true);

        const queued = await listAll(owner, 1, 'QUEUED');
        expect(queued.ids).toEqual(newestFirst.filter((j) => ![b, c, d].includes(j)).map((j) => j.jobId));
        expect(queued.ids[0]).toBe(a.jobId);

        const cancelled = await store().listByOwner(owner, { limit: 10, status: 'CANCELLED' });
        expect(cancelled.items.map((j) => j.jobId)).toEqual([c.jobId]);
        expect((await store().listByOwner(owner, { limit: 10, status: 'FAILED' })).items).toEqual([]);
        // The unfiltered listing still holds all five, in creation order.
        expect((await listAll(owner, 2)).ids).toEqual(newestFirst.map((j) => j.jobId));
      });

      it.each([
        ['not base64 JSON', 'definitely not a token!'],
        ['a JSON array', token([1, 2])],
        ['a JSON string', token('text')],
        ['a JSON number', token(7)],
        ['a JSON object of keys the store never returned', token({ jobId: 'j-x' })],
      ])('rejects a nextToken that is %s with ValidationError', async (_what, bad) => {
        const { owner } = await seed();
        const error = await caught(store().listByOwner(owner, { limit: 2, nextToken: bad }));
        expect(error).toBeInstanceOf(ValidationError);
        expect((error as ValidationError).httpStatus).toBe(400);
        expect((error as ValidationError).message).toContain('nextToken');
      });

      it("never returns another owner's jobs, whatever nextToken is passed", async () => {
        const { owner: alice } = await seed();
        const { owner: bob } = await seed();
        const bobsPage = await store().listByOwner(bob, { limit: 2 });
        expect(bobsPage.nextToken).toBeDefined();
        try {
          const page = await store().listByOwner(alice, {
            limit: 10,
            nextToken: bobsPage.nextToken as string,
          });
          for (const job of page.items) expect(job.owner).toBe(alice);
        } catch (error) {
          expect(error).toBeInstanceOf(ValidationError);
        }
      });
    });

    describe('listByStatus', () => {
      async function everyInStatus(status: JobStatus, limit: number): Promise<Job[]> {
        const all: Job[] = [];
        let nextToken: string | undefined;
        let pages = 0;
        do {
          const page = await store().listByStatus(status, limit, nextToken);
          expect(page.items.length).toBeLessThanOrEqual(limit);
          all.push(...page.items);
          nextToken = page.nextToken;
          pages += 1;
          expect(pages).toBeLessThan(1000);
        } while (nextToken);
        return all;
      }

      it('lists the jobs in one status, oldest change first, across pages', async () => {
        const mine = [7, 1, 5, 3].map((m) =>
          makeJob({ status: 'TIMED_OUT', extra: { updatedAt: at(m * MINUTE + 17).toISOString() } }),
        );
        for (const job of mine) await store().create(job);
        const elsewhere = await created();
        const ids = new Set(mine.map((j) => j.jobId));

        const all = await everyInStatus('TIMED_OUT', 2);
        expect(all.every((j) => j.status === 'TIMED_OUT')).toBe(true);
        expect(all.map((j) => j.jobId)).not.toContain(elsewhere.jobId);
        expect(new Set(all.map((j) => j.jobId)).size).toBe(all.length);
        const updated = all.map((j) => j.updatedAt);
        expect(updated).toEqual([...updated].sort());
        const found = all.filter((j) => ids.has(j.jobId));
        expect(found.map((j) => j.jobId)).toEqual(
          [...mine].sort((a, b) => a.updatedAt.localeCompare(b.updatedAt)).map((j) => j.jobId),
        );
        expect(found).toEqual([...mine].sort((a, b) => a.updatedAt.localeCompare(b.updatedAt)));
      });

      it('follows a transition: a claimed job leaves QUEUED and appears under RUNNING', async () => {
        const job = await created();
        expect((await everyInStatus('QUEUED', 50)).map((j) => j.jobId)).toContain(job.jobId);
        await store().apply(claimPlan(job, 'agent-a', at(MINUTE)));
        expect((await everyInStatus('QUEUED', 50)).map((j) => j.jobId)).not.toContain(job.jobId);
        expect((await everyInStatus('RUNNING', 50)).map((j) => j.jobId)).toContain(job.jobId);
      });

      it('rejects an invalid nextToken with ValidationError', async () => {
        const error = await caught(store().listByStatus('QUEUED', 5, 'garbage!'));
        expect(error).toBeInstanceOf(ValidationError);
      });
    });

    describe('markDispatched', () => {
      it('records dispatchedAt on a QUEUED job and nothing else', async () => {
        const job = await created();
        await store().markDispatched(job.jobId, at(5_000));
        expect(await store().get(job.jobId)).toEqual({ ...job, dispatchedAt: at(5_000).toISOString() });
      });

      it('a later mark replaces the earlier one while the job is QUEUED', async () => {
        const job = await created();
        await store().markDispatched(job.jobId, at(5_000));
        await store().markDispatched(job.jobId, at(9_000));
        expect((await store().get(job.jobId))?.dispatchedAt).toBe(at(9_000).toISOString());
      });

      it.each(['RUNNING', 'CANCELLED'] as const)('is silently ignored once the job is %s', async (status) => {
        const job = await created();
        const moved = await store().apply(
          status === 'RUNNING'
            ? claimPlan(job, 'agent-a', at(MINUTE))
            : planTransition(job, { to: 'CANCELLED' }, at(MINUTE)),
        );
        await expect(store().markDispatched(job.jobId, at(2 * MINUTE))).resolves.toBeUndefined();
        expect(await store().get(job.jobId)).toEqual(moved);
      });

      it('is silently ignored for an unknown job, and does not create it', async () => {
        const id = unique('j-ghost');
        await expect(store().markDispatched(id, at(0))).resolves.toBeUndefined();
        expect(await store().get(id)).toBeUndefined();
      });
    });

    describe('requestCancel', () => {
      it.each(['RUNNING', 'UPLOADING'] as const)('flags a %s job and returns it', async (status) => {
        let job = await claimed('agent-a');
        if (status === 'UPLOADING') {
          job = await store().apply(
            planTransition(job, { to: 'UPLOADING', holder: 'agent-a' }, at(2 * MINUTE)),
          );
        }
        const flagged = await store().requestCancel(job.jobId, at(3 * MINUTE));
        expect(flagged).toEqual({ ...job, cancelRequested: true, updatedAt: at(3 * MINUTE).toISOString() });
        expect(await store().get(job.jobId)).toEqual(flagged);
      });

      it.each(['QUEUED', 'REGISTERING', 'SUCCEEDED', 'CANCELLED', 'FAILED'] as const)(
        'refuses a %s job with ConflictError and changes nothing',
        async (status) => {
          const job = await created({ status });
          const error = await caught(store().requestCancel(job.jobId, at(2 * MINUTE)));
          expect(error).toBeInstanceOf(ConflictError);
          expect(await store().get(job.jobId)).toEqual(job);
        },
      );

      it('refuses an unknown job with ConflictError, and does not create it', async () => {
        const id = unique('j-ghost');
        expect(await caught(store().requestCancel(id, at(0)))).toBeInstanceOf(ConflictError);
        expect(await store().get(id)).toBeUndefined();
      });
    });

    describe('renewLease', () => {
      it('extends the lease of its holder and changes nothing else', async () => {
        const running = await claimed('agent-a');
        const until = at(10 * MINUTE).getTime();
        const renewed = await store().renewLease(running.jobId, 'agent-a', until);
        expect(renewed).toEqual({ ...running, lease: { holder: 'agent-a', expiresAt: until } });
        expect(await store().get(running.jobId)).toEqual(renewed);
      });

      it('works while UPLOADING too', async () => {
        const running = await claimed('agent-a');
        await store().apply(planTransition(running, { to: 'UPLOADING', holder: 'agent-a' }, at(2 * MINUTE)));
        const renewed = await store().renewLease(running.jobId, 'agent-a', at(9 * MINUTE).getTime());
        expect(renewed.status).toBe('UPLOADING');
        expect(renewed.lease).toEqual({ holder: 'agent-a', expiresAt: at(9 * MINUTE).getTime() });
      });

      it('returns the job with a cancel request visible to the agent', async () => {
        const running = await claimed('agent-a');
        await store().requestCancel(running.jobId, at(2 * MINUTE));
        const renewed = await store().renewLease(running.jobId, 'agent-a', at(6 * MINUTE).getTime());
        expect(renewed.cancelRequested).toBe(true);
        expect(renewed.lease?.expiresAt).toBe(at(6 * MINUTE).getTime());
      });

      it('refuses anyone but the holder with LeaseLostError and changes nothing', async () => {
        const running = await claimed('agent-a');
        const error = await caught(store().renewLease(running.jobId, 'agent-b', at(10 * MINUTE).getTime()));
        expect(error).toBeInstanceOf(LeaseLostError);
        expect(await store().get(running.jobId)).toEqual(running);
      });

      it('refuses the former holder once the job was requeued', async () => {
        const running = await claimed('agent-a');
        const queued = await store().apply(planTransition(running, { to: 'QUEUED' }, at(3 * MINUTE)));
        const error = await caught(store().renewLease(running.jobId, 'agent-a', at(10 * MINUTE).getTime()));
        expect(error).toBeInstanceOf(LeaseLostError);
        expect(await store().get(running.jobId)).toEqual(queued);
      });

      it('refuses a finished job even if it still carried a lease', async () => {
        const running = await claimed('agent-a');
        const job = makeJob({ status: 'SUCCEEDED', extra: { lease: running.lease } });
        await store().create(job);
        expect(
          await caught(store().renewLease(job.jobId, 'agent-a', at(10 * MINUTE).getTime())),
        ).toBeInstanceOf(LeaseLostError);
        expect(await store().get(job.jobId)).toEqual(job);
      });

      it('refuses a QUEUED job and an unknown one, creating nothing', async () => {
        const job = await created();
        expect(await caught(store().renewLease(job.jobId, 'agent-a', at(MINUTE).getTime()))).toBeInstanceOf(
          LeaseLostError,
        );
        expect(await store().get(job.jobId)).toEqual(job);
        const id = unique('j-ghost');
        expect(await caught(store().renewLease(id, 'agent-a', at(MINUTE).getTime()))).toBeInstanceOf(
          LeaseLostError,
        );
        expect(await store().get(id)).toBeUndefined();
      });
    });
  });
}
