import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KilnError } from '../../core/errors';

export interface ScriptBuildRequest {
  jobId: string;
  script: string;
  /** Where the script leaves the image, relative to the working directory. */
  artifact: string;
  env?: Record<string, string>;
  /** Parent of the per-run working directories. */
  workRoot: string;
  timeoutMs: number;
  /** Aborting it cancels the build. */
  signal?: AbortSignal;
  /** Receives stdout and stderr, interleaved, as the bytes arrive. */
  onOutput: (chunk: Buffer) => void;
  /** Time between SIGTERM and SIGKILL to the build's process group; default 5000. */
  killGraceMs?: number;
}

export type ScriptBuildResult =
  | { outcome: 'succeeded'; artifactPath: string; workDir: string }
  | {
      outcome: 'failed';
      exitCode: number | null;
      signal: string | null;
      logTail: string;
      reason: string;
      workDir: string;
    }
  | { outcome: 'timed_out' | 'cancelled'; logTail: string; workDir: string };

/** Name of the script file inside the working directory, kept so a person can rerun the build. */
export const SCRIPT_FILE_NAME = '.kiln-build.sh';

const WORK_DIR_PREFIX = 'kiln-';
const LOG_TAIL_BYTES = 4096;
const DEFAULT_KILL_GRACE_MS = 5000;
/** How long to wait for the group to vanish after SIGKILL (processes in uninterruptible I/O linger). */
const AFTER_KILL_WAIT_MS = 10_000;
/** Once the group is gone the pipes close at once, unless a process escaped the group holding them. */
const STDIO_DRAIN_MS = 2000;
const POLL_MS = 25;
const MAX_TIMER_MS = 2 ** 31 - 1;
const SAFE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Runs a recipe script in a fresh working directory as its own process group, streaming its output.
 * Never throws for a build that merely fails: the outcome says how it ended. Throws only when the
 * agent itself cannot prepare the run (e.g. the work root is not writable).
 */
export async function runScriptBuild(req: ScriptBuildRequest): Promise<ScriptBuildResult> {
  const killGraceMs = req.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  await mkdir(req.workRoot, { recursive: true });
  const workDir = await mkdtemp(
    path.join(path.resolve(req.workRoot), `${WORK_DIR_PREFIX}${safeName(req.jobId)}-`),
  );
  const artifactPath = path.resolve(workDir, req.artifact);
  const tail = new TailBuffer(LOG_TAIL_BYTES);

  if (req.signal?.aborted) return { outcome: 'cancelled', logTail: '', workDir };

  // The script goes into a file rather than `bash -c`: a person debugging on the instance finds the
  // exact script next to what it produced and can rerun it, and bash's errors then name
  // `.kiln-build.sh: line N` instead of an anonymous `-c` string.
  const scriptPath = path.join(workDir, SCRIPT_FILE_NAME);
  await writeFile(scriptPath, req.script, { mode: 0o600 });

  const emit = (chunk: Buffer): void => {
    tail.push(chunk);
    try {
      req.onOutput(chunk);
    } catch {
      // A failing log sink must not take the build (or the agent, from inside a stream handler) down;
      // the tail still carries the end of the output to the job record.
    }
  };
  const note = (message: string): void => emit(Buffer.from(`\n[kiln] ${message}\n`));

  let child: ChildProcess;
  try {
    child = spawn('bash', ['-e', '-u', '-o', 'pipefail', scriptPath], {
      cwd: workDir,
      // The agent's environment holds its credentials; the build sees only what is listed here.
      env: buildEnv(req, workDir, artifactPath),
      stdio: ['ignore', 'pipe', 'pipe'],
      // setsid(): the build leads its own process group (and session), so the whole tree, including
      // what it backgrounds, can be signalled at once and no terminal signal reaches the agent.
      detached: true,
    });
  } catch (error) {
    return failedToStart(error, tail, workDir);
  }

  const stdioClosed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  child.stdout?.on('data', emit);
  child.stderr?.on('data', emit);

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null } | { error: Error }>(
    (resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.on('error', (error) => {
        // 'error' also reports failed kill() calls; only a child that never got a pid did not start.
        if (child.pid === undefined) resolve({ error });
      });
    },
  );

  // A holder, not a `let`: it is written from callbacks, which TypeScript's narrowing does not see.
  const stop: { reason: 'timed_out' | 'cancelled' | null } = { reason: null };
  let wakeStop: () => void = () => {};
  const stopRequested = new Promise<null>((resolve) => {
    wakeStop = () => resolve(null);
  });
  const requestStop = (reason: 'timed_out' | 'cancelled'): void => {
    stop.reason ??= reason;
    wakeStop();
  };
  // setTimeout fires at once for delays past 2^31-1 ms; such a limit means "no limit" in practice.
  const timer = setTimeout(() => requestStop('timed_out'), Math.min(req.timeoutMs, MAX_TIMER_MS));
  const onAbort = (): void => requestStop('cancelled');
  req.signal?.addEventListener('abort', onAbort, { once: true });

  try {
    const first = await Promise.race([exited, stopRequested]);
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', onAbort);

    if (first !== null && 'error' in first) return failedToStart(first.error, tail, workDir);
    const pgid = child.pid;
    if (pgid === undefined) return failedToStart(new Error('the child has no pid'), tail, workDir);

    if (first === null) {
      const reason = stop.reason ?? 'cancelled';
      note(
        reason === 'timed_out'
          ? `timed out after ${req.timeoutMs} ms; stopping the build`
          : 'cancelled; stopping the build',
      );
      // If the group outlived even SIGKILL, the leader may not have exited either: do not wait on it.
      if (await stopGroup(pgid, killGraceMs, note)) await exited;
      await drainStdio(child, stdioClosed);
      return { outcome: reason, logTail: tail.text(), workDir };
    }

    if (await groupAlive(pgid)) {
      // The script is done but left children behind (daemons, forgotten `&` jobs): they must not
      // outlive the build on a shared agent.
      note('the script exited but left processes running; stopping them');
      await stopGroup(pgid, killGraceMs, note);
    }
    await drainStdio(child, stdioClosed);

    const { code, signal } = first;
    if (code !== 0) {
      const how = signal !== null ? `was killed by signal ${signal}` : `exited with code ${code}`;
      return {
        outcome: 'failed',
        exitCode: code,
        signal,
        logTail: tail.text(),
        reason: `build script ${how}; the last ${LOG_TAIL_BYTES} bytes of its output follow`,
        workDir,
      };
    }
    const problem = await checkArtifact(workDir, artifactPath);
    if (problem !== null) {
      return {
        outcome: 'failed',
        exitCode: 0,
        signal: null,
        logTail: tail.text(),
        reason: `build script exited with code 0 but ${problem}; the last ${LOG_TAIL_BYTES} bytes of its output follow`,
        workDir,
      };
    }
    return { outcome: 'succeeded', artifactPath, workDir };
  } finally {
    clearTimeout(timer);
    req.signal?.removeEventListener('abort', onAbort);
  }
}

/** Deletes a working directory made by runScriptBuild, even if the build left it read-only. */
export async function removeWorkDir(workDir: string): Promise<void> {
  // A wrong path here would delete something that is not ours: accept only what runScriptBuild makes.
  if (!path.isAbsolute(workDir) || !path.basename(workDir).startsWith(WORK_DIR_PREFIX)) {
    throw new KilnError(
      'INTERNAL',
      `refusing to remove ${JSON.stringify(workDir)}: not a build working directory`,
    );
  }
  try {
    await rm(workDir, { recursive: true, force: true, maxRetries: 3 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw error;
    await makeDirsWritable(workDir);
    await rm(workDir, { recursive: true, force: true, maxRetries: 3 });
  }
}

function buildEnv(req: ScriptBuildRequest, workDir: string, artifactPath: string): NodeJS.ProcessEnv {
  return {
    PATH: SAFE_PATH,
    // HOME in the work dir keeps tools away from the agent user's dotfiles (~/.aws among them).
    HOME: workDir,
    LANG: 'C.UTF-8',
    ...req.env,
    // Last, so a recipe cannot point them elsewhere.
    KILN_JOB_ID: req.jobId,
    KILN_WORK_DIR: workDir,
    KILN_OUTPUT: artifactPath,
  };
}

function safeName(jobId: string): string {
  const cleaned = jobId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
  return cleaned === '' ? 'job' : cleaned;
}

function failedToStart(error: unknown, tail: TailBuffer, workDir: string): ScriptBuildResult {
  const message = error instanceof Error ? error.message : String(error);
  return {
    outcome: 'failed',
    exitCode: null,
    signal: null,
    logTail: tail.text(),
    reason: `could not start the build script (bash): ${message}; the log tail follows`,
    workDir,
  };
}

/** Returns why the artifact is unusable, or null if it is a regular file inside the work dir. */
async function checkArtifact(workDir: string, artifactPath: string): Promise<string | null> {
  const expected = `the artifact ${artifactPath} `;
  const relative = path.relative(workDir, artifactPath);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
    return `${expected}is outside the working directory`;
  }
  let info: Awaited<ReturnType<typeof lstat>>;
  try {
    info = await lstat(artifactPath);
  } catch {
    return `${expected}does not exist`;
  }
  if (info.isSymbolicLink()) return `${expected}is a symbolic link, not a regular file`;
  if (!info.isFile()) return `${expected}is not a regular file`;
  // A symlinked directory on the way could point the upload at the agent's own files.
  const [realDir, realFile] = await Promise.all([realpath(workDir), realpath(artifactPath)]);
  if (!realFile.startsWith(`${realDir}${path.sep}`)) {
    return `${expected}resolves outside the working directory (to ${realFile})`;
  }
  return null;
}

/** SIGTERM to the group, SIGKILL after the grace period; true once no member is left. */
async function stopGroup(pgid: number, graceMs: number, note: (message: string) => void): Promise<boolean> {
  signalGroup(pgid, 'SIGTERM');
  if (await waitGroupGone(pgid, graceMs)) return true;
  note(`processes still running ${graceMs} ms after SIGTERM; sending SIGKILL`);
  signalGroup(pgid, 'SIGKILL');
  if (await waitGroupGone(pgid, AFTER_KILL_WAIT_MS)) return true;
  note(
    `process group ${pgid} still has members ${AFTER_KILL_WAIT_MS} ms after SIGKILL (uninterruptible I/O?)`,
  );
  return false;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

async function waitGroupGone(pgid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await groupAlive(pgid))) return true;
    if (Date.now() >= deadline) return false;
    await delay(POLL_MS);
  }
}

/**
 * True while the group has a member that is not a zombie. kill(-pgid, 0) alone is not enough:
 * children reparented to a PID 1 that does not reap (common in containers) stay as zombies in the
 * group forever, although they are dead.
 */
async function groupAlive(pgid: number): Promise<boolean> {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = await readFile(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Fields after the parenthesised command name (which may itself contain spaces or parens).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    if (Number(fields[2]) === pgid && state !== 'Z' && state !== 'X') return true;
  }
  return false;
}

async function drainStdio(child: ChildProcess, closed: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    closed.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), STDIO_DRAIN_MS);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    // Something outside the group (it called setsid itself) still holds the pipes; stop reading.
    child.stdout?.destroy();
    child.stderr?.destroy();
  }
}

async function makeDirsWritable(dir: string): Promise<void> {
  await chmod(dir, 0o700).catch(() => {});
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (entry.isDirectory()) await makeDirsWritable(path.join(dir, entry.name));
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Keeps the last `limit` bytes written, without holding the whole log. */
class TailBuffer {
  private chunks: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.chunks.length > 1 && this.bytes - (this.chunks[0]?.length ?? 0) >= this.limit) {
      this.bytes -= this.chunks.shift()?.length ?? 0;
    }
  }

  text(): string {
    let buf = Buffer.concat(this.chunks);
    if (buf.length > this.limit) buf = buf.subarray(buf.length - this.limit);
    // Skip UTF-8 continuation bytes so the cut does not start with a broken character.
    let start = 0;
    while (start < buf.length && start < 3 && ((buf[start] ?? 0) & 0xc0) === 0x80) start += 1;
    return buf.subarray(start).toString('utf8');
  }
}
