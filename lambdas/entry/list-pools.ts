import { apiHandlersFromEnv } from '../composition';

export const handler = apiHandlersFromEnv().listPools;
