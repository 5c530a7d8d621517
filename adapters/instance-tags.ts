import { CreateTagsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { AgentStatus, AgentStatusReporter } from '../agent/ports';

/** Tag on a build instance naming the jobs it runs, so a person finds the instance from a job. */
export const JOB_IDS_TAG = 'kiln:job-ids';

/**
 * Keeps the instance's `kiln:job-ids` tag equal to the jobs the agent runs (`idle` when none).
 * Only a change is written; the instance role may tag only its own instance and only `kiln:*` keys.
 */
export class InstanceJobTagger implements AgentStatusReporter {
  private last: string | undefined;

  constructor(
    private readonly ec2: EC2Client,
    private readonly instanceId: string,
  ) {}

  async report(status: AgentStatus): Promise<void> {
    const value = status.jobIds.length > 0 ? [...status.jobIds].sort().join(' ') : 'idle';
    if (value === this.last) return;
    await this.ec2.send(
      new CreateTagsCommand({
        Resources: [this.instanceId],
        Tags: [{ Key: JOB_IDS_TAG, Value: value.slice(0, 256) }],
      }),
    );
    this.last = value;
  }
}

/** Reports to each in turn; one failing does not keep the others from hearing. */
export function allReporters(reporters: readonly AgentStatusReporter[]): AgentStatusReporter {
  return {
    async report(status) {
      const results = await Promise.allSettled(reporters.map((r) => r.report(status)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}
