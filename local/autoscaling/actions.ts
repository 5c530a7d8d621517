/**
 * One entry per supported Auto Scaling action: read the parameters the SDK sends, call the
 * simulator, render the `<{Action}Result>` body with the member names of
 * @aws-sdk/client-auto-scaling's schemas (undefined: the action has no result element). And the
 * EC2 DescribeInstances slice, which the scaler uses for launch times.
 */
import { escapeXml, itemSet, leaf, node, tagSet } from '../aws-query/xml';
import type { ActivityView, GroupView, HookView, InstanceView, LaunchTemplateView, TagView } from './model';
import type { QueryParams } from './query';
import type { AutoScalingSimulator, LifecycleActionInput, PutHookInput } from './simulator';
import { el, members, wrap } from './xml';

export type AutoScalingAction = (
  sim: AutoScalingSimulator,
  region: string,
  params: QueryParams,
) => string | undefined | Promise<string | undefined>;

export const AUTOSCALING_ACTIONS: Readonly<Record<string, AutoScalingAction>> = {
  CreateAutoScalingGroup(sim, region, p) {
    const mixed = p.has('MixedInstancesPolicy') ? p.sub('MixedInstancesPolicy.LaunchTemplate') : undefined;
    sim.createGroup(region, {
      name: p.str('AutoScalingGroupName'),
      minSize: p.int('MinSize'),
      maxSize: p.int('MaxSize'),
      desiredCapacity: p.int('DesiredCapacity'),
      ...(p.has('LaunchTemplate') ? { launchTemplate: readLaunchTemplate(p.sub('LaunchTemplate')) } : {}),
      ...(mixed
        ? {
            mixedInstances: {
              launchTemplate: readLaunchTemplate(mixed.sub('LaunchTemplateSpecification')),
              instanceTypes: mixed.structs('Overrides.member').flatMap((o) => o.str('InstanceType') ?? []),
            },
          }
        : {}),
      launchConfigurationName: p.str('LaunchConfigurationName'),
      availabilityZones: p.list('AvailabilityZones.member'),
      tags: p.structs('Tags.member').map(readTag),
      newInstancesProtectedFromScaleIn: p.bool('NewInstancesProtectedFromScaleIn'),
      defaultCooldown: p.int('DefaultCooldown'),
      lifecycleHooks: p.structs('LifecycleHookSpecificationList.member').map((h) => readHook(h)),
    });
    return undefined;
  },

  UpdateAutoScalingGroup(sim, _region, p) {
    sim.updateGroup({
      name: p.str('AutoScalingGroupName'),
      minSize: p.int('MinSize'),
      maxSize: p.int('MaxSize'),
      desiredCapacity: p.int('DesiredCapacity'),
      newInstancesProtectedFromScaleIn: p.bool('NewInstancesProtectedFromScaleIn'),
    });
    return undefined;
  },

  async DeleteAutoScalingGroup(sim, _region, p) {
    await sim.deleteGroup(p.str('AutoScalingGroupName'), p.bool('ForceDelete') ?? false);
    return undefined;
  },

  DescribeAutoScalingGroups(sim, _region, p) {
    const { groups, nextToken } = sim.describeGroups({
      names: p.list('AutoScalingGroupNames.member'),
      filters: p.structs('Filters.member').map((f) => ({
        name: f.str('Name') ?? '',
        values: f.list('Values.member'),
      })),
      maxRecords: p.int('MaxRecords'),
      nextToken: p.str('NextToken'),
    });
    return members('AutoScalingGroups', groups, renderGroup) + el('NextToken', nextToken);
  },

  SetDesiredCapacity(sim, _region, p) {
    sim.setDesiredCapacity(p.str('AutoScalingGroupName'), p.int('DesiredCapacity'));
    return undefined;
  },

  TerminateInstanceInAutoScalingGroup(sim, _region, p) {
    const activity = sim.terminateInstance(p.str('InstanceId'), p.bool('ShouldDecrementDesiredCapacity'));
    return wrap('Activity', renderActivity(activity));
  },

  SetInstanceProtection(sim, _region, p) {
    sim.setInstanceProtection(
      p.str('AutoScalingGroupName'),
      p.list('InstanceIds.member'),
      p.bool('ProtectedFromScaleIn'),
    );
    return '';
  },

  PutLifecycleHook(sim, _region, p) {
    sim.putLifecycleHook({ groupName: p.str('AutoScalingGroupName'), ...readHook(p) });
    return '';
  },

  DescribeLifecycleHooks(sim, _region, p) {
    const hooks = sim.describeLifecycleHooks(
      p.str('AutoScalingGroupName'),
      p.list('LifecycleHookNames.member'),
    );
    return members('LifecycleHooks', hooks, renderHook);
  },

  CompleteLifecycleAction(sim, _region, p) {
    sim.completeLifecycleAction(readAction(p), p.str('LifecycleActionResult'));
    return '';
  },

  RecordLifecycleActionHeartbeat(sim, _region, p) {
    sim.recordLifecycleActionHeartbeat(readAction(p));
    return '';
  },
};

/** EC2's DescribeInstances, over the simulator's instances (XML in EC2's own style). */
export function describeInstancesXml(sim: AutoScalingSimulator, p: QueryParams): string {
  const filters = [...p.structs('Filter'), ...p.structs('Filters')].map((f) => ({
    name: f.str('Name') ?? '',
    values: f.list('Value'),
  }));
  const instances = sim.describeInstances(p.list('InstanceId'), filters);
  return itemSet(
    'reservationSet',
    instances,
    (i) =>
      leaf('reservationId', i.reservationId) +
      leaf('ownerId', i.ownerId) +
      itemSet(
        'instancesSet',
        [i],
        (x) =>
          leaf('instanceId', x.instanceId) +
          leaf('instanceType', x.instanceType) +
          leaf('launchTime', x.launchTime) +
          node('instanceState', leaf('code', x.state.code), leaf('name', x.state.name)) +
          node('placement', leaf('availabilityZone', x.availabilityZone)) +
          tagSet(x.tags),
      ),
  );
}

function readLaunchTemplate(p: QueryParams): LaunchTemplateView {
  return {
    ...(p.str('LaunchTemplateName') !== undefined ? { launchTemplateName: p.str('LaunchTemplateName') } : {}),
    ...(p.str('LaunchTemplateId') !== undefined ? { launchTemplateId: p.str('LaunchTemplateId') } : {}),
    ...(p.str('Version') !== undefined ? { version: p.str('Version') } : {}),
  };
}

function readTag(p: QueryParams): TagView {
  return {
    key: p.str('Key') ?? '',
    value: p.str('Value') ?? '',
    propagateAtLaunch: p.bool('PropagateAtLaunch') ?? false,
  };
}

function readHook(p: QueryParams): Omit<PutHookInput, 'groupName'> {
  return {
    name: p.str('LifecycleHookName'),
    transition: p.str('LifecycleTransition'),
    heartbeatTimeout: p.int('HeartbeatTimeout'),
    defaultResult: p.str('DefaultResult'),
    notificationMetadata: p.str('NotificationMetadata'),
  };
}

function readAction(p: QueryParams): LifecycleActionInput {
  return {
    groupName: p.str('AutoScalingGroupName'),
    hookName: p.str('LifecycleHookName'),
    instanceId: p.str('InstanceId'),
    token: p.str('LifecycleActionToken'),
  };
}

function renderLaunchTemplate(t: LaunchTemplateView): string {
  return (
    el('LaunchTemplateId', t.launchTemplateId) +
    el('LaunchTemplateName', t.launchTemplateName) +
    el('Version', t.version)
  );
}

function renderInstance(i: InstanceView): string {
  return (
    el('InstanceId', i.instanceId) +
    el('InstanceType', i.instanceType) +
    el('AvailabilityZone', i.availabilityZone) +
    el('LifecycleState', i.lifecycleState) +
    el('HealthStatus', i.healthStatus) +
    (i.launchTemplate ? wrap('LaunchTemplate', renderLaunchTemplate(i.launchTemplate)) : '') +
    el('ProtectedFromScaleIn', i.protectedFromScaleIn)
  );
}

function renderGroup(g: GroupView): string {
  return (
    el('AutoScalingGroupName', g.name) +
    el('AutoScalingGroupARN', g.arn) +
    (g.launchTemplate ? wrap('LaunchTemplate', renderLaunchTemplate(g.launchTemplate)) : '') +
    el('MinSize', g.minSize) +
    el('MaxSize', g.maxSize) +
    el('DesiredCapacity', g.desiredCapacity) +
    el('DefaultCooldown', g.defaultCooldown) +
    members('AvailabilityZones', g.availabilityZones, (az) => escapeXml(az)) +
    el('HealthCheckType', g.healthCheckType) +
    el('CreatedTime', g.createdTime) +
    members('Instances', g.instances, renderInstance) +
    members(
      'Tags',
      g.tags,
      (t) =>
        el('ResourceId', g.name) +
        el('ResourceType', 'auto-scaling-group') +
        el('Key', t.key) +
        el('Value', t.value) +
        el('PropagateAtLaunch', t.propagateAtLaunch),
    ) +
    el('NewInstancesProtectedFromScaleIn', g.newInstancesProtectedFromScaleIn)
  );
}

function renderHook(h: HookView): string {
  return (
    el('LifecycleHookName', h.name) +
    el('AutoScalingGroupName', h.groupName) +
    el('LifecycleTransition', h.transition) +
    el('NotificationMetadata', h.notificationMetadata) +
    el('HeartbeatTimeout', h.heartbeatTimeout) +
    el('GlobalTimeout', h.globalTimeout) +
    el('DefaultResult', h.defaultResult)
  );
}

function renderActivity(a: ActivityView): string {
  return (
    el('ActivityId', a.activityId) +
    el('AutoScalingGroupName', a.groupName) +
    el('Description', a.description) +
    el('Cause', a.cause) +
    el('StartTime', a.startTime) +
    el('StatusCode', a.statusCode) +
    el('Progress', a.progress) +
    el('Details', a.details) +
    el('AutoScalingGroupARN', a.groupArn)
  );
}
