/**
 * Helpers for cdk-nag 3 acknowledgements. A wildcard finding is named after the resource it
 * points at (`AwsSolutions-IAM5[Resource::<LogicalId.Arn>/prefix/*]`), so the ids are computed
 * from the constructs rather than copied from a synth log.
 */
import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

export function logicalIdOf(construct: IConstruct): string {
  const element = (construct.node.defaultChild ?? construct) as CfnElement;
  if (typeof (element as Partial<CfnElement>).logicalId !== 'string') {
    throw new Error(`${construct.node.path} is not backed by a CloudFormation resource`);
  }
  return Stack.of(construct).resolve(element.logicalId) as string;
}

/** `<LogicalId.Arn>` followed by `suffix`, as cdk-nag prints a resource built from `Fn::GetAtt`. */
export function arnFinding(construct: IConstruct, suffix = '', attribute = 'Arn'): string {
  return `Resource::<${logicalIdOf(construct)}.${attribute}>${suffix}`;
}

export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}
