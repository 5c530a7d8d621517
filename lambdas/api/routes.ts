/**
 * The HTTP API's routes: one Lambda each. The CDK app turns this table into API Gateway routes
 * and per-function grants; the local HTTP server dispatches by it. Plain data.
 */
export type RouteName =
  | 'submitJob'
  | 'getJob'
  | 'listJobs'
  | 'cancelJob'
  | 'getJobLogs'
  | 'getArtifact'
  | 'listPools';

export interface RouteDefinition {
  readonly name: RouteName;
  readonly method: 'GET' | 'POST';
  /** API Gateway v2 route path, `{id}` is a path parameter. */
  readonly path: string;
  /** Lambda entry file (exports `handler`), relative to the repository root. */
  readonly entry: string;
  /** What the function may touch; the CDK app grants exactly this. */
  readonly access: {
    readonly table: 'read' | 'write';
    readonly queues?: 'send' | 'read';
    readonly bucket?: 'read';
    /** The semaphores table (auto-build cap). */
    readonly slots?: 'read' | 'write';
  };
}

export const ROUTES: readonly RouteDefinition[] = [
  {
    name: 'submitJob',
    method: 'POST',
    path: '/jobs',
    entry: 'lambdas/entry/submit-job.ts',
    access: { table: 'write', queues: 'send', slots: 'write' },
  },
  {
    name: 'listJobs',
    method: 'GET',
    path: '/jobs',
    entry: 'lambdas/entry/list-jobs.ts',
    access: { table: 'read' },
  },
  {
    name: 'getJob',
    method: 'GET',
    path: '/jobs/{id}',
    entry: 'lambdas/entry/get-job.ts',
    access: { table: 'read' },
  },
  {
    name: 'cancelJob',
    method: 'POST',
    path: '/jobs/{id}/cancel',
    entry: 'lambdas/entry/cancel-job.ts',
    access: { table: 'write' },
  },
  {
    name: 'getJobLogs',
    method: 'GET',
    path: '/jobs/{id}/logs',
    entry: 'lambdas/entry/get-job-logs.ts',
    access: { table: 'read', bucket: 'read' },
  },
  {
    name: 'listPools',
    method: 'GET',
    path: '/pools',
    entry: 'lambdas/entry/list-pools.ts',
    access: { table: 'read', queues: 'read', slots: 'read' },
  },
  {
    name: 'getArtifact',
    method: 'GET',
    path: '/jobs/{id}/artifact',
    entry: 'lambdas/entry/get-artifact.ts',
    access: { table: 'read', bucket: 'read' },
  },
];

/** Background functions (not behind the API). */
export const BACKGROUND_FUNCTIONS = {
  /** Re-dispatches never-sent jobs and recovers expired leases; runs every minute. */
  sweeper: { entry: 'lambdas/entry/sweeper.ts' },
  /** Marks the job of every dead-lettered message FAILED with the reason. */
  dlqConsumer: { entry: 'lambdas/entry/dlq-consumer.ts' },
  /** Register workflow steps: record the result on the job; copy an AMI to another region. */
  recordRegistration: { entry: 'lambdas/entry/record-registration.ts' },
  copyImage: { entry: 'lambdas/entry/copy-image.ts' },
  /** Admits waiting auto rebuilds when one leaves the build stages (an EventBridge rule). */
  autoGate: { entry: 'lambdas/entry/auto-gate.ts' },
} as const;

/** S3 key layout inside the artifacts bucket. */
export const S3_LAYOUT = {
  artifactKey: (jobId: string, format: string) => `artifacts/${jobId}/image.${format}`,
  /** One folder per attempt, so a retry never overwrites the output of the attempt before it. */
  logChunkKey: (jobId: string, attempt: number, seq: number) =>
    `logs/${jobId}/${String(attempt).padStart(3, '0')}/${String(seq).padStart(8, '0')}.log`,
  artifactPrefix: 'artifacts/',
  logPrefix: 'logs/',
} as const;
