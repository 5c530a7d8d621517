import {
  isDeletion,
  planRetention,
  type RetentionPlan,
  type RetentionRules,
  retentionRegions,
} from '../../core/retention';
import { type ExecutionReport, executePlan } from './execute';
import { type InventoryProblem, takeInventory } from './inventory';
import type { RetentionPorts } from './ports';

export interface RetentionRunOptions {
  /** Return the plan and change nothing. */
  dryRun?: boolean;
  signal?: AbortSignal;
}

export interface RetentionReport {
  dryRun: boolean;
  at: string;
  /** Regions listed and decided on. */
  regions: string[];
  /** Listings that failed (their region or the artifacts were left out); they count as failures. */
  problems: InventoryProblem[];
  plan: RetentionPlan;
  /** Deletions in the plan. */
  planned: number;
  /** Absent on a dry run. */
  execution?: ExecutionReport;
  /** Deletions done (or found already done), failures (listing problems included), jobs expired. */
  deleted: number;
  failed: number;
  jobsExpired: number;
}

export interface RetentionDeps {
  ports: RetentionPorts;
  rules: RetentionRules;
  /** The region the deployment lives in; always listed. */
  homeRegion: string;
}

/**
 * One retention run: list what exists, plan, apply. Nothing is remembered between runs but what
 * the resources themselves say, so a run that dies anywhere is completed by the next.
 */
export async function runRetention(
  deps: RetentionDeps,
  now: Date,
  options: RetentionRunOptions = {},
): Promise<RetentionReport> {
  const regions = retentionRegions(deps.rules, deps.homeRegion);
  const { inventory, problems } = await takeInventory(deps.ports, regions, deps.rules.deploymentId);
  const plan = planRetention(inventory, deps.rules, now);
  const planned = plan.actions.filter(isDeletion).length;
  const base = {
    dryRun: options.dryRun === true,
    at: now.toISOString(),
    regions: [...inventory.regions],
    problems,
    plan,
    planned,
  };
  if (options.dryRun) return { ...base, deleted: 0, failed: problems.length, jobsExpired: 0 };
  const execution = await executePlan(plan, deps.ports, {
    now,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  return {
    ...base,
    execution,
    deleted: execution.deleted,
    failed: execution.failed + problems.length,
    jobsExpired: execution.jobsExpired,
  };
}
