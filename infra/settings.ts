/**
 * Reads the deployment's settings from CDK context: the Kiln config (the same schema local mode
 * uses) and the few choices that only exist in AWS (an existing VPC, an alarm e-mail address).
 * Every problem is reported at once, naming where the value came from.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Node } from 'constructs';
import { z } from 'zod';
import { type KilnConfig, parseConfig } from '../core/config';
import { isKilnError } from '../core/errors';

/** Context key holding the Kiln config object (or its JSON text when given with `-c`). */
export const CONFIG_CONTEXT_KEY = 'kiln';
/** Context key naming a JSON file with the Kiln config; it wins over `kiln`. */
export const CONFIG_FILE_CONTEXT_KEY = 'kilnConfigFile';
/** Context key describing an existing VPC to deploy the fleet into (no lookup: ids are given). */
export const VPC_CONTEXT_KEY = 'kilnVpc';
/** Context key with an e-mail address subscribed to the alarm topic. */
export const ALARM_EMAIL_CONTEXT_KEY = 'kilnAlarmEmail';

const ExistingVpcSchema = z.strictObject({
  vpcId: z.string().regex(/^vpc-[0-9a-f]+$/, 'a VPC id such as "vpc-0123456789abcdef0"'),
  availabilityZones: z.array(z.string().min(1)).min(1),
  /** Subnets with a route to the internet (NAT) or to the endpoints the agents need. */
  privateSubnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]+$/, 'a subnet id')).min(1),
});
export type ExistingVpc = z.output<typeof ExistingVpcSchema>;

export interface DeploymentSettings {
  readonly config: KilnConfig;
  /** Where the config came from, for messages. */
  readonly configSource: string;
  readonly existingVpc?: ExistingVpc;
  readonly alarmEmail?: string;
}

export class DeploymentSettingsError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Kiln deployment settings are invalid:\n  - ${problems.join('\n  - ')}`);
    this.name = 'DeploymentSettingsError';
  }
}

/** `-c key=value` on the command line arrives as a string; cdk.json gives an object. */
function parseMaybeJson(value: unknown, source: string, problems: string[]): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value) as unknown;
  } catch (error) {
    problems.push(`${source}: not valid JSON (${(error as Error).message})`);
    return undefined;
  }
}

function readConfigInput(node: Node, cwd: string, problems: string[]): { input: unknown; source: string } {
  const file = node.tryGetContext(CONFIG_FILE_CONTEXT_KEY) as unknown;
  if (file !== undefined) {
    if (typeof file !== 'string' || file === '') {
      problems.push(`context "${CONFIG_FILE_CONTEXT_KEY}": must be a file path`);
      return { input: undefined, source: `context "${CONFIG_FILE_CONTEXT_KEY}"` };
    }
    const path = resolve(cwd, file);
    const source = `config file ${path}`;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      problems.push(`${source}: cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
      return { input: undefined, source };
    }
    return { input: parseMaybeJson(text, source, problems), source };
  }
  const source = `context "${CONFIG_CONTEXT_KEY}"`;
  return { input: parseMaybeJson(node.tryGetContext(CONFIG_CONTEXT_KEY), source, problems), source };
}

export function loadDeploymentSettings(node: Node, cwd: string = process.cwd()): DeploymentSettings {
  const problems: string[] = [];
  const { input, source } = readConfigInput(node, cwd, problems);

  let config: KilnConfig | undefined;
  if (problems.length === 0) {
    try {
      config = parseConfig(input);
    } catch (error) {
      if (!isKilnError(error)) throw error;
      const details = Array.isArray(error.details) ? (error.details as string[]) : [error.message];
      problems.push(...details.map((d) => `${source}: ${d}`));
    }
  }

  let existingVpc: ExistingVpc | undefined;
  const vpcSource = `context "${VPC_CONTEXT_KEY}"`;
  const rawVpc = parseMaybeJson(node.tryGetContext(VPC_CONTEXT_KEY), vpcSource, problems);
  if (rawVpc !== undefined) {
    const parsed = ExistingVpcSchema.safeParse(rawVpc);
    if (parsed.success) existingVpc = parsed.data;
    else
      problems.push(
        ...parsed.error.issues.map((i) => `${vpcSource}: ${i.path.join('.') || '(value)'}: ${i.message}`),
      );
  }

  const alarmEmail = node.tryGetContext(ALARM_EMAIL_CONTEXT_KEY) as unknown;
  if (alarmEmail !== undefined && (typeof alarmEmail !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(alarmEmail))) {
    problems.push(`context "${ALARM_EMAIL_CONTEXT_KEY}": must be an e-mail address`);
  }

  if (problems.length > 0 || !config) throw new DeploymentSettingsError(problems);
  return {
    config,
    configSource: source,
    ...(existingVpc ? { existingVpc } : {}),
    ...(typeof alarmEmail === 'string' ? { alarmEmail } : {}),
  };
}
