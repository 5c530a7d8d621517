import { describe, expect, it } from 'vitest';
import { deadLetterQueueName, parseConfig, poolsFor, queueName, queueSlots } from '../../core/config';
import { ConfigError } from '../../core/errors';

function captureConfigError(input: unknown): ConfigError {
  try {
    parseConfig(input);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected parseConfig to reject the input');
}

const X86 = { name: 'builders', arch: 'x86_64', instanceTypes: ['c7i.large'] } as const;

describe('parseConfig: defaults', () => {
  it.each([
    ['undefined', undefined],
    ['null', null],
    ['an empty object', {}],
  ])('parses %s into the documented defaults', (_what, input) => {
    const config = parseConfig(input);
    expect(config).toEqual({
      prefix: 'kiln',
      pools: [
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
      ],
      admins: [],
      maxAttempts: 3,
      leaseSeconds: 120,
      heartbeatSeconds: 30,
      defaultTimeoutSeconds: 3600,
      dispatchGraceSeconds: 60,
      leaseGraceSeconds: 60,
      jobRecordRetentionDays: 90,
      maxReceiveCount: 10,
      importConcurrency: 20,
      registerAttempts: 3,
      priorityMinimumShares: { normal: 0.2, low: 0.1 },
      autoBuildCap: 5,
      retention: {
        scratchDays: 3,
        explicitDays: 14,
        autoDays: 14,
        regionMaxImages: {},
        regions: [],
        maxDeletionsPerRun: 500,
      },
    });
  });

  it('fills pool defaults and keeps what is given', () => {
    const config = parseConfig({ prefix: 'team-a', pools: [X86], maxAttempts: 5 });
    expect(config.prefix).toBe('team-a');
    expect(config.maxAttempts).toBe(5);
    expect(config.pools).toEqual([
      { ...X86, instanceTypes: ['c7i.large'], minCapacity: 0, maxCapacity: 10, concurrency: 1, labels: {} },
    ]);
  });

  it('accepts a heartbeat of exactly half the lease and min equal to max', () => {
    const config = parseConfig({
      leaseSeconds: 60,
      heartbeatSeconds: 30,
      pools: [{ ...X86, minCapacity: 3, maxCapacity: 3 }],
    });
    expect(config.heartbeatSeconds).toBe(30);
    expect(config.pools[0]?.minCapacity).toBe(3);
  });
});

describe('parseConfig: problems', () => {
  it('reports duplicate pools, a heartbeat over half the lease and min > max together', () => {
    const error = captureConfigError({
      leaseSeconds: 60,
      heartbeatSeconds: 31,
      pools: [
        { ...X86, minCapacity: 5, maxCapacity: 2 },
        { ...X86, arch: 'aarch64', instanceTypes: ['c7g.large'] },
      ],
    });
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.httpStatus).toBe(500);
    expect(error.details).toEqual(
      expect.arrayContaining([
        'heartbeatSeconds: must be at most half of leaseSeconds',
        'pools.1.name: duplicate pool "builders"',
        'pools.0.minCapacity: must not exceed maxCapacity',
      ]),
    );
    expect(error.details).toHaveLength(3);
    for (const problem of error.details as string[]) expect(error.message).toContain(problem);
  });

  it('reports every field-level problem at once, each with its path', () => {
    const error = captureConfigError({
      prefix: 'Bad_Prefix',
      maxAttempts: 0,
      pools: [{ ...X86, name: 'UPPER', instanceTypes: [] }],
      colour: 'blue',
    });
    const details = error.details as string[];
    const paths = details.map((d) => d.slice(0, d.indexOf(':')));
    expect(paths).toEqual(
      expect.arrayContaining(['prefix', 'maxAttempts', 'pools.0.name', 'pools.0.instanceTypes', '(config)']),
    );
    expect(details.find((d) => d.startsWith('(config)'))).toContain('colour');
    expect(details).toHaveLength(5);
  });

  it.each([
    ['an empty pool list', { pools: [] }, 'pools'],
    ['an unknown arch', { pools: [{ ...X86, arch: 'riscv64' }] }, 'pools.0.arch'],
    ['an unknown pool field', { pools: [{ ...X86, spot: true }] }, 'pools.0'],
    ['a lease under 2 s', { leaseSeconds: 1, heartbeatSeconds: 1 }, 'leaseSeconds'],
    ['maxReceiveCount 1', { maxReceiveCount: 1 }, 'maxReceiveCount'],
    ['a fractional maxAttempts', { maxAttempts: 2.5 }, 'maxAttempts'],
    ['concurrency over 64', { pools: [{ ...X86, concurrency: 65 }] }, 'pools.0.concurrency'],
    ['an admin that is empty', { admins: [''] }, 'admins.0'],
  ])('rejects %s naming %s', (_what, input, path) => {
    const error = captureConfigError(input);
    expect((error.details as string[]).some((d) => d.startsWith(`${path}: `))).toBe(true);
    expect(error.message).toMatch(/^invalid configuration:\n {2}- /);
  });
});

describe('queue names', () => {
  it('names a queue and its DLQ from prefix, pool and priority', () => {
    expect(queueName('kiln', 'general-x86_64', 'high')).toBe('kiln-general-x86_64-high');
    expect(deadLetterQueueName('kiln', 'general-x86_64', 'low')).toBe('kiln-general-x86_64-low-dlq');
  });

  it('lists one slot per pool and priority, highest priority first within a pool', () => {
    const config = parseConfig({ pools: [X86, { ...X86, name: 'arm', arch: 'aarch64' }] });
    expect(queueSlots(config)).toEqual([
      { pool: 'builders', priority: 'high' },
      { pool: 'builders', priority: 'normal' },
      { pool: 'builders', priority: 'low' },
      { pool: 'arm', priority: 'high' },
      { pool: 'arm', priority: 'normal' },
      { pool: 'arm', priority: 'low' },
    ]);
  });

  it('poolsFor keeps config order and filters by arch', () => {
    const config = parseConfig({
      pools: [X86, { ...X86, name: 'arm', arch: 'aarch64' }, { ...X86, name: 'builders-2' }],
    });
    expect(poolsFor(config, 'x86_64').map((p) => p.name)).toEqual(['builders', 'builders-2']);
    expect(poolsFor(config, 'aarch64').map((p) => p.name)).toEqual(['arm']);
  });
});
