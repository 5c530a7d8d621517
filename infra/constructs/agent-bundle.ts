import { join } from 'node:path';
import { AssetHashType, BundlingOutput, DockerImage } from 'aws-cdk-lib';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { buildSync } from 'esbuild';

/** The agent's composition root, relative to the repository root. */
export const AGENT_ENTRY = 'agent/main.ts';
/** Name of the single bundled file, on S3 and on the instance. */
export const AGENT_BUNDLE_FILE = 'kiln-agent.mjs';

export interface AgentBundleProps {
  readonly sourceRoot: string;
  /** Node.js major version the instances run (AL2023 package `nodejs<major>`). */
  readonly nodeMajor: number;
}

/**
 * The build agent as one ES module file, bundled at synth time with the local esbuild (no Docker)
 * and published as a CDK asset that instances download at boot.
 */
export class AgentBundle extends Construct {
  readonly asset: s3assets.Asset;

  constructor(scope: Construct, id: string, props: AgentBundleProps) {
    super(scope, id);
    const entry = join(props.sourceRoot, AGENT_ENTRY);
    this.asset = new s3assets.Asset(this, 'Asset', {
      path: props.sourceRoot,
      // Hash what was built, not the repository (which would mean fingerprinting node_modules).
      assetHashType: AssetHashType.OUTPUT,
      bundling: {
        // Required by the type, never pulled: the local bundler either succeeds or throws.
        image: DockerImage.fromRegistry('local-esbuild-only'),
        outputType: BundlingOutput.SINGLE_FILE,
        local: {
          tryBundle(outputDir: string): boolean {
            try {
              buildSync({
                absWorkingDir: props.sourceRoot,
                entryPoints: [entry],
                outfile: join(outputDir, AGENT_BUNDLE_FILE),
                bundle: true,
                platform: 'node',
                format: 'esm',
                target: `node${props.nodeMajor}`,
                mainFields: ['module', 'main'],
                banner: {
                  js: "import { createRequire as __kilnCreateRequire } from 'node:module'; const require = __kilnCreateRequire(import.meta.url);",
                },
                // Inline, so the asset stays a single file and stack traces still point at the sources.
                sourcemap: 'inline',
                logLevel: 'silent',
              });
            } catch (error) {
              throw new Error(`bundling the build agent from ${entry} failed: ${(error as Error).message}`);
            }
            return true;
          },
        },
      },
    });
  }
}
