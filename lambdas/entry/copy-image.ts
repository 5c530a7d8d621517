import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { EC2Client } from '@aws-sdk/client-ec2';
import middy from '@middy/core';
import { makeEc2Client } from '../../adapters/clients';
import { ENV } from '../../infra/definitions';
import { makeLogger } from '../observability';
import { type CopyImageEvent, copyImageToRegion } from '../register/copy-image';

const logger = makeLogger('kiln-register');
const clients = new Map<string, EC2Client>();
const ec2For = (region: string): EC2Client => {
  let client = clients.get(region);
  if (!client) {
    client = makeEc2Client(region, process.env[ENV.ec2Endpoint]);
    clients.set(region, client);
  }
  return client;
};

export const handler = middy<CopyImageEvent>()
  .use(injectLambdaContext(logger))
  .handler(async (event) => copyImageToRegion(ec2For, event));
