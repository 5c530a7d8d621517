/** What the retention function reads from its environment, validated once, every problem at once. */
import { type KilnConfig, parseConfig } from '../../core/config';
import { ConfigError, isKilnError } from '../../core/errors';
import { parseRetentionConfig, type RetentionRules } from '../../core/retention';
import { ENV } from '../../infra/definitions';

/**
 * Variables of the retention function beside the shared ones in ENV. The retention settings
 * travel on their own until the Kiln config carries them (then they come from KILN_CONFIG).
 */
export const RETENTION_ENV = {
  /** JSON of RetentionConfigInput (core/retention.ts); absent: the defaults. */
  config: 'KILN_RETENTION_CONFIG',
} as const;

export interface RetentionSettings {
  config: KilnConfig;
  rules: RetentionRules;
  tableName: string;
  bucketName: string;
  homeRegion: string;
  /** The job events bus: EXPIRED is announced there like every transition. Absent: none published. */
  eventBusName?: string;
}

function parseJson(name: string, raw: string, problems: string[]): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch (error) {
    problems.push(`${name} is not valid JSON: ${(error as Error).message}`);
    return undefined;
  }
}

export function readRetentionSettings(env: NodeJS.ProcessEnv): RetentionSettings {
  const problems: string[] = [];
  const collect = <T>(read: () => T): T | undefined => {
    try {
      return read();
    } catch (error) {
      if (isKilnError(error) && Array.isArray(error.details)) problems.push(...(error.details as string[]));
      else problems.push(isKilnError(error) ? error.message : String(error));
      return undefined;
    }
  };
  const rawConfig = env[ENV.config];
  if (!rawConfig) problems.push(`${ENV.config} is not set`);
  const configInput = rawConfig ? parseJson(ENV.config, rawConfig, problems) : undefined;
  const config = configInput === undefined ? undefined : collect(() => parseConfig(configInput));
  const rawRetention = env[RETENTION_ENV.config];
  const retentionInput = rawRetention ? parseJson(RETENTION_ENV.config, rawRetention, problems) : {};
  const retention =
    retentionInput === undefined ? undefined : collect(() => parseRetentionConfig(retentionInput));
  const tableName = env[ENV.tableName];
  if (!tableName) problems.push(`${ENV.tableName} is not set`);
  const bucketName = env[ENV.bucketName];
  if (!bucketName) problems.push(`${ENV.bucketName} is not set`);
  const homeRegion = env.AWS_REGION;
  if (!homeRegion) problems.push('AWS_REGION is not set');
  if (problems.length > 0 || !config || !retention || !tableName || !bucketName || !homeRegion)
    throw new ConfigError(problems);
  const eventBusName = env[ENV.eventBusName];
  return {
    config,
    rules: { ...retention, deploymentId: config.prefix },
    tableName,
    bucketName,
    homeRegion,
    ...(eventBusName ? { eventBusName } : {}),
  };
}
