import { readFileSync } from 'node:fs';

/**
 * Local-mode settings from the environment, shared by `npm start` and `npm run demo`. Without
 * KILN_AGENTS_PER_POOL the fleet starts at 0 agents and the scaler grows it on demand, as in AWS;
 * with it, that many agents per pool run for the whole session.
 */
export function localOptionsFromEnv() {
  const file = process.env.KILN_CONFIG_FILE;
  const config = file ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : undefined;
  const raw = process.env.KILN_AGENTS_PER_POOL;
  const agents = raw === undefined || raw === '' ? undefined : Number(raw);
  if (agents !== undefined && !(Number.isInteger(agents) && agents >= 0)) {
    throw new Error(`KILN_AGENTS_PER_POOL must be a whole number, got "${raw}"`);
  }
  return {
    ...(config ? { config } : {}),
    ...(agents !== undefined ? { agentsPerPool: agents } : {}),
  };
}
