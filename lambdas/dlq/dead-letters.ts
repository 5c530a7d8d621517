import { ConflictError, LeaseLostError } from '../../core/errors';
import type { Job } from '../../core/job';
import { isTerminal, planTransition } from '../../core/transitions';
import type { ApiJobStore } from '../api/ports';

export interface DeadLetter {
  body: string;
  receiveCount: number;
  queueArn: string;
}

export type DeadLetterOutcome = {
  jobId: string;
  result: 'failed' | 'already-finished' | 'unknown-job' | 'raced';
};

/**
 * A poison message ends in a DLQ; its job must not stay QUEUED or RUNNING forever. The job is
 * marked FAILED with a reason that names the queue and how often delivery was tried.
 */
export async function failDeadLetteredJob(
  store: Pick<ApiJobStore, 'get' | 'apply'>,
  letter: DeadLetter,
  now: Date,
): Promise<DeadLetterOutcome> {
  let jobId = '';
  try {
    jobId = String((JSON.parse(letter.body) as { jobId?: unknown }).jobId ?? '');
  } catch {
    // an unparseable body names no job
  }
  const job: Job | undefined = jobId ? await store.get(jobId) : undefined;
  if (!job) return { jobId, result: 'unknown-job' };
  if (isTerminal(job.status)) return { jobId, result: 'already-finished' };
  // An ARN (AWS event source) or a queue URL (local mode): the name is the last segment of either.
  const queue = letter.queueArn.split(/[:/]/).pop() ?? letter.queueArn;
  const message = `the job's queue message was delivered ${letter.receiveCount} time(s) without the job finishing and was moved to the dead-letter queue ${queue}; the agents' logs for ${jobId} say why`;
  try {
    await store.apply(
      planTransition(
        job,
        { to: 'FAILED', reason: 'dead-lettered', error: { code: 'AGENT_LOST', message } },
        now,
      ),
    );
    return { jobId, result: 'failed' };
  } catch (error) {
    if (error instanceof ConflictError || error instanceof LeaseLostError) return { jobId, result: 'raced' };
    throw error;
  }
}
