/**
 * Local mode's retention cleanup: the same run the Lambda does (lambdas/retention), against the
 * EC2 simulator, s3rver and dynalite of a running local stack, judged by a clock of your choosing.
 *
 *   const retention = localRetention({ state: stack.state, config: stack.config, now: () => simNow });
 *   await retention.run({ dryRun: true });
 *
 * From a shell, against `npm start` (reads .kiln/local.json):
 *   npx tsx local/retention.ts [--dry-run] [--now 2030-01-01T00:00:00Z] [--state .kiln/local.json]
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { destroyClients, makeClients, makeEc2Client } from '../adapters/clients';
import { jobStoreFor } from '../adapters/runtime-settings';
import { type KilnConfig, parseConfig } from '../core/config';
import { isKilnError } from '../core/errors';
import { parseRetentionConfig, type RetentionConfigInput } from '../core/retention';
import { Ec2RetentionImages } from '../lambdas/retention/ec2-images';
import type { RetentionPorts } from '../lambdas/retention/ports';
import { type RetentionReport, type RetentionRunOptions, runRetention } from '../lambdas/retention/run';
import { S3RetentionArtifacts } from '../lambdas/retention/s3-artifacts';
import { RETENTION_ENV } from '../lambdas/retention/settings';
import type { LocalState } from './stack';

export interface LocalRetentionOptions {
  /** Where the local stack's emulators listen and what it named its table and bucket. */
  state: Pick<LocalState, 'region' | 'endpoints' | 'tableName' | 'bucketName' | 'eventBusName'>;
  /** The stack's config: its prefix is the `kiln:deployment` tag the cleanup owns. */
  config: KilnConfig;
  /** @default the defaults of core/retention.ts */
  retention?: RetentionConfigInput;
  /** The clock ages are judged by; give the EC2 simulator's when it runs on a fake one. @default real time */
  now?: () => Date;
  /** Test hook: wraps the ports, e.g. to fail a call or to stop a run halfway. */
  wrapPorts?: (ports: RetentionPorts) => RetentionPorts;
  /** EC2 listing page size (5–1000), small to exercise paging. @default 1000 */
  pageSize?: number;
}

export interface LocalRetention {
  run(options?: RetentionRunOptions): Promise<RetentionReport>;
  close(): void;
}

export function localRetention(options: LocalRetentionOptions): LocalRetention {
  const { state } = options;
  const ec2Endpoint = state.endpoints.ec2;
  if (!ec2Endpoint) throw new Error('the local stack runs without its EC2 simulator (registration: false)');
  const clients = makeClients({ region: state.region, endpoints: state.endpoints });
  const ec2Clients = new Map<string, EC2Client>();
  const ec2For = (region: string): EC2Client => {
    let client = ec2Clients.get(region);
    if (!client) {
      client = makeEc2Client(region, ec2Endpoint);
      ec2Clients.set(region, client);
    }
    return client;
  };
  const ports: RetentionPorts = {
    images: new Ec2RetentionImages({ ec2For, ...(options.pageSize ? { pageSize: options.pageSize } : {}) }),
    artifacts: new S3RetentionArtifacts(clients.s3, state.bucketName),
    // EXPIRED goes out on the local job events bus, as every transition does.
    jobs: jobStoreFor(
      {
        config: options.config,
        tableName: state.tableName,
        bucketName: state.bucketName,
        queueUrls: {},
        eventBusName: state.eventBusName,
      },
      clients,
    ),
  };
  const wrapped = options.wrapPorts ? options.wrapPorts(ports) : ports;
  const rules = { ...parseRetentionConfig(options.retention ?? {}), deploymentId: options.config.prefix };
  const now = options.now ?? (() => new Date());
  return {
    run: (runOptions = {}) =>
      runRetention({ ports: wrapped, rules, homeRegion: state.region }, now(), runOptions),
    close() {
      for (const c of ec2Clients.values()) c.destroy();
      destroyClients(clients);
    },
  };
}

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** `npx tsx local/retention.ts`: one run against the stack `npm start` left in .kiln/local.json. */
async function main(args: string[]): Promise<void> {
  const statePath = resolve(argValue(args, '--state') ?? '.kiln/local.json');
  const state = JSON.parse(readFileSync(statePath, 'utf8')) as LocalState;
  const configFile = process.env.KILN_CONFIG_FILE;
  const { LOCAL_DEFAULTS } = await import('./stack');
  const config = parseConfig({
    ...LOCAL_DEFAULTS,
    ...(configFile ? (JSON.parse(readFileSync(configFile, 'utf8')) as object) : {}),
  });
  const rawRetention = process.env[RETENTION_ENV.config];
  const at = argValue(args, '--now');
  const fixed = at ? new Date(at) : undefined;
  if (fixed && Number.isNaN(fixed.getTime())) throw new Error(`--now: not a date: ${at}`);
  const retention = localRetention({
    state,
    config,
    ...(rawRetention ? { retention: JSON.parse(rawRetention) as RetentionConfigInput } : {}),
    ...(fixed ? { now: () => fixed } : {}),
  });
  try {
    const report = await retention.run({ dryRun: args.includes('--dry-run') });
    for (const a of report.plan.actions) {
      const outcome = report.execution?.steps.find((s) => s.action === a)?.outcome ?? 'planned';
      process.stdout.write(
        `${outcome.padEnd(8)} ${a.kind.padEnd(16)} ${describe(a)}  (${a.reason}: ${a.detail})\n`,
      );
    }
    for (const p of report.problems) process.stdout.write(`problem  ${p.what}: ${p.message}\n`);
    process.stdout.write(
      `${report.dryRun ? 'dry run: ' : ''}regions ${report.regions.join(', ')}; planned ${report.planned}, deleted ${report.deleted}, failed ${report.failed}, jobs expired ${report.jobsExpired}, deferred ${report.plan.deferred}, kept ${report.plan.kept.length}\n`,
    );
    if (report.failed > 0) process.exitCode = 1;
  } finally {
    retention.close();
  }
}

function describe(a: RetentionReport['plan']['actions'][number]): string {
  if (a.kind === 'deregister-image') return `${a.region} ${a.imageId}`;
  if (a.kind === 'delete-snapshot') return `${a.region} ${a.snapshotId}`;
  if (a.kind === 'delete-artifact') return a.key;
  return a.jobId;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`kiln retention: ${isKilnError(error) ? error.message : (error as Error).stack}\n`);
    process.exit(1);
  });
}
