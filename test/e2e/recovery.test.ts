import { join } from 'node:path';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueKey } from '../../infra/definitions';
import {
  type E2EStack,
  groupAlive,
  processAlive,
  readIfExists,
  scriptJob,
  startE2EStack,
  tempDir,
  waitUntil,
  X86,
} from '../support/local';

/**
 * The walking skeleton's guarantees, end to end in local mode: real agent processes, the real
 * handlers behind the local HTTP server, emulated DynamoDB/SQS/S3.
 */
describe('local mode: no job is lost, none is built twice', () => {
  let stack: E2EStack;
  let failNextDispatch = false;
  let dir: string;

  beforeAll(async () => {
    dir = await tempDir('kiln-e2e-');
    stack = await startE2EStack({
      wrapDispatcher: (inner) => ({
        dispatch: async (job) => {
          if (failNextDispatch) {
            failNextDispatch = false;
            throw new Error('injected crash between the job write and the enqueue');
          }
          return inner.dispatch(job);
        },
      }),
    });
    stack.fleet.spawn(X86);
    stack.fleet.spawn(X86);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('an agent killed with SIGKILL mid-build: the job is retried and SUCCEEDS (attempts = 2)', async () => {
    const state = join(dir, 'sigkill');
    const script = [
      'mkdir -p "$STATE"',
      'if [ ! -e "$STATE/first.pid" ]; then echo $$ > "$STATE/first.pid"; echo first attempt; sleep 120; fi',
      'head -c 65536 /dev/urandom > image.raw',
    ].join('\n');
    const submitted = await stack.alice.submit(
      scriptJob(script, {
        recipe: { builder: 'script', script, artifact: 'image.raw', env: { STATE: state } },
      }),
    );
    expect(submitted.status).toBe(202);
    const { jobId } = submitted.body;
    const running = await stack.alice.waitFor(
      jobId,
      (j) => j.status === 'RUNNING' && j.leaseHolder !== undefined,
    );
    const firstPid = Number(
      await waitUntil('first attempt pid', () => readIfExists(join(state, 'first.pid'))),
    );

    await stack.fleet.kill(running.leaseHolder as string, 'SIGKILL');
    // The agent died with its instance; on a real host its build dies too.
    process.kill(-firstPid, 'SIGKILL');
    stack.fleet.spawn(X86);

    const done = await stack.alice.waitFor(jobId);
    expect(done.status).toBe('SUCCEEDED');
    expect(done.attempts).toBe(2);
    expect(done.artifact?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(done.history.map((h) => h.status)).toEqual([
      'QUEUED',
      'RUNNING',
      'QUEUED',
      'RUNNING',
      'UPLOADING',
      'SUCCEEDED',
    ]);
    expect(done.history[2]?.reason).toMatch(/lease .* expired/);
  });

  it('the same SQS message delivered twice: one build', async () => {
    const counter = join(dir, 'dup-counter');
    const script = 'echo build >> "$COUNTER"\nhead -c 4096 /dev/urandom > image.raw';
    const submitted = await stack.alice.submit(
      scriptJob(script, {
        recipe: { builder: 'script', script, artifact: 'image.raw', env: { COUNTER: counter } },
      }),
    );
    const { jobId } = submitted.body;
    await stack.clients.sqs.send(
      new SendMessageCommand({
        QueueUrl: stack.state.queueUrls[queueKey(X86, 'normal')],
        MessageBody: JSON.stringify({ jobId }),
      }),
    );
    const done = await stack.alice.waitFor(jobId);
    expect(done.status).toBe('SUCCEEDED');
    await waitUntil('both deliveries consumed', async () =>
      (await stack.queueDepth(X86)) === 0 ? true : undefined,
    );
    expect((await readIfExists(counter))?.trim().split('\n')).toEqual(['build']);
    expect(done.attempts).toBe(1);
  });

  it('a crash between the job write and the enqueue: the sweeper sends it and it SUCCEEDS', async () => {
    failNextDispatch = true;
    const submitted = await stack.alice.submit(scriptJob('head -c 1024 /dev/urandom > image.raw'));
    expect(submitted.status).toBe(202);
    expect(failNextDispatch).toBe(false);
    const done = await stack.alice.waitFor(submitted.body.jobId);
    expect(done.status).toBe('SUCCEEDED');
    expect(done.attempts).toBe(1);
  });

  it('a build that exits non-zero: FAILED with the exit code and the log tail', async () => {
    const submitted = await stack.alice.submit(scriptJob('echo preparing\necho boom-detail >&2\nexit 7'));
    const done = await stack.alice.waitFor(submitted.body.jobId);
    expect(done.status).toBe('FAILED');
    expect(done.error?.code).toBe('BUILD_FAILED');
    expect(done.error?.message).toMatch(/exit(ed)? (with )?(code )?7|code 7/);
    expect(done.error?.message).toContain('boom-detail');
    const logs = await stack.alice.logs(submitted.body.jobId);
    expect(logs.body.text).toContain('boom-detail');
    expect(logs.body.complete).toBe(true);
  });

  it('cancel of a queued job: CANCELLED at once', async () => {
    // No agent serves the aarch64 pool in this stack, so the job stays queued.
    const submitted = await stack.alice.submit({ ...scriptJob('true'), arch: 'aarch64' });
    expect(submitted.body.status).toBe('QUEUED');
    expect((await stack.bob.cancel(submitted.body.jobId)).status).toBe(404);
    const cancelled = await stack.alice.cancel(submitted.body.jobId);
    expect(cancelled.status).toBe(202);
    expect(cancelled.body.status).toBe('CANCELLED');
    expect((await stack.alice.cancel(submitted.body.jobId)).status).toBe(409);
  });

  it('cancel of a running job: CANCELLED, its whole process tree gone, output readable while it ran', async () => {
    const state = join(dir, 'cancel');
    const script = [
      'mkdir -p "$STATE"',
      'sleep 300 &',
      'echo $! > "$STATE/child.pid"',
      'echo $$ > "$STATE/leader.pid"',
      'echo sleeping-now',
      'wait',
    ].join('\n');
    const submitted = await stack.alice.submit(
      scriptJob(script, {
        recipe: { builder: 'script', script, artifact: 'image.raw', env: { STATE: state } },
      }),
    );
    const { jobId } = submitted.body;
    const leader = Number(await waitUntil('build started', () => readIfExists(join(state, 'leader.pid'))));
    const child = Number(await waitUntil('child started', () => readIfExists(join(state, 'child.pid'))));
    const live = await waitUntil('output while running', async () => {
      const res = await stack.alice.logs(jobId);
      return res.body.text.includes('sleeping-now') ? res.body : undefined;
    });
    expect(live.status).toBe('RUNNING');
    expect(live.complete).toBe(false);

    expect((await stack.bob.cancel(jobId)).status).toBe(404);
    expect((await stack.alice.cancel(jobId)).status).toBe(202);
    const done = await stack.alice.waitFor(jobId, undefined, 15_000);
    expect(done.status).toBe('CANCELLED');
    expect(groupAlive(leader)).toBe(false);
    expect(processAlive(child)).toBe(false);
  });

  it('a build over its timeout: TIMED_OUT', async () => {
    const submitted = await stack.alice.submit(scriptJob('echo waiting\nsleep 60', { timeoutSeconds: 1 }));
    const done = await stack.alice.waitFor(submitted.body.jobId, undefined, 20_000);
    expect(done.status).toBe('TIMED_OUT');
    expect(done.error?.code).toBe('BUILD_TIMED_OUT');
    expect(done.error?.message).toContain('waiting');
  });

  it('SIGTERM: the agent hands its job back at once and another agent finishes it', async () => {
    const state = join(dir, 'sigterm');
    const script = [
      'mkdir -p "$STATE"',
      'if [ ! -e "$STATE/first" ]; then touch "$STATE/first"; sleep 120; fi',
      'head -c 2048 /dev/urandom > image.raw',
    ].join('\n');
    const submitted = await stack.alice.submit(
      scriptJob(script, {
        recipe: { builder: 'script', script, artifact: 'image.raw', env: { STATE: state } },
      }),
    );
    const { jobId } = submitted.body;
    const running = await stack.alice.waitFor(
      jobId,
      (j) => j.status === 'RUNNING' && j.leaseHolder !== undefined,
    );
    await waitUntil('first attempt started', () => readIfExists(join(state, 'first')));
    const exit = stack.fleet.kill(running.leaseHolder as string, 'SIGTERM');
    stack.fleet.spawn(X86);
    expect(await exit).toBe(0);
    const done = await stack.alice.waitFor(jobId);
    expect(done.status).toBe('SUCCEEDED');
    expect(done.attempts).toBe(2);
    expect(done.handBacks).toBe(1);
    expect(done.history.some((h) => h.status === 'QUEUED' && /handed back/.test(h.reason ?? ''))).toBe(true);
  });
});

describe('local mode: a poison message', () => {
  let stack: E2EStack;
  beforeAll(async () => {
    stack = await startE2EStack({ config: { maxReceiveCount: 2 } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('ends in the DLQ and its job is FAILED with why', async () => {
    // No agent serves aarch64 here: the test plays a consumer that never finishes the job.
    const { body: job } = await stack.alice.submit({ ...scriptJob('true'), arch: 'aarch64' });
    const url = stack.state.queueUrls[queueKey('general-aarch64', 'normal')];
    for (let i = 0; i < 3; i += 1) {
      await stack.clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: url, VisibilityTimeout: 0, WaitTimeSeconds: 0 }),
      );
    }
    const done = await stack.alice.waitFor(job.jobId, undefined, 15_000);
    expect(done.status).toBe('FAILED');
    expect(done.error?.message).toMatch(/dead-letter queue kiln-general-aarch64-normal-dlq/);
  });
});
