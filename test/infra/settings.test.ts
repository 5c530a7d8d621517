import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config';
import {
  ALARM_EMAIL_CONTEXT_KEY,
  CONFIG_CONTEXT_KEY,
  CONFIG_FILE_CONTEXT_KEY,
  DeploymentSettingsError,
  loadDeploymentSettings,
  VPC_CONTEXT_KEY,
} from '../../infra/settings';
import { CDK_JSON, resourcesOfType, type Synthesized, synthesize } from './synth';

function load(context: Record<string, unknown>, cwd?: string) {
  return loadDeploymentSettings(new App({ context }).node, cwd);
}

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof DeploymentSettingsError) return error.problems;
    throw error;
  }
  throw new Error('expected a DeploymentSettingsError');
}

describe('deployment settings', () => {
  it('cdk.json holds a config that parses to the defaults local mode uses', () => {
    expect(load(CDK_JSON.context).config).toEqual(parseConfig({}));
  });

  it('reads the config from context, as an object or as JSON text from -c', () => {
    const pools = [{ name: 'big', arch: 'x86_64', instanceTypes: ['m7i.2xlarge'] }];
    expect(load({ [CONFIG_CONTEXT_KEY]: { prefix: 'lab', pools } }).config.prefix).toBe('lab');
    expect(
      load({ [CONFIG_CONTEXT_KEY]: JSON.stringify({ prefix: 'lab', pools }) }).config.pools[0]?.name,
    ).toBe('big');
  });

  it('prefers a config file named by kilnConfigFile, resolved from the working directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-settings-'));
    writeFileSync(join(dir, 'kiln.json'), JSON.stringify({ prefix: 'fromfile' }));
    const settings = load(
      { [CONFIG_FILE_CONTEXT_KEY]: 'kiln.json', [CONFIG_CONTEXT_KEY]: { prefix: 'ignored' } },
      dir,
    );
    expect(settings.config.prefix).toBe('fromfile');
    expect(settings.configSource).toBe(`config file ${join(dir, 'kiln.json')}`);
  });

  it('reports every problem at once, naming where the value came from', () => {
    const problems = problemsOf(() =>
      load({
        [CONFIG_CONTEXT_KEY]: {
          prefix: 'X',
          pools: [{ name: 'p', arch: 'sparc', instanceTypes: [] }],
          bogus: 1,
        },
        [VPC_CONTEXT_KEY]: { vpcId: 'nope', availabilityZones: [], privateSubnetIds: ['subnet-1a'] },
        [ALARM_EMAIL_CONTEXT_KEY]: 'not-an-address',
      }),
    );
    expect(problems.some((p) => p.startsWith('context "kiln": prefix'))).toBe(true);
    expect(problems.some((p) => p.startsWith('context "kiln": pools.0.arch'))).toBe(true);
    expect(problems.some((p) => p.startsWith('context "kiln": pools.0.instanceTypes'))).toBe(true);
    expect(problems.some((p) => p.startsWith('context "kiln"') && p.includes('bogus'))).toBe(true);
    expect(problems.some((p) => p.startsWith('context "kilnVpc": vpcId'))).toBe(true);
    expect(problems.some((p) => p.startsWith('context "kilnVpc": availabilityZones'))).toBe(true);
    expect(problems.some((p) => p.startsWith('context "kilnAlarmEmail"'))).toBe(true);
  });

  it('says so when the config file is missing or is not JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-settings-'));
    expect(problemsOf(() => load({ [CONFIG_FILE_CONTEXT_KEY]: 'missing.json' }, dir))).toEqual([
      `config file ${join(dir, 'missing.json')}: cannot be read (ENOENT)`,
    ]);
    writeFileSync(join(dir, 'bad.json'), '{ prefix: ');
    expect(problemsOf(() => load({ [CONFIG_FILE_CONTEXT_KEY]: 'bad.json' }, dir))[0]).toMatch(
      /bad\.json: not valid JSON/,
    );
  });
});

describe('a deployment into an existing VPC', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synthesize({
      [CONFIG_CONTEXT_KEY]: {
        prefix: 'lab',
        pools: [
          {
            name: 'arm',
            arch: 'aarch64',
            instanceTypes: ['c7g.xlarge', 'c6g.xlarge'],
            maxCapacity: 4,
            concurrency: 2,
          },
        ],
      },
      [VPC_CONTEXT_KEY]: {
        vpcId: 'vpc-0123456789abcdef0',
        availabilityZones: ['eu-west-1a', 'eu-west-1b'],
        privateSubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
      },
    });
  });

  it('creates no VPC and places the fleet in the given subnets', () => {
    expect(resourcesOfType(s.resources, 'AWS::EC2::VPC')).toEqual([]);
    const [, group] = resourcesOfType(s.resources, 'AWS::AutoScaling::AutoScalingGroup')[0] ?? [];
    expect(group?.Properties?.VPCZoneIdentifier).toEqual([
      'subnet-0aaaaaaaaaaaaaaa1',
      'subnet-0bbbbbbbbbbbbbbb2',
    ]);
    s.template.hasResourceProperties('AWS::EC2::SecurityGroup', { VpcId: 'vpc-0123456789abcdef0' });
  });

  it('follows the config: one pool, its instance types and capacity, prefixed names', () => {
    const [, group] = resourcesOfType(s.resources, 'AWS::AutoScaling::AutoScalingGroup')[0] ?? [];
    expect(group?.Properties).toMatchObject({ AutoScalingGroupName: 'lab-arm', MinSize: '0', MaxSize: '4' });
    const names = resourcesOfType(s.resources, 'AWS::SQS::Queue').map(([, q]) => q.Properties?.QueueName);
    expect(names).toContain('lab-arm-high');
    s.template.hasResourceProperties('AWS::DynamoDB::Table', { TableName: 'lab-jobs' });
    // The scaler sizes the group from the pool's bounds and builds per instance.
    expect(JSON.stringify(s.resources)).toContain('lab-arm');
  });
});
