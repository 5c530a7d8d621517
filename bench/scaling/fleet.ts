import { PRIORITIES, type Priority } from '../../core/job';
import type { PoolScalingState, QueueDepth } from '../../core/scaling';
import { EventQueue } from './events';
import { type Random, stream } from './random';
import type { Trace, TraceJob } from './traces';

/** What the simulated world looks like; every policy runs in the same one. */
export interface ModelParams {
  bootMinSeconds: number;
  bootMaxSeconds: number;
  /** Share of launches whose agent never reports in (the instance itself runs, uselessly). */
  bootFailureRate: number;
  /** Builds per instance. */
  concurrency: number;
  minCapacity: number;
  /** A dead agent's message turns visible again within this long (its visibility/lease). */
  leaseSeconds: number;
  /** The agent extends visibility every heartbeat, so at death 0..heartbeat of it has elapsed. */
  heartbeatSeconds: number;
  /** CloudWatch period of every metric used by a policy. */
  metricPeriodSeconds: number;
  /** How long after its period ends a datapoint becomes visible to alarms and readers. */
  metricDelaySeconds: number;
  /** Give up this long after the last arrival and count what is still running up to then. */
  cutoffSeconds: number;
}

interface SimJob extends TraceJob {
  /** Seconds spent waiting for an agent so far, over all attempts. */
  waited: number;
  waitingSince: number;
  /** Bumped on every start, so a stale completion of a killed attempt is ignored. */
  attempt: number;
  waiting: boolean;
  done: boolean;
}

export interface SimInstance {
  id: string;
  launchedAt: number;
  /** When the group puts it in service (booted). */
  readyAt: number;
  /** False: its agent never reports in, so it takes no job. */
  healthy: boolean;
  inService: boolean;
  live: boolean;
  endedAt: number;
  jobs: SimJob[];
  lastBusyAt: number | undefined;
  protectedFromScaleIn: boolean;
  busySlotSeconds: number;
  /** Start of each running job's current attempt, for busy-time accounting. */
  startedAt: Map<SimJob, number>;
  freeIndex: number;
}

export interface FleetOptions {
  /** Agents set scale-in protection when they claim a job and clear it when idle. */
  protectBusy: boolean;
}

export interface RunResult {
  /** Per job: seconds waited for an agent, over all attempts. */
  waits: number[];
  instanceSeconds: number;
  bootSeconds: number;
  busySeconds: number;
  idleSeconds: number;
  /** Builds killed by a termination. */
  killed: number;
  launches: number;
  /** Launches whose agent never reported in. */
  failedBoots: number;
  /** Instances terminated by the policy to be replaced (desired capacity kept). */
  replaced: number;
  /** Jobs not finished at the cutoff (their waits count up to it). */
  unfinished: number;
  endTime: number;
}

/** A fixed epoch for the Dates handed to decideScale. */
const EPOCH = Date.UTC(2030, 0, 1);
export const simDate = (t: number) => new Date(EPOCH + Math.round(t * 1000));

/**
 * One pool: its SQS queues, its Auto Scaling group and the agents on its instances. Agents long
 * poll, so a visible job starts the moment a slot is free; which free agent gets it is random.
 * The group behaves as documented: raising desired capacity launches, lowering it makes Auto
 * Scaling pick unprotected instances to terminate (modelled as a uniform pick: it knows nothing of
 * builds), and protected instances wait until their protection is cleared.
 */
export class Fleet {
  readonly events = new EventQueue();
  readonly jobs: SimJob[];
  readonly maxCapacity: number;
  readonly minCapacity: number;
  desired: number;
  live: SimInstance[] = [];
  private all: SimInstance[] = [];
  private free: SimInstance[] = [];
  private queues: Record<Priority, SimJob[]> = { high: [], normal: [], low: [] };
  private runningBy: Record<Priority, number> = { high: 0, normal: 0, low: 0 };
  private limboBy: Record<Priority, number> = { high: 0, normal: 0, low: 0 };
  private arrivalsByPeriod: number[] = [];
  private bootRng: Random;
  private failRng: Random;
  private dispatchRng: Random;
  private awsRng: Random;
  private limboRng: Random;
  private killed = 0;
  private replaced = 0;
  private doneCount = 0;
  private stopped = false;

  constructor(
    readonly trace: Trace,
    readonly params: ModelParams,
    readonly options: FleetOptions,
    seed: string,
  ) {
    this.jobs = trace.jobs.map((j) => ({
      ...j,
      waited: 0,
      waitingSince: j.arrival,
      attempt: 0,
      waiting: true,
      done: false,
    }));
    this.maxCapacity = trace.maxCapacity;
    this.minCapacity = params.minCapacity;
    this.desired = params.minCapacity;
    this.bootRng = stream(seed, trace.name, 'boot');
    this.failRng = stream(seed, trace.name, 'boot-failure');
    this.dispatchRng = stream(seed, trace.name, 'dispatch');
    this.awsRng = stream(seed, trace.name, 'aws-termination');
    this.limboRng = stream(seed, trace.name, 'limbo');
  }

  get now(): number {
    return this.events.now;
  }

  get allDone(): boolean {
    return this.doneCount === this.jobs.length;
  }

  get visible(): number {
    return PRIORITIES.reduce((n, p) => n + this.queues[p].length, 0);
  }

  /** Messages received and not deleted: running builds and dead agents' messages. */
  get inFlight(): number {
    return PRIORITIES.reduce((n, p) => n + this.runningBy[p] + this.limboBy[p], 0);
  }

  get running(): number {
    return PRIORITIES.reduce((n, p) => n + this.runningBy[p], 0);
  }

  get inService(): number {
    return this.live.filter((i) => i.inService).length;
  }

  /** Jobs submitted during metric period `k`, as NumberOfMessagesSent would count them. */
  arrivalsIn(period: number): number {
    return this.arrivalsByPeriod[period] ?? 0;
  }

  run(): RunResult {
    for (const job of this.jobs) this.events.at(job.arrival, () => this.arrive(job));
    this.reconcile();
    const lastArrival = this.jobs.reduce((t, j) => Math.max(t, j.arrival), 0);
    const cutoff = lastArrival + this.params.cutoffSeconds;
    while (!this.stopped && this.events.step()) {
      if (this.allDone && this.live.length <= this.minCapacity) break;
      if (this.now >= cutoff) break;
    }
    this.stopped = true;
    return this.result();
  }

  /** For policies: schedule `tick` every `interval` seconds starting at `first`, until the run ends. */
  every(interval: number, first: number, tick: () => void): void {
    const loop = () => {
      if (this.stopped) return;
      tick();
      this.events.after(interval, loop);
    };
    this.events.at(first, loop);
  }

  // --- the Auto Scaling group -------------------------------------------------------------------

  /** SetDesiredCapacity: within [min, max]; a decrease makes Auto Scaling pick instances. */
  setDesired(n: number): void {
    this.desired = Math.min(this.maxCapacity, Math.max(this.minCapacity, n));
    this.reconcile();
  }

  /** TerminateInstanceInAutoScalingGroup on an instance the caller chose. */
  terminate(id: string, decrementDesired: boolean): void {
    const inst = this.live.find((i) => i.id === id);
    if (!inst) throw new Error(`terminate: ${id} is not a live instance`);
    if (decrementDesired) {
      if (this.desired - 1 < this.minCapacity) throw new Error(`terminate ${id}: desired would go below min`);
      this.desired -= 1;
    } else {
      this.replaced += 1;
    }
    this.end(inst);
    this.reconcile();
  }

  private reconcile(): void {
    while (this.live.length < this.desired) this.launch();
    while (this.live.length > this.desired) {
      const candidates = this.live.filter((i) => !i.protectedFromScaleIn);
      if (candidates.length === 0) return;
      this.end(candidates[this.awsRng.index(candidates.length)] as SimInstance);
    }
  }

  private launch(): void {
    const p = this.params;
    const inst: SimInstance = {
      id: `i-${String(this.all.length).padStart(5, '0')}`,
      launchedAt: this.now,
      readyAt: this.now + this.bootRng.uniform(p.bootMinSeconds, p.bootMaxSeconds),
      healthy: this.failRng.next() >= p.bootFailureRate,
      inService: false,
      live: true,
      endedAt: Number.NaN,
      jobs: [],
      lastBusyAt: undefined,
      protectedFromScaleIn: false,
      busySlotSeconds: 0,
      startedAt: new Map(),
      freeIndex: -1,
    };
    this.all.push(inst);
    this.live.push(inst);
    this.events.at(inst.readyAt, () => this.boot(inst));
  }

  private boot(inst: SimInstance): void {
    if (!inst.live) return;
    inst.inService = true;
    if (inst.healthy) this.fill(inst);
  }

  /** Ends an instance; its running builds are killed and their messages reappear later. */
  private end(inst: SimInstance): void {
    inst.live = false;
    inst.endedAt = this.now;
    this.live.splice(this.live.indexOf(inst), 1);
    this.unfree(inst);
    for (const job of inst.jobs) {
      inst.busySlotSeconds += this.now - (inst.startedAt.get(job) ?? this.now);
      this.killed += 1;
      this.runningBy[job.priority] -= 1;
      this.limboBy[job.priority] += 1;
      job.waitingSince = this.now;
      job.waiting = true;
      const p = this.params;
      const invisibleFor = p.leaseSeconds - this.limboRng.uniform(0, p.heartbeatSeconds);
      this.events.after(invisibleFor, () => {
        this.limboBy[job.priority] -= 1;
        this.enqueue(job);
      });
    }
    inst.jobs = [];
    inst.startedAt.clear();
  }

  // --- queues and agents ------------------------------------------------------------------------

  private arrive(job: SimJob): void {
    const period = Math.floor(this.now / this.params.metricPeriodSeconds);
    this.arrivalsByPeriod[period] = (this.arrivalsByPeriod[period] ?? 0) + 1;
    this.enqueue(job);
  }

  private enqueue(job: SimJob): void {
    if (this.free.length > 0) {
      const inst = this.free[this.dispatchRng.index(this.free.length)] as SimInstance;
      this.start(inst, job);
      return;
    }
    this.queues[job.priority].push(job);
  }

  /** An agent with free slots takes queued jobs, highest class first. */
  private fill(inst: SimInstance): void {
    while (inst.jobs.length < this.params.concurrency) {
      const queue = PRIORITIES.map((p) => this.queues[p]).find((q) => q.length > 0);
      const job = queue?.shift();
      if (!job) break;
      this.start(inst, job);
    }
    if (inst.jobs.length < this.params.concurrency) this.makeFree(inst);
    else this.unfree(inst);
  }

  private start(inst: SimInstance, job: SimJob): void {
    job.waited += this.now - job.waitingSince;
    job.waiting = false;
    job.attempt += 1;
    const attempt = job.attempt;
    inst.jobs.push(job);
    inst.startedAt.set(job, this.now);
    inst.lastBusyAt = this.now;
    if (this.options.protectBusy) inst.protectedFromScaleIn = true;
    this.runningBy[job.priority] += 1;
    if (inst.jobs.length >= this.params.concurrency) this.unfree(inst);
    this.events.after(job.build, () => {
      if (job.attempt === attempt && inst.live) this.finish(inst, job);
    });
  }

  private finish(inst: SimInstance, job: SimJob): void {
    inst.jobs.splice(inst.jobs.indexOf(job), 1);
    inst.busySlotSeconds += this.now - (inst.startedAt.get(job) ?? this.now);
    inst.startedAt.delete(job);
    inst.lastBusyAt = this.now;
    this.runningBy[job.priority] -= 1;
    job.done = true;
    this.doneCount += 1;
    this.fill(inst);
    if (this.options.protectBusy && inst.jobs.length === 0 && inst.protectedFromScaleIn) {
      inst.protectedFromScaleIn = false;
      // Auto Scaling finishes a scale-in it could not do while every instance was protected.
      this.reconcile();
    }
  }

  private makeFree(inst: SimInstance): void {
    if (inst.freeIndex >= 0) return;
    inst.freeIndex = this.free.length;
    this.free.push(inst);
  }

  private unfree(inst: SimInstance): void {
    if (inst.freeIndex < 0) return;
    const last = this.free.pop() as SimInstance;
    if (last !== inst) {
      this.free[inst.freeIndex] = last;
      last.freeIndex = inst.freeIndex;
    }
    inst.freeIndex = -1;
  }

  // --- what a scaler sees -----------------------------------------------------------------------

  /**
   * The state Kiln's scaler reads each loop: queue attributes (fresh), the jobs table's running
   * count, the group's instances with what their agents report, and the arrivals metric.
   */
  observe(arrivals?: PoolScalingState['arrivals']): PoolScalingState {
    const queues = {} as Record<Priority, QueueDepth>;
    for (const p of PRIORITIES) {
      queues[p] = { visible: this.queues[p].length, inFlight: this.runningBy[p] + this.limboBy[p] };
    }
    const now = this.now;
    return {
      queues,
      runningJobs: this.running,
      instances: this.live.map((i) => ({
        id: i.id,
        state: i.inService ? 'in-service' : 'pending',
        launchedAt: simDate(i.launchedAt),
        busySlots: i.jobs.length,
        ...(i.jobs.length > 0 ? { lastBusyAt: simDate(now) } : {}),
        ...(i.jobs.length === 0 && i.lastBusyAt !== undefined ? { lastBusyAt: simDate(i.lastBusyAt) } : {}),
        protectedFromScaleIn: i.protectedFromScaleIn,
        ...(i.inService && i.healthy ? { lastHeartbeatAt: simDate(now) } : {}),
      })),
      desiredCapacity: this.desired,
      ...(arrivals ? { arrivals } : {}),
    };
  }

  private result(): RunResult {
    const end = this.now;
    let instanceSeconds = 0;
    let bootSeconds = 0;
    let busySeconds = 0;
    for (const inst of this.all) {
      if (inst.live) {
        for (const job of inst.jobs) inst.busySlotSeconds += end - (inst.startedAt.get(job) ?? end);
      }
      const until = inst.live ? end : inst.endedAt;
      instanceSeconds += until - inst.launchedAt;
      // An instance whose agent never reported in is overhead for its whole life.
      bootSeconds += (inst.healthy ? Math.min(inst.readyAt, until) : until) - inst.launchedAt;
      busySeconds += inst.busySlotSeconds / this.params.concurrency;
    }
    return {
      waits: this.jobs.map((j) => j.waited + (j.waiting ? end - j.waitingSince : 0)),
      instanceSeconds,
      bootSeconds,
      busySeconds,
      idleSeconds: instanceSeconds - bootSeconds - busySeconds,
      killed: this.killed,
      launches: this.all.length,
      failedBoots: this.all.filter((i) => !i.healthy).length,
      replaced: this.replaced,
      unfinished: this.jobs.length - this.doneCount,
      endTime: end,
    };
  }
}
