import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config';
import { queueDefinitions } from '../../infra/definitions';
import { logicalIdOf, propOf, resourcesOfType, synthesize } from './synth';

const THREE_POOLS = {
  pools: [
    { name: 'general-x86_64', arch: 'x86_64', instanceTypes: ['c7i.large'] },
    { name: 'general-aarch64', arch: 'aarch64', instanceTypes: ['c7g.large'] },
    { name: 'gpu', arch: 'x86_64', instanceTypes: ['g5.xlarge'], maxCapacity: 2, labels: { gpu: 'a10g' } },
  ],
};

describe('one queue set and one Auto Scaling group per configured pool', () => {
  it('a three-pool config makes three queue sets (a queue and DLQ per class) and three groups', () => {
    const s = synthesize({ kiln: THREE_POOLS });
    const names = resourcesOfType(s.resources, 'AWS::SQS::Queue').map(([, q]) =>
      propOf<string>(q, 'QueueName'),
    );
    const expected = queueDefinitions(parseConfig(THREE_POOLS)).flatMap((q) => [
      q.queueName,
      q.deadLetterQueueName,
    ]);
    expect(names.sort()).toEqual(expected.sort());
    expect(expected).toHaveLength(3 * 3 * 2);
    const groups = resourcesOfType(s.resources, 'AWS::AutoScaling::AutoScalingGroup');
    expect(groups).toHaveLength(3);
    const maxima = groups.map(([, g]) => Number(propOf(g, 'MaxSize'))).sort();
    expect(maxima).toEqual([10, 10, 2]);
  });
});

describe('job events', () => {
  const s = synthesize();

  it('every writer of job transitions may put events on the job bus; readers may not', () => {
    const busArn = JSON.stringify({ 'Fn::GetAtt': [logicalIdOf(s.stack.jobs.eventBus, s), 'Arn'] });
    const putters = resourcesOfType(s.resources, 'AWS::IAM::Policy').filter(([, p]) =>
      JSON.stringify(p.Properties?.PolicyDocument).includes('events:PutEvents'),
    );
    const policyText = putters.map(([, p]) => JSON.stringify(p.Properties)).join('\n');
    expect(policyText).toContain(busArn);
    const roleOf = (fn: { role: { node: { defaultChild?: unknown } } }) => logicalIdOf(fn.role, s);
    for (const name of ['submitJob', 'cancelJob']) {
      expect(policyText).toContain(roleOf(s.stack.api.functions.get(name as never) as never));
    }
    for (const name of ['getJob', 'listJobs', 'getJobLogs', 'getArtifact', 'listPools']) {
      expect(policyText).not.toContain(roleOf(s.stack.api.functions.get(name as never) as never));
    }
    expect(policyText).toContain(roleOf(s.stack.background.sweeper));
    for (const pool of s.stack.pools) expect(policyText).toContain(roleOf(pool as never));
  });

  it('a rule on the bus sends the events of auto rebuilds leaving the build stages to the auto gate', () => {
    const rules = resourcesOfType(s.resources, 'AWS::Events::Rule').filter(([, r]) =>
      (JSON.stringify(r.Properties?.EventPattern) ?? '').includes('"buildType":["auto"]'),
    );
    expect(rules).toHaveLength(1);
    const [, rule] = rules[0] ?? [];
    expect(propOf(rule, 'EventPattern')).toMatchObject({
      source: ['kiln.jobs'],
      detail: { status: ['REGISTERING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT'] },
    });
    const gate = logicalIdOf(s.stack.background.autoGate.function, s);
    expect(JSON.stringify(propOf(rule, 'Targets'))).toContain(gate);
  });
});
