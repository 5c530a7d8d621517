import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, type NagPack } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  actionsOf,
  type CfnResource,
  propOf,
  resourcesOf,
  type Statement,
  type Synthesized,
  synthesize,
} from './synth';

let s: Synthesized;
beforeAll(() => {
  s = synthesize();
});

/** Statements of every IAM policy in the template, inline or standalone, with where they live. */
function iamStatements(resources: Record<string, CfnResource>): Array<[string, Statement]> {
  const out: Array<[string, Statement]> = [];
  for (const [id, r] of Object.entries(resources)) {
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy') {
      for (const st of propOf<{ Statement: Statement[] }>(r, 'PolicyDocument').Statement) out.push([id, st]);
    }
    if (r.Type === 'AWS::IAM::Role') {
      for (const p of (r.Properties?.Policies as Array<{ PolicyDocument: { Statement: Statement[] } }>) ??
        []) {
        for (const st of p.PolicyDocument.Statement) out.push([id, st]);
      }
    }
  }
  return out;
}

describe('IAM', () => {
  it('no statement allows every action, or every action of a service', () => {
    const statements = iamStatements(s.resources);
    expect(statements.length).toBeGreaterThan(20);
    for (const [id, st] of statements) {
      for (const action of actionsOf(st)) {
        expect(action, id).not.toBe('*');
        expect(action, id).not.toMatch(/:\*$/);
      }
    }
  });

  // Actions AWS offers no resource-level permissions for: EC2 and Auto Scaling Describe calls, and the log delivery
  // and X-Ray calls of the register state machine's logging and tracing. Nothing else may use `*`.
  const UNSCOPABLE =
    /^(ec2:[Dd]escribe[A-Za-z*]*|autoscaling:Describe[A-Za-z]*|logs:(Create|Delete|Get|Update)LogDelivery|logs:ListLogDeliveries|logs:DescribeLogGroups|logs:DescribeResourcePolicies|logs:PutResourcePolicy|xray:(GetSamplingRules|GetSamplingTargets|PutTelemetryRecords|PutTraceSegments))$/;

  it('no statement applies to every resource, except actions AWS cannot scope', () => {
    for (const [id, st] of iamStatements(s.resources)) {
      if (!resourcesOf(st).includes('*')) continue;
      const actions = ([] as unknown[]).concat(st.Action ?? []);
      expect(actions.length, `${id} ${JSON.stringify(st)}`).toBeGreaterThan(0);
      for (const action of actions) expect(action, `${id} ${JSON.stringify(st)}`).toMatch(UNSCOPABLE);
    }
  });

  it('no Kiln role uses an AWS managed policy other than Session Manager core on build instances', () => {
    for (const [id, r] of Object.entries(s.resources)) {
      // CDK's own provider that strips the VPC default security group logs with the basic execution role.
      if (r.Type !== 'AWS::IAM::Role' || id.startsWith('CustomVpcRestrictDefaultSG')) continue;
      for (const arn of (r.Properties?.ManagedPolicyArns as unknown[]) ?? []) {
        expect(JSON.stringify(arn), id).toContain('AmazonSSMManagedInstanceCore');
      }
    }
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('reports no finding, error or warning, that is not acknowledged', () => {
    const report = new AwsSolutionsChecks().validateScope(s.app);
    expect(
      report.violations.map(
        (v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
      ),
    ).toEqual([]);
    expect(report.success).toBe(true);
  });

  it('every acknowledgement answers a finding on the construct it is attached to', () => {
    // Run the pack as if nothing were acknowledged, then match each acknowledgement to a finding
    // under its construct: a stale acknowledgement (with a reason that is no longer true) fails.
    const pack = new AwsSolutionsChecks() as unknown as { isAcknowledged: () => boolean };
    pack.isAcknowledged = () => false;
    const raw = (pack as unknown as NagPack)
      .validateScope(s.app)
      .violations.flatMap((v) =>
        v.violatingResources.map((r) => ({ id: v.ruleName, path: r.constructPath ?? '' })),
      );
    const acknowledgements: Array<{ id: string; path: string; reason: string }> = [];
    const visit = (c: IConstruct) => {
      for (const entry of c.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const [key, reason] of Object.entries(entry.data as Record<string, string>)) {
          // aws-cdk-lib acknowledges rules of its own CloudFormation validator; only cdk-nag's are ours.
          if (!key.replace(/^annotation::/i, '').startsWith('AwsSolutions-')) continue;
          acknowledgements.push({ id: key.replace(/^annotation::/i, ''), path: c.node.path, reason });
        }
      }
      for (const child of c.node.children) visit(child);
    };
    visit(s.app);
    expect(acknowledgements.length).toBeGreaterThan(0);
    for (const ack of acknowledgements) {
      const matched = raw.some(
        (f) => f.id === ack.id && (f.path === ack.path || f.path.startsWith(`${ack.path}/`)),
      );
      expect(matched, `${ack.id} at ${ack.path}`).toBe(true);
      expect(ack.reason.length, `${ack.id} at ${ack.path} needs a reason`).toBeGreaterThan(40);
    }
    for (const f of raw) {
      const covered = acknowledgements.some(
        (a) => a.id === f.id && (f.path === a.path || f.path.startsWith(`${a.path}/`)),
      );
      expect(covered, `${f.id} at ${f.path}`).toBe(true);
    }
  });
});
