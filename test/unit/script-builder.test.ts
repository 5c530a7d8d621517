import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  removeWorkDir,
  runScriptBuild,
  type ScriptBuildRequest,
  type ScriptBuildResult,
} from '../../agent/builders/script';

let workRoot: string;
const workDirs: string[] = [];

beforeAll(async () => {
  workRoot = await mkdtemp(path.join(tmpdir(), 'kiln-script-test-'));
});

afterEach(async () => {
  for (const dir of workDirs.splice(0)) await removeWorkDir(dir);
});

afterAll(async () => {
  await rm(workRoot, { recursive: true, force: true });
});

interface Run {
  result: Promise<ScriptBuildResult>;
  output: () => string;
  outputCalls: () => number;
}

function start(overrides: Partial<ScriptBuildRequest> & Pick<ScriptBuildRequest, 'script'>): Run {
  const chunks: Buffer[] = [];
  const result = runScriptBuild({
    jobId: 'job-123',
    artifact: 'out/image.raw',
    workRoot,
    timeoutMs: 30_000,
    onOutput: (chunk) => chunks.push(chunk),
    ...overrides,
  }).then((r) => {
    workDirs.push(r.workDir);
    return r;
  });
  return { result, output: () => Buffer.concat(chunks).toString('utf8'), outputCalls: () => chunks.length };
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Alive means it exists and is not a zombie (a non-reaping PID 1 keeps dead children as zombies). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

async function readPid(file: string): Promise<number> {
  const pid = Number((await readFile(file, 'utf8')).trim());
  expect(pid).toBeGreaterThan(1);
  return pid;
}

describe('runScriptBuild', () => {
  it('runs the script in a fresh directory named after the job and returns the artifact', async () => {
    const run = start({
      script: 'mkdir -p out\nprintf "image-bytes" > "$KILN_OUTPUT"\necho "built in $PWD"\n',
    });
    const result = await run.result;
    expect(result.outcome).toBe('succeeded');
    if (result.outcome !== 'succeeded') return;
    expect(path.basename(result.workDir)).toMatch(/^kiln-job-123-/);
    expect(path.dirname(result.workDir)).toBe(workRoot);
    expect(result.artifactPath).toBe(path.join(result.workDir, 'out/image.raw'));
    expect(await readFile(result.artifactPath, 'utf8')).toBe('image-bytes');
    expect(run.output()).toContain(`built in ${result.workDir}`);

    const second = await start({ script: 'mkdir -p out; : > out/image.raw' }).result;
    expect(second.workDir).not.toBe(result.workDir);
  });

  it('reports a non-zero exit as failed with the exit code and the log tail', async () => {
    const result = await start({ script: 'echo "compiling"\necho "disk full" >&2\nexit 3\n' }).result;
    expect(result.outcome).toBe('failed');
    if (result.outcome !== 'failed') return;
    expect(result.exitCode).toBe(3);
    expect(result.signal).toBeNull();
    expect(result.reason).toMatch(/exited with code 3/);
    expect(result.reason).toMatch(/output follow/);
    expect(result.logTail).toContain('compiling');
    expect(result.logTail).toContain('disk full');
  });

  it('runs with -e, -u and pipefail', async () => {
    const unset = await start({ script: 'echo "$NOT_DEFINED"' }).result;
    expect(unset.outcome).toBe('failed');
    const pipe = await start({ script: 'false | true\nmkdir -p out; : > out/image.raw' }).result;
    expect(pipe.outcome).toBe('failed');
    if (pipe.outcome === 'failed') expect(pipe.exitCode).toBe(1);
  });

  it('keeps only the last 4 KiB as the log tail', async () => {
    const result = await start({
      script: 'for i in $(seq 1 2000); do echo "line $i"; done\nexit 1',
    }).result;
    if (result.outcome !== 'failed') throw new Error(`unexpected ${result.outcome}`);
    expect(Buffer.byteLength(result.logTail)).toBeLessThanOrEqual(4096);
    expect(Buffer.byteLength(result.logTail)).toBeGreaterThan(4000);
    expect(result.logTail.trimEnd().endsWith('line 2000')).toBe(true);
    expect(result.logTail).not.toContain('line 1\n');
  });

  it('fails a successful exit that left no artifact, naming the expected path', async () => {
    const result = await start({ script: 'echo "forgot the image"' }).result;
    expect(result.outcome).toBe('failed');
    if (result.outcome !== 'failed') return;
    expect(result.exitCode).toBe(0);
    expect(result.reason).toContain(path.join(result.workDir, 'out/image.raw'));
    expect(result.logTail).toContain('forgot the image');
  });

  it('fails an artifact that is a directory or a link out of the working directory', async () => {
    const dir = await start({ script: 'mkdir -p out/image.raw' }).result;
    expect(dir.outcome).toBe('failed');
    if (dir.outcome === 'failed') expect(dir.reason).toMatch(/not a regular file/);

    const secret = path.join(workRoot, 'agent-secret.txt');
    await writeFile(secret, 'agent credentials');
    const linkedDir = await start({
      script: 'ln -s "$SECRET_DIR" out',
      env: { SECRET_DIR: workRoot },
      artifact: 'out/agent-secret.txt',
    }).result;
    expect(linkedDir.outcome).toBe('failed');
    if (linkedDir.outcome === 'failed') expect(linkedDir.reason).toMatch(/outside the working directory/);

    const linkedFile = await start({
      script: 'mkdir out; ln -s "$SECRET" out/image.raw',
      env: { SECRET: secret },
    }).result;
    expect(linkedFile.outcome).toBe('failed');
    if (linkedFile.outcome === 'failed') expect(linkedFile.reason).toMatch(/symbolic link/);
  });

  it("does not pass the agent's environment to the script", async () => {
    process.env.KILN_TEST_FAKE_SECRET = 'hunter2';
    process.env.AWS_SECRET_ACCESS_KEY = 'agent-key';
    try {
      const run = start({
        script: [
          'echo "secret=$(printenv KILN_TEST_FAKE_SECRET || echo unset) aws=$(printenv AWS_SECRET_ACCESS_KEY || echo unset)"',
          'echo "job=$KILN_JOB_ID dir=$KILN_WORK_DIR out=$KILN_OUTPUT home=$HOME recipe=$RECIPE_VAR"',
          'env > env.txt',
          'mkdir -p out; : > "$KILN_OUTPUT"',
        ].join('\n'),
        env: { RECIPE_VAR: 'from-recipe', KILN_JOB_ID: 'spoofed' },
      });
      const result = await run.result;
      expect(result.outcome).toBe('succeeded');
      const out = run.output();
      expect(out).toContain('secret=unset aws=unset');
      expect(out).toContain(
        `job=job-123 dir=${result.workDir} out=${path.join(result.workDir, 'out/image.raw')} home=${result.workDir} recipe=from-recipe`,
      );
      const names = (await readFile(path.join(result.workDir, 'env.txt'), 'utf8'))
        .split('\n')
        .map((line) => line.split('=')[0])
        .filter((name) => name !== '');
      expect(names.some((name) => name?.startsWith('AWS_'))).toBe(false);
      expect(names).not.toContain('KILN_TEST_FAKE_SECRET');
    } finally {
      delete process.env.KILN_TEST_FAKE_SECRET;
      delete process.env.AWS_SECRET_ACCESS_KEY;
    }
  });

  it('streams output while the script is still running', async () => {
    const gateDir = await mkdtemp(path.join(tmpdir(), 'kiln-gate-'));
    const gate = path.join(gateDir, 'gate');
    execFileSync('mkfifo', [gate]);
    try {
      const run = start({
        script:
          'echo "waiting for the gate"\nread -r word < "$GATE"\necho "got $word"\nmkdir -p out; : > out/image.raw',
        env: { GATE: gate },
        timeoutMs: 20_000,
      });
      await waitFor('the first line', () => run.output().includes('waiting for the gate'));
      // The script is blocked on the fifo until this write: the first line cannot have come from exit.
      expect(run.output()).not.toContain('got');
      await writeFile(gate, 'open\n');
      const result = await run.result;
      expect(result.outcome).toBe('succeeded');
      expect(run.output()).toContain('got open');
      expect(run.outputCalls()).toBeGreaterThanOrEqual(2);
    } finally {
      await rm(gateDir, { recursive: true, force: true });
    }
  });

  it('times out, and kills the whole tree including background children', async () => {
    const run = start({
      script: 'echo $$ > leader.pid\nsleep 1000 &\necho $! > child.pid\necho started\nwait\n',
      timeoutMs: 1500,
      killGraceMs: 2000,
    });
    const result = await run.result;
    expect(result.outcome).toBe('timed_out');
    expect(run.output()).toContain('started');
    expect(result.outcome === 'timed_out' && result.logTail).toMatch(/timed out after 1500 ms/);
    const leader = await readPid(path.join(result.workDir, 'leader.pid'));
    const child = await readPid(path.join(result.workDir, 'child.pid'));
    expect(isRunning(leader)).toBe(false);
    expect(isRunning(child)).toBe(false);
  });

  it('cancels on abort, escalating to SIGKILL for processes that ignore SIGTERM', async () => {
    const controller = new AbortController();
    const run = start({
      script: [
        "trap '' TERM",
        '(exec sleep 1000) &',
        'echo $! > stubborn.pid',
        'echo started',
        'while true; do sleep 1; done',
      ].join('\n'),
      signal: controller.signal,
      killGraceMs: 300,
    });
    await waitFor('the script to start', () => run.output().includes('started'));
    const startedAt = Date.now();
    controller.abort();
    const result = await run.result;
    expect(result.outcome).toBe('cancelled');
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    expect(run.output()).toMatch(/SIGKILL/);
    const stubborn = await readPid(path.join(result.workDir, 'stubborn.pid'));
    expect(isRunning(stubborn)).toBe(false);
  });

  it('returns cancelled without running anything when already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const result = await start({ script: 'touch ran', signal: controller.signal }).result;
    expect(result.outcome).toBe('cancelled');
    expect(existsSync(path.join(result.workDir, 'ran'))).toBe(false);
  });

  it('stops processes a successful script left behind', async () => {
    const run = start({
      script: 'sleep 1000 &\necho $! > child.pid\nmkdir -p out; : > out/image.raw',
      killGraceMs: 2000,
    });
    const result = await run.result;
    expect(result.outcome).toBe('succeeded');
    const child = await readPid(path.join(result.workDir, 'child.pid'));
    expect(isRunning(child)).toBe(false);
  });
});

describe('removeWorkDir', () => {
  it('removes a working directory even if the build made parts of it read-only', async () => {
    const result = await runScriptBuild({
      jobId: 'job-ro',
      script: 'mkdir -p locked/deeper; echo x > locked/deeper/file; chmod 500 locked/deeper locked',
      artifact: 'none',
      workRoot,
      timeoutMs: 10_000,
      onOutput: () => {},
    });
    await removeWorkDir(result.workDir);
    expect(existsSync(result.workDir)).toBe(false);
  });

  it('refuses paths it did not create', async () => {
    await expect(removeWorkDir('/')).rejects.toThrow(/not a build working directory/);
    await expect(removeWorkDir('relative/kiln-x')).rejects.toThrow(/not a build working directory/);
  });
});
