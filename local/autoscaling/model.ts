/** Shapes and errors of the Auto Scaling simulator, independent of HTTP. */
import { QueryError } from '../aws-query/errors';

/** An Auto Scaling error as the Query API reports it (`<Error><Code>…`), with its HTTP status. */
export class AutoScalingError extends QueryError {
  /** `Sender` for the caller's mistakes, `Receiver` for the service's. */
  get type(): 'Sender' | 'Receiver' {
    return this.httpStatus >= 500 ? 'Receiver' : 'Sender';
  }
}

export function validation(message: string): AutoScalingError {
  return new AutoScalingError('ValidationError', message);
}

export type LifecycleState =
  | 'Pending'
  | 'Pending:Wait'
  | 'Pending:Proceed'
  | 'InService'
  | 'Terminating'
  | 'Terminating:Wait'
  | 'Terminating:Proceed'
  | 'Terminated';

export const LAUNCHING = 'autoscaling:EC2_INSTANCE_LAUNCHING';
export const TERMINATING = 'autoscaling:EC2_INSTANCE_TERMINATING';
export type LifecycleTransition = typeof LAUNCHING | typeof TERMINATING;
export type LifecycleResult = 'CONTINUE' | 'ABANDON';

export interface TagView {
  key: string;
  value: string;
  propagateAtLaunch: boolean;
}

export interface LaunchTemplateView {
  launchTemplateName?: string;
  launchTemplateId?: string;
  version?: string;
}

export interface InstanceView {
  instanceId: string;
  availabilityZone: string;
  lifecycleState: LifecycleState;
  healthStatus: 'Healthy' | 'Unhealthy';
  protectedFromScaleIn: boolean;
  instanceType: string;
  launchTemplate?: LaunchTemplateView;
}

export interface GroupView {
  name: string;
  arn: string;
  minSize: number;
  maxSize: number;
  desiredCapacity: number;
  defaultCooldown: number;
  availabilityZones: string[];
  healthCheckType: string;
  createdTime: string;
  launchTemplate?: LaunchTemplateView;
  mixedInstances: boolean;
  instances: InstanceView[];
  tags: TagView[];
  newInstancesProtectedFromScaleIn: boolean;
  status?: string;
}

export interface HookView {
  name: string;
  groupName: string;
  transition: LifecycleTransition;
  heartbeatTimeout: number;
  globalTimeout: number;
  defaultResult: LifecycleResult;
  notificationMetadata?: string;
}

export interface ActivityView {
  activityId: string;
  groupName: string;
  groupArn: string;
  description: string;
  cause: string;
  startTime: string;
  statusCode: string;
  progress: number;
  details: string;
}

/** An instance as EC2's DescribeInstances shows it. */
export interface Ec2InstanceView {
  instanceId: string;
  reservationId: string;
  ownerId: string;
  launchTime: string;
  state: { code: number; name: string };
  instanceType: string;
  availabilityZone: string;
  tags: Record<string, string>;
}

export interface Ec2Filter {
  name: string;
  values: string[];
}

/** An EC2 error (`<Response><Errors><Error>…`), for the DescribeInstances slice. */
export class Ec2ApiError extends QueryError {}
