import { describe, expect, it } from 'vitest';
import { isKilnError } from '../../core/errors';
import type { BuildType, JobStatus } from '../../core/job';
import { DEFAULT_IMAGE_RETENTION_DAYS } from '../../core/registration';
import {
  type InventoryArtifact,
  type InventoryImage,
  type InventoryJob,
  type InventorySnapshot,
  parseRetentionConfig,
  planRetention,
  RETENTION_TAGS,
  type RetentionAction,
  type RetentionConfigInput,
  type RetentionInventory,
  type RetentionRules,
  retentionRegions,
} from '../../core/retention';

const NOW = new Date('2030-06-20T12:00:00.000Z');
const HOME = 'us-east-1';
const COPY = 'eu-west-1';
const DEPLOYMENT = 'kiln';

const daysAgo = (d: number) => new Date(NOW.getTime() - d * 86_400_000).toISOString();

function rules(overrides: RetentionConfigInput = {}): RetentionRules {
  return { ...parseRetentionConfig({ regions: [COPY], ...overrides }), deploymentId: DEPLOYMENT };
}

interface JobSpec {
  jobId: string;
  buildType?: BuildType;
  status?: JobStatus;
  name?: string;
  /** Age of its images and artifact in days. */
  age: number;
  regions?: string[];
  imageTags?: Record<string, string>;
  noArtifact?: boolean;
}

/** A job as the register workflow leaves it: one image and snapshot per region, an artifact. */
function job(spec: JobSpec) {
  const regions = spec.regions ?? [HOME];
  const buildType = spec.buildType ?? 'explicit';
  const tags = {
    [RETENTION_TAGS.jobId]: spec.jobId,
    [RETENTION_TAGS.buildType]: buildType,
    [RETENTION_TAGS.deployment]: DEPLOYMENT,
  };
  const images: InventoryImage[] = regions.map((region) => ({
    region,
    imageId: `ami-${spec.jobId}-${region}`,
    name: `kiln-${spec.jobId}`,
    state: 'available',
    creationDate: daysAgo(spec.age),
    tags: { ...tags, ...spec.imageTags },
    snapshotIds: [`snap-${spec.jobId}-${region}`],
  }));
  const snapshots: InventorySnapshot[] = regions.map((region) => ({
    region,
    snapshotId: `snap-${spec.jobId}-${region}`,
    state: 'completed',
    startTime: daysAgo(spec.age + 0.01),
    tags,
  }));
  const artifacts: InventoryArtifact[] = spec.noArtifact
    ? []
    : [
        {
          key: `artifacts/${spec.jobId}/image.raw`,
          jobId: spec.jobId,
          lastModified: daysAgo(spec.age + 0.02),
        },
      ];
  const record: InventoryJob = {
    jobId: spec.jobId,
    status: spec.status ?? 'SUCCEEDED',
    buildType,
    imageRegions: regions,
    ...(spec.name ? { name: spec.name } : {}),
  };
  return { images, snapshots, artifacts, jobs: [record] };
}

function inventory(...parts: Array<Partial<RetentionInventory>>): RetentionInventory {
  return {
    regions: [HOME, COPY],
    images: parts.flatMap((p) => p.images ?? []),
    snapshots: parts.flatMap((p) => p.snapshots ?? []),
    artifacts: parts.flatMap((p) => p.artifacts ?? []),
    jobs: parts.flatMap((p) => p.jobs ?? []),
  };
}

/** `kind target (reason)`, in plan order: what a person reads in a dry run, minus the prose. */
function summary(actions: RetentionAction[]): string[] {
  return actions.map((a) => {
    if (a.kind === 'deregister-image') return `deregister ${a.imageId} (${a.reason})`;
    if (a.kind === 'delete-snapshot') return `delete ${a.snapshotId} (${a.reason})`;
    if (a.kind === 'delete-artifact') return `delete ${a.key} (${a.reason})`;
    return `expire ${a.jobId} (${a.reason})`;
  });
}

/** The job's parts with no build type anywhere: not on the image, not on the record. */
function untyped(spec: JobSpec) {
  const parts = job({ ...spec, imageTags: { [RETENTION_TAGS.buildType]: 'nightly' } });
  return { ...parts, jobs: parts.jobs.map(({ buildType: _, ...rest }) => rest) };
}

const removesAll = (id: string, reason = 'expired', region = HOME) => [
  `deregister ami-${id}-${region} (${reason})`,
  `delete snap-${id}-${region} (image-removed)`,
  `delete artifacts/${id}/image.raw (images-removed)`,
  `expire ${id} (output-removed)`,
];

describe('retention config', () => {
  it('defaults to the registration classes and the home region only', () => {
    const config = parseRetentionConfig(undefined);
    expect({
      scratch: config.scratchDays,
      explicit: config.explicitDays,
      auto: config.autoDays,
    }).toEqual(DEFAULT_IMAGE_RETENTION_DAYS);
    expect(config.regions).toEqual([]);
    expect(config.keepNewestPerName).toBeUndefined();
    expect(config.maxImagesPerRegion).toBeUndefined();
    expect(config.maxDeletionsPerRun).toBe(500);
    expect(retentionRegions(config, HOME)).toEqual([HOME]);
    expect(retentionRegions({ regions: [COPY, HOME] }, HOME)).toEqual([HOME, COPY]);
  });

  it('reports every problem at once, with its path', () => {
    try {
      parseRetentionConfig({ scratchDays: 0, regions: ['mars'], keepNewestPerName: 1.5, typo: 1 });
      expect.unreachable();
    } catch (error) {
      expect(isKilnError(error) && error.code).toBe('CONFIG_INVALID');
      const text = (error as Error).message;
      for (const path of [
        'retention.scratchDays',
        'retention.regions.0',
        'retention.keepNewestPerName',
        'typo',
      ])
        expect(text).toContain(path);
    }
  });
});

describe('planRetention', () => {
  const cases: Array<{
    name: string;
    inventory: RetentionInventory;
    rules?: RetentionConfigInput;
    expected: string[];
  }> = [
    {
      name: 'a scratch build past 3 days: image, then its snapshot, then the artifact, then the job',
      inventory: inventory(job({ jobId: 'j1', buildType: 'scratch', age: 3.5 })),
      expected: removesAll('j1'),
    },
    {
      name: 'a scratch build younger than 3 days stays',
      inventory: inventory(job({ jobId: 'j1', buildType: 'scratch', age: 2.9 })),
      expected: [],
    },
    {
      name: 'explicit and auto builds stay 14 days',
      inventory: inventory(
        job({ jobId: 'e1', buildType: 'explicit', age: 13.9 }),
        job({ jobId: 'a1', buildType: 'auto', age: 13.9 }),
        job({ jobId: 'e2', buildType: 'explicit', age: 14.1 }),
      ),
      expected: removesAll('e2'),
    },
    {
      name: 'retention is configurable per build type',
      inventory: inventory(job({ jobId: 'a1', buildType: 'auto', age: 8 })),
      rules: { autoDays: 7 },
      expected: removesAll('a1'),
    },
    {
      name: 'the copies in every region go with the home image; one artifact, one job',
      inventory: inventory(job({ jobId: 'm1', buildType: 'scratch', age: 5, regions: [HOME, COPY] })),
      expected: [
        `deregister ami-m1-${COPY} (expired)`,
        `deregister ami-m1-${HOME} (expired)`,
        `delete snap-m1-${COPY} (image-removed)`,
        `delete snap-m1-${HOME} (image-removed)`,
        'delete artifacts/m1/image.raw (images-removed)',
        'expire m1 (output-removed)',
      ],
    },
    {
      name: 'a pinned image stays, and so do its snapshot, its artifact and its job',
      inventory: inventory(job({ jobId: 'p1', age: 40, imageTags: { [RETENTION_TAGS.keep]: 'true' } })),
      expected: [],
    },
    {
      name: 'any pin value but "false" pins',
      inventory: inventory(
        job({ jobId: 'p1', age: 40, imageTags: { [RETENTION_TAGS.keep]: 'Yes' } }),
        job({ jobId: 'p2', age: 40, imageTags: { [RETENTION_TAGS.keep]: ' FALSE ' } }),
      ),
      expected: removesAll('p2'),
    },
    {
      name: 'a pinned copy keeps its own image and the artifact; the unpinned region still goes',
      inventory: inventory({
        ...job({ jobId: 'm1', age: 20, regions: [HOME, COPY] }),
        images: job({ jobId: 'm1', age: 20, regions: [HOME, COPY] }).images.map((i) =>
          i.region === COPY ? { ...i, tags: { ...i.tags, [RETENTION_TAGS.keep]: 'true' } } : i,
        ),
      }),
      expected: [`deregister ami-m1-${HOME} (expired)`, `delete snap-m1-${HOME} (image-removed)`],
    },
    {
      name: 'images of another deployment, or with no deployment tag, are never touched whatever their name',
      inventory: inventory(
        {
          images: job({ jobId: 'x1', age: 90 }).images.map((i) => ({
            ...i,
            tags: { ...i.tags, [RETENTION_TAGS.deployment]: 'kiln-staging' },
          })),
          snapshots: job({ jobId: 'x1', age: 90 }).snapshots.map((s) => ({
            ...s,
            tags: { ...s.tags, [RETENTION_TAGS.deployment]: 'kiln-staging' },
          })),
        },
        {
          images: [
            {
              region: HOME,
              imageId: 'ami-lookalike',
              name: 'kiln-lookalike',
              state: 'available',
              creationDate: daysAgo(90),
              tags: { [RETENTION_TAGS.jobId]: 'lookalike', [RETENTION_TAGS.buildType]: 'scratch' },
              snapshotIds: ['snap-lookalike'],
            },
          ],
          snapshots: [
            {
              region: HOME,
              snapshotId: 'snap-lookalike',
              state: 'completed',
              startTime: daysAgo(90),
              tags: {},
            },
          ],
        },
      ),
      expected: [],
    },
    {
      name: 'a job still running keeps its images and artifact, however old',
      inventory: inventory(job({ jobId: 'r1', buildType: 'scratch', age: 30, status: 'REGISTERING' })),
      expected: [],
    },
    {
      name: 'an image is never removed before the expiry written on it at registration',
      inventory: inventory(
        job({
          jobId: 't1',
          buildType: 'scratch',
          age: 5,
          imageTags: { [RETENTION_TAGS.expiresAt]: daysAgo(-1) },
        }),
        job({
          jobId: 't2',
          buildType: 'scratch',
          age: 5,
          imageTags: { [RETENTION_TAGS.expiresAt]: daysAgo(1) },
        }),
      ),
      expected: removesAll('t2'),
    },
    {
      name: 'an unknown build type gets the longest retention',
      inventory: inventory(untyped({ jobId: 'u1', age: 10 }), untyped({ jobId: 'u2', age: 15 })),
      rules: { scratchDays: 1, explicitDays: 2, autoDays: 12 },
      expected: removesAll('u2'),
    },
    {
      name: 'images still pending, or with no usable creation date, stay',
      inventory: inventory({
        ...job({ jobId: 'q1', buildType: 'scratch', age: 9 }),
        images: [
          {
            ...job({ jobId: 'q1', buildType: 'scratch', age: 9 }).images[0],
            state: 'pending',
          } as InventoryImage,
          {
            ...job({ jobId: 'q2', buildType: 'scratch', age: 9 }).images[0],
            creationDate: 'n/a',
          } as InventoryImage,
        ],
      }),
      expected: [],
    },
    {
      name: 'keep newest N per job name: the older ones of the name go, other names are unaffected',
      inventory: inventory(
        job({ jobId: 'n1', name: 'nightly', age: 30 }),
        job({ jobId: 'n2', name: 'nightly', age: 29 }),
        job({ jobId: 'n3', name: 'nightly', age: 28 }),
        job({ jobId: 'o1', name: 'other', age: 27 }),
      ),
      rules: { keepNewestPerName: 2 },
      expected: removesAll('n1'),
    },
    {
      name: 'a region over its cap loses its oldest removable images, however young; pins count but stay',
      inventory: inventory(
        job({ jobId: 'c1', age: 3, imageTags: { [RETENTION_TAGS.keep]: 'true' } }),
        job({ jobId: 'c2', age: 2 }),
        job({ jobId: 'c3', age: 1 }),
        job({ jobId: 'c4', age: 0.5 }),
      ),
      rules: { maxImagesPerRegion: 2 },
      expected: removesAll('c2', 'over-cap').concat(removesAll('c3', 'over-cap')),
    },
    {
      name: 'per-region caps override the general one',
      inventory: inventory(
        job({ jobId: 'c1', age: 2, regions: [HOME, COPY] }),
        job({ jobId: 'c2', age: 1, regions: [HOME, COPY] }),
      ),
      rules: { maxImagesPerRegion: 5, regionMaxImages: { [COPY]: 1 } },
      // c1 keeps its home image, so its artifact and record stay.
      expected: [`deregister ami-c1-${COPY} (over-cap)`, `delete snap-c1-${COPY} (image-removed)`],
    },
    {
      name: 'a snapshot another image still uses stays, even when its own image goes',
      inventory: inventory(job({ jobId: 's1', buildType: 'scratch', age: 5 }), {
        images: [
          {
            region: HOME,
            imageId: 'ami-someone-elses',
            name: 'hand-made',
            state: 'available',
            creationDate: daysAgo(1),
            tags: {},
            snapshotIds: [`snap-s1-${HOME}`],
          },
        ],
      }),
      expected: [
        `deregister ami-s1-${HOME} (expired)`,
        // The snapshot is left, so the job still has something: it stays SUCCEEDED.
        'delete artifacts/s1/image.raw (images-removed)',
      ],
    },
    {
      name: 'orphaned snapshots: one marked by an earlier run goes at once, an unmarked young one waits',
      inventory: inventory({
        ...job({ jobId: 'o1', age: 1 }),
        images: [],
        snapshots: [
          {
            region: HOME,
            snapshotId: 'snap-o1-marked',
            state: 'completed',
            startTime: daysAgo(1),
            tags: {
              [RETENTION_TAGS.deployment]: DEPLOYMENT,
              [RETENTION_TAGS.jobId]: 'o1',
              [RETENTION_TAGS.expiring]: daysAgo(0.1),
            },
          },
          {
            region: HOME,
            snapshotId: 'snap-o1-young',
            state: 'completed',
            startTime: daysAgo(1),
            tags: { [RETENTION_TAGS.deployment]: DEPLOYMENT, [RETENTION_TAGS.jobId]: 'o1' },
          },
        ],
      }),
      // The young orphan is left, so neither the artifact's job nor the record is finished with.
      expected: ['delete snap-o1-marked (orphan-marked)', 'delete artifacts/o1/image.raw (images-removed)'],
    },
    {
      name: 'a run that died after the artifact: the record still becomes EXPIRED (nothing left)',
      inventory: inventory({ jobs: job({ jobId: 'd1', age: 20 }).jobs }),
      expected: ['expire d1 (nothing-left)'],
    },
    {
      name: 'an artifact-only job goes by the artifact’s age; a FAILED job loses its artifact but stays FAILED',
      inventory: inventory(
        job({ jobId: 'f1', buildType: 'scratch', age: 4, regions: [] }),
        job({ jobId: 'f2', buildType: 'scratch', age: 4, regions: [], status: 'FAILED' }),
        job({ jobId: 'f3', buildType: 'scratch', age: 2, regions: [] }),
      ),
      expected: [
        'delete artifacts/f1/image.raw (expired)',
        'expire f1 (output-removed)',
        'delete artifacts/f2/image.raw (expired)',
      ],
    },
    {
      name: 'nothing is decided in a region that was not listed; its jobs keep their artifact',
      inventory: {
        ...inventory(job({ jobId: 'g1', buildType: 'scratch', age: 9, regions: [HOME, COPY] })),
        regions: [HOME],
      },
      expected: [`deregister ami-g1-${HOME} (expired)`, `delete snap-g1-${HOME} (image-removed)`],
    },
    {
      name: 'without an artifact listing, images go but artifacts and records are left alone',
      inventory: { ...inventory(job({ jobId: 'h1', buildType: 'scratch', age: 9 })), artifacts: undefined },
      expected: [`deregister ami-h1-${HOME} (expired)`, `delete snap-h1-${HOME} (image-removed)`],
    },
  ];

  it.each(cases)('$name', ({ inventory: inv, rules: overrides, expected }) => {
    expect(summary(planRetention(inv, rules(overrides), NOW).actions)).toEqual(expected);
  });

  it('counts the foreign images and snapshots it left alone', () => {
    const inv = cases.find((c) => c.name.startsWith('images of another deployment'))?.inventory;
    if (!inv) throw new Error('case missing');
    expect(planRetention(inv, rules(), NOW).foreign).toBe(4);
  });

  it('maxDeletionsPerRun: the oldest jobs first, a job’s share never split, the rest deferred', () => {
    const inv = inventory(
      job({ jobId: 'k3', buildType: 'scratch', age: 5 }),
      job({ jobId: 'k1', buildType: 'scratch', age: 7 }),
      job({ jobId: 'k2', buildType: 'scratch', age: 6 }),
    );
    const plan = planRetention(inv, rules({ maxDeletionsPerRun: 4 }), NOW);
    expect(summary(plan.actions)).toEqual([...removesAll('k1'), ...removesAll('k2')]);
    expect(plan.deferred).toBe(3);
    expect(plan.kept.filter((k) => k.reason === 'deferred').map((k) => k.id)).toEqual([
      `ami-k3-${HOME}`,
      `snap-k3-${HOME}`,
      'artifacts/k3/image.raw',
    ]);
  });

  it('says why each of the deployment’s images stays', () => {
    const plan = planRetention(
      inventory(
        job({ jobId: 'p1', age: 40, imageTags: { [RETENTION_TAGS.keep]: 'true' } }),
        job({ jobId: 'y1', age: 1 }),
        job({ jobId: 'r1', age: 30, status: 'RUNNING' }),
      ),
      rules(),
      NOW,
    );
    expect(
      Object.fromEntries(plan.kept.filter((k) => k.kind === 'image').map((k) => [k.jobId, k.reason])),
    ).toEqual({ p1: 'pinned', y1: 'not-due', r1: 'job-active' });
    expect(plan.at).toBe(NOW.toISOString());
  });

  it('marks with the image exactly the snapshots it deletes after it', () => {
    const plan = planRetention(inventory(job({ jobId: 'j1', buildType: 'scratch', age: 5 })), rules(), NOW);
    const deregister = plan.actions[0];
    expect(deregister?.kind === 'deregister-image' && deregister.snapshotIds).toEqual([`snap-j1-${HOME}`]);
  });
});
