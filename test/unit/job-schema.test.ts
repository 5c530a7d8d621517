import { describe, expect, it } from 'vitest';
import { httpStatusOf, ValidationError } from '../../core/errors';
import { type JobSpec, LIMITS, parseJobSpec } from '../../core/job';

const MINIMAL = {
  arch: 'x86_64',
  format: 'raw',
  recipe: { builder: 'script', script: 'echo building', artifact: 'out/image.raw' },
} as const;

type Body = Record<string, unknown>;

/** The minimal body with some top-level fields replaced (undefined removes the field). */
function body(overrides: Body = {}): Body {
  const out: Body = { ...MINIMAL, recipe: { ...MINIMAL.recipe } };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete out[key];
    else out[key] = value;
  }
  return out;
}

/** The minimal body with recipe fields replaced (undefined removes the field). */
function withRecipe(overrides: Body): Body {
  const recipe: Body = { ...MINIMAL.recipe };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete recipe[key];
    else recipe[key] = value;
  }
  return body({ recipe });
}

function labels(count: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`key-${i}`, `v${i}`]));
}

function captureError(input: unknown): unknown {
  try {
    parseJobSpec(input);
  } catch (error) {
    return error;
  }
  throw new Error(`expected parseJobSpec to reject ${JSON.stringify(input).slice(0, 200)}`);
}

describe('parseJobSpec: valid bodies', () => {
  it('accepts a minimal body and applies the defaults', () => {
    const spec = parseJobSpec(body());
    expect(spec).toEqual({
      ...MINIMAL,
      buildType: 'explicit',
      priority: 'normal',
    });
    expect(spec).not.toHaveProperty('targets');
    expect(spec).not.toHaveProperty('labels');
    expect(spec).not.toHaveProperty('timeoutSeconds');
  });

  it('accepts a body with every field and keeps each value', () => {
    const full = {
      name: 'fedora-42_base.v1',
      buildType: 'auto',
      priority: 'high',
      arch: 'aarch64',
      pool: 'arm-big',
      recipe: {
        builder: 'script',
        script: '#!/bin/bash\nset -euo pipefail\nmake image\n',
        artifact: 'build/disk.vmdk',
        env: { RELEASE: '42', _DEBUG: '1' },
      },
      format: 'vmdk',
      targets: [
        { type: 'aws-ami', regions: ['eu-west-1', 'us-gov-west-1'], shareWith: ['123456789012'] },
        { type: 'aws-ami' },
      ],
      timeoutSeconds: 900,
      labels: { team: 'os', 'example.com/tier': 'gold' },
    };
    const spec: JobSpec = parseJobSpec(full);
    expect(spec).toEqual(full);
  });

  it.each([
    ['buildType scratch', { buildType: 'scratch' }, { buildType: 'scratch' }],
    ['priority low', { priority: 'low' }, { priority: 'low' }],
    ['timeout at the minimum', { timeoutSeconds: LIMITS.minTimeoutSeconds }, {}],
    ['timeout at the maximum', { timeoutSeconds: LIMITS.maxTimeoutSeconds }, {}],
    ['exactly maxLabels labels', { labels: labels(LIMITS.maxLabels) }, {}],
    [
      'exactly maxTargets targets',
      { targets: Array.from({ length: LIMITS.maxTargets }, () => ({ type: 'aws-ami' })) },
      {},
    ],
    ['an empty labels map', { labels: {} }, {}],
    ['a label value that is empty', { labels: { team: '' } }, {}],
  ] as const)('accepts %s', (_label, overrides, expected) => {
    const spec = parseJobSpec(body(overrides));
    expect(spec).toMatchObject({ ...overrides, ...expected });
  });

  it.each([
    ['a script of exactly maxScriptBytes bytes', 'x'.repeat(LIMITS.maxScriptBytes)],
    ['a multi-byte script of exactly maxScriptBytes bytes', 'é'.repeat(LIMITS.maxScriptBytes / 2)],
  ])('accepts %s', (_label, script) => {
    expect(parseJobSpec(withRecipe({ script })).recipe.script).toBe(script);
  });

  it.each(['image.raw', 'out/deep/dir/image.raw', 'a..b/c', './out/image.raw'])(
    'accepts the artifact path %j',
    (artifact) => {
      expect(parseJobSpec(withRecipe({ artifact })).recipe.artifact).toBe(artifact);
    },
  );
});

interface InvalidCase {
  what: string;
  input: unknown;
  /** The path the message must name, as `<path>:`. */
  path: string;
  /** Further text the message must contain. */
  mentions?: string;
}

const awsTarget = (t: Body) => body({ targets: [{ type: 'aws-ami', ...t }] });

const INVALID: InvalidCase[] = [
  // wrong types
  { what: 'arch is a number', input: body({ arch: 64 }), path: 'arch' },
  { what: 'format is unknown', input: body({ format: 'iso' }), path: 'format' },
  {
    what: 'an aws-ami target with a format EC2 cannot import',
    input: body({ format: 'qcow2', targets: [{ type: 'aws-ami' }] }),
    path: 'format',
    mentions: 'raw, vmdk or vhd',
  },
  { what: 'timeoutSeconds is a string', input: body({ timeoutSeconds: '60' }), path: 'timeoutSeconds' },
  { what: 'labels is an array', input: body({ labels: ['team'] }), path: 'labels' },
  { what: 'targets is an object', input: body({ targets: { type: 'aws-ami' } }), path: 'targets' },
  { what: 'recipe is a string', input: body({ recipe: 'make' }), path: 'recipe' },
  { what: 'script is a number', input: withRecipe({ script: 42 }), path: 'recipe.script' },
  { what: 'buildType is unknown', input: body({ buildType: 'nightly' }), path: 'buildType' },
  { what: 'priority is unknown', input: body({ priority: 'urgent' }), path: 'priority' },
  { what: 'name has a space', input: body({ name: 'my image' }), path: 'name' },
  { what: 'name is too long', input: body({ name: 'n'.repeat(LIMITS.maxNameLength + 1) }), path: 'name' },
  { what: 'pool is empty', input: body({ pool: '' }), path: 'pool' },
  // not an object at all
  { what: 'the body is null', input: null, path: '(body)' },
  { what: 'the body is an array', input: [MINIMAL], path: '(body)' },
  { what: 'the body is a string', input: JSON.stringify(MINIMAL), path: '(body)' },
  // unknown fields
  { what: 'an unknown top-level field', input: body({ color: 'red' }), path: '(body)', mentions: '"color"' },
  {
    what: 'an unknown recipe field',
    input: withRecipe({ image: 'fedora' }),
    path: 'recipe',
    mentions: '"image"',
  },
  {
    what: 'an unknown target field',
    input: awsTarget({ kms: 'key' }),
    path: 'targets.0',
    mentions: '"kms"',
  },
  {
    what: 'an unknown builder',
    input: withRecipe({ builder: 'docker' }),
    path: 'recipe.builder',
    mentions: 'script',
  },
  { what: 'no builder', input: withRecipe({ builder: undefined }), path: 'recipe.builder' },
  {
    what: 'an unknown target type',
    input: body({ targets: [{ type: 'gcp-image' }] }),
    path: 'targets.0.type',
  },
  // missing required fields
  { what: 'missing arch', input: body({ arch: undefined }), path: 'arch' },
  { what: 'missing format', input: body({ format: undefined }), path: 'format' },
  { what: 'missing recipe', input: body({ recipe: undefined }), path: 'recipe' },
  { what: 'missing script', input: withRecipe({ script: undefined }), path: 'recipe.script' },
  { what: 'an empty script', input: withRecipe({ script: '' }), path: 'recipe.script' },
  { what: 'missing artifact', input: withRecipe({ artifact: undefined }), path: 'recipe.artifact' },
  // size limits
  {
    what: 'a script one byte over maxScriptBytes',
    input: withRecipe({ script: 'x'.repeat(LIMITS.maxScriptBytes + 1) }),
    path: 'recipe.script',
    mentions: String(LIMITS.maxScriptBytes),
  },
  {
    what: 'a multi-byte script over maxScriptBytes bytes but under it in characters',
    input: withRecipe({ script: 'é'.repeat(LIMITS.maxScriptBytes / 2 + 1) }),
    path: 'recipe.script',
  },
  {
    what: 'one label over maxLabels',
    input: body({ labels: labels(LIMITS.maxLabels + 1) }),
    path: 'labels',
    mentions: String(LIMITS.maxLabels),
  },
  {
    what: 'one target over maxTargets',
    input: body({ targets: Array.from({ length: LIMITS.maxTargets + 1 }, () => ({ type: 'aws-ami' })) }),
    path: 'targets',
  },
  {
    what: 'too many regions in a target',
    input: awsTarget({ regions: Array.from({ length: LIMITS.maxRegionsPerTarget + 1 }, () => 'eu-west-1') }),
    path: 'targets.0.regions',
  },
  { what: 'an empty region list', input: awsTarget({ regions: [] }), path: 'targets.0.regions' },
  {
    what: 'too many env variables',
    input: withRecipe({
      env: Object.fromEntries(Array.from({ length: LIMITS.maxEnvVars + 1 }, (_, i) => [`V${i}`, 'x'])),
    }),
    path: 'recipe.env',
  },
  {
    what: 'an env value over maxEnvValueLength',
    input: withRecipe({ env: { BIG: 'x'.repeat(LIMITS.maxEnvValueLength + 1) } }),
    path: 'recipe.env.BIG',
  },
  {
    what: 'an env name that is not an identifier',
    input: withRecipe({ env: { '1X': 'a' } }),
    path: 'recipe.env.1X',
  },
  // labels
  { what: 'an upper-case label key', input: body({ labels: { Team: 'os' } }), path: 'labels.Team' },
  { what: 'a label key ending in "-"', input: body({ labels: { 'team-': 'os' } }), path: 'labels.team-' },
  {
    what: 'an over-long label key',
    input: body({ labels: { ['k'.repeat(64)]: 'v' } }),
    path: `labels.${'k'.repeat(64)}`,
  },
  { what: 'a label value with a space', input: body({ labels: { team: 'o s' } }), path: 'labels.team' },
  // artifact paths
  {
    what: 'an artifact path with ".."',
    input: withRecipe({ artifact: '../image.raw' }),
    path: 'recipe.artifact',
  },
  {
    what: 'an artifact path with ".." inside',
    input: withRecipe({ artifact: 'out/../../etc/passwd' }),
    path: 'recipe.artifact',
    mentions: '..',
  },
  {
    what: 'an absolute artifact path',
    input: withRecipe({ artifact: '/etc/passwd' }),
    path: 'recipe.artifact',
  },
  { what: 'an empty artifact path', input: withRecipe({ artifact: '' }), path: 'recipe.artifact' },
  // AWS identifiers
  { what: 'an upper-case region', input: awsTarget({ regions: ['EU-WEST-1'] }), path: 'targets.0.regions.0' },
  {
    what: 'a region without its number',
    input: awsTarget({ regions: ['eu-west'] }),
    path: 'targets.0.regions.0',
  },
  {
    what: 'a bad second region',
    input: awsTarget({ regions: ['eu-west-1', 'moon-1'] }),
    path: 'targets.0.regions.1',
  },
  {
    what: 'an 11-digit account id',
    input: awsTarget({ shareWith: ['12345678901'] }),
    path: 'targets.0.shareWith.0',
  },
  {
    what: 'a 13-digit account id',
    input: awsTarget({ shareWith: ['1234567890123'] }),
    path: 'targets.0.shareWith.0',
  },
  {
    what: 'an account id with letters',
    input: awsTarget({ shareWith: ['12345678901a'] }),
    path: 'targets.0.shareWith.0',
  },
  // timeouts
  {
    what: 'a timeout under the minimum',
    input: body({ timeoutSeconds: LIMITS.minTimeoutSeconds - 1 }),
    path: 'timeoutSeconds',
  },
  {
    what: 'a timeout over the maximum',
    input: body({ timeoutSeconds: LIMITS.maxTimeoutSeconds + 1 }),
    path: 'timeoutSeconds',
  },
  { what: 'a fractional timeout', input: body({ timeoutSeconds: 60.5 }), path: 'timeoutSeconds' },
  { what: 'a negative timeout', input: body({ timeoutSeconds: -60 }), path: 'timeoutSeconds' },
];

describe('parseJobSpec: invalid bodies', () => {
  it.each(INVALID)('rejects $what, naming $path', ({ input, path, mentions }) => {
    const error = captureError(input);
    expect(error).toBeInstanceOf(ValidationError);
    const v = error as ValidationError;
    expect(v.code).toBe('VALIDATION_FAILED');
    expect(v.httpStatus).toBe(400);
    expect(httpStatusOf(v.code)).toBe(400);
    expect(v.message).toMatch(/^invalid job: /);
    expect(v.message).toContain(`${path}: `);
    if (mentions) expect(v.message).toContain(mentions);
    // The details carry the same path, machine-readably.
    const detailPath = path === '(body)' ? '' : path;
    expect(v.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: detailPath })]));
  });

  it('names every problem of a body in one message', () => {
    const error = captureError({
      arch: 'sparc',
      recipe: { builder: 'script', script: 'x', artifact: '/abs' },
      timeoutSeconds: LIMITS.minTimeoutSeconds - 1,
      extra: true,
    }) as ValidationError;
    expect(error).toBeInstanceOf(ValidationError);
    for (const path of ['arch', 'format', 'recipe.artifact', 'timeoutSeconds']) {
      expect(error.message).toContain(`${path}: `);
    }
    expect(error.message).toContain('"extra"');
    expect(error.details).toHaveLength(5);
  });

  it('does not modify the body it validates', () => {
    const input = body({ labels: { team: 'os' } });
    const before = structuredClone(input);
    parseJobSpec(input);
    expect(input).toEqual(before);
  });
});
