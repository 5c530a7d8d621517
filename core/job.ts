import { z } from 'zod';
import { ValidationError } from './errors';

export const JOB_STATUSES = [
  'QUEUED',
  'RUNNING',
  'UPLOADING',
  'REGISTERING',
  'SUCCEEDED',
  'FAILED',
  'CANCELLED',
  'TIMED_OUT',
  'EXPIRED',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const BUILD_TYPES = ['scratch', 'explicit', 'auto'] as const;
export type BuildType = (typeof BUILD_TYPES)[number];

/** Priority classes, highest first. Each pool has one queue per class. */
export const PRIORITIES = ['high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

export const ARCHITECTURES = ['x86_64', 'aarch64'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

export const IMAGE_FORMATS = ['raw', 'vmdk', 'vhd', 'qcow2', 'tar'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

/** Limits on what a client may send; the API also caps the raw body size. */
export const LIMITS = {
  maxBodyBytes: 128 * 1024,
  maxScriptBytes: 64 * 1024,
  maxNameLength: 128,
  maxLabels: 20,
  maxLabelLength: 63,
  maxEnvVars: 50,
  maxEnvValueLength: 4096,
  maxTargets: 5,
  maxRegionsPerTarget: 10,
  maxShareWith: 100,
  minTimeoutSeconds: 1,
  maxTimeoutSeconds: 24 * 3600,
  maxListLimit: 100,
} as const;

const labelKey = z
  .string()
  .min(1)
  .max(LIMITS.maxLabelLength)
  .regex(
    /^[a-z0-9]([a-z0-9._/-]*[a-z0-9])?$/,
    'label keys are lowercase letters, digits, ".", "_", "-", "/"',
  );
const labelValue = z
  .string()
  .max(LIMITS.maxLabelLength)
  .regex(/^[A-Za-z0-9._-]*$/, 'label values are letters, digits, ".", "_", "-"');

/** A path inside the build's working directory: relative, no `..` segments. */
const relativePath = z
  .string()
  .min(1)
  .max(1024)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), {
    message: 'must be a relative path inside the build directory (no leading "/" and no "..")',
  });

export const ScriptRecipeSchema = z.strictObject({
  builder: z.literal('script'),
  /** Shell script run by bash in a fresh working directory. */
  script: z
    .string()
    .min(1)
    .refine((s) => Buffer.byteLength(s) <= LIMITS.maxScriptBytes, {
      message: `must be at most ${LIMITS.maxScriptBytes} bytes`,
    }),
  /** Where the script leaves the image, relative to the working directory. */
  artifact: relativePath,
  env: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'env names are shell identifiers'),
      z.string().max(LIMITS.maxEnvValueLength),
    )
    .refine((e) => Object.keys(e).length <= LIMITS.maxEnvVars, {
      message: `at most ${LIMITS.maxEnvVars} variables`,
    })
    .optional(),
});

export const RecipeSchema = z.discriminatedUnion('builder', [ScriptRecipeSchema], {
  error: (issue) =>
    issue.code === 'invalid_union' ? 'unknown builder: the builders are "script"' : undefined,
});
export type Recipe = z.infer<typeof RecipeSchema>;

const awsRegion = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'an AWS region name such as "eu-west-1"');
const awsAccountId = z.string().regex(/^\d{12}$/, 'a 12-digit AWS account id');

export const AmiTargetSchema = z.strictObject({
  type: z.literal('aws-ami'),
  regions: z.array(awsRegion).min(1).max(LIMITS.maxRegionsPerTarget).optional(),
  shareWith: z.array(awsAccountId).max(LIMITS.maxShareWith).optional(),
});
export type ImageTarget = z.infer<typeof AmiTargetSchema>;

const SubmitJobObject = z.strictObject({
  name: z
    .string()
    .min(1)
    .max(LIMITS.maxNameLength)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'names are letters, digits, ".", "_", "-"')
    .optional(),
  buildType: z.enum(BUILD_TYPES).default('explicit'),
  priority: z.enum(PRIORITIES).default('normal'),
  arch: z.enum(ARCHITECTURES),
  pool: z.string().min(1).max(64).optional(),
  /** Run on a pool of the other architecture, under emulation, when no native pool fits (~13x slower). */
  allowEmulation: z.boolean().optional(),
  recipe: RecipeSchema,
  format: z.enum(IMAGE_FORMATS),
  targets: z.array(AmiTargetSchema).max(LIMITS.maxTargets).optional(),
  timeoutSeconds: z.number().int().min(LIMITS.minTimeoutSeconds).max(LIMITS.maxTimeoutSeconds).optional(),
  labels: z
    .record(labelKey, labelValue)
    .refine((l) => Object.keys(l).length <= LIMITS.maxLabels, {
      message: `at most ${LIMITS.maxLabels} labels`,
    })
    .optional(),
});

/** EC2 imports only these disk formats; an AMI target with another format is refused at submit. */
const IMPORTABLE_FORMATS: readonly ImageFormat[] = ['raw', 'vmdk', 'vhd'];

export const SubmitJobSchema = SubmitJobObject.superRefine((job, ctx) => {
  if ((job.targets ?? []).length > 0 && !IMPORTABLE_FORMATS.includes(job.format)) {
    ctx.addIssue({
      code: 'custom',
      path: ['format'],
      message: `an aws-ami target needs format raw, vmdk or vhd (EC2 cannot import ${job.format})`,
    });
  }
});
export type SubmitJobInput = z.input<typeof SubmitJobSchema>;
export type JobSpec = z.output<typeof SubmitJobSchema>;

/** Parses a submit body; throws a ValidationError listing every problem with its path. */
export function parseJobSpec(body: unknown): JobSpec {
  const result = SubmitJobSchema.safeParse(body);
  if (result.success) return result.data;
  throw new ValidationError(`invalid job: ${describeIssues(result.error.issues)}`, {
    details: result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
  });
}

export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((i) => {
      const where = i.path.length > 0 ? i.path.join('.') : '(body)';
      if (i.code === 'unrecognized_keys')
        return `${where}: unknown field(s) ${i.keys.map((k) => `"${k}"`).join(', ')}`;
      if (i.code === 'invalid_key')
        return `${where}: invalid key (${i.issues.map((n) => n.message).join('; ')})`;
      return `${where}: ${i.message}`;
    })
    .join('; ');
}

export interface Artifact {
  uri: string;
  sha256: string;
  sizeBytes: number;
}

export interface RegisteredImage {
  region: string;
  imageId: string;
  snapshotId: string;
}

export interface Registration {
  executionName: string;
  attempt: number;
  startedAt: string;
}

export interface JobError {
  code: string;
  message: string;
}

export interface Lease {
  holder: string;
  /** Epoch milliseconds. */
  expiresAt: number;
}

export interface HistoryEntry {
  status: JobStatus;
  at: string;
  attempt: number;
  reason?: string;
  by?: string;
}

/** A job as stored and as served by `GET /jobs/{id}`. */
export interface Job extends JobSpec {
  jobId: string;
  owner: string;
  /** The pool whose queues and agents serve this job. */
  pool: string;
  status: JobStatus;
  createdAt: string;
  updatedAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Number of times an agent claimed the job. */
  attempts: number;
  /** Claims that ended by a clean hand-back (shutdown, spot notice); they do not count as failures. */
  handBacks: number;
  lease?: Lease;
  cancelRequested?: boolean;
  /** Set once the job's message was sent to its queue; a sweeper re-sends jobs that lack it. */
  dispatchedAt?: string;
  /** Digest of the submitted spec; an Idempotency-Key replay with another body is refused. */
  requestHash: string;
  idempotencyKey?: string;
  artifact?: Artifact;
  /** The register execution now responsible for the job (status REGISTERING). */
  registration?: Registration;
  images: RegisteredImage[];
  error?: JobError;
  history: HistoryEntry[];
}
