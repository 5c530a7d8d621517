import { readFileSync } from 'node:fs';

/** Local-mode settings from the environment, shared by `npm start` and `npm run demo`. */
export function localOptionsFromEnv() {
  const file = process.env.KILN_CONFIG_FILE;
  const config = file ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : undefined;
  const agents = Number(process.env.KILN_AGENTS_PER_POOL ?? '1');
  return {
    ...(config ? { config } : {}),
    agentsPerPool: Number.isInteger(agents) && agents >= 0 ? agents : 1,
  };
}
