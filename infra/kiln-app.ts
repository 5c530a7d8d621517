import { type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { KilnStack } from './kiln-stack';
import { loadDeploymentSettings } from './settings';

export interface KilnAppOptions {
  /** Directory relative config file paths resolve from. @default process.cwd() */
  readonly cwd?: string;
  /** @default the repository root */
  readonly sourceRoot?: string;
}

/** Adds the Kiln stack, configured from the app's context, and the cdk-nag AwsSolutions checks. */
export function addKilnStack(app: App, options: KilnAppOptions = {}): KilnStack {
  const settings = loadDeploymentSettings(app.node, options.cwd);
  const stack = new KilnStack(app, 'Kiln', {
    stackName: settings.config.prefix,
    description: 'Kiln: machine-image build pipeline (API, queues, build fleet, artifacts, alarms)',
    config: settings.config,
    ...(settings.existingVpc ? { existingVpc: settings.existingVpc } : {}),
    ...(settings.alarmEmail ? { alarmEmail: settings.alarmEmail } : {}),
    ...(options.sourceRoot ? { sourceRoot: options.sourceRoot } : {}),
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return stack;
}
