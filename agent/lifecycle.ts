/**
 * Watches the instance for the two ways it can be taken away: a spot interruption notice and the
 * Auto Scaling group's termination (the instance enters Terminating:Wait on the termination
 * lifecycle hook). On either, the agent stops taking work and hands its running jobs back at once
 * (a hand-back is not a failed attempt); on termination it then completes the lifecycle action
 * with CONTINUE so the group proceeds without waiting for the hook's timeout.
 *
 * Both signals are read from the instance metadata service (IMDSv2):
 * `/latest/meta-data/spot/instance-action` (404 until a notice) and
 * `/latest/meta-data/autoscaling/target-lifecycle-state` (`Terminated` once terminating).
 */

export type LifecycleResult = 'CONTINUE' | 'ABANDON';
export type LifecycleNotice = 'terminating' | 'spot-interruption';

export interface SpotNotice {
  action: string;
  time?: string;
}

/** The parts of the instance metadata the watcher reads. */
export interface InstanceMetadata {
  /** `InService`, `Terminated`, …; undefined where the service has no such entry. */
  targetLifecycleState(): Promise<string | undefined>;
  /** undefined until the instance gets an interruption notice. */
  spotInstanceAction(): Promise<SpotNotice | undefined>;
}

/** Lifecycle actions on the agent's own instance and the group's termination hook. */
export interface LifecycleActions {
  complete(result: LifecycleResult): Promise<void>;
  heartbeat(): Promise<void>;
}

export interface LifecycleLog {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
}

export interface LifecycleWatcherOptions {
  metadata: InstanceMetadata;
  actions: LifecycleActions;
  /** Stops taking work and hands running jobs back (Agent.stop); resolves when every slot is idle. */
  handBack: (notice: LifecycleNotice) => Promise<void>;
  pollMs: number;
  /** While a hand-back runs on a terminating instance, the hook's timeout is pushed back this often. @default 60000 */
  heartbeatMs?: number;
  /** Attempts at CompleteLifecycleAction before giving up (the hook's default result then applies). @default 5 */
  completeAttempts?: number;
  log?: LifecycleLog;
}

const NO_LOG: LifecycleLog = { info: () => undefined, warn: () => undefined };

export class LifecycleWatcher {
  private terminating = false;
  private spotNotice: SpotNotice | undefined;
  private handingBack: Promise<void> | undefined;
  private handedBack = false;
  private completed = false;
  private completeFailures = 0;
  private timer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private polling: Promise<void> | undefined;
  private readonly log: LifecycleLog;
  private resolveDone!: () => void;
  /** Resolves once the lifecycle action is completed (or given up on), or the watcher is stopped. */
  readonly done = new Promise<void>((resolve) => {
    this.resolveDone = resolve;
  });

  constructor(private readonly options: LifecycleWatcherOptions) {
    this.log = options.log ?? NO_LOG;
  }

  /** What the watcher has seen so far. */
  get notice(): LifecycleNotice | undefined {
    if (this.terminating) return 'terminating';
    return this.spotNotice ? 'spot-interruption' : undefined;
  }

  /** Polls until the lifecycle action is completed or `stop` is called. */
  start(): void {
    if (this.stopped || this.timer || this.polling) return;
    const loop = () => {
      this.timer = undefined;
      this.polling = this.poll()
        .then(() => undefined)
        .finally(() => {
          this.polling = undefined;
          if (!this.stopped && !this.finished) this.timer = setTimeout(loop, this.options.pollMs);
        });
    };
    loop();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.resolveDone();
  }

  /** One round: read the metadata, start the hand-back on a notice, complete the action when due. */
  async poll(): Promise<LifecycleNotice | undefined> {
    const { metadata } = this.options;
    const [state, spot] = await Promise.all([
      metadata.targetLifecycleState().catch((error: unknown) => {
        this.log.warn('reading target-lifecycle-state failed', { error: String(error) });
        return undefined;
      }),
      this.spotNotice
        ? Promise.resolve(this.spotNotice)
        : metadata.spotInstanceAction().catch((error: unknown) => {
            this.log.warn('reading spot/instance-action failed', { error: String(error) });
            return undefined;
          }),
    ]);
    if (state === 'Terminated' && !this.terminating) {
      this.terminating = true;
      this.log.info('instance is terminating: handing jobs back', { targetLifecycleState: state });
    }
    if (spot && !this.spotNotice) {
      this.spotNotice = spot;
      this.log.info('spot interruption notice: handing jobs back', { ...spot });
    }
    const notice = this.notice;
    if (notice && !this.handingBack) this.beginHandBack(notice);
    if (this.terminating && this.heartbeatTimer === undefined && !this.handedBack) this.startHeartbeats();
    if (this.terminating && this.handedBack && !this.finished) await this.complete();
    return notice;
  }

  private get finished(): boolean {
    return this.completed || this.completeFailures >= (this.options.completeAttempts ?? 5);
  }

  private beginHandBack(notice: LifecycleNotice): void {
    this.handingBack = this.options.handBack(notice).then(
      () => undefined,
      (error: unknown) => this.log.warn('handing jobs back failed', { error: String(error) }),
    );
    void this.handingBack.then(async () => {
      this.handedBack = true;
      if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
      // Completing at once rather than on the next poll: the group is waiting on us.
      await this.polling;
      if (this.terminating && !this.finished && !this.stopped) await this.complete();
    });
  }

  private startHeartbeats(): void {
    this.heartbeatTimer = setInterval(() => {
      this.options.actions.heartbeat().catch((error: unknown) => {
        this.log.warn('lifecycle heartbeat failed', { error: String(error) });
      });
    }, this.options.heartbeatMs ?? 60_000);
  }

  private completing: Promise<void> | undefined;

  private complete(): Promise<void> {
    this.completing ??= (async () => {
      try {
        await this.options.actions.complete('CONTINUE');
        this.completed = true;
        this.log.info('lifecycle action completed: CONTINUE');
      } catch (error) {
        this.completeFailures += 1;
        this.log.warn('completing the lifecycle action failed', {
          error: String(error),
          attempt: this.completeFailures,
        });
      } finally {
        this.completing = undefined;
      }
      if (this.finished) {
        if (this.timer) clearTimeout(this.timer);
        this.timer = undefined;
        this.resolveDone();
      }
    })();
    return this.completing;
  }
}

export interface Imdsv2Options {
  /** @default http://169.254.169.254 */
  endpoint?: string;
  /** Per request. @default 2000 */
  timeoutMs?: number;
  /** Session token lifetime requested. @default 21600 (the maximum) */
  tokenTtlSeconds?: number;
  fetch?: typeof fetch;
}

/** A small IMDSv2 client: a session token from PUT /latest/api/token, then GETs carrying it. */
export class Imdsv2 implements InstanceMetadata {
  private readonly endpoint: string;
  private readonly fetchFn: typeof fetch;
  private token: { value: string; renewAt: number } | undefined;

  constructor(private readonly options: Imdsv2Options = {}) {
    this.endpoint = (options.endpoint ?? 'http://169.254.169.254').replace(/\/+$/, '');
    this.fetchFn = options.fetch ?? fetch;
  }

  async targetLifecycleState(): Promise<string | undefined> {
    return (await this.get('autoscaling/target-lifecycle-state'))?.trim();
  }

  async spotInstanceAction(): Promise<SpotNotice | undefined> {
    const body = await this.get('spot/instance-action');
    if (body === undefined) return undefined;
    const parsed = JSON.parse(body) as { action?: unknown; time?: unknown };
    return {
      action: String(parsed.action ?? 'terminate'),
      ...(typeof parsed.time === 'string' ? { time: parsed.time } : {}),
    };
  }

  async instanceId(): Promise<string | undefined> {
    return (await this.get('instance-id'))?.trim();
  }

  /** The body of a metadata path, or undefined on 404. */
  async get(path: string): Promise<string | undefined> {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const token = await this.sessionToken(attempt > 0);
      const res = await this.request(`/latest/meta-data/${path}`, {
        headers: { 'X-aws-ec2-metadata-token': token },
      });
      if (res.status === 404) return undefined;
      if (res.status === 401) continue; // the token expired: get a new one, once
      if (!res.ok) throw new Error(`IMDS GET ${path}: HTTP ${res.status}`);
      return res.text();
    }
    throw new Error(`IMDS GET ${path}: the session token was refused`);
  }

  private async sessionToken(renew: boolean): Promise<string> {
    if (!renew && this.token && Date.now() < this.token.renewAt) return this.token.value;
    const ttl = this.options.tokenTtlSeconds ?? 21_600;
    const res = await this.request('/latest/api/token', {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': String(ttl) },
    });
    if (!res.ok) throw new Error(`IMDS token: HTTP ${res.status}`);
    const value = (await res.text()).trim();
    this.token = { value, renewAt: Date.now() + ttl * 800 };
    return value;
  }

  private request(path: string, init: RequestInit): Promise<Response> {
    return this.fetchFn(`${this.endpoint}${path}`, {
      ...init,
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 2000),
    });
  }
}
