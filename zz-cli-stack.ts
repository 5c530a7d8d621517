import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { startLocalStack } from '/work/main/local/stack';

const dir = mkdtempSync(join(tmpdir(), 'kiln-cli-'));
const stack = await startLocalStack({ stateDir: dir, agentsPerPool: 0, port: 0 });
const sim = stack.registration!.ec2;
sim.seedImage('us-east-1', { name: 'kiln-old', createdAt: Date.now() - 20 * 86400000, tags: { 'kiln:deployment': 'kiln', 'kiln:build-type': 'scratch', 'kiln:job-id': 'nojob' }, snapshotTags: { 'kiln:deployment': 'kiln' } });
sim.seedImage('us-east-1', { name: 'kiln-foreign', createdAt: Date.now() - 20 * 86400000 });
try {
  for (const args of [['--dry-run'], ['--dry-run', '--now', '2000-01-01T00:00:00Z'], []]) {
    try {
      const out = execFileSync('npx', ['tsx', '/work/main/local/retention.ts', '--state', join(dir, 'local.json'), ...args], { cwd: '/work/main', encoding: 'utf8', env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'ERROR' }, stdio: ['ignore', 'pipe', 'pipe'] });
      console.log(`$ retention ${args.join(' ')}\n${out}`);
    } catch (e) { const x = e as { status: number; stdout: string; stderr: string }; console.log('FAILED', x.status, JSON.stringify(x.stdout), x.stderr.slice(-3000)); }
  }
  console.log('images left', sim.images('us-east-1').map((i) => i.name));
} finally {
  await stack.stop();
}
