import { ConflictError, LeaseLostError } from '../../core/errors';
import type { Job, RegisteredImage } from '../../core/job';
import { planTransition } from '../../core/transitions';
import type { ApiJobStore } from '../api/ports';

export type RecordEvent =
  | {
      outcome: 'SUCCEEDED';
      jobId: string;
      executionId: string;
      homeRegion: string;
      imageId: string;
      snapshotId: string;
      copies?: RegisteredImage[];
    }
  | { outcome: 'FAILED'; jobId: string; executionId: string; error?: { Error?: string; Cause?: string } };

export type RecordOutcome = 'recorded' | 'stale-execution' | 'not-registering';

function executionName(executionArn: string): string {
  return executionArn.split(':').pop() ?? executionArn;
}

/** Readable text from an SFN error Cause (Lambda errors arrive as a JSON document). */
function causeText(error: { Error?: string; Cause?: string } | undefined): string {
  const cause = error?.Cause ?? '';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: string };
    if (parsed.errorMessage) return parsed.errorMessage;
  } catch {
    // a plain-text cause
  }
  return cause || error?.Error || 'unknown error';
}

/**
 * The register workflow's last step: SUCCEEDED with the images, or FAILED with the reason. Only
 * the execution the job names may finish it, so a stale execution of an earlier attempt cannot.
 */
export async function recordRegistration(
  store: Pick<ApiJobStore, 'get' | 'apply'>,
  event: RecordEvent,
  now: Date,
): Promise<RecordOutcome> {
  const job: Job | undefined = await store.get(event.jobId);
  if (job?.status !== 'REGISTERING') return 'not-registering';
  const current = job.registration?.executionName;
  if (current !== undefined && current !== executionName(event.executionId)) return 'stale-execution';
  try {
    if (event.outcome === 'SUCCEEDED') {
      const images: RegisteredImage[] = [
        { region: event.homeRegion, imageId: event.imageId, snapshotId: event.snapshotId },
        ...(event.copies ?? []),
      ];
      await store.apply(
        planTransition(job, { to: 'SUCCEEDED', reason: 'image registered', set: { images } }, now),
      );
    } else {
      const message = `registration failed: ${causeText(event.error)}`;
      await store.apply(
        planTransition(
          job,
          { to: 'FAILED', reason: 'registration failed', error: { code: 'REGISTER_FAILED', message } },
          now,
        ),
      );
    }
    return 'recorded';
  } catch (error) {
    if (error instanceof ConflictError || error instanceof LeaseLostError) return 'not-registering';
    throw error;
  }
}
