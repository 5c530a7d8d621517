import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeAutoScalingClient } from '../../adapters/clients';
import type { JobBody } from '../../local/client';
import type { LocalAutoscaling } from '../../local/scaler';
import { type E2EStack, scriptJob, startE2EStack, waitUntil, X86 } from '../support/local';

const MAX = 4;
const JOBS = 20;
const IDLE_TIMEOUT_SECONDS = 3;

/**
 * Issue 6 in local mode: the stack idles at 0 agents; a burst of jobs makes the scaler (the AWS
 * scaler's code, on a timer) raise the pool's Auto Scaling group to its maximum on the simulator,
 * whose instances are real agent processes; when the queue is drained and the agents have been
 * idle for the idle timeout, the scaler terminates them by name, back to 0. Busy agents hold
 * scale-in protection, and no build is interrupted: every job succeeds on its first attempt
 * without a hand-back.
 */
describe('local mode: the fleet scales with the queue', () => {
  let stack: E2EStack;
  let autoscaling: LocalAutoscaling;
  let groupName: string;

  beforeAll(async () => {
    stack = await startE2EStack({
      config: {
        pools: [
          { name: X86, arch: 'x86_64', instanceTypes: ['c7i.large'], minCapacity: 0, maxCapacity: MAX },
        ],
      },
      registration: false,
      autoscale: {
        intervalMs: 500,
        bootDelayMs: 200,
        settings: { idleTimeoutSeconds: IDLE_TIMEOUT_SECONDS },
        // Warm headroom would keep an idle agent while the burst's claims are recent.
        arrivalWindowSeconds: 0,
      },
    });
    if (!stack.autoscaling) throw new Error('autoscaling is off');
    autoscaling = stack.autoscaling;
    groupName = autoscaling.groups[X86] as string;
  });

  afterAll(async () => {
    await stack?.stop();
  });

  async function describeGroup() {
    const client = makeAutoScalingClient(stack.state.region, stack.state.endpoints.autoscaling);
    try {
      const out = await client.send(
        new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [groupName] }),
      );
      const group = out.AutoScalingGroups?.[0];
      if (!group) throw new Error(`no group ${groupName}`);
      return group;
    } finally {
      client.destroy();
    }
  }

  it(`a burst of ${JOBS} jobs on an idle stack scales 0 → ${MAX} (max) and back to 0; no build is interrupted`, async () => {
    const idle = await describeGroup();
    expect(idle).toMatchObject({ MinSize: 0, MaxSize: MAX, DesiredCapacity: 0 });
    expect(idle.Instances ?? []).toEqual([]);
    expect(stack.fleet.list()).toEqual([]);

    // Busy agents hold scale-in protection: the most instances seen protected at once.
    let sampling = true;
    let mostProtected = 0;
    const sampler = (async () => {
      while (sampling) {
        const group = await describeGroup();
        const protectedNow = (group.Instances ?? []).filter((i) => i.ProtectedFromScaleIn).length;
        mostProtected = Math.max(mostProtected, protectedNow);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    const script = 'sleep 1.5\nhead -c 4096 /dev/urandom > image.raw';
    const submitted = await Promise.all(
      Array.from({ length: JOBS }, () => stack.alice.submit(scriptJob(script))),
    );
    expect(submitted.every((r) => r.status === 202)).toBe(true);
    const ids = submitted.map((r) => r.body.jobId);

    const done: JobBody[] = [];
    for (const id of ids) done.push(await stack.alice.waitFor(id, undefined, 50_000));
    const peak = autoscaling.simulator.sim.stats().peakInstances[groupName];

    // Back to 0 once the agents have been idle for the idle timeout.
    const drained = await waitUntil(
      'the group back at 0 instances',
      async () => {
        const group = await describeGroup();
        return group.DesiredCapacity === 0 && (group.Instances ?? []).length === 0 ? group : undefined;
      },
      20_000,
      100,
    );
    sampling = false;
    await sampler;
    await waitUntil(
      'every agent process gone',
      () => (stack.fleet.list().length === 0 ? true : undefined),
      10_000,
    );

    expect(drained.DesiredCapacity).toBe(0);
    expect(peak).toBe(MAX);
    for (const job of done) {
      expect(job.status, job.jobId).toBe('SUCCEEDED');
      expect(job.attempts, job.jobId).toBe(1);
      expect(job.handBacks, job.jobId).toBe(0);
      expect(job.history.map((h) => h.status)).toEqual(['QUEUED', 'RUNNING', 'UPLOADING', 'SUCCEEDED']);
    }
    const stats = autoscaling.simulator.sim.stats();
    expect(stats.launches).toBe(MAX);
    // Every instance left by name, chosen idle by the scaler, with desired capacity decremented:
    // Auto Scaling itself never picked one, and none was protected (busy) when it went.
    expect(stats.terminations).toHaveLength(MAX);
    for (const t of stats.terminations) {
      expect(t).toMatchObject({ cause: 'requested', decrement: true, wasProtected: false });
    }
    // Each agent completed the termination lifecycle action itself (no hook timeout).
    expect(stats.lifecycleActionsCompleted).toBe(MAX);
    expect(stats.lifecycleActionsTimedOut).toBe(0);
    expect(mostProtected).toBe(MAX);
  });

  it('a spot interruption notice hands the running build back at once; it is rebuilt on a new instance, and the hand-back is no failure', async () => {
    const before = autoscaling.simulator.sim.stats().terminations.length;
    const script = 'sleep 4\nhead -c 4096 /dev/urandom > image.raw';
    const submitted = await stack.alice.submit(scriptJob(script));
    const { jobId } = submitted.body;
    const running = await stack.alice.waitFor(
      jobId,
      (j) => j.status === 'RUNNING' && j.leaseHolder !== undefined,
      30_000,
    );
    const interrupted = running.leaseHolder as string;
    // EC2 would reclaim it in a minute; the agent reacts to the notice, the scaler to the agent.
    autoscaling.simulator.sim.interruptSpot(interrupted, 60_000);

    const done = await stack.alice.waitFor(jobId, undefined, 40_000);
    expect(done.status).toBe('SUCCEEDED');
    expect(done.history.map((h) => h.status)).toEqual([
      'QUEUED',
      'RUNNING',
      'QUEUED',
      'RUNNING',
      'UPLOADING',
      'SUCCEEDED',
    ]);
    expect(done.history[2]?.reason).toMatch(/handed back/);
    // A hand-back is not a failed attempt: the attempt budget (attempts − hand-backs) is untouched.
    expect(done.handBacks).toBe(1);
    expect(done.attempts).toBe(2);
    expect(done.history[1]?.reason).toContain(interrupted);
    expect(done.history[3]?.reason).toMatch(/^claimed by i-/);
    expect(done.history[3]?.reason).not.toContain(interrupted);
    const released = autoscaling.simulator.sim.stats().terminations.slice(before);
    expect(released).toContainEqual(expect.objectContaining({ instanceId: interrupted, cause: 'requested' }));
    expect(released.some((t) => t.cause === 'spot-reclaimed')).toBe(false);
  });
});
