/** The scaler Lambda's settings, read from its environment once and validated together. */
import { type KilnConfig, parseConfig } from '../../core/config';
import { ConfigError, isKilnError } from '../../core/errors';
import { PRIORITIES, type Priority } from '../../core/job';
import { type ScalingSettings, scalingConfigFor } from '../../core/scaling';
import { agentsTableName, autoScalingGroupName, ENV, queueKey } from '../../infra/definitions';
import type { ObserveSettings } from './observe';
import type { ScaledPool } from './scaler';

export interface ScalerSettings {
  config: KilnConfig;
  pools: ScaledPool[];
  observe: ObserveSettings;
  agentsTableName: string;
  /** Milliseconds between decisions (the pools' decisionIntervalSeconds). */
  intervalMs: number;
}

const SETTING_NAMES = [
  'bootSeconds',
  'bootDeadlineSeconds',
  'idleTimeoutSeconds',
  'decisionIntervalSeconds',
] as const;

function json(env: NodeJS.ProcessEnv, name: string, problems: string[], required: boolean): unknown {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    if (required) problems.push(`${name} is not set`);
    return undefined;
  }
  try {
    return JSON.parse(raw) as unknown;
  } catch (error) {
    problems.push(`${name} is not valid JSON: ${(error as Error).message}`);
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads KILN_CONFIG, KILN_QUEUE_URLS, and optionally KILN_AUTOSCALING_GROUPS (pool → group; by
 * default `${prefix}-${pool}`), KILN_AGENTS_TABLE_NAME, KILN_SCALING_SETTINGS (Partial<ScalingSettings>,
 * plus `arrivalWindowSeconds`, `silenceSeconds` and `drainGraceSeconds` of ObserveSettings).
 */
export function scalerSettingsFromEnv(env: NodeJS.ProcessEnv): ScalerSettings {
  const problems: string[] = [];
  let config: KilnConfig | undefined;
  const rawConfig = json(env, ENV.config, problems, true);
  if (rawConfig !== undefined) {
    try {
      config = parseConfig(rawConfig);
    } catch (error) {
      problems.push(isKilnError(error) ? error.message : String(error));
    }
  }
  const queueUrls = json(env, ENV.queueUrls, problems, true);
  if (queueUrls !== undefined && !isObject(queueUrls))
    problems.push(`${ENV.queueUrls} must be a JSON object`);
  const groups = json(env, ENV.autoScalingGroups, problems, false);
  if (groups !== undefined && !isObject(groups))
    problems.push(`${ENV.autoScalingGroups} must be a JSON object`);
  const rawSettings = json(env, ENV.scalingSettings, problems, false) ?? {};
  const settings: Partial<ScalingSettings> = {};
  let arrivalWindowSeconds = 60;
  let silenceSeconds: number | undefined;
  let drainGraceSeconds: number | undefined;
  if (!isObject(rawSettings)) problems.push(`${ENV.scalingSettings} must be a JSON object`);
  else {
    for (const [key, value] of Object.entries(rawSettings)) {
      if (typeof value !== 'number') {
        problems.push(`${ENV.scalingSettings}.${key} must be a number`);
      } else if ((SETTING_NAMES as readonly string[]).includes(key)) {
        settings[key as keyof ScalingSettings] = value;
      } else if (key === 'arrivalWindowSeconds') {
        arrivalWindowSeconds = value;
      } else if (key === 'silenceSeconds') {
        silenceSeconds = value;
      } else if (key === 'drainGraceSeconds') {
        drainGraceSeconds = value;
      } else {
        problems.push(`${ENV.scalingSettings}.${key} is not a scaling setting`);
      }
    }
  }
  if (problems.length > 0 || !config) throw new ConfigError(problems);

  const urls = queueUrls as Record<string, unknown>;
  const groupNames = (groups ?? {}) as Record<string, unknown>;
  const pools: ScaledPool[] = config.pools.map((pool) => {
    const poolQueues = {} as Record<Priority, string>;
    for (const p of PRIORITIES) {
      const url = urls[queueKey(pool.name, p)];
      if (typeof url !== 'string' || url === '')
        problems.push(`${ENV.queueUrls} lacks ${queueKey(pool.name, p)}`);
      poolQueues[p] = String(url);
    }
    const groupName = groupNames[pool.name] ?? autoScalingGroupName((config as KilnConfig).prefix, pool.name);
    return {
      pool: pool.name,
      groupName: String(groupName),
      queueUrls: poolQueues,
      scaling: scalingConfigFor(pool, settings),
    };
  });
  if (problems.length > 0) throw new ConfigError(problems);
  const bootDeadline = Math.max(...pools.map((p) => p.scaling.bootDeadlineSeconds));
  const intervalSeconds = Math.min(...pools.map((p) => p.scaling.decisionIntervalSeconds));
  return {
    config,
    pools,
    observe: {
      // The boot deadline, or four missed heartbeats if that is longer.
      silenceSeconds: silenceSeconds ?? Math.max(bootDeadline, 4 * config.heartbeatSeconds),
      arrivalWindowSeconds,
      drainGraceSeconds: drainGraceSeconds ?? 2 * config.heartbeatSeconds,
    },
    agentsTableName: env[ENV.agentsTableName] || agentsTableName(config.prefix),
    intervalMs: intervalSeconds * 1000,
  };
}
