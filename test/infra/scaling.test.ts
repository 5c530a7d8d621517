/**
 * The fleet scaling wiring chosen in docs/adr/0003-scaling-policy.md, in the template: a scaler
 * Lambda on a one-minute schedule (looping every ~10 s inside it), no scaling policies on the
 * groups, scale-in protection and lifecycle permissions for each pool's agents on their own group
 * only, and a termination lifecycle hook on every group.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { SCALER_ENTRY, Scaler } from '../../infra/constructs/scaler';
import { AGENTS_TABLE, ENV, TERMINATION_HOOK_NAME } from '../../infra/definitions';
import { addKilnStack } from '../../infra/kiln-app';
import type { KilnStack } from '../../infra/kiln-stack';
import { loadDeploymentSettings } from '../../infra/settings';
import {
  actionsOf,
  CDK_JSON,
  type CfnResource,
  logicalIdOf,
  propOf,
  resourcesOf,
  resourcesOfType,
  type Statement,
  type Synthesized,
  statementsOfRole,
  stubSourceRoot,
} from './synth';

interface WithScaler extends Synthesized {
  scaler: Scaler;
}

/** The Kiln app as `cdk synth` builds it, with the scaler (added here if the stack does not wire it yet). */
function synthesizeWithScaler(): WithScaler {
  const sourceRoot = stubSourceRoot();
  const entry = join(sourceRoot, SCALER_ENTRY);
  mkdirSync(dirname(entry), { recursive: true });
  writeFileSync(entry, 'export const handler = async () => undefined;\n');
  const app = new App({
    outdir: mkdtempSync(join(tmpdir(), 'kiln-infra-out-')),
    context: { ...CDK_JSON.context, 'aws:cdk:bundling-stacks': [] },
  });
  const stack: KilnStack = addKilnStack(app, { sourceRoot });
  const wired = stack.node.findAll().find((c): c is Scaler => c instanceof Scaler);
  const { config } = loadDeploymentSettings(app.node);
  const scaler =
    wired ??
    new Scaler(stack, 'Scaler', {
      config,
      sourceRoot,
      pools: stack.pools,
      environment: { [ENV.config]: JSON.stringify(config), [ENV.queueUrls]: stack.queues.queueUrlsJson() },
    });
  // Throws with the cdk-nag report if any finding is left unacknowledged.
  app.synth();
  const template = Template.fromStack(stack);
  return {
    app,
    stack,
    template,
    resources: template.toJSON().Resources as Record<string, CfnResource>,
    scaler,
  };
}

let s: WithScaler;
beforeAll(() => {
  s = synthesizeWithScaler();
});

const groupArnText = (name: string) => `:autoScalingGroup:*:autoScalingGroupName/${name}`;

function statementsWith(statements: Statement[], action: string): Statement[] {
  return statements.filter((st) => actionsOf(st).includes(action));
}

describe('the scaler Lambda on a short loop', () => {
  it('runs every minute from an EventBridge rule, one invocation at a time, stale events dropped', () => {
    const fn = logicalIdOf(s.scaler.function.function, s);
    const rules = resourcesOfType(s.resources, 'AWS::Events::Rule').filter(([, r]) =>
      JSON.stringify(r.Properties?.Targets).includes(fn),
    );
    expect(rules).toHaveLength(1);
    expect(rules[0]?.[1].Properties).toMatchObject({
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
    });
    const props = s.resources[fn]?.Properties ?? {};
    expect(props.ReservedConcurrentExecutions).toBe(1);
    // It loops for just under the minute, inside its timeout.
    expect(props.Timeout).toBeGreaterThan(60);
    expect(props.Timeout).toBeLessThanOrEqual(120);
    const [, invokeConfig] =
      resourcesOfType(s.resources, 'AWS::Lambda::EventInvokeConfig').find(
        ([, c]) => JSON.stringify(c.Properties?.FunctionName) === JSON.stringify({ Ref: fn }),
      ) ?? [];
    expect(invokeConfig?.Properties).toMatchObject({ MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60 });
  });

  it('knows every pool, its group and the agents table', () => {
    const fn = logicalIdOf(s.scaler.function.function, s);
    const env = propOf<{ Variables: Record<string, unknown> }>(s.resources[fn], 'Environment').Variables;
    expect(JSON.parse(env[ENV.autoScalingGroups] as string)).toEqual(
      Object.fromEntries(s.stack.pools.map((p) => [p.pool.name, p.groupName])),
    );
    expect(env[ENV.agentsTableName]).toEqual({ Ref: logicalIdOf(s.scaler.agentsTable, s) });
    expect(env[ENV.config]).toBeDefined();
    expect(env[ENV.queueUrls]).toBeDefined();
  });

  it('may raise capacity and terminate instances in the pools’ groups only, and read what it decides on', () => {
    const statements = statementsOfRole(s.resources, logicalIdOf(s.scaler.function.role, s));
    const scale = statementsWith(statements, 'autoscaling:SetDesiredCapacity');
    expect(scale).toHaveLength(1);
    expect(actionsOf(scale[0] as Statement).sort()).toEqual([
      'autoscaling:SetDesiredCapacity',
      'autoscaling:TerminateInstanceInAutoScalingGroup',
    ]);
    const targets = resourcesOf(scale[0] as Statement).map((r) => JSON.stringify(r));
    expect(targets).toHaveLength(s.stack.pools.length);
    for (const p of s.stack.pools)
      expect(targets.some((t) => t.includes(groupArnText(p.groupName)))).toBe(true);
    const all = statements.flatMap(actionsOf);
    for (const forbidden of [
      'autoscaling:*',
      'autoscaling:UpdateAutoScalingGroup',
      'autoscaling:PutScalingPolicy',
    ]) {
      expect(all).not.toContain(forbidden);
    }
    // Describe calls have no resource-level permissions.
    const describe = statementsWith(statements, 'autoscaling:DescribeAutoScalingGroups');
    expect(describe.flatMap(actionsOf).sort()).toEqual([
      'autoscaling:DescribeAutoScalingGroups',
      'ec2:DescribeInstances',
    ]);
    expect(describe.flatMap(resourcesOf)).toEqual(['*']);
    const depth = statementsWith(statements, 'sqs:GetQueueAttributes');
    expect(depth.flatMap(resourcesOf)).toHaveLength(s.stack.pools.length * 3);
    const agents = statementsWith(statements, 'dynamodb:Query');
    expect(agents.flatMap(resourcesOf)).toEqual([
      { 'Fn::GetAtt': [logicalIdOf(s.scaler.agentsTable, s), 'Arn'] },
    ]);
  });
});

describe('the groups', () => {
  it('have no scaling policies and no alarm actions on them: only the scaler changes capacity', () => {
    expect(resourcesOfType(s.resources, 'AWS::AutoScaling::ScalingPolicy')).toEqual([]);
    expect(resourcesOfType(s.resources, 'AWS::ApplicationAutoScaling::ScalingPolicy')).toEqual([]);
    const alarmActions = resourcesOfType(s.resources, 'AWS::CloudWatch::Alarm').flatMap(
      ([, a]) => (a.Properties?.AlarmActions as unknown[] | undefined) ?? [],
    );
    expect(JSON.stringify(alarmActions)).not.toMatch(/autoscaling/i);
    for (const p of s.stack.pools) {
      // No DesiredCapacity in the template: a deploy never resets what the scaler set.
      const group = s.resources[logicalIdOf(p.group, s)];
      expect(group?.Properties?.DesiredCapacity).toBeUndefined();
      expect(group?.Properties?.NewInstancesProtectedFromScaleIn).toBeUndefined();
    }
  });

  it('each hold a terminating instance for its agent to hand its jobs back (termination lifecycle hook)', () => {
    const hooks = resourcesOfType(s.resources, 'AWS::AutoScaling::LifecycleHook');
    expect(hooks).toHaveLength(s.stack.pools.length);
    for (const p of s.stack.pools) {
      const hook = hooks.find(
        ([, h]) =>
          JSON.stringify(h.Properties?.AutoScalingGroupName) ===
          JSON.stringify({ Ref: logicalIdOf(p.group, s) }),
      );
      expect(hook?.[1].Properties).toEqual(
        expect.objectContaining({
          LifecycleHookName: TERMINATION_HOOK_NAME,
          LifecycleTransition: 'autoscaling:EC2_INSTANCE_TERMINATING',
          DefaultResult: 'CONTINUE',
          HeartbeatTimeout: 180,
        }),
      );
      // No notification target: the agent reads its own state from instance metadata.
      expect(hook?.[1].Properties?.NotificationTargetARN).toBeUndefined();
    }
  });
});

describe('agents', () => {
  it('may set scale-in protection and complete lifecycle actions on their own group only', () => {
    for (const p of s.stack.pools) {
      const statements = statementsOfRole(s.resources, logicalIdOf(p.role, s));
      const own = statementsWith(statements, 'autoscaling:SetInstanceProtection');
      expect(own).toHaveLength(1);
      expect(actionsOf(own[0] as Statement).sort()).toEqual([
        'autoscaling:CompleteLifecycleAction',
        'autoscaling:RecordLifecycleActionHeartbeat',
        'autoscaling:SetInstanceProtection',
      ]);
      const targets = resourcesOf(own[0] as Statement).map((r) => JSON.stringify(r));
      expect(targets).toHaveLength(1);
      expect(targets[0]).toContain(groupArnText(p.groupName));
      for (const other of s.stack.pools.filter((o) => o !== p)) {
        expect(targets[0]).not.toContain(groupArnText(other.groupName));
      }
      const all = statements.flatMap(actionsOf);
      expect(all).not.toContain('autoscaling:SetDesiredCapacity');
      expect(all).not.toContain('autoscaling:TerminateInstanceInAutoScalingGroup');
    }
  });

  it('may write status records in their own pool’s partition of the agents table only', () => {
    const table = s.resources[logicalIdOf(s.scaler.agentsTable, s)];
    expect(propOf(table, 'KeySchema')).toEqual([
      { AttributeName: AGENTS_TABLE.partitionKey.name, KeyType: 'HASH' },
      { AttributeName: AGENTS_TABLE.sortKey.name, KeyType: 'RANGE' },
    ]);
    expect(propOf(table, 'TimeToLiveSpecification')).toEqual({
      AttributeName: AGENTS_TABLE.timeToLiveAttribute,
      Enabled: true,
    });
    for (const p of s.stack.pools) {
      const writes = statementsWith(
        statementsOfRole(s.resources, logicalIdOf(p.role, s)),
        'dynamodb:PutItem',
      );
      expect(writes).toHaveLength(1);
      expect(writes[0]).toMatchObject({
        Resource: { 'Fn::GetAtt': [logicalIdOf(s.scaler.agentsTable, s), 'Arn'] },
        Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [p.pool.name] } },
      });
    }
  });
});
