import { fileURLToPath } from 'node:url';

/** The repository root: Lambda entries, the agent entry and the lock file are resolved from it. */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
