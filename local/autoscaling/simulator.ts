/**
 * The Auto Scaling simulator's state and behaviour, independent of HTTP: groups with min/max
 * bounds and a desired capacity, instances that boot and run "software" (in local mode, a real
 * agent process), scale-in protection, and lifecycle hooks.
 *
 * What it models, as Auto Scaling does it:
 * - The group keeps `desired` instances Pending or InService. Below that it launches; above it,
 *   it terminates instances *it* picks (oldest first here) among those not protected from
 *   scale-in. Protected instances stay, however far desired capacity drops, until protection is
 *   cleared; then the group finishes the scale-in.
 * - SetDesiredCapacity / UpdateAutoScalingGroup outside [min, max] is a ValidationError, and so is
 *   a TerminateInstanceInAutoScalingGroup that would decrement desired capacity below min.
 *   TerminateInstanceInAutoScalingGroup names its instance: protection does not apply.
 * - A termination lifecycle hook holds a terminating instance in `Terminating:Wait` until
 *   CompleteLifecycleAction or the hook's heartbeat timeout (RecordLifecycleActionHeartbeat
 *   extends it, up to the global timeout); a launch hook holds it in `Pending:Wait` likewise, and
 *   ABANDON there terminates it.
 * - An instance boots for `bootDelayMs`, then its software starts and it goes InService (or to
 *   Pending:Wait). Software that exits on its own is restarted after `restartDelayMs`, as systemd
 *   restarts the agent on an instance. Terminating an instance stops its software (SIGTERM for an
 *   agent) and waits for it to exit.
 * - A spot interruption notice shows in the instance metadata at once; the instance is reclaimed
 *   when the notice's time comes, and the group replaces it.
 *
 * Simplification: a termination hook only holds an instance whose software has started; a
 * still-booting instance has nothing that could complete the action, so it terminates at once.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  type ActivityView,
  AutoScalingError,
  Ec2ApiError,
  type Ec2Filter,
  type Ec2InstanceView,
  type GroupView,
  type HookView,
  type InstanceView,
  LAUNCHING,
  type LaunchTemplateView,
  type LifecycleResult,
  type LifecycleState,
  type LifecycleTransition,
  type TagView,
  TERMINATING,
  validation,
} from './model';

/** What runs on an instance once it has booted. */
export interface InstanceSoftware {
  /** Resolves when the software is gone, whatever the reason. */
  readonly exited: Promise<unknown>;
  /** Asks it to stop (SIGTERM for an agent) and resolves once it has exited. */
  stop(): Promise<unknown>;
}

export interface InstanceInfo {
  instanceId: string;
  groupName: string;
  region: string;
  availabilityZone: string;
  instanceType: string;
  /** The group's tags with PropagateAtLaunch, plus `aws:autoscaling:groupName`. */
  tags: Record<string, string>;
}

export type InstanceLauncher = (instance: InstanceInfo) => InstanceSoftware;

export interface AutoScalingSimulatorOptions {
  /** Owner of the groups and instances. @default '000000000000' */
  accountId?: string;
  /** Starts an instance's software when it has booted; without one, instances run nothing. */
  launcher?: InstanceLauncher;
  /** Launch → software start / InService. @default 0 */
  bootDelayMs?: number | ((instance: InstanceInfo) => number);
  /** Software that exits on its own is started again after this long (systemd's RestartSec). @default 1000 */
  restartDelayMs?: number;
  /** Restart software that exits on its own. @default true */
  restartOnExit?: boolean;
  /** Told when the launcher throws; the instance then runs nothing (and never reports in). */
  onLaunchError?: (instance: InstanceInfo, error: unknown) => void;
  /** Seed of instance ids. @default 1 */
  seed?: number;
  /** The clock, in milliseconds. @default Date.now */
  now?: () => number;
}

export type TerminationCause =
  | 'requested'
  | 'scale-in'
  | 'launch-abandoned'
  | 'spot-reclaimed'
  | 'group-deleted';

export interface TerminationRecord {
  instanceId: string;
  groupName: string;
  cause: TerminationCause;
  /** For `requested`: whether desired capacity was decremented. */
  decrement?: boolean;
  /** The instance was protected from scale-in when it was terminated. */
  wasProtected: boolean;
  at: number;
}

export interface AutoScalingStats {
  launches: number;
  /** Highest number of Pending + InService instances each group has had at once. */
  peakInstances: Record<string, number>;
  terminations: TerminationRecord[];
  lifecycleActionsCompleted: number;
  lifecycleActionsTimedOut: number;
  softwareRestarts: number;
}

export interface CreateGroupInput {
  name?: string;
  minSize?: number;
  maxSize?: number;
  desiredCapacity?: number;
  launchTemplate?: LaunchTemplateView;
  mixedInstances?: { launchTemplate?: LaunchTemplateView; instanceTypes: string[] };
  launchConfigurationName?: string;
  availabilityZones?: string[];
  tags?: TagView[];
  newInstancesProtectedFromScaleIn?: boolean;
  defaultCooldown?: number;
  lifecycleHooks?: PutHookInput[];
}

export interface UpdateGroupInput {
  name?: string;
  minSize?: number;
  maxSize?: number;
  desiredCapacity?: number;
  newInstancesProtectedFromScaleIn?: boolean;
}

export interface PutHookInput {
  groupName?: string;
  name?: string;
  transition?: string;
  heartbeatTimeout?: number;
  defaultResult?: string;
  notificationMetadata?: string;
}

export interface LifecycleActionInput {
  groupName?: string;
  hookName?: string;
  instanceId?: string;
  token?: string;
}

export interface DescribeGroupsInput {
  names?: string[];
  filters?: Ec2Filter[];
  maxRecords?: number;
  nextToken?: string;
}

interface HookRecord {
  name: string;
  transition: LifecycleTransition;
  heartbeatTimeout: number;
  defaultResult: LifecycleResult;
  notificationMetadata?: string;
}

interface GroupRecord {
  name: string;
  arn: string;
  region: string;
  minSize: number;
  maxSize: number;
  desiredCapacity: number;
  defaultCooldown: number;
  availabilityZones: string[];
  createdAt: number;
  launchTemplate?: LaunchTemplateView;
  mixedInstances: boolean;
  instanceTypes: string[];
  tags: TagView[];
  newInstancesProtected: boolean;
  hooks: Map<string, HookRecord>;
  /** Launch order. */
  instances: InstanceRecord[];
  deleting: boolean;
}

interface PendingAction {
  hook: HookRecord;
  token: string;
  globalDeadline: number;
  timer: NodeJS.Timeout;
}

interface InstanceRecord {
  info: InstanceInfo;
  group: GroupRecord;
  reservationId: string;
  launchedAt: number;
  state: LifecycleState;
  protected: boolean;
  booted: boolean;
  software?: InstanceSoftware;
  timers: Set<NodeJS.Timeout>;
  action?: PendingAction;
  spot?: { action: string; time: string };
  terminatedAt?: number;
}

/** Auto Scaling's own ceiling on a hook's global timeout: 48 h, or 100 heartbeat timeouts if less. */
const MAX_GLOBAL_TIMEOUT_S = 172_800;
const MAX_HOOKS_PER_GROUP = 50;
const MAX_PROTECTION_IDS = 50;

const isActive = (i: InstanceRecord) =>
  i.state === 'Pending' ||
  i.state === 'Pending:Wait' ||
  i.state === 'Pending:Proceed' ||
  i.state === 'InService';
const isTerminating = (i: InstanceRecord) => i.state.startsWith('Terminating');

export class AutoScalingSimulator {
  readonly accountId: string;
  private readonly groups = new Map<string, GroupRecord>();
  /** Every instance ever launched, terminated ones included (EC2 keeps describing them). */
  private readonly instances = new Map<string, InstanceRecord>();
  private readonly clock: () => number;
  private counter = 0;
  private shuttingDown = false;
  private readonly stopping = new Set<Promise<unknown>>();
  private readonly statsData: AutoScalingStats = {
    launches: 0,
    peakInstances: {},
    terminations: [],
    lifecycleActionsCompleted: 0,
    lifecycleActionsTimedOut: 0,
    softwareRestarts: 0,
  };

  constructor(private readonly options: AutoScalingSimulatorOptions = {}) {
    this.accountId = options.accountId ?? '000000000000';
    this.clock = options.now ?? Date.now;
  }

  // ── groups ──────────────────────────────────────────────────────────────────────────────────

  createGroup(region: string, input: CreateGroupInput): void {
    const name = required(input.name, 'AutoScalingGroupName');
    const minSize = required(input.minSize, 'MinSize');
    const maxSize = required(input.maxSize, 'MaxSize');
    checkName(name, 'AutoScalingGroupName');
    if (this.groups.has(name)) {
      throw new AutoScalingError(
        'AlreadyExists',
        `AutoScalingGroup by this name already exists - A group with the name ${name} already exists`,
      );
    }
    if (!input.launchTemplate && !input.mixedInstances && !input.launchConfigurationName) {
      throw validation(
        'Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.',
      );
    }
    checkSize(minSize, 'minSize');
    checkSize(maxSize, 'maxSize');
    if (minSize > maxSize)
      throw validation(`Max bound, ${maxSize}, must be greater than or equal to min bound, ${minSize}`);
    const desired = input.desiredCapacity ?? minSize;
    checkDesired(desired, minSize, maxSize, 'Desired capacity');
    const group: GroupRecord = {
      name,
      arn: `arn:aws:autoscaling:${region}:${this.accountId}:autoScalingGroup:${randomUUID()}:autoScalingGroupName/${name}`,
      region,
      minSize,
      maxSize,
      desiredCapacity: desired,
      defaultCooldown: input.defaultCooldown ?? 300,
      availabilityZones:
        input.availabilityZones && input.availabilityZones.length > 0
          ? input.availabilityZones
          : [`${region}a`],
      createdAt: this.clock(),
      ...((input.launchTemplate ?? input.mixedInstances?.launchTemplate)
        ? { launchTemplate: input.launchTemplate ?? input.mixedInstances?.launchTemplate }
        : {}),
      mixedInstances: input.mixedInstances !== undefined,
      instanceTypes: input.mixedInstances?.instanceTypes ?? [],
      tags: input.tags ?? [],
      newInstancesProtected: input.newInstancesProtectedFromScaleIn ?? false,
      hooks: new Map(),
      instances: [],
      deleting: false,
    };
    for (const hook of input.lifecycleHooks ?? []) group.hooks.set(...this.hookRecord(group, hook));
    this.groups.set(name, group);
    this.reconcile(group);
  }

  updateGroup(input: UpdateGroupInput): void {
    const group = this.group(input.name);
    const minSize = input.minSize ?? group.minSize;
    const maxSize = input.maxSize ?? group.maxSize;
    checkSize(minSize, 'minSize');
    checkSize(maxSize, 'maxSize');
    if (minSize > maxSize)
      throw validation(`Max bound, ${maxSize}, must be greater than or equal to min bound, ${minSize}`);
    let desired = input.desiredCapacity;
    if (desired !== undefined) checkDesired(desired, minSize, maxSize, 'Desired capacity');
    // New bounds pull the current desired capacity inside them, as Auto Scaling does.
    else desired = Math.min(maxSize, Math.max(minSize, group.desiredCapacity));
    group.minSize = minSize;
    group.maxSize = maxSize;
    group.desiredCapacity = desired;
    if (input.newInstancesProtectedFromScaleIn !== undefined)
      group.newInstancesProtected = input.newInstancesProtectedFromScaleIn;
    this.reconcile(group);
  }

  async deleteGroup(name: string | undefined, force: boolean): Promise<void> {
    const group = this.group(name);
    if (!force && group.instances.length > 0) {
      throw new AutoScalingError(
        'ResourceInUse',
        'You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.',
      );
    }
    group.deleting = true;
    group.desiredCapacity = 0;
    const stops = group.instances.map((i) => {
      this.recordTermination(i, 'group-deleted');
      return this.proceed(i);
    });
    this.groups.delete(group.name);
    await Promise.all(stops);
  }

  describeGroups(input: DescribeGroupsInput = {}): { groups: GroupView[]; nextToken?: string } {
    const names = input.names ?? [];
    let groups =
      names.length > 0 ? names.flatMap((n) => this.groups.get(n) ?? []) : [...this.groups.values()];
    for (const filter of input.filters ?? []) groups = groups.filter((g) => matchesTagFilter(g.tags, filter));
    const page = paginate(groups, input.maxRecords, input.nextToken, 100);
    return {
      groups: page.items.map((g) => this.groupView(g)),
      ...(page.nextToken ? { nextToken: page.nextToken } : {}),
    };
  }

  setDesiredCapacity(name: string | undefined, desired: number | undefined): void {
    const group = this.group(name);
    const value = required(desired, 'DesiredCapacity');
    if (value > group.maxSize) {
      throw validation(
        `New SetDesiredCapacity value ${value} is above max value ${group.maxSize} for the AutoScalingGroup.`,
      );
    }
    if (value < group.minSize) {
      throw validation(
        `New SetDesiredCapacity value ${value} is below min value ${group.minSize} for the AutoScalingGroup.`,
      );
    }
    group.desiredCapacity = value;
    this.reconcile(group);
  }

  terminateInstance(instanceId: string | undefined, decrement: boolean | undefined): ActivityView {
    const id = required(instanceId, 'InstanceId');
    const shouldDecrement = required(decrement, 'ShouldDecrementDesiredCapacity');
    const instance = this.instances.get(id);
    if (!instance || instance.state === 'Terminated' || instance.group.deleting) {
      throw validation(`Instance Id not found - No managed instance found for instance ID: ${id}`);
    }
    const group = instance.group;
    if (isTerminating(instance)) {
      throw validation(`The instance ${id} is already in ${instance.state} state.`);
    }
    if (shouldDecrement) {
      if (group.desiredCapacity - 1 < group.minSize) {
        throw validation(
          `Currently, desiredSize equals minSize (${group.minSize}). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.`,
        );
      }
      group.desiredCapacity -= 1;
    }
    const shrinking = shouldDecrement
      ? `, shrinking the capacity from ${group.desiredCapacity + 1} to ${group.desiredCapacity}`
      : '';
    const activity = this.activity(
      group,
      `Terminating EC2 instance: ${id}`,
      `At ${new Date(this.clock()).toISOString()} instance ${id} was taken out of service in response to a user request${shrinking}.`,
    );
    this.beginTermination(instance, 'requested', shouldDecrement);
    this.reconcile(group);
    return activity;
  }

  setInstanceProtection(
    groupName: string | undefined,
    instanceIds: string[],
    protect: boolean | undefined,
  ): void {
    const group = this.group(groupName);
    const value = required(protect, 'ProtectedFromScaleIn');
    if (instanceIds.length === 0)
      throw validation('The parameter InstanceIds must contain at least one instance ID.');
    if (instanceIds.length > MAX_PROTECTION_IDS) {
      throw validation(`The number of instance IDs cannot exceed ${MAX_PROTECTION_IDS}.`);
    }
    const targets = instanceIds.map((id) => {
      const instance = this.instances.get(id);
      if (!instance || instance.group !== group || instance.state === 'Terminated') {
        throw validation(`The instance ${id} is not part of Auto Scaling group ${group.name}.`);
      }
      if (!isActive(instance)) {
        throw validation(`The instance ${id} is not in InService or EnteringStandby or Standby.`);
      }
      return instance;
    });
    for (const i of targets) i.protected = value;
    // Clearing protection lets the group finish a scale-in it could not do before.
    if (!value) this.reconcile(group);
  }

  // ── lifecycle hooks ─────────────────────────────────────────────────────────────────────────

  putLifecycleHook(input: PutHookInput): void {
    const group = this.group(input.groupName);
    const [name, hook] = this.hookRecord(group, input);
    if (!group.hooks.has(name) && group.hooks.size >= MAX_HOOKS_PER_GROUP) {
      throw new AutoScalingError(
        'LimitExceeded',
        `Exceeded the limit of ${MAX_HOOKS_PER_GROUP} lifecycle hooks per group.`,
      );
    }
    group.hooks.set(name, hook);
  }

  describeLifecycleHooks(groupName: string | undefined, names: string[] = []): HookView[] {
    const group = this.group(groupName);
    const hooks = [...group.hooks.values()].filter((h) => names.length === 0 || names.includes(h.name));
    return hooks.map((h) => ({
      name: h.name,
      groupName: group.name,
      transition: h.transition,
      heartbeatTimeout: h.heartbeatTimeout,
      globalTimeout: globalTimeoutOf(h),
      defaultResult: h.defaultResult,
      ...(h.notificationMetadata !== undefined ? { notificationMetadata: h.notificationMetadata } : {}),
    }));
  }

  completeLifecycleAction(input: LifecycleActionInput, result: string | undefined): void {
    const outcome = required(result, 'LifecycleActionResult');
    if (outcome !== 'CONTINUE' && outcome !== 'ABANDON') {
      throw validation(`LifecycleActionResult must be CONTINUE or ABANDON, got ${outcome}`);
    }
    const instance = this.pendingAction(input);
    this.statsData.lifecycleActionsCompleted += 1;
    this.resolveAction(instance, outcome);
  }

  recordLifecycleActionHeartbeat(input: LifecycleActionInput): void {
    const instance = this.pendingAction(input);
    const action = instance.action as PendingAction;
    const remaining = action.globalDeadline - this.clock();
    if (remaining <= 0) return;
    clearTimeout(action.timer);
    instance.timers.delete(action.timer);
    action.timer = this.timer(instance, Math.min(action.hook.heartbeatTimeout * 1000, remaining), () =>
      this.actionTimedOut(instance),
    );
  }

  // ── instance metadata, EC2 view, spot ──────────────────────────────────────────────────────

  /** The instance metadata service's answer for `path` under /latest/meta-data/, or undefined (404). */
  metadata(instanceId: string, path: string): string | undefined {
    const instance = this.instances.get(instanceId);
    if (!instance || instance.state === 'Terminated') return undefined;
    switch (path) {
      case 'instance-id':
        return instanceId;
      case 'instance-type':
        return instance.info.instanceType;
      case 'placement/availability-zone':
        return instance.info.availabilityZone;
      case 'autoscaling/target-lifecycle-state':
        return isTerminating(instance) ? 'Terminated' : 'InService';
      case 'spot/instance-action':
        return instance.spot ? JSON.stringify(instance.spot) : undefined;
      default:
        return undefined;
    }
  }

  /**
   * EC2 sends the instance a spot interruption notice (visible in its metadata at once) and
   * reclaims it `noticeMs` later, whatever its lifecycle hooks say; the group then replaces it.
   */
  interruptSpot(instanceId: string, noticeMs = 120_000): void {
    const instance = this.instances.get(instanceId);
    if (!instance || instance.state === 'Terminated') throw new Error(`no running instance ${instanceId}`);
    instance.spot = { action: 'terminate', time: new Date(this.clock() + noticeMs).toISOString() };
    this.timer(instance, noticeMs, () => {
      if (instance.state === 'Terminated' || instance.state === 'Terminating:Proceed') return;
      this.recordTermination(instance, 'spot-reclaimed');
      const group = instance.group;
      void this.proceed(instance);
      this.reconcile(group);
    });
  }

  describeInstances(instanceIds: string[], filters: Ec2Filter[]): Ec2InstanceView[] {
    for (const id of instanceIds) {
      if (!this.instances.has(id)) {
        throw new Ec2ApiError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
      }
    }
    let found =
      instanceIds.length > 0
        ? instanceIds.map((id) => this.instances.get(id) as InstanceRecord)
        : [...this.instances.values()];
    for (const filter of filters) {
      found = found.filter((i) => {
        const values = ec2FieldOf(i, filter.name);
        if (values === undefined) {
          throw new Ec2ApiError('InvalidParameterValue', `The filter '${filter.name}' is invalid`);
        }
        return values.some((v) => filter.values.includes(v));
      });
    }
    return found.map((i) => ({
      instanceId: i.info.instanceId,
      reservationId: i.reservationId,
      ownerId: this.accountId,
      launchTime: new Date(i.launchedAt).toISOString(),
      state: ec2StateOf(i),
      instanceType: i.info.instanceType,
      availabilityZone: i.info.availabilityZone,
      tags: i.info.tags,
    }));
  }

  stats(): AutoScalingStats {
    return structuredClone(this.statsData);
  }

  /** Instances of a group that are Pending or InService now. */
  activeInstances(groupName: string): InstanceView[] {
    const group = this.groups.get(groupName);
    return group ? group.instances.filter(isActive).map((i) => this.instanceView(i)) : [];
  }

  /** Stops every instance's software and every timer; the simulator does nothing after this. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    const stops: Promise<unknown>[] = [...this.stopping];
    for (const instance of this.instances.values()) {
      for (const t of instance.timers) clearTimeout(t);
      instance.timers.clear();
      if (instance.software) stops.push(instance.software.stop());
    }
    await Promise.allSettled(stops);
  }

  // ── internals ───────────────────────────────────────────────────────────────────────────────

  private group(name: string | undefined): GroupRecord {
    const n = required(name, 'AutoScalingGroupName');
    const group = this.groups.get(n);
    if (!group || group.deleting)
      throw validation(`AutoScalingGroup name not found - AutoScalingGroup ${n} not found`);
    return group;
  }

  /** Launches up to desired capacity, or scales in unprotected instances the group picks. */
  private reconcile(group: GroupRecord): void {
    if (group.deleting || this.shuttingDown) return;
    const active = group.instances.filter(isActive);
    for (let n = active.length; n < group.desiredCapacity; n += 1) this.launch(group);
    const excess = active.length - group.desiredCapacity;
    if (excess > 0) {
      // The group knows nothing of builds: it picks among the unprotected, oldest first.
      const victims = active.filter((i) => !i.protected).slice(0, excess);
      for (const victim of victims) {
        this.recordTermination(victim, 'scale-in');
        this.beginTermination(victim);
      }
    }
    const now = group.instances.filter(isActive).length;
    this.statsData.peakInstances[group.name] = Math.max(this.statsData.peakInstances[group.name] ?? 0, now);
  }

  private launch(group: GroupRecord): void {
    this.counter += 1;
    const digest = createHash('sha256')
      .update(`${this.options.seed ?? 1}:${this.counter}`)
      .digest('hex');
    const instanceId = `i-${digest.slice(0, 17)}`;
    const tags: Record<string, string> = { 'aws:autoscaling:groupName': group.name };
    for (const t of group.tags) if (t.propagateAtLaunch) tags[t.key] = t.value;
    const az = group.availabilityZones[(this.counter - 1) % group.availabilityZones.length] as string;
    const instance: InstanceRecord = {
      info: {
        instanceId,
        groupName: group.name,
        region: group.region,
        availabilityZone: az,
        instanceType: group.instanceTypes[0] ?? 'c7i.large',
        tags,
      },
      group,
      reservationId: `r-${digest.slice(17, 34)}`,
      launchedAt: this.clock(),
      state: 'Pending',
      protected: group.newInstancesProtected,
      booted: false,
      timers: new Set(),
    };
    group.instances.push(instance);
    this.instances.set(instanceId, instance);
    this.statsData.launches += 1;
    const boot = this.options.bootDelayMs ?? 0;
    this.timer(instance, typeof boot === 'function' ? boot(instance.info) : boot, () => this.boot(instance));
  }

  private boot(instance: InstanceRecord): void {
    if (instance.state !== 'Pending') return;
    instance.booted = true;
    this.startSoftware(instance);
    const hook = hookFor(instance.group, LAUNCHING);
    if (hook) this.awaitAction(instance, hook, 'Pending:Wait');
    else instance.state = 'InService';
  }

  private startSoftware(instance: InstanceRecord): void {
    const launcher = this.options.launcher;
    if (!launcher || this.shuttingDown) return;
    let software: InstanceSoftware;
    try {
      software = launcher(instance.info);
    } catch (error) {
      this.options.onLaunchError?.(instance.info, error);
      return;
    }
    instance.software = software;
    void software.exited.then(() => {
      if (instance.software !== software) return;
      instance.software = undefined;
      const running = instance.state === 'InService' || instance.state === 'Pending:Wait';
      if (!running || this.shuttingDown || this.options.restartOnExit === false) return;
      this.timer(instance, this.options.restartDelayMs ?? 1000, () => {
        const stillRunning = instance.state === 'InService' || instance.state === 'Pending:Wait';
        if (!stillRunning || instance.software || this.shuttingDown) return;
        this.statsData.softwareRestarts += 1;
        this.startSoftware(instance);
      });
    });
  }

  /** Moves an active instance to Terminating (and Terminating:Wait when a hook holds it). */
  private beginTermination(instance: InstanceRecord, cause?: TerminationCause, decrement?: boolean): void {
    if (!isActive(instance)) return;
    if (cause) this.recordTermination(instance, cause, decrement);
    if (instance.action) this.clearAction(instance);
    const hook = hookFor(instance.group, TERMINATING);
    instance.state = 'Terminating';
    if (hook && instance.software) this.awaitAction(instance, hook, 'Terminating:Wait');
    else void this.proceed(instance);
  }

  private awaitAction(
    instance: InstanceRecord,
    hook: HookRecord,
    state: 'Pending:Wait' | 'Terminating:Wait',
  ): void {
    instance.state = state;
    instance.action = {
      hook,
      token: randomUUID(),
      globalDeadline: this.clock() + globalTimeoutOf(hook) * 1000,
      timer: this.timer(instance, hook.heartbeatTimeout * 1000, () => this.actionTimedOut(instance)),
    };
  }

  private actionTimedOut(instance: InstanceRecord): void {
    if (!instance.action) return;
    this.statsData.lifecycleActionsTimedOut += 1;
    this.resolveAction(instance, instance.action.hook.defaultResult);
  }

  private clearAction(instance: InstanceRecord): void {
    if (!instance.action) return;
    clearTimeout(instance.action.timer);
    instance.timers.delete(instance.action.timer);
    instance.action = undefined;
  }

  private resolveAction(instance: InstanceRecord, result: LifecycleResult): void {
    this.clearAction(instance);
    const group = instance.group;
    if (instance.state === 'Pending:Wait') {
      if (result === 'CONTINUE') {
        instance.state = 'InService';
      } else {
        this.recordTermination(instance, 'launch-abandoned');
        instance.state = 'InService'; // so that beginTermination takes it
        this.beginTermination(instance);
      }
      this.reconcile(group);
    } else if (instance.state === 'Terminating:Wait') {
      void this.proceed(instance);
    }
  }

  /** Terminating:Proceed: stop the software, then the instance is Terminated and leaves the group. */
  private proceed(instance: InstanceRecord): Promise<void> {
    if (instance.state === 'Terminated' || instance.state === 'Terminating:Proceed') return Promise.resolve();
    this.clearAction(instance);
    instance.state = 'Terminating:Proceed';
    for (const t of instance.timers) clearTimeout(t);
    instance.timers.clear();
    const software = instance.software;
    instance.software = undefined;
    const stopped = (software ? software.stop() : Promise.resolve())
      .catch(() => undefined)
      .then(() => {
        instance.state = 'Terminated';
        instance.terminatedAt = this.clock();
        const list = instance.group.instances;
        const at = list.indexOf(instance);
        if (at >= 0) list.splice(at, 1);
      });
    this.stopping.add(stopped);
    void stopped.finally(() => this.stopping.delete(stopped));
    return stopped;
  }

  private pendingAction(input: LifecycleActionInput): InstanceRecord {
    const group = this.group(input.groupName);
    const hookName = required(input.hookName, 'LifecycleHookName');
    if (!group.hooks.has(hookName)) {
      throw validation(`No Lifecycle Hook found with name ${hookName} for group ${group.name}`);
    }
    let instance: InstanceRecord | undefined;
    if (input.token !== undefined) {
      instance = group.instances.find((i) => i.action?.token === input.token);
      if (!instance || instance.action?.hook.name !== hookName) {
        throw validation(`No active Lifecycle Action found with token ${input.token}`);
      }
      return instance;
    }
    const id = required(input.instanceId, 'InstanceId');
    instance = group.instances.find((i) => i.info.instanceId === id);
    if (!instance || instance.action?.hook.name !== hookName) {
      throw validation(`No active Lifecycle Action found with instance ID ${id}`);
    }
    return instance;
  }

  private hookRecord(group: GroupRecord, input: PutHookInput): [string, HookRecord] {
    const name = required(input.name, 'LifecycleHookName');
    checkName(name, 'LifecycleHookName');
    const transition = required(input.transition, 'LifecycleTransition');
    if (transition !== LAUNCHING && transition !== TERMINATING) {
      throw validation(`Invalid Lifecycle Transition: ${transition} for group ${group.name}`);
    }
    const heartbeatTimeout = input.heartbeatTimeout ?? 3600;
    if (!Number.isInteger(heartbeatTimeout) || heartbeatTimeout < 30 || heartbeatTimeout > 7200) {
      throw validation(`The heartbeat timeout must be between 30 and 7200 seconds, got ${heartbeatTimeout}`);
    }
    const defaultResult = input.defaultResult ?? 'ABANDON';
    if (defaultResult !== 'CONTINUE' && defaultResult !== 'ABANDON') {
      throw validation(`DefaultResult must be CONTINUE or ABANDON, got ${defaultResult}`);
    }
    return [
      name,
      {
        name,
        transition,
        heartbeatTimeout,
        defaultResult,
        ...(input.notificationMetadata !== undefined
          ? { notificationMetadata: input.notificationMetadata }
          : {}),
      },
    ];
  }

  private recordTermination(instance: InstanceRecord, cause: TerminationCause, decrement?: boolean): void {
    this.statsData.terminations.push({
      instanceId: instance.info.instanceId,
      groupName: instance.group.name,
      cause,
      ...(decrement !== undefined ? { decrement } : {}),
      wasProtected: instance.protected,
      at: this.clock(),
    });
  }

  private activity(group: GroupRecord, description: string, cause: string): ActivityView {
    return {
      activityId: randomUUID(),
      groupName: group.name,
      groupArn: group.arn,
      description,
      cause,
      startTime: new Date(this.clock()).toISOString(),
      statusCode: 'InProgress',
      progress: 0,
      details: JSON.stringify({ 'Availability Zone': group.availabilityZones[0] }),
    };
  }

  private timer(instance: InstanceRecord, ms: number, run: () => void): NodeJS.Timeout {
    const t = setTimeout(
      () => {
        instance.timers.delete(t);
        if (!this.shuttingDown) run();
      },
      Math.max(0, ms),
    );
    instance.timers.add(t);
    return t;
  }

  private groupView(g: GroupRecord): GroupView {
    return {
      name: g.name,
      arn: g.arn,
      minSize: g.minSize,
      maxSize: g.maxSize,
      desiredCapacity: g.desiredCapacity,
      defaultCooldown: g.defaultCooldown,
      availabilityZones: [...g.availabilityZones],
      healthCheckType: 'EC2',
      createdTime: new Date(g.createdAt).toISOString(),
      ...(g.launchTemplate && !g.mixedInstances ? { launchTemplate: { ...g.launchTemplate } } : {}),
      mixedInstances: g.mixedInstances,
      instances: g.instances.filter((i) => i.state !== 'Terminated').map((i) => this.instanceView(i)),
      tags: g.tags.map((t) => ({ ...t })),
      newInstancesProtectedFromScaleIn: g.newInstancesProtected,
    };
  }

  private instanceView(i: InstanceRecord): InstanceView {
    return {
      instanceId: i.info.instanceId,
      availabilityZone: i.info.availabilityZone,
      lifecycleState: i.state,
      healthStatus: 'Healthy',
      protectedFromScaleIn: i.protected,
      instanceType: i.info.instanceType,
      ...(i.group.launchTemplate ? { launchTemplate: { ...i.group.launchTemplate } } : {}),
    };
  }
}

function hookFor(group: GroupRecord, transition: LifecycleTransition): HookRecord | undefined {
  for (const hook of group.hooks.values()) if (hook.transition === transition) return hook;
  return undefined;
}

function globalTimeoutOf(hook: HookRecord): number {
  return Math.min(hook.heartbeatTimeout * 100, MAX_GLOBAL_TIMEOUT_S);
}

function required<T>(value: T | undefined, name: string): T {
  if (value === undefined || value === null || value === '') {
    throw validation(
      `1 validation error detected: Value null at '${lowerFirst(name)}' failed to satisfy constraint: Member must not be null`,
    );
  }
  return value;
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

function checkName(name: string, field: string): void {
  if (name.length < 1 || name.length > 255) {
    throw validation(
      `1 validation error detected: Value '${name}' at '${lowerFirst(field)}' failed to satisfy constraint`,
    );
  }
}

function checkSize(value: number, field: string): void {
  if (!Number.isInteger(value) || value < 0) {
    throw validation(
      `1 validation error detected: Value '${value}' at '${field}' failed to satisfy constraint: Member must have value greater than or equal to 0`,
    );
  }
}

function checkDesired(desired: number, min: number, max: number, what: string): void {
  checkSize(desired, 'desiredCapacity');
  if (desired < min)
    throw validation(`${what}:${desired} must be between the specified min size:${min} and max size:${max}`);
  if (desired > max)
    throw validation(`${what}:${desired} must be between the specified min size:${min} and max size:${max}`);
}

function matchesTagFilter(tags: TagView[], filter: Ec2Filter): boolean {
  if (filter.name === 'tag-key') return tags.some((t) => filter.values.includes(t.key));
  if (filter.name === 'tag-value') return tags.some((t) => filter.values.includes(t.value));
  if (filter.name.startsWith('tag:')) {
    const key = filter.name.slice(4);
    return tags.some((t) => t.key === key && filter.values.includes(t.value));
  }
  throw validation(`Filter name ${filter.name} is invalid; use tag-key, tag-value or tag:<key>`);
}

function ec2StateOf(i: InstanceRecord): { code: number; name: string } {
  if (i.state === 'Terminated') return { code: 48, name: 'terminated' };
  if (i.state === 'Terminating:Proceed') return { code: 32, name: 'shutting-down' };
  if (!i.booted) return { code: 0, name: 'pending' };
  return { code: 16, name: 'running' };
}

function ec2FieldOf(i: InstanceRecord, name: string): string[] | undefined {
  if (name === 'instance-id') return [i.info.instanceId];
  if (name === 'instance-state-name') return [ec2StateOf(i).name];
  if (name === 'availability-zone') return [i.info.availabilityZone];
  if (name === 'instance-type') return [i.info.instanceType];
  if (name.startsWith('tag:')) {
    const value = i.info.tags[name.slice(4)];
    return value === undefined ? [] : [value];
  }
  return undefined;
}

function paginate<T>(
  items: T[],
  maxRecords: number | undefined,
  nextToken: string | undefined,
  ceiling: number,
): { items: T[]; nextToken?: string } {
  let start = 0;
  if (nextToken !== undefined) {
    start = Number(Buffer.from(nextToken, 'base64url').toString('utf8'));
    if (!Number.isInteger(start) || start < 0) {
      throw new AutoScalingError('InvalidNextToken', 'The token provided is invalid.');
    }
  }
  const size = maxRecords ?? 50;
  if (!Number.isInteger(size) || size < 1 || size > ceiling) {
    throw validation(`MaxRecords must be between 1 and ${ceiling}, got ${size}`);
  }
  const end = start + size;
  return {
    items: items.slice(start, end),
    ...(end < items.length ? { nextToken: Buffer.from(String(end)).toString('base64url') } : {}),
  };
}
