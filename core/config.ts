import { z } from 'zod';
import { ConfigError } from './errors';
import { ARCHITECTURES, type Architecture, PRIORITIES, type Priority } from './job';
import { minimumSharesProblems } from './priority';
import { RetentionConfigSchema } from './retention';

const poolName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,30}$/, 'pool names are lowercase letters, digits, "_" and "-"');

export const PoolConfigSchema = z.strictObject({
  name: poolName,
  arch: z.enum(ARCHITECTURES),
  /** EC2 instance types for the pool's Auto Scaling group, most preferred first. */
  instanceTypes: z.array(z.string().min(3)).min(1),
  minCapacity: z.number().int().min(0).default(0),
  maxCapacity: z.number().int().min(1).default(10),
  /** Concurrent builds per instance. */
  concurrency: z.number().int().min(1).max(64).default(1),
  labels: z.record(z.string(), z.string()).default({}),
});
export type PoolConfig = z.output<typeof PoolConfigSchema>;

export const KilnConfigSchema = z
  .strictObject({
    /** Prefix of every resource name, so two deployments can live in one account. */
    prefix: z
      .string()
      .regex(/^[a-z][a-z0-9-]{1,20}$/)
      .default('kiln'),
    pools: z
      .array(PoolConfigSchema)
      .min(1)
      .default([
        {
          name: 'general-x86_64',
          arch: 'x86_64',
          instanceTypes: ['c7i.large'],
          minCapacity: 0,
          maxCapacity: 10,
          concurrency: 1,
          labels: {},
        },
        {
          name: 'general-aarch64',
          arch: 'aarch64',
          instanceTypes: ['c7g.large'],
          minCapacity: 0,
          maxCapacity: 10,
          concurrency: 1,
          labels: {},
        },
      ]),
    /** IAM principal ARNs that may see and cancel every job. */
    admins: z.array(z.string().min(1)).default([]),
    maxAttempts: z.number().int().min(1).max(10).default(3),
    leaseSeconds: z.number().int().min(2).max(3600).default(120),
    heartbeatSeconds: z.number().int().min(1).max(900).default(30),
    defaultTimeoutSeconds: z.number().int().min(10).max(86_400).default(3600),
    dispatchGraceSeconds: z.number().int().min(1).default(60),
    leaseGraceSeconds: z.number().int().min(0).default(60),
    /** Finished job records are deleted by DynamoDB TTL this long after they finish. */
    jobRecordRetentionDays: z.number().int().min(1).default(90),
    /** Messages received this many times go to the queue's DLQ. */
    maxReceiveCount: z.number().int().min(2).max(1000).default(10),
    /** Concurrent EC2 import tasks this deployment runs per region (the account limit is 20). */
    importConcurrency: z.number().int().min(1).max(100).default(20),
    /** Minimum share of starts of each lower priority class while the fleet is saturated. */
    priorityMinimumShares: z
      .strictObject({
        normal: z.number().min(0).max(0.9).optional(),
        low: z.number().min(0).max(0.9).optional(),
      })
      .default({ normal: 0.2, low: 0.1 }),
    /** Auto rebuilds running at once across the fleet (they can swamp it otherwise). */
    autoBuildCap: z.number().int().min(1).max(10_000).default(5),
    /** What the scheduled cleanup keeps and for how long (core/retention.ts). */
    retention: RetentionConfigSchema.prefault({}),
    /** Register executions started per job before it is FAILED. */
    registerAttempts: z.number().int().min(1).max(10).default(3),
  })
  .superRefine((c, ctx) => {
    for (const problem of minimumSharesProblems(c.priorityMinimumShares)) {
      ctx.addIssue({ code: 'custom', path: ['priorityMinimumShares'], message: problem });
    }
    if (c.heartbeatSeconds * 2 > c.leaseSeconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['heartbeatSeconds'],
        message: 'must be at most half of leaseSeconds',
      });
    }
    const names = new Set<string>();
    c.pools.forEach((p, i) => {
      if (names.has(p.name))
        ctx.addIssue({ code: 'custom', path: ['pools', i, 'name'], message: `duplicate pool "${p.name}"` });
      names.add(p.name);
      if (p.minCapacity > p.maxCapacity) {
        ctx.addIssue({
          code: 'custom',
          path: ['pools', i, 'minCapacity'],
          message: 'must not exceed maxCapacity',
        });
      }
    });
  });
export type KilnConfig = z.output<typeof KilnConfigSchema>;
export type KilnConfigInput = z.input<typeof KilnConfigSchema>;

/** Validates a whole config at once and reports every problem, not just the first. */
export function parseConfig(input: unknown): KilnConfig {
  const result = KilnConfigSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`));
}

/** Pools able to run a job of this architecture, in config order. */
export function poolsFor(config: Pick<KilnConfig, 'pools'>, arch: Architecture): PoolConfig[] {
  return config.pools.filter((p) => p.arch === arch);
}

export function queueName(prefix: string, pool: string, priority: Priority): string {
  return `${prefix}-${pool}-${priority}`;
}

export function deadLetterQueueName(prefix: string, pool: string, priority: Priority): string {
  return `${queueName(prefix, pool, priority)}-dlq`;
}

/** Every (pool, priority) pair, highest priority first within a pool. */
export function queueSlots(config: Pick<KilnConfig, 'pools'>): Array<{ pool: string; priority: Priority }> {
  return config.pools.flatMap((p) => PRIORITIES.map((priority) => ({ pool: p.name, priority })));
}
