/**
 * Composition root of the build agent (one process per instance, run by systemd in AWS and by
 * the local fleet in local mode): reads its settings once, builds the adapters, runs the agent
 * until SIGTERM/SIGINT, then hands running jobs back and exits.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoAgentStatus } from '../adapters/agent-status';
import { OwnInstanceScaling } from '../adapters/autoscaling';
import { makeAutoScalingClient, makeEc2Client, makeSfnClient } from '../adapters/clients';
import { allReporters, InstanceJobTagger } from '../adapters/instance-tags';
import { clientsFromEnv, jobStoreFor, readRuntimeSettings } from '../adapters/runtime-settings';
import { S3ArtifactStore } from '../adapters/s3-artifacts';
import { SqsJobQueue } from '../adapters/sqs-queues';
import { SfnRegistrations } from '../adapters/step-functions';
import { ConfigError, isKilnError } from '../core/errors';
import { PRIORITIES } from '../core/job';
import { type RegistrationTarget, retentionDaysOf } from '../core/registration';
import { agentsTableName, ENV, queueKey, TERMINATION_HOOK_NAME } from '../infra/definitions';
import { METRIC, MetricUnit, makeLogger, makeMetrics } from '../lambdas/observability';
import { Agent } from './agent';
import { Imdsv2, type LifecycleLog, LifecycleWatcher } from './lifecycle';
import type { Registrar } from './ports';

function intFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) problems.push(`${name} must be a whole number, got "${raw}"`);
  return n;
}

function registrarFor(
  stateMachineArn: string,
  target: RegistrationTarget,
  endpoint: string | undefined,
): Registrar {
  const registrations = new SfnRegistrations(makeSfnClient(target.homeRegion, endpoint), stateMachineArn);
  return { target, start: (name, input) => registrations.start(name, input) };
}

/**
 * The agent's part in fleet scaling: its status record for the scaler and, when it runs in an
 * Auto Scaling group, its own instance's scale-in protection and termination lifecycle hook.
 */
function fleetMembership(
  env: NodeJS.ProcessEnv,
  prefix: string,
  agentId: string,
  region: string,
  documents: DynamoDBDocumentClient,
  log: LifecycleLog,
) {
  const groupName = env[ENV.autoScalingGroup];
  const instance = groupName
    ? new OwnInstanceScaling(
        makeAutoScalingClient(region, env[ENV.autoScalingEndpoint] || undefined),
        groupName,
        agentId,
        TERMINATION_HOOK_NAME,
      )
    : undefined;
  const status = new DynamoAgentStatus({
    documents,
    tableName: env[ENV.agentsTableName] || agentsTableName(prefix),
    ...(instance
      ? {
          protection: instance,
          onProtectionError: (error: unknown, wanted: boolean) =>
            log.warn('changing scale-in protection failed', { protect: wanted, error: String(error) }),
        }
      : {}),
  });
  return { status, instance };
}

function main(): void {
  const env = process.env;
  const logger = makeLogger('kiln-agent');
  const log: LifecycleLog = {
    info: (message, extra) => logger.info(message, { ...extra }),
    warn: (message, extra) => logger.warn(message, { ...extra }),
  };
  let agent: Agent;
  let fleet: ReturnType<typeof fleetMembership>;
  let lifecyclePollMs: number;
  try {
    const settings = readRuntimeSettings(env);
    const problems: string[] = [];
    const poolName = env[ENV.pool];
    const pool = settings.config.pools.find((p) => p.name === poolName);
    if (!pool) {
      problems.push(
        `${ENV.pool} must name a configured pool (${settings.config.pools.map((p) => p.name).join(', ')}), got "${poolName ?? ''}"`,
      );
    }
    const queueUrls = pool ? PRIORITIES.map((p) => settings.queueUrls[queueKey(pool.name, p)]) : [];
    if (queueUrls.some((u) => !u)) problems.push(`${ENV.queueUrls} lacks a queue of pool "${poolName}"`);
    const pollSeconds = intFrom(env, 'KILN_POLL_SECONDS', 20, problems);
    const logFlushMs = intFrom(env, 'KILN_LOG_FLUSH_MS', 1000, problems);
    lifecyclePollMs = intFrom(env, ENV.lifecyclePollMs, 5000, problems);
    if (problems.length > 0 || !pool) throw new ConfigError(problems);

    const clients = clientsFromEnv(env);
    const region = env.AWS_REGION ?? 'us-east-1';
    const registerArn = env[ENV.registerStateMachineArn];
    const agentId = env[ENV.agentId] || `${hostname()}-${process.pid}`;
    const metrics = makeMetrics('kiln-agent');
    fleet = fleetMembership(env, settings.config.prefix, agentId, region, clients.documents, log);
    agent = new Agent({
      // In AWS the instance also carries the ids of the jobs it runs, so a person finds it from a job.
      status:
        env[ENV.tagInstance] === 'true'
          ? allReporters([fleet.status, new InstanceJobTagger(makeEc2Client(region), agentId)])
          : fleet.status,
      queue: new SqsJobQueue(
        clients.sqs,
        PRIORITIES.map((priority, i) => ({ priority, url: queueUrls[i] as string })),
        settings.config.leaseSeconds,
      ),
      store: jobStoreFor(settings, clients, (jobId, error) =>
        logger.warn('job event not published', { jobId, error: error as Error }),
      ),
      artifacts: new S3ArtifactStore(clients.s3, settings.bucketName),
      ...(registerArn
        ? {
            registrar: registrarFor(
              registerArn,
              { homeRegion: region, retentionDays: retentionDaysOf(settings.config.retention) },
              env[ENV.sfnEndpoint],
            ),
          }
        : {}),
      settings: {
        agentId,
        pool: pool.name,
        minimumShares: settings.config.priorityMinimumShares,
        maxAttempts: settings.config.maxAttempts,
        leaseSeconds: settings.config.leaseSeconds,
        heartbeatSeconds: settings.config.heartbeatSeconds,
        workRoot: env[ENV.workDir] || join('/var/lib/kiln', 'work'),
        slots: pool.concurrency,
        pollSeconds,
        logFlushMs,
        uploadAttempts: 3,
        keepFailedWorkDirs: env.KILN_KEEP_FAILED_WORKDIRS === 'true',
      },
      logger,
      onMilestone: (name, job, seconds) => {
        logger.appendKeys({ jobId: job.jobId });
        const metric = {
          started: METRIC.jobsStarted,
          succeeded: METRIC.jobsSucceeded,
          failed: METRIC.jobsFailed,
        }[name];
        metrics.addMetric(metric, MetricUnit.Count, 1);
        if (seconds?.queueWait !== undefined)
          metrics.addMetric(METRIC.queueWaitSeconds, MetricUnit.Seconds, seconds.queueWait);
        if (seconds?.build !== undefined)
          metrics.addMetric(METRIC.buildSeconds, MetricUnit.Seconds, seconds.build);
        if (seconds?.upload !== undefined)
          metrics.addMetric(METRIC.uploadSeconds, MetricUnit.Seconds, seconds.upload);
        // A second dimension set: the alarms read {service}, a per-pool view reads {service, pool}.
        metrics.addDimensions({ pool: pool.name });
        metrics.publishStoredMetrics();
        logger.info(`job ${name}`, { jobId: job.jobId, status: job.status });
        logger.removeKeys(['jobId']);
      },
    });
    logger.info('agent starting', { agentId, pool: pool.name, slots: pool.concurrency });
  } catch (error) {
    process.stderr.write(`kiln-agent: ${isKilnError(error) ? error.message : String(error)}\n`);
    process.exit(2);
  }
  let stopping = false;
  let stopped: Promise<void> | undefined;
  const stopAgent = () => {
    stopped ??= agent.stop();
    return stopped;
  };
  let keepAlive: NodeJS.Timeout | undefined;
  const watcher = fleet.instance
    ? new LifecycleWatcher({
        metadata: new Imdsv2(env[ENV.imdsEndpoint] ? { endpoint: env[ENV.imdsEndpoint] } : {}),
        actions: fleet.instance,
        handBack: (notice) => {
          logger.info('instance going away: handing running jobs back', { notice, jobs: agent.activeJobs });
          // Stay up, taking no work, until the instance stops us: under systemd an exit would
          // only restart the agent on an instance that is going away.
          keepAlive ??= setInterval(() => undefined, 3_600_000);
          return stopAgent();
        },
        pollMs: lifecyclePollMs,
        log,
      })
    : undefined;
  // A restarted agent on an instance already going away must not take a job first.
  void (watcher ? watcher.poll().catch(() => undefined) : Promise.resolve(undefined)).then((notice) => {
    if (!notice && !stopping) agent.start();
    watcher?.start();
  });
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    watcher?.stop();
    if (keepAlive) clearInterval(keepAlive);
    logger.info('stopping: handing running jobs back', { signal, jobs: agent.activeJobs });
    stopAgent().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error('stop failed', { error: error as Error });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main();
