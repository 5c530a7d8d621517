import { apiHandlersFromEnv } from '../composition';

export const handler = apiHandlersFromEnv().getJob;
