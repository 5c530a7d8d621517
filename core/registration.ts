import { ValidationError } from './errors';
import type { Architecture, BuildType, ImageFormat, Job } from './job';

/** What EC2 ImportSnapshot accepts, by Kiln format. */
const IMPORT_FORMATS: Partial<Record<ImageFormat, 'RAW' | 'VMDK' | 'VHD'>> = {
  raw: 'RAW',
  vmdk: 'VMDK',
  vhd: 'VHD',
};

export function importFormatOf(format: ImageFormat): 'RAW' | 'VMDK' | 'VHD' {
  const f = IMPORT_FORMATS[format];
  if (!f) throw new ValidationError(`format "${format}" cannot be imported as an AMI; use raw, vmdk or vhd`);
  return f;
}

const EC2_ARCH: Record<Architecture, 'x86_64' | 'arm64'> = { x86_64: 'x86_64', aarch64: 'arm64' };

/**
 * The AMI name is derived from the job alone, so a retried registration finds the image an
 * earlier attempt registered instead of making a second one.
 */
export function imageNameFor(jobId: string): string {
  return `kiln-${jobId}`;
}

/** The import's idempotency token (EC2 ClientToken, ≤ 64 characters). */
export function importClientToken(jobId: string, region: string): string {
  return `${jobId}-${region}`.slice(0, 64);
}

export function registrationExecutionName(jobId: string, attempt: number): string {
  return `${jobId}-r${attempt}`;
}

/** Days an image of each build type is kept (retention uses the same classes). */
export const DEFAULT_IMAGE_RETENTION_DAYS = { scratch: 3, explicit: 14, auto: 14 } as const;

export interface RegistrationInput {
  jobId: string;
  bucket: string;
  key: string;
  diskFormat: 'RAW' | 'VMDK' | 'VHD';
  architecture: 'x86_64' | 'arm64';
  imageName: string;
  clientToken: string;
  buildType: string;
  expiresAt: string;
  homeRegion: string;
  copyRegions: string[];
  shareWith: string[];
}

/** The register state machine's input for a job whose artifact is uploaded. */
/** Where a deployment registers, and how long each build type's images are kept. */
export interface RegistrationTarget {
  homeRegion: string;
  /** Days until an image's `kiln:expires-at` (config.retention); defaults per build type otherwise. */
  retentionDays?: Partial<Record<BuildType, number>>;
}

export function retentionDaysOf(retention: { scratchDays: number; explicitDays: number; autoDays: number }) {
  return { scratch: retention.scratchDays, explicit: retention.explicitDays, auto: retention.autoDays };
}

export function registrationInput(
  job: Job,
  artifact: { bucket: string; key: string },
  target: RegistrationTarget,
  now: Date,
): RegistrationInput {
  const { homeRegion } = target;
  const regions = new Set<string>();
  const accounts = new Set<string>();
  for (const target of job.targets ?? []) {
    for (const r of target.regions ?? []) if (r !== homeRegion) regions.add(r);
    for (const a of target.shareWith ?? []) accounts.add(a);
  }
  const days = target.retentionDays?.[job.buildType] ?? DEFAULT_IMAGE_RETENTION_DAYS[job.buildType];
  return {
    jobId: job.jobId,
    bucket: artifact.bucket,
    key: artifact.key,
    diskFormat: importFormatOf(job.format),
    architecture: EC2_ARCH[job.arch],
    imageName: imageNameFor(job.jobId),
    clientToken: importClientToken(job.jobId, homeRegion),
    buildType: job.buildType,
    expiresAt: new Date(now.getTime() + days * 86_400_000).toISOString(),
    homeRegion,
    copyRegions: [...regions].sort(),
    shareWith: [...accounts].sort(),
  };
}

/** Bucket and key of an `s3://bucket/key` artifact URI. */
export function artifactLocation(uri: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match?.[1] || !match[2]) throw new ValidationError(`not an s3:// URI: ${uri}`);
  return { bucket: match[1], key: match[2] };
}

export function wantsImage(job: Pick<Job, 'targets'>): boolean {
  return (job.targets ?? []).some((t) => t.type === 'aws-ami');
}

export type ExecutionStatus =
  | 'RUNNING'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'TIMED_OUT'
  | 'ABORTED'
  | 'PENDING_REDRIVE'
  | 'MISSING';

export type RegistrationDecision =
  | { action: 'none' }
  | { action: 'start'; attempt: number; reason: string }
  | { action: 'fail'; reason: string };

export interface RegistrationPolicy {
  registerAttempts: number;
  /** How long a just-started execution may be missing (eventual consistency, a crash before the start). */
  startGraceSeconds: number;
}

/**
 * A job stays REGISTERING only while its execution runs: the execution itself records SUCCEEDED
 * or FAILED. An execution that ended without recording (stopped, timed out, failed outside a
 * Catch) or never started is retried up to `registerAttempts`; the import's ClientToken and the
 * AMI name make the retry find what the earlier attempt made instead of making another image.
 */
export function decideRegistration(
  job: Pick<Job, 'status' | 'registration' | 'updatedAt'>,
  execution: ExecutionStatus,
  now: Date,
  policy: RegistrationPolicy,
): RegistrationDecision {
  if (job.status !== 'REGISTERING') return { action: 'none' };
  const attempt = job.registration?.attempt ?? 0;
  const since = Date.parse(job.registration?.startedAt ?? job.updatedAt);
  if (execution === 'RUNNING' || execution === 'PENDING_REDRIVE') return { action: 'none' };
  if (execution === 'MISSING' && now.getTime() - since < policy.startGraceSeconds * 1000)
    return { action: 'none' };
  const what = execution === 'MISSING' ? 'never started' : `ended ${execution} without recording a result`;
  if (attempt >= policy.registerAttempts) {
    return { action: 'fail', reason: `registration ${what}; giving up after ${attempt} attempt(s)` };
  }
  return { action: 'start', attempt: attempt + 1, reason: `registration attempt ${attempt} ${what}` };
}
