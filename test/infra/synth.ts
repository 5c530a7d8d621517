/**
 * Synthesizes the Kiln app the way `cdk synth` does (cdk.json context, cdk-nag plugin) with
 * bundling skipped. The stack is built from a throwaway source root holding stub entry files, so
 * these tests depend on neither the handlers nor the agent being written or compiling.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AGENT_ENTRY } from '../../infra/constructs/agent-bundle';
import { DLQ_CONSUMER_ENTRY } from '../../infra/constructs/background';
import { RETENTION_ENTRY } from '../../infra/constructs/retention';
import { SCALER_ENTRY } from '../../infra/constructs/scaler';
import { addKilnStack } from '../../infra/kiln-app';
import type { KilnStack } from '../../infra/kiln-stack';
import { REPO_ROOT } from '../../infra/paths';
import { BACKGROUND_FUNCTIONS, ROUTES } from '../../lambdas/api/routes';

export const CDK_JSON = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as {
  app: string;
  context: Record<string, unknown>;
  [key: string]: unknown;
};

export const STACK_ENTRIES = [
  ...ROUTES.map((r) => r.entry),
  ...Object.values(BACKGROUND_FUNCTIONS).map((f) => f.entry),
  DLQ_CONSUMER_ENTRY,
  SCALER_ENTRY,
  RETENTION_ENTRY,
  AGENT_ENTRY,
] as const;

export function stubSourceRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'kiln-infra-src-'));
  for (const entry of STACK_ENTRIES) {
    const path = join(root, entry);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, 'export const handler = async () => undefined;\n');
  }
  copyFileSync(join(REPO_ROOT, 'package-lock.json'), join(root, 'package-lock.json'));
  return root;
}

export interface Synthesized {
  readonly app: App;
  readonly stack: KilnStack;
  readonly template: Template;
  readonly resources: Record<string, CfnResource>;
}

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  [key: string]: unknown;
}

export function synthesize(context: Record<string, unknown> = {}): Synthesized {
  const app = new App({
    outdir: mkdtempSync(join(tmpdir(), 'kiln-infra-out-')),
    context: { ...CDK_JSON.context, 'aws:cdk:bundling-stacks': [], ...context },
  });
  const stack = addKilnStack(app, { sourceRoot: stubSourceRoot() });
  // Throws with the cdk-nag report if any finding is left unacknowledged.
  app.synth();
  const template = Template.fromStack(stack);
  return { app, stack, template, resources: template.toJSON().Resources as Record<string, CfnResource> };
}

/** A property that must be present, typed by the caller. */
export function propOf<T>(resource: CfnResource | undefined, name: string): T {
  const value = resource?.Properties?.[name];
  if (value === undefined) throw new Error(`property ${name} is missing`);
  return value as T;
}

export function resourcesOfType(
  resources: Record<string, CfnResource>,
  type: string,
): Array<[string, CfnResource]> {
  return Object.entries(resources).filter(([, r]) => r.Type === type);
}

export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource?: unknown;
  Condition?: unknown;
  Sid?: string;
}

export function actionsOf(statement: Statement): string[] {
  return Array.isArray(statement.Action) ? statement.Action : [statement.Action];
}

export function resourcesOf(statement: Statement): unknown[] {
  if (statement.Resource === undefined) return [];
  return Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
}

/** Every statement attached to a role: its inline policies and the AWS::IAM::Policy resources naming it. */
export function statementsOfRole(resources: Record<string, CfnResource>, roleLogicalId: string): Statement[] {
  const statements: Statement[] = [];
  const role = resources[roleLogicalId];
  if (!role) throw new Error(`no resource ${roleLogicalId}`);
  for (const p of (role.Properties?.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }>) ??
    []) {
    statements.push(...p.PolicyDocument.Statement);
  }
  for (const [, policy] of resourcesOfType(resources, 'AWS::IAM::Policy')) {
    const roles = (policy.Properties?.Roles as unknown[]) ?? [];
    if (roles.some((r) => JSON.stringify(r) === JSON.stringify({ Ref: roleLogicalId }))) {
      statements.push(...propOf<{ Statement: Statement[] }>(policy, 'PolicyDocument').Statement);
    }
  }
  return statements;
}

export function logicalIdOf(
  stackScoped: { node: { defaultChild?: unknown } },
  synthesized: Synthesized,
): string {
  const child = stackScoped.node.defaultChild as { logicalId: string } | undefined;
  if (!child) throw new Error('construct has no default child');
  return synthesized.stack.resolve(child.logicalId) as string;
}

/** Replaces content hashes (asset keys, hashes in logical ids of assets) so the snapshot survives source edits. */
export function stripAssetHashes(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value).replace(/[0-9a-f]{64}/g, '<asset-hash>'));
}
