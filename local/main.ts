/**
 * `npm start`: the whole pipeline on this machine, on 127.0.0.1, until Ctrl-C.
 * Settings: KILN_PORT (default 8787), KILN_AGENTS_PER_POOL (default 1), KILN_CONFIG_FILE (JSON).
 */
import { resolve } from 'node:path';
import { isKilnError } from '../core/errors';

process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

async function main(): Promise<void> {
  const { startLocalStack } = await import('./stack');
  const { localOptionsFromEnv } = await import('./main-options');
  const port = Number(process.env.KILN_PORT ?? '8787');
  const stateDir = resolve('.kiln');
  const stack = await startLocalStack({
    ...localOptionsFromEnv(),
    port,
    stateDir,
    log: (line) => process.stdout.write(`${line}\n`),
  });
  const { state } = stack;
  process.stdout.write(
    [
      `Kiln local stack is up: ${state.apiUrl}`,
      `  state:     ${stateDir}/local.json (bearer tokens for ${Object.keys(state.tokens).join(', ')}; endpoints)`,
      stack.autoscaling
        ? `  agents:    autoscaled from 0 by the scaler (logs in ${stateDir}/agents/)`
        : `  agents:    ${stack.fleet
            .list()
            .map((a) => a.agentId)
            .join(', ')} (logs in ${stateDir}/agents/)`,
      `  try:       curl -s -H "Authorization: Bearer ${state.tokens.alice}" ${state.apiUrl}/jobs`,
      'Ctrl-C stops it.',
      '',
    ].join('\n'),
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping: agents hand their jobs back...\n');
    stack.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`stop failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`kiln: ${isKilnError(error) ? error.message : (error as Error).stack}\n`);
  process.exit(1);
});
