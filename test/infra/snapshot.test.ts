import { describe, expect, it } from 'vitest';
import { stripAssetHashes, synthesize } from './synth';

describe('synthesized template', () => {
  it('matches the snapshot (asset hashes stripped)', () => {
    // Beside the behaviour tests, not instead of them: this catches unintended drift anywhere.
    const { template } = synthesize();
    expect(stripAssetHashes(template.toJSON())).toMatchSnapshot();
  });
});
