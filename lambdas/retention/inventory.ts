import type { Job } from '../../core/job';
import {
  type InventoryArtifact,
  type InventoryImage,
  type InventoryJob,
  type InventorySnapshot,
  isOwnedBy,
  RETENTION_TAGS,
  type RetentionInventory,
} from '../../core/retention';
import type { RetentionPorts } from './ports';

export interface InventoryProblem {
  /** `images us-east-1`, `snapshots eu-west-1`, `artifacts` */
  what: string;
  message: string;
}

export interface TakenInventory {
  inventory: RetentionInventory;
  /** Listings that failed: their region (or the artifacts) is left out of this run's decisions. */
  problems: InventoryProblem[];
}

/** Jobs looked up at once; DynamoDB takes more, this keeps one run polite to the table. */
const JOB_LOOKUP_CONCURRENCY = 8;
const JOB_PAGE = 100;

function inventoryJob(job: Job): InventoryJob {
  return {
    jobId: job.jobId,
    status: job.status,
    ...(job.name ? { name: job.name } : {}),
    buildType: job.buildType,
    imageRegions: [...new Set((job.images ?? []).map((i) => i.region))],
  };
}

/**
 * Lists what the deployment owns, fresh every run (so a run that died is finished by the next
 * from what is really left). A region whose images or snapshots cannot be listed is left out as a
 * whole: with half a listing, a snapshot in use could look orphaned. Job records are needed to
 * know which jobs still run, so a failure to read them fails the run.
 */
export async function takeInventory(
  ports: RetentionPorts,
  regions: readonly string[],
  deploymentId: string,
): Promise<TakenInventory> {
  const problems: InventoryProblem[] = [];
  const covered: string[] = [];
  const images: InventoryImage[] = [];
  const snapshots: InventorySnapshot[] = [];
  const listed = await Promise.all(
    regions.map(async (region) => {
      const [i, s] = await Promise.allSettled([
        ports.images.listImages(region),
        ports.images.listSnapshots(region, deploymentId),
      ]);
      return { region, i, s };
    }),
  );
  for (const { region, i, s } of listed) {
    if (i.status === 'rejected') problems.push({ what: `images ${region}`, message: messageOf(i.reason) });
    if (s.status === 'rejected') problems.push({ what: `snapshots ${region}`, message: messageOf(s.reason) });
    if (i.status === 'fulfilled' && s.status === 'fulfilled') {
      covered.push(region);
      images.push(...i.value);
      snapshots.push(...s.value);
    }
  }

  let artifacts: InventoryArtifact[] | undefined;
  try {
    artifacts = await ports.artifacts.list();
  } catch (error) {
    problems.push({ what: 'artifacts', message: messageOf(error) });
  }

  const jobs = new Map<string, InventoryJob>();
  let nextToken: string | undefined;
  do {
    const page = await ports.jobs.listByStatus('SUCCEEDED', JOB_PAGE, nextToken);
    for (const job of page.items) jobs.set(job.jobId, inventoryJob(job));
    nextToken = page.nextToken;
  } while (nextToken);

  const referenced = new Set<string>();
  for (const r of [...images, ...snapshots]) {
    const jobId = Object.hasOwn(r.tags, RETENTION_TAGS.jobId) ? r.tags[RETENTION_TAGS.jobId] : undefined;
    if (jobId && isOwnedBy(r.tags, deploymentId)) referenced.add(jobId);
  }
  for (const a of artifacts ?? []) referenced.add(a.jobId);
  const missing = [...referenced].filter((id) => !jobs.has(id));
  for (let i = 0; i < missing.length; i += JOB_LOOKUP_CONCURRENCY) {
    const found = await Promise.all(
      missing.slice(i, i + JOB_LOOKUP_CONCURRENCY).map((id) => ports.jobs.get(id)),
    );
    for (const job of found) if (job) jobs.set(job.jobId, inventoryJob(job));
  }

  return {
    inventory: {
      regions: covered,
      images,
      snapshots,
      ...(artifacts ? { artifacts } : {}),
      jobs: [...jobs.values()],
    },
    problems,
  };
}

export function messageOf(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
