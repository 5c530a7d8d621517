/**
 * The fleet scaler Lambda. EventBridge invokes it once a minute; each invocation runs a decision
 * for every pool every ~10 s until the next one is due (as the Buildkite agent-scaler does), so
 * the fleet reacts within one decision interval. Reserved concurrency 1 keeps loops from
 * overlapping. See docs/adr/0003-scaling-policy.md.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { DynamoAgentRecords } from '../../adapters/agent-status';
import { AwsScalingGroups, Ec2LaunchTimes, SqsQueueDepths } from '../../adapters/autoscaling';
import { makeAutoScalingClient, makeEc2Client } from '../../adapters/clients';
import { clientsFromEnv } from '../../adapters/runtime-settings';
import { ENV } from '../../infra/definitions';
import { makeLogger } from '../observability';
import { FleetScaler, type PoolTick, runDecisionLoop } from '../scaler/scaler';
import { scalerSettingsFromEnv } from '../scaler/settings';

/** The schedule's period: an invocation hands over to the next one after this long. */
const PERIOD_MS = 60_000;
/** Room left for the last decision before the function's timeout. */
const LAST_TICK_BUDGET_MS = 8_000;

const settings = scalerSettingsFromEnv(process.env);
const region = process.env.AWS_REGION ?? 'us-east-1';
const clients = clientsFromEnv(process.env);
const endpoint = process.env[ENV.autoScalingEndpoint] || undefined;
const logger = makeLogger('kiln-scaler');
const scaler = new FleetScaler(
  {
    groups: new AwsScalingGroups(makeAutoScalingClient(region, endpoint)),
    launchTimes: new Ec2LaunchTimes(makeEc2Client(region, endpoint)),
    queues: new SqsQueueDepths(clients.sqs),
    agents: new DynamoAgentRecords(clients.documents, settings.agentsTableName),
    log: {
      info: (message, extra) => logger.info(message, { ...extra }),
      warn: (message, extra) => logger.warn(message, { ...extra }),
    },
  },
  settings.pools,
  settings.observe,
);

export const handler = middy<Partial<ScheduledEvent>>()
  .use(injectLambdaContext(logger))
  .handler(async (event: Partial<ScheduledEvent>, context: Context) => {
    const now = Date.now();
    const scheduledAt = event.time ? Date.parse(event.time) : Number.NaN;
    const periodStart = Number.isNaN(scheduledAt) ? now : Math.min(now, scheduledAt);
    const stopBefore = Math.min(
      periodStart + PERIOD_MS - settings.intervalMs / 2,
      now + context.getRemainingTimeInMillis() - LAST_TICK_BUDGET_MS,
    );
    let last: PoolTick[] = [];
    let decisions = 0;
    // At least one decision, even from a late invocation; then every interval until the next is due.
    const tick = async () => {
      last = await scaler.tick();
      decisions += 1;
    };
    await tick();
    await runDecisionLoop(tick, {
      startAt: now + settings.intervalMs,
      intervalMs: settings.intervalMs,
      stopBefore,
    });
    const failing = last.filter((t) => t.errors.length > 0);
    logger.info('scaler invocation done', {
      decisions,
      pools: last.map((t) => ({
        pool: t.pool,
        desiredCapacity: t.decision?.desiredCapacity,
        errors: t.errors,
      })),
    });
    // Errors that persist to the last decision fail the invocation, which the function's error alarm sees.
    if (failing.length > 0) {
      throw new Error(
        `scaling failed for ${failing.map((t) => `${t.pool}: ${t.errors.join('; ')}`).join(' | ')}`,
      );
    }
    return { decisions };
  });
