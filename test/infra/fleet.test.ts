import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config';
import { AGENT_PATHS, AGENT_UNIT } from '../../infra/constructs/agent-user-data';
import type { BuildPool } from '../../infra/constructs/build-pool';
import { ENV } from '../../infra/definitions';
import {
  actionsOf,
  type CfnResource,
  logicalIdOf,
  resourcesOf,
  resourcesOfType,
  type Synthesized,
  statementsOfRole,
  synthesize,
} from './synth';

let s: Synthesized;
beforeAll(() => {
  s = synthesize();
});

const config = parseConfig({});

function pool(name: string): BuildPool {
  const found = s.stack.pools.find((p) => p.pool.name === name);
  if (!found) throw new Error(`no pool ${name}`);
  return found;
}

function launchTemplateData(p: BuildPool): Record<string, unknown> {
  return (s.resources[logicalIdOf(p.launchTemplate, s)]?.Properties?.LaunchTemplateData ?? {}) as Record<
    string,
    unknown
  >;
}

/** The user data script with every CloudFormation intrinsic replaced by a readable marker. */
function userDataOf(p: BuildPool): string {
  const userData = launchTemplateData(p).UserData as { 'Fn::Base64': { 'Fn::Join': [string, unknown[]] } };
  return userData['Fn::Base64']['Fn::Join'][1]
    .map((part) => (typeof part === 'string' ? part : `<${JSON.stringify(part)}>`))
    .join('');
}

describe('launch templates', () => {
  it('use Amazon Linux 2023 for the pool architecture (arm64 for aarch64)', () => {
    const parameters = s.template.toJSON().Parameters as Record<string, { Default?: string }>;
    for (const p of s.stack.pools) {
      const imageRef = (launchTemplateData(p).ImageId as { Ref: string }).Ref;
      const ssmPath = parameters[imageRef]?.Default ?? '';
      expect(ssmPath).toMatch(/^\/aws\/service\/ami-amazon-linux-latest\/al2023-ami-kernel-[\d.]+-/);
      expect(ssmPath.endsWith(p.pool.arch === 'aarch64' ? '-arm64' : '-x86_64'), p.pool.name).toBe(true);
    }
  });

  it('require IMDSv2, encrypt a gp3 root volume and have no SSH key', () => {
    for (const p of s.stack.pools) {
      const data = launchTemplateData(p);
      expect(data.MetadataOptions).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
      expect(data.BlockDeviceMappings).toEqual([
        {
          DeviceName: '/dev/xvda',
          Ebs: { Encrypted: true, VolumeType: 'gp3', VolumeSize: 100, DeleteOnTermination: true },
        },
      ]);
      expect(data.KeyName).toBeUndefined();
    }
  });

  it('open no inbound port', () => {
    for (const [, sg] of resourcesOfType(s.resources, 'AWS::EC2::SecurityGroup')) {
      expect(sg.Properties?.SecurityGroupIngress).toBeUndefined();
    }
    expect(resourcesOfType(s.resources, 'AWS::EC2::SecurityGroupIngress')).toEqual([]);
  });
});

describe('user data', () => {
  it('installs Node.js and the agent bundle, then enables and starts the agent unit', () => {
    for (const p of s.stack.pools) {
      const script = userDataOf(p);
      const lines = script.split('\n');
      const at = (needle: string) => lines.findIndex((l) => l.includes(needle));
      expect(at('dnf install -y nodejs22 amazon-cloudwatch-agent')).toBeGreaterThan(0);
      expect(at(`aws s3 cp`)).toBeGreaterThan(at('dnf install'));
      expect(lines[at('aws s3 cp')]).toContain(AGENT_PATHS.bundle);
      expect(script).toContain(`cat > ${AGENT_PATHS.unit} <<'KILN_EOF'`);
      expect(script).toContain(`ExecStart=${AGENT_PATHS.launcher}`);
      expect(script).toContain('Restart=always');
      expect(script).toContain(`exec /usr/bin/node-22 --enable-source-maps ${AGENT_PATHS.bundle}`);
      expect(lines.at(-1)).toBe(`systemctl enable --now ${AGENT_UNIT}`);
      expect(at('systemctl daemon-reload')).toBeGreaterThan(at(`cat > ${AGENT_PATHS.unit}`));
    }
  });

  it('gives the agent its pool, table, bucket and only its own pool queues', () => {
    for (const p of s.stack.pools) {
      const script = userDataOf(p);
      expect(script).toContain(`${ENV.pool}=${p.pool.name}\n`);
      expect(script).toContain(`${ENV.tableName}=<{"Ref":"${logicalIdOf(s.stack.jobs.table, s)}"}>`);
      expect(script).toContain(`${ENV.bucketName}=<{"Ref":"${logicalIdOf(s.stack.artifacts.bucket, s)}"}>`);
      expect(script).toContain(`${ENV.config}=$(cat ${AGENT_PATHS.config})`);
      expect(script).toContain(`${ENV.agentId}=$(curl`);
      for (const q of s.stack.queues.all) {
        const mentioned = script.includes(`"Ref":"${logicalIdOf(q.queue, s)}"`);
        expect(mentioned, `${p.pool.name} user data mentions ${q.definition.queueName}`).toBe(
          q.definition.pool === p.pool.name,
        );
      }
    }
  });
});

describe('instance roles', () => {
  const queueArnsOf = (poolName: string) =>
    s.stack.queues.all
      .filter((q) => q.definition.pool === poolName)
      .flatMap((q) => [logicalIdOf(q.queue, s), logicalIdOf(q.deadLetterQueue, s)]);

  it("of one pool cannot touch another pool's queues", () => {
    for (const p of s.stack.pools) {
      const statements = JSON.stringify(statementsOfRole(s.resources, logicalIdOf(p.role, s)));
      for (const other of s.stack.pools.filter((o) => o !== p)) {
        for (const id of queueArnsOf(other.pool.name))
          expect(statements, `${p.pool.name} → ${id}`).not.toContain(id);
      }
    }
  });

  it('consume exactly their own pool queues, nothing more on SQS', () => {
    for (const p of s.stack.pools) {
      const sqs = statementsOfRole(s.resources, logicalIdOf(p.role, s)).filter((st) =>
        actionsOf(st).some((a) => a.startsWith('sqs:')),
      );
      expect(sqs).toHaveLength(1);
      expect(actionsOf(sqs[0] as never).sort()).toEqual([
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:GetQueueAttributes',
        'sqs:ReceiveMessage',
      ]);
      const byJson = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));
      expect(resourcesOf(sqs[0] as never).sort(byJson)).toEqual(
        p.queues.map((q) => ({ 'Fn::GetAtt': [logicalIdOf(q.queue, s), 'Arn'] })).sort(byJson),
      );
    }
  });

  it('update job records and write artifacts and logs, without reading or deleting them', () => {
    for (const p of s.stack.pools) {
      const statements = statementsOfRole(s.resources, logicalIdOf(p.role, s));
      const actions = statements.flatMap(actionsOf);
      const jobsTable = JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(s.stack.jobs.table, s), 'Arn'] });
      const onJobs = statements
        .filter((st) => JSON.stringify(resourcesOf(st)).includes(jobsTable))
        .flatMap(actionsOf);
      expect(onJobs.sort()).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
      expect(actions).toContain('s3:PutObject');
      expect(actions).not.toContain('s3:DeleteObject');
      expect(actions).not.toContain('dynamodb:DeleteItem');
    }
  });

  it('can use Session Manager', () => {
    for (const p of s.stack.pools) {
      const role = s.resources[logicalIdOf(p.role, s)] as CfnResource;
      expect(JSON.stringify(role.Properties?.ManagedPolicyArns)).toContain(
        ':iam::aws:policy/AmazonSSMManagedInstanceCore',
      );
    }
  });

  it('may tag only their own instance', () => {
    const tagging = statementsOfRole(s.resources, logicalIdOf(pool('general-x86_64').role, s)).find((st) =>
      actionsOf(st).includes('ec2:CreateTags'),
    );
    expect(tagging?.Condition).toEqual({
      // biome-ignore lint/suspicious/noTemplateCurlyInString: an IAM policy variable
      StringEquals: { 'aws:ARN': '${ec2:SourceInstanceARN}' },
      'ForAllValues:StringLike': { 'aws:TagKeys': ['kiln:*'] },
    });
  });
});

describe('auto scaling groups', () => {
  it('exist per pool with min 0 and the configured maximum, on-demand, in the given instance types', () => {
    for (const poolConfig of config.pools) {
      const props = s.resources[logicalIdOf(pool(poolConfig.name).group, s)]?.Properties ?? {};
      expect(props.MinSize).toBe('0');
      expect(props.MaxSize).toBe(String(poolConfig.maxCapacity));
      expect(props.DesiredCapacity).toBeUndefined();
      const mixed = props.MixedInstancesPolicy as {
        LaunchTemplate: { Overrides: Array<{ InstanceType: string }> };
        InstancesDistribution: Record<string, unknown>;
      };
      expect(mixed.LaunchTemplate.Overrides.map((o) => o.InstanceType)).toEqual(poolConfig.instanceTypes);
      expect(mixed.InstancesDistribution.OnDemandPercentageAboveBaseCapacity).toBe(100);
    }
  });

  // Scaling itself is the scaler's (test/infra/scaling.test.ts): the groups carry no policies.

  it('tag instances with their pool and report launches and terminations', () => {
    for (const p of s.stack.pools) {
      const props = s.resources[logicalIdOf(p.group, s)]?.Properties ?? {};
      expect(props.Tags).toContainEqual({ Key: 'kiln:pool', Value: p.pool.name, PropagateAtLaunch: true });
      expect(props.NotificationConfigurations).toEqual([
        expect.objectContaining({ TopicARN: { Ref: logicalIdOf(s.stack.alerting.fleetActivityTopic, s) } }),
      ]);
    }
  });
});

describe('network', () => {
  it('puts agents in private subnets that reach S3 and DynamoDB through gateway endpoints', () => {
    const subnets = JSON.stringify(
      s.resources[logicalIdOf(pool('general-aarch64').group, s)]?.Properties?.VPCZoneIdentifier,
    );
    for (const [id, subnet] of resourcesOfType(s.resources, 'AWS::EC2::Subnet')) {
      if (subnets.includes(id)) expect(subnet.Properties?.MapPublicIpOnLaunch, id).toBe(false);
    }
    const endpoints = resourcesOfType(s.resources, 'AWS::EC2::VPCEndpoint').map(([, e]) =>
      JSON.stringify(e.Properties?.ServiceName),
    );
    expect(endpoints.some((e) => e.includes('.s3'))).toBe(true);
    expect(endpoints.some((e) => e.includes('.dynamodb'))).toBe(true);
    expect(resourcesOfType(s.resources, 'AWS::EC2::NatGateway')).toHaveLength(1);
    expect(resourcesOfType(s.resources, 'AWS::EC2::FlowLog')).toHaveLength(1);
  });
});
