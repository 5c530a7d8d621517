#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { addKilnStack } from '../kiln-app';
import { DeploymentSettingsError } from '../settings';

const app = new App();
try {
  addKilnStack(app);
} catch (error) {
  if (!(error instanceof DeploymentSettingsError)) throw error;
  // A config mistake is the operator's to fix: say what is wrong, without a stack trace.
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
