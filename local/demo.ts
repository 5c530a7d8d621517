/**
 * `npm run demo`: starts the local stack, submits every job in examples/, shows progress, prints
 * each result, checks each artifact's sha256 through its presigned URL, and exits 0 only if all
 * succeeded.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FINISHED, KilnClient } from './client';

process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

const out = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  const { startLocalStack } = await import('./stack');
  const { localOptionsFromEnv } = await import('./main-options');
  const examplesDir = resolve(import.meta.dirname, '..', 'examples');
  const examples = readdirSync(examplesDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ file: f, body: JSON.parse(readFileSync(join(examplesDir, f), 'utf8')) as unknown }));

  out('starting the local stack (emulators, API, agents)...');
  const stack = await startLocalStack({
    ...localOptionsFromEnv(),
    port: Number(process.env.KILN_PORT ?? '0'),
    stateDir: resolve('.kiln'),
    log: out,
  });
  try {
    const client = new KilnClient(stack.state.apiUrl, stack.state.tokens.alice);
    out(`API at ${stack.state.apiUrl}; submitting ${examples.length} example job(s)`);
    const jobs: Array<{ file: string; jobId: string }> = [];
    for (const example of examples) {
      const res = await client.submit(example.body);
      if (res.status !== 202) {
        out(`  ${example.file}: submit refused ${res.status} ${JSON.stringify(res.body)}`);
        return 1;
      }
      jobs.push({ file: example.file, jobId: res.body.jobId });
      out(`  ${example.file} → ${res.body.jobId} QUEUED`);
    }

    const seen = new Map<string, string>();
    const deadline = Date.now() + 5 * 60_000;
    while (Date.now() < deadline) {
      let pending = 0;
      for (const { file, jobId } of jobs) {
        const { body } = await client.get(jobId);
        if (seen.get(jobId) !== body.status) {
          seen.set(jobId, body.status);
          out(`  [${new Date().toISOString().slice(11, 23)}] ${file}: ${body.status}`);
        }
        if (!FINISHED.includes(body.status)) pending += 1;
      }
      if (pending === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }

    out('\nresults:');
    let ok = true;
    for (const { file, jobId } of jobs) {
      const { body: job } = await client.get(jobId);
      if (job.status !== 'SUCCEEDED' || !job.artifact) {
        ok = false;
        out(
          `  ${file}  ${jobId}  ${job.status}  ${job.error ? `${job.error.code}: ${job.error.message}` : ''}`,
        );
        continue;
      }
      const link = await client.artifact(jobId);
      const download = await fetch(link.body.url);
      const bytes = Buffer.from(await download.arrayBuffer());
      const digest = createHash('sha256').update(bytes).digest('hex');
      const verified =
        download.ok && digest === job.artifact.sha256 && bytes.length === job.artifact.sizeBytes;
      if (!verified) ok = false;
      out(`  ${file}  ${jobId}  ${job.status}`);
      out(`      artifact ${job.artifact.uri}`);
      out(`      sha256   ${job.artifact.sha256}  size ${job.artifact.sizeBytes} bytes`);
      out(`      download via presigned URL: sha256 ${verified ? 'matches' : `MISMATCH (${digest})`}`);
      const images =
        (job.images as Array<{ region: string; imageId: string; snapshotId: string }> | undefined) ?? [];
      for (const image of images)
        out(`      image    ${image.imageId} (${image.snapshotId}) in ${image.region}`);
      const logs = await client.logs(jobId);
      const tail = logs.body.text.trimEnd().split('\n').slice(-2).join(' | ');
      out(`      log tail: ${tail}`);
    }
    out(ok ? '\nall examples SUCCEEDED' : '\nsome examples did not succeed');
    return ok ? 0 : 1;
  } finally {
    await stack.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`demo failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
