import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const REPO_ROOT = resolve(import.meta.dirname, '..');
const AGENT_ENTRY = join(REPO_ROOT, 'agent', 'main.ts');

export interface AgentProcess {
  readonly agentId: string;
  readonly pool: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
  readonly logFile: string;
}

export interface LocalFleetOptions {
  /** Environment every agent gets (settings, endpoints, credentials). */
  env: NodeJS.ProcessEnv;
  logDir: string;
  workRoot: string;
}

/**
 * Real agent processes, one per simulated instance: the same `agent/main.ts` an EC2 instance
 * runs, started through tsx so local mode needs no build step.
 */
export class LocalFleet {
  private readonly agents = new Map<string, AgentProcess>();
  private counter = 0;

  constructor(private readonly options: LocalFleetOptions) {
    mkdirSync(options.logDir, { recursive: true });
    mkdirSync(options.workRoot, { recursive: true });
  }

  list(pool?: string): AgentProcess[] {
    return [...this.agents.values()].filter((a) => pool === undefined || a.pool === pool);
  }

  /**
   * Starts an agent for `pool`. The Auto Scaling simulator passes the instance id as the agent id
   * and the instance's own settings (its group, endpoints) as extra environment.
   */
  spawn(pool: string, options: { agentId?: string; env?: NodeJS.ProcessEnv } = {}): AgentProcess {
    this.counter += 1;
    const agentId = options.agentId ?? `local-${pool}-${this.counter}`;
    if (this.agents.has(agentId)) throw new Error(`agent ${agentId} is already running`);
    const logFile = join(this.options.logDir, `${agentId}.log`);
    const log = createWriteStream(logFile, { flags: 'a' });
    const child = spawn(process.execPath, ['--import', 'tsx', AGENT_ENTRY], {
      cwd: REPO_ROOT,
      env: {
        ...this.options.env,
        ...options.env,
        KILN_POOL: pool,
        KILN_AGENT_ID: agentId,
        KILN_WORK_DIR: this.options.workRoot,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    const exited = new Promise<number | string>((resolveExit) => {
      child.once('exit', (code, signal) => {
        this.agents.delete(agentId);
        log.end();
        resolveExit(code ?? signal ?? 'unknown');
      });
    });
    const agent: AgentProcess = { agentId, pool, child, exited, logFile };
    this.agents.set(agentId, agent);
    return agent;
  }

  /** Sends `signal`; SIGTERM makes the agent hand its jobs back, SIGKILL simulates a crash. */
  async kill(
    agentId: string,
    signal: NodeJS.Signals = 'SIGTERM',
    deadlineMs = 15_000,
  ): Promise<number | string> {
    const agent = this.agents.get(agentId);
    if (!agent) return 'gone';
    agent.child.kill(signal);
    const timer = setTimeout(() => agent.child.kill('SIGKILL'), deadlineMs);
    try {
      return await agent.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.list().map((a) => this.kill(a.agentId, 'SIGTERM')));
  }
}
