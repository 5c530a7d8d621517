import type { Logger } from '@aws-lambda-powertools/logger';
import { ConflictError, LeaseLostError } from '../core/errors';
import type { Job, Priority } from '../core/job';
import { decideDelivery, type LeasePolicy } from '../core/lease';
import { type MinimumShares, priorityOrder, recordStart } from '../core/priority';
import {
  artifactLocation,
  registrationExecutionName,
  registrationInput,
  wantsImage,
} from '../core/registration';
import { planTransition, type TransitionRequest } from '../core/transitions';
import { removeWorkDir, runScriptBuild, type ScriptBuildResult } from './builders/script';
import { LogShipper } from './log-shipper';
import type {
  AgentJobStore,
  AgentStatusReporter,
  ArtifactStore,
  JobQueue,
  QueueMessage,
  Registrar,
  StoredArtifact,
} from './ports';

export interface AgentSettings extends LeasePolicy {
  agentId: string;
  pool: string;
  heartbeatSeconds: number;
  /** Parent of the per-job working directories. */
  workRoot: string;
  /** Concurrent jobs this agent runs. */
  slots: number;
  /** Minimum share of starts per lower class under saturation (core/priority.ts). */
  minimumShares: MinimumShares;
  /** Long-poll wait per receive. */
  pollSeconds: number;
  logFlushMs: number;
  uploadAttempts: number;
  /** Keep working directories of failed builds for debugging. */
  keepFailedWorkDirs: boolean;
}

export interface AgentDeps {
  queue: JobQueue;
  store: AgentJobStore;
  artifacts: ArtifactStore;
  /** Busy/idle reports for the fleet's scaler (scale-in protection, idle detection). */
  status?: AgentStatusReporter;
  /** Absent where no register workflow is deployed; jobs with image targets then fail clearly. */
  registrar?: Registrar;
  settings: AgentSettings;
  logger: Logger;
  clock?: () => Date;
  /** Observes job milestones (metrics). */
  onMilestone?: (
    name: 'started' | 'succeeded' | 'failed',
    job: Job,
    seconds?: Record<string, number>,
  ) => void;
}

type StopReason = 'cancel' | 'shutdown' | 'lease-lost';

/** Starts remembered for the fair-share order: enough for a 10% share to show, short enough to react. */
const FAIR_SHARE_WINDOW = 20;

/**
 * The build agent: takes jobs from its pool's queues, claims each with a lease, runs the build,
 * uploads the image and records the outcome. Every write is a compare-and-set on the lease, so
 * a job this agent lost can never be finished by it.
 */
export class Agent {
  private readonly stopping = new AbortController();
  private readonly running = new Map<string, AbortController & { reason?: StopReason }>();
  private readonly clock: () => Date;
  private loops: Promise<void>[] = [];
  private lastBusyAt: Date | undefined;
  /** Classes of this agent's recent starts, for the fair-share order of its queues. */
  private recentStarts: Priority[] = [];
  private statusTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: AgentDeps) {
    this.clock = deps.clock ?? (() => new Date());
  }

  get activeJobs(): string[] {
    return [...this.running.keys()];
  }

  start(): void {
    for (let slot = 0; slot < this.deps.settings.slots; slot += 1) this.loops.push(this.loop(slot));
    if (this.deps.status) {
      void this.reportStatus();
      this.statusTimer = setInterval(
        () => void this.reportStatus(),
        this.deps.settings.heartbeatSeconds * 1000,
      );
    }
  }

  private async reportStatus(): Promise<void> {
    const { status, settings, logger } = this.deps;
    if (!status) return;
    const now = this.clock();
    if (this.running.size > 0) this.lastBusyAt = now;
    try {
      await status.report({
        agentId: settings.agentId,
        pool: settings.pool,
        busySlots: this.running.size,
        slots: settings.slots,
        ...(this.lastBusyAt ? { lastBusyAt: this.lastBusyAt.toISOString() } : {}),
        at: now.toISOString(),
        accepting: !this.stopping.signal.aborted,
        jobIds: this.activeJobs,
      });
    } catch (error) {
      logger.warn('status report failed', { error: error as Error });
    }
  }

  /** Stops taking work and hands running jobs back at once; resolves when every slot is idle. */
  async stop(): Promise<void> {
    this.stopping.abort();
    for (const control of this.running.values()) {
      control.reason ??= 'shutdown';
      control.abort();
    }
    await Promise.all(this.loops);
    if (this.statusTimer) clearInterval(this.statusTimer);
    await this.reportStatus();
  }

  private async loop(slot: number): Promise<void> {
    const { queue, logger, settings } = this.deps;
    while (!this.stopping.signal.aborted) {
      let message: QueueMessage | undefined;
      try {
        message = await queue.receive(
          settings.pollSeconds,
          this.stopping.signal,
          priorityOrder(this.recentStarts, settings.minimumShares),
        );
      } catch (error) {
        if (this.stopping.signal.aborted) break;
        logger.warn('receive failed; retrying', { slot, error: error as Error });
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (!message) continue;
      if (this.stopping.signal.aborted) {
        await queue.release(message).catch(() => undefined);
        break;
      }
      try {
        await this.handle(message);
      } catch (error) {
        // The message stays in flight and reappears after its visibility timeout.
        logger.error('job handling failed', { jobId: message.jobId, error: error as Error });
      }
    }
  }

  private async handle(message: QueueMessage): Promise<void> {
    const { store, queue, settings, logger } = this.deps;
    let job = await store.get(message.jobId);
    let decision = decideDelivery(job, this.clock(), settings);
    if (decision.action === 'requeue' && job) {
      try {
        job = await store.apply(planTransition(job, { to: 'QUEUED', reason: decision.reason }, this.clock()));
        decision = decideDelivery(job, this.clock(), settings);
      } catch (error) {
        if (!(error instanceof ConflictError || error instanceof LeaseLostError)) throw error;
        decision = { action: 'drop', reason: 'another agent recovered the job first' };
      }
    }
    if (decision.action === 'cancel' && job) {
      await this.deps.store
        .apply(planTransition(job, { to: 'CANCELLED', reason: decision.reason }, this.clock()))
        .catch((error: unknown) => {
          if (!(error instanceof ConflictError || error instanceof LeaseLostError)) throw error;
        });
      await queue.ack(message);
      return;
    }
    if (decision.action === 'fail' && job) {
      await this.finish(job, {
        to: 'FAILED',
        reason: decision.reason,
        error: { code: 'AGENT_LOST', message: decision.reason },
      }).catch((error: unknown) => {
        if (!(error instanceof ConflictError || error instanceof LeaseLostError)) throw error;
      });
      await queue.ack(message);
      return;
    }
    if (decision.action === 'drop' || !job) {
      logger.info('dropping message', {
        jobId: message.jobId,
        reason: decision.action === 'drop' ? decision.reason : '',
      });
      await queue.ack(message);
      return;
    }
    const now = this.clock();
    let claimed: Job;
    try {
      claimed = await store.apply(
        planTransition(
          job,
          {
            to: 'RUNNING',
            reason: `claimed by ${settings.agentId}`,
            holder: settings.agentId,
            set: {
              attempts: job.attempts + 1,
              lease: { holder: settings.agentId, expiresAt: now.getTime() + settings.leaseSeconds * 1000 },
              ...(job.startedAt ? {} : { startedAt: now.toISOString() }),
            },
          },
          now,
        ),
      );
    } catch (error) {
      if (!(error instanceof ConflictError)) throw error;
      logger.info('job claimed elsewhere; dropping duplicate delivery', { jobId: job.jobId });
      await queue.ack(message);
      return;
    }
    this.recentStarts = recordStart(this.recentStarts, message.priority, FAIR_SHARE_WINDOW);
    await this.run(claimed, message);
  }

  private finish(job: Job, request: TransitionRequest): Promise<Job> {
    return this.deps.store.apply(
      planTransition(job, { holder: this.deps.settings.agentId, ...request }, this.clock()),
    );
  }

  private async run(job: Job, message: QueueMessage): Promise<void> {
    const { store, queue, artifacts, settings, logger } = this.deps;
    const control: AbortController & { reason?: StopReason } = new AbortController();
    this.running.set(job.jobId, control);
    await this.reportStatus();
    const stopWith = (reason: StopReason) => {
      control.reason ??= reason;
      control.abort();
    };
    if (this.stopping.signal.aborted) stopWith('shutdown');
    let current = job;
    const heartbeat = setInterval(() => {
      const expiresAt = this.clock().getTime() + settings.leaseSeconds * 1000;
      store
        .renewLease(job.jobId, settings.agentId, expiresAt)
        .then((fresh) => {
          current = fresh;
          if (fresh.cancelRequested) stopWith('cancel');
        })
        .catch((error: unknown) => {
          if (error instanceof LeaseLostError) stopWith('lease-lost');
          else logger.warn('lease renewal failed', { jobId: job.jobId, error: error as Error });
        });
      queue.extend(message, settings.leaseSeconds).catch((error: unknown) => {
        logger.warn('visibility extension failed', { jobId: job.jobId, error: error as Error });
      });
    }, settings.heartbeatSeconds * 1000);

    const shipper = new LogShipper({
      sink: (seq, chunk) => artifacts.appendLog(job.jobId, job.attempts, seq, chunk),
      flushIntervalMs: settings.logFlushMs,
      maxChunkBytes: 256 * 1024,
    });
    shipper.write(
      Buffer.from(`=== kiln: job ${job.jobId} attempt ${job.attempts} on ${settings.agentId} ===\n`),
    );
    this.deps.onMilestone?.('started', job, {
      queueWait: (this.clock().getTime() - Date.parse(job.createdAt)) / 1000,
    });

    let build: ScriptBuildResult | undefined;
    const buildStart = this.clock().getTime();
    try {
      build = await runScriptBuild({
        jobId: job.jobId,
        script: job.recipe.script,
        artifact: job.recipe.artifact,
        ...(job.recipe.env ? { env: job.recipe.env } : {}),
        workRoot: settings.workRoot,
        timeoutMs: (job.timeoutSeconds ?? 3600) * 1000,
        signal: control.signal,
        onOutput: (chunk) => shipper.write(chunk),
      });
      await this.conclude(
        current,
        message,
        build,
        shipper,
        control,
        (this.clock().getTime() - buildStart) / 1000,
      );
    } finally {
      clearInterval(heartbeat);
      this.running.delete(job.jobId);
      this.lastBusyAt = this.clock();
      await this.reportStatus();
      await shipper
        .close()
        .catch((error: unknown) => logger.warn('log shipping failed', { error: error as Error }));
      if (build && (build.outcome === 'succeeded' || !settings.keepFailedWorkDirs)) {
        await removeWorkDir(build.workDir).catch(() => undefined);
      }
    }
  }

  /**
   * Hands the job to the register workflow. The REGISTERING write comes first: if the start then
   * fails, the sweeper sees a registration that never started and starts it.
   */
  private async register(job: Job, artifact: StoredArtifact, seconds: Record<string, number>): Promise<void> {
    const { registrar, logger } = this.deps;
    if (!registrar) {
      const message = 'this deployment has no register workflow; submit the job without aws-ami targets';
      const failed = await this.finish(job, {
        to: 'FAILED',
        reason: message,
        set: { artifact },
        error: { code: 'REGISTER_FAILED', message },
      });
      this.deps.onMilestone?.('failed', failed, seconds);
      return;
    }
    const now = this.clock();
    const executionName = registrationExecutionName(job.jobId, 1);
    const registering = await this.finish(job, {
      to: 'REGISTERING',
      reason: 'artifact uploaded; registering the image',
      set: { artifact, registration: { executionName, attempt: 1, startedAt: now.toISOString() } },
    });
    try {
      await registrar.start(
        executionName,
        registrationInput(registering, artifactLocation(artifact.uri), registrar.target, now),
      );
    } catch (error) {
      logger.warn('starting the registration failed; the sweeper will start it', {
        jobId: job.jobId,
        error: error as Error,
      });
    }
  }

  private async conclude(
    job: Job,
    message: QueueMessage,
    build: ScriptBuildResult,
    shipper: LogShipper,
    control: AbortController & { reason?: StopReason },
    buildSeconds: number,
  ): Promise<void> {
    const { queue, artifacts, settings, logger } = this.deps;
    if (control.reason === 'lease-lost') {
      // Someone else owns the job now; touching it or its message would undo their work.
      logger.warn('lease lost; abandoning the build', { jobId: job.jobId });
      return;
    }
    if (control.reason === 'shutdown') {
      await shipper.write(Buffer.from('\n=== kiln: agent shutting down; job handed back ===\n'));
      await shipper.flush().catch(() => undefined);
      await this.finish(job, {
        to: 'QUEUED',
        reason: `handed back by ${settings.agentId} on shutdown`,
        set: { handBacks: job.handBacks + 1 },
      });
      await queue.release(message);
      return;
    }
    const flushThen = async (request: TransitionRequest) => {
      await shipper.flush().catch(() => undefined);
      const done = await this.finish(job, request);
      this.deps.onMilestone?.(done.status === 'SUCCEEDED' ? 'succeeded' : 'failed', done, {
        build: buildSeconds,
      });
      await queue.ack(message);
    };
    switch (build.outcome) {
      case 'cancelled':
        shipper.write(Buffer.from('\n=== kiln: build cancelled on request ===\n'));
        return flushThen({ to: 'CANCELLED', reason: 'cancel requested; build process tree killed' });
      case 'timed_out': {
        const message = `build exceeded its timeout of ${job.timeoutSeconds}s and was killed; last output:\n${build.logTail}`;
        return flushThen({ to: 'TIMED_OUT', reason: 'timeout', error: { code: 'BUILD_TIMED_OUT', message } });
      }
      case 'failed':
        return flushThen({
          to: 'FAILED',
          reason: build.reason,
          error: { code: 'BUILD_FAILED', message: `${build.reason}\n${build.logTail}` },
        });
      case 'succeeded':
        break;
    }
    const uploading = await this.finish(job, { to: 'UPLOADING', reason: 'build succeeded' });
    const uploadStart = this.clock().getTime();
    let lastError: unknown;
    for (let attempt = 1; attempt <= settings.uploadAttempts; attempt += 1) {
      if (control.signal.aborted) break;
      try {
        const artifact = await artifacts.uploadArtifact(
          job.jobId,
          job.format,
          build.artifactPath,
          control.signal,
        );
        shipper.write(Buffer.from(`=== kiln: uploaded ${artifact.uri} sha256=${artifact.sha256} ===\n`));
        await shipper.flush().catch(() => undefined);
        const seconds = { build: buildSeconds, upload: (this.clock().getTime() - uploadStart) / 1000 };
        if (wantsImage(job)) {
          await this.register(uploading, artifact, seconds);
        } else {
          const done = await this.finish(uploading, {
            to: 'SUCCEEDED',
            reason: 'artifact uploaded',
            set: { artifact },
          });
          this.deps.onMilestone?.('succeeded', done, seconds);
        }
        await queue.ack(message);
        return;
      } catch (error) {
        if (error instanceof LeaseLostError) throw error;
        lastError = error;
        logger.warn('upload failed', { jobId: job.jobId, attempt, error: error as Error });
      }
    }
    // The heartbeat may have set the reason while the upload ran.
    const stopReason = control.reason as StopReason | undefined;
    if (stopReason === 'shutdown') {
      await this.finish(uploading, {
        to: 'QUEUED',
        reason: `handed back by ${settings.agentId} on shutdown during upload`,
        set: { handBacks: job.handBacks + 1 },
      });
      await queue.release(message);
      return;
    }
    if (stopReason === 'cancel') {
      return flushThen({ to: 'CANCELLED', reason: 'cancel requested during upload' });
    }
    if (stopReason === 'lease-lost') return;
    const reason = `upload failed after ${settings.uploadAttempts} attempt(s): ${(lastError as Error)?.message ?? 'unknown error'}`;
    await shipper.flush().catch(() => undefined);
    const failed = await this.finish(uploading, {
      to: 'FAILED',
      reason,
      error: { code: 'UPLOAD_FAILED', message: reason },
    });
    this.deps.onMilestone?.('failed', failed);
    await queue.ack(message);
  }
}
