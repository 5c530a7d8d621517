/**
 * Composition root of local mode: emulators, resources from the shared definitions, the API
 * handlers behind the local HTTP server, the sweeper on a timer, and real agent processes.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { destroyClients, LOCAL_CREDENTIALS, makeClients, makeSfnClient } from '../adapters/clients';
import type { RuntimeSettings } from '../adapters/runtime-settings';
import { SfnRegistrations } from '../adapters/step-functions';
import { holdsAutoSlot } from '../core/admission';
import { type KilnConfig, type KilnConfigInput, parseConfig } from '../core/config';
import type { JobEvent } from '../core/events';
import { retentionDaysOf } from '../core/registration';
import { ENV, IMPORT_SLOTS } from '../infra/definitions';
import type { JobDispatcher } from '../lambdas/api/ports';
import { buildApi, buildStores } from '../lambdas/composition';
import { failDeadLetteredJob } from '../lambdas/dlq/dead-letters';
import { runAutoGate } from '../lambdas/gate/auto-gate';
import { reapSlots } from '../lambdas/register/reaper';
import { sweep } from '../lambdas/sweeper/sweep';
import { LOCAL_REGION, startEmulators } from './emulators';
import { type LocalEventBus, startLocalEventBus } from './event-bus';
import { LocalFleet } from './fleet';
import { startHttpServer } from './http-server';
import { type LocalRegistration, type LocalRegistrationOptions, startLocalRegistration } from './register';
import { createResources } from './resources';
import { type LocalAutoscaleOptions, type LocalAutoscaling, startLocalAutoscaling } from './scaler';

/** Timings that make local mode responsive; AWS deployments keep the config defaults. */
export const LOCAL_DEFAULTS: KilnConfigInput = {
  leaseSeconds: 20,
  heartbeatSeconds: 5,
  dispatchGraceSeconds: 5,
  leaseGraceSeconds: 2,
};

export const LOCAL_PRINCIPALS = {
  alice: 'arn:aws:iam::000000000000:user/alice',
  bob: 'arn:aws:iam::000000000000:user/bob',
} as const;
export type LocalPrincipal = keyof typeof LOCAL_PRINCIPALS;

export interface LocalStackOptions {
  config?: KilnConfigInput;
  /** 0 picks a free port. */
  port?: number;
  /** Where local.json, agent logs and emulator data go. */
  stateDir?: string;
  /** Agents started per pool: a fixed fleet (no autoscaling unless `autoscale` is given too). */
  agentsPerPool?: number;
  /**
   * Fleet autoscaling: an Auto Scaling simulator whose instances are agent processes, scaled by
   * the AWS scaler's code. On (min 0: a submit to an idle stack starts an agent) unless
   * `agentsPerPool` is given; `false` turns it off.
   */
  autoscale?: false | LocalAutoscaleOptions;
  sweepIntervalMs?: number;
  /** Extra environment for agents (e.g. KILN_POLL_SECONDS). */
  agentEnv?: NodeJS.ProcessEnv;
  /**
   * The register step (EC2 simulator + local Step Functions). `false` leaves it out, for a faster
   * start where no job has image targets.
   * @default {}
   */
  registration?: false | Pick<LocalRegistrationOptions, 'ec2' | 'timeCompressionMs' | 'importPollMs'>;
  /** Test hook, see ApiBuildOptions. */
  wrapDispatcher?: (dispatcher: JobDispatcher) => JobDispatcher;
  log?: (line: string) => void;
}

export interface LocalState {
  apiUrl: string;
  tokens: Record<LocalPrincipal, string>;
  principals: typeof LOCAL_PRINCIPALS;
  region: string;
  endpoints: {
    api: string;
    dynamodb: string;
    sqs: string;
    s3: string;
    events: string;
    stepfunctions?: string;
    ec2?: string;
    autoscaling?: string;
  };
  /** The bus every job transition is published to. */
  eventBusName: string;
  /** Emulator credentials (not secrets: the emulators accept only these). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  tableName: string;
  slotsTableName: string;
  bucketName: string;
  queueUrls: Record<string, string>;
  deadLetterQueueUrls: Record<string, string>;
  registerStateMachineArn?: string;
}

export interface LocalStack {
  state: LocalState;
  config: KilnConfig;
  fleet: LocalFleet;
  stateDir: string;
  registration?: LocalRegistration;
  /** The Auto Scaling simulator and the scaler, when autoscaling is on. */
  autoscaling?: LocalAutoscaling;
  /** Local EventBridge: every job event, and in-process subscriptions. */
  events: LocalEventBus;
  /** Runs one sweep now (tests use it instead of waiting for the timer). */
  sweepNow(): Promise<void>;
  stop(): Promise<void>;
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const config = parseConfig({ ...LOCAL_DEFAULTS, ...options.config });
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'kiln-local-')));
  mkdirSync(stateDir, { recursive: true });
  const log = options.log ?? (() => undefined);

  const emulators = await startEmulators({ dataDir: join(stateDir, 'data') });
  const events = await startLocalEventBus(`${config.prefix}-job-events`);
  const clients = makeClients({
    region: LOCAL_REGION,
    endpoints: { ...emulators.endpoints, events: events.url },
  });
  const resources = await createResources(clients, config);
  const settings: RuntimeSettings = {
    config,
    tableName: resources.tableName,
    bucketName: resources.bucketName,
    queueUrls: resources.queueUrls,
    slotsTableName: resources.slotsTableName,
    eventBusName: events.busName,
  };

  const handlers = buildApi({
    settings,
    clients,
    ...(options.wrapDispatcher ? { wrapDispatcher: options.wrapDispatcher } : {}),
  });
  const tokens = Object.fromEntries(
    Object.keys(LOCAL_PRINCIPALS).map((name) => [name, randomBytes(24).toString('base64url')]),
  ) as Record<LocalPrincipal, string>;
  const server = await startHttpServer({
    port: options.port ?? 0,
    handlers,
    tokens: Object.fromEntries(
      (Object.keys(tokens) as LocalPrincipal[]).map((name) => [tokens[name], LOCAL_PRINCIPALS[name]]),
    ),
    onHandlerError: (error, route) => log(`handler ${route} failed: ${String(error)}`),
  });

  const { store, dispatcher, autoGate } = buildStores(settings, clients);
  // What the EventBridge rule does in AWS: an auto rebuild leaving the build stages frees its slot,
  // so the gate runs at once instead of waiting for the next sweep.
  let gating: Promise<unknown> | undefined;
  let gateAgain = false;
  const gateSoon = (): void => {
    if (!autoGate) return;
    if (gating) {
      gateAgain = true;
      return;
    }
    gating = runAutoGate(autoGate, new Date())
      .catch((error: unknown) => log(`auto gate failed: ${String(error)}`))
      .finally(() => {
        gating = undefined;
        if (gateAgain) {
          gateAgain = false;
          gateSoon();
        }
      });
  };
  events.subscribe((event) => {
    const detail = event.detail as Partial<JobEvent>;
    if (detail.buildType === 'auto' && detail.status && !holdsAutoSlot({ status: detail.status })) gateSoon();
  });
  const registration =
    options.registration === false
      ? undefined
      : await startLocalRegistration({
          config,
          region: LOCAL_REGION,
          clients,
          store,
          slotsTableName: resources.slotsTableName,
          ...options.registration,
        });
  const registrations = registration
    ? new SfnRegistrations(
        makeSfnClient(LOCAL_REGION, registration.sfnEndpoint),
        registration.stateMachineArn,
      )
    : undefined;
  // What an SQS event source mapping does for the DLQ consumer Lambda in AWS.
  const drainDeadLetters = async () => {
    for (const url of Object.values(resources.deadLetterQueueUrls)) {
      const out = await clients.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
      );
      for (const m of out.Messages ?? []) {
        const outcome = await failDeadLetteredJob(
          store,
          {
            body: m.Body ?? '',
            receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 0),
            queueArn: url,
          },
          new Date(),
        );
        log(`dead letter: ${JSON.stringify(outcome)}`);
        await clients.sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
      }
    }
  };
  let sweeping: Promise<void> | undefined;
  const sweepNow = () => {
    sweeping ??= sweep(
      {
        store,
        dispatcher,
        policy: config,
        maxJobsPerStatus: 1000,
        ...(autoGate ? { autoGate } : {}),
        ...(registrations
          ? {
              registration: {
                registrations,
                target: { homeRegion: LOCAL_REGION, retentionDays: retentionDaysOf(config.retention) },
                policy: {
                  registerAttempts: config.registerAttempts,
                  startGraceSeconds: config.dispatchGraceSeconds,
                },
              },
            }
          : {}),
      },
      new Date(),
    )
      .then(async (r) => {
        const changed =
          r.dispatched.length + r.requeued.length + r.failed.length + r.registrationsRestarted.length;
        if (changed > 0) log(`sweeper: ${JSON.stringify(r)}`);
        await drainDeadLetters();
        if (registrations) {
          const reclaimed = await reapSlots(
            {
              documents: clients.documents,
              tableName: resources.slotsTableName,
              statusOf: (arn) => registrations.statusOfArn(arn),
            },
            IMPORT_SLOTS,
          );
          if (reclaimed.length > 0) log(`reaper: reclaimed import slots of ${reclaimed.join(', ')}`);
        }
      })
      .catch((error: unknown) => log(`sweeper failed: ${String(error)}`))
      .finally(() => {
        sweeping = undefined;
      });
    return sweeping;
  };
  const sweepTimer = setInterval(() => void sweepNow(), options.sweepIntervalMs ?? 2000);

  const fleet = new LocalFleet({
    logDir: join(stateDir, 'agents'),
    workRoot: join(stateDir, 'work'),
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AWS_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      POWERTOOLS_METRICS_DISABLED: 'true',
      [ENV.config]: JSON.stringify(config),
      [ENV.tableName]: resources.tableName,
      [ENV.bucketName]: resources.bucketName,
      [ENV.queueUrls]: JSON.stringify(resources.queueUrls),
      [ENV.dynamodbEndpoint]: emulators.endpoints.dynamodb,
      [ENV.sqsEndpoint]: emulators.endpoints.sqs,
      [ENV.s3Endpoint]: emulators.endpoints.s3,
      [ENV.eventsEndpoint]: events.url,
      [ENV.eventBusName]: events.busName,
      ...(registration
        ? {
            [ENV.registerStateMachineArn]: registration.stateMachineArn,
            [ENV.sfnEndpoint]: registration.sfnEndpoint,
            [ENV.ec2Endpoint]: registration.ec2Endpoint,
            [ENV.slotsTableName]: resources.slotsTableName,
          }
        : {}),
      ...options.agentEnv,
    },
  });
  // ── Fleet autoscaling (issue 6; local/scaler.ts): on unless a fixed fleet is asked for ──
  const autoscale = options.autoscale ?? (options.agentsPerPool === undefined ? {} : false);
  const autoscaling =
    autoscale === false
      ? undefined
      : await startLocalAutoscaling(
          {
            config,
            region: LOCAL_REGION,
            clients,
            fleet,
            queueUrls: resources.queueUrls,
            agentsTableName: resources.agentsTableName,
            log,
          },
          autoscale,
        );
  for (const pool of config.pools) {
    for (let i = 0; i < (options.agentsPerPool ?? (autoscaling ? 0 : 1)); i += 1) fleet.spawn(pool.name);
  }
  // ── end of fleet autoscaling ──

  const state: LocalState = {
    apiUrl: server.url,
    tokens,
    principals: LOCAL_PRINCIPALS,
    region: LOCAL_REGION,
    endpoints: {
      api: server.url,
      ...emulators.endpoints,
      events: events.url,
      ...(registration ? { stepfunctions: registration.sfnEndpoint, ec2: registration.ec2Endpoint } : {}),
      ...(autoscaling ? { autoscaling: autoscaling.endpoint } : {}),
    },
    credentials: { ...LOCAL_CREDENTIALS },
    eventBusName: events.busName,
    tableName: resources.tableName,
    slotsTableName: resources.slotsTableName,
    bucketName: resources.bucketName,
    queueUrls: resources.queueUrls,
    deadLetterQueueUrls: resources.deadLetterQueueUrls,
    ...(registration ? { registerStateMachineArn: registration.stateMachineArn } : {}),
  };
  writeFileSync(join(stateDir, 'local.json'), `${JSON.stringify(state, null, 2)}\n`);

  let stopped: Promise<void> | undefined;
  return {
    state,
    config,
    fleet,
    stateDir,
    ...(registration ? { registration } : {}),
    ...(autoscaling ? { autoscaling } : {}),
    events,
    sweepNow,
    stop() {
      stopped ??= (async () => {
        clearInterval(sweepTimer);
        await autoscaling?.stop();
        await fleet.stopAll();
        await sweeping;
        await gating;
        await registration?.stop();
        await server.close();
        destroyClients(clients);
        await events.close();
        await emulators.stop();
      })();
      return stopped;
    },
  };
}
