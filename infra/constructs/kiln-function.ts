import { join } from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export interface KilnFunctionProps {
  /** Entry file exporting `handler`, relative to `sourceRoot`. */
  readonly entry: string;
  /** Repository root holding the entry and package-lock.json. */
  readonly sourceRoot: string;
  readonly description: string;
  readonly environment: Readonly<Record<string, string>>;
  /** @default Duration.seconds(10) */
  readonly timeout?: Duration;
  /** @default 512 */
  readonly memorySize?: number;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
}

const DEFAULTS = {
  timeout: Duration.seconds(10),
  memorySize: 512,
  logRetention: logs.RetentionDays.ONE_MONTH,
} as const;

/** The runtime every Kiln function uses: the newest Node.js this aws-cdk-lib knows. */
export const KILN_LAMBDA_RUNTIME = lambda.Runtime.NODEJS_24_X;

/**
 * One Lambda with a role of its own that can, to start with, only write to the function's own log
 * group; callers grant exactly what the function needs on top.
 */
export class KilnFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: KilnFunctionProps) {
    super(scope, id);
    const timeout = props.timeout ?? DEFAULTS.timeout;
    const memorySize = props.memorySize ?? DEFAULTS.memorySize;

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? DEFAULTS.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Kiln: ${props.description}`,
    });
    // Instead of AWSLambdaBasicExecutionRole (any log group in the account): this function's group only.
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    this.function = new NodejsFunction(this, 'Function', {
      entry: join(props.sourceRoot, props.entry),
      projectRoot: props.sourceRoot,
      depsLockFilePath: join(props.sourceRoot, 'package-lock.json'),
      handler: 'handler',
      description: `Kiln: ${props.description}`,
      runtime: KILN_LAMBDA_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      memorySize,
      timeout,
      role: this.role,
      logGroup: this.logGroup,
      // Stack traces in the logs then point at the TypeScript sources.
      environment: { ...props.environment, NODE_OPTIONS: '--enable-source-maps' },
      bundling: {
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        mainFields: ['module', 'main'],
        // CommonJS dependencies bundled into an ES module still call require().
        banner:
          "import { createRequire as __kilnCreateRequire } from 'node:module'; const require = __kilnCreateRequire(import.meta.url);",
        // The SDK is bundled at the version the tests ran with, not taken from the runtime.
        externalModules: [],
        sourceMap: true,
        minify: true,
      },
    });
  }
}
