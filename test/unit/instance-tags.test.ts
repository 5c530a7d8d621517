import type { CreateTagsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { allReporters, InstanceJobTagger, JOB_IDS_TAG } from '../../adapters/instance-tags';
import type { AgentStatus } from '../../agent/ports';

const status = (jobIds: string[]): AgentStatus => ({
  agentId: 'i-0abc',
  pool: 'general-x86_64',
  busySlots: jobIds.length,
  slots: 2,
  at: '2030-01-01T00:00:00.000Z',
  accepting: true,
  jobIds,
});

function fakeEc2() {
  const sent: CreateTagsCommand['input'][] = [];
  const client = {
    send: async (command: CreateTagsCommand) => sent.push(command.input),
  } as unknown as EC2Client;
  return { client, sent };
}

describe('InstanceJobTagger', () => {
  it('tags the instance with its jobs, sorted, and `idle` without; writes only changes', async () => {
    const { client, sent } = fakeEc2();
    const tagger = new InstanceJobTagger(client, 'i-0abc');
    await tagger.report(status([]));
    await tagger.report(status(['j-b', 'j-a']));
    await tagger.report(status(['j-a', 'j-b']));
    await tagger.report(status([]));
    expect(sent).toEqual([
      { Resources: ['i-0abc'], Tags: [{ Key: JOB_IDS_TAG, Value: 'idle' }] },
      { Resources: ['i-0abc'], Tags: [{ Key: JOB_IDS_TAG, Value: 'j-a j-b' }] },
      { Resources: ['i-0abc'], Tags: [{ Key: JOB_IDS_TAG, Value: 'idle' }] },
    ]);
  });

  it('a failed tag write is retried on the next report', async () => {
    let fail = true;
    const sent: unknown[] = [];
    const client = {
      send: async (command: CreateTagsCommand) => {
        if (fail) throw new Error('throttled');
        sent.push(command.input);
      },
    } as unknown as EC2Client;
    const tagger = new InstanceJobTagger(client, 'i-0abc');
    await expect(tagger.report(status(['j-a']))).rejects.toThrow('throttled');
    fail = false;
    await tagger.report(status(['j-a']));
    expect(sent).toHaveLength(1);
  });
});

describe('allReporters', () => {
  it('tells every reporter even when one fails, then reports the failure', async () => {
    const heard: string[] = [];
    const combined = allReporters([
      { report: async () => Promise.reject(new Error('table gone')) },
      { report: async (s) => void heard.push(s.agentId) },
    ]);
    await expect(combined.report(status([]))).rejects.toThrow('table gone');
    expect(heard).toEqual(['i-0abc']);
  });
});
