import type { Logger } from '@aws-lambda-powertools/logger';
import type middy from '@middy/core';
import type { APIGatewayProxyEventV2WithIAMAuthorizer, APIGatewayProxyResultV2 } from 'aws-lambda';
import { isKilnError, PayloadTooLargeError, UnauthenticatedError, ValidationError } from '../../core/errors';
import type { Caller } from './service';

export type ApiEvent = APIGatewayProxyEventV2WithIAMAuthorizer;
export type ApiResult = APIGatewayProxyResultV2;

const JSON_HEADERS = { 'content-type': 'application/json' } as const;

export function json(statusCode: number, body: unknown): ApiResult {
  return { statusCode, headers: JSON_HEADERS, body: JSON.stringify(body) };
}

/** The caller's principal as API Gateway's IAM authorizer reports it. */
export function callerOf(event: ApiEvent): Caller {
  const principal = event.requestContext?.authorizer?.iam?.userArn;
  if (!principal) throw new UnauthenticatedError('request carries no IAM principal');
  return { principal };
}

export function pathId(event: ApiEvent): string {
  const id = event.pathParameters?.id;
  if (!id || !/^j-[0-9a-f]{32}$/.test(id)) throw new ValidationError(`job id: "${id ?? ''}" is not a job id`);
  return id;
}

/** Maps every error to `{error:{code,message}}` with the status its code stands for. */
export function httpErrors(logger: Logger): middy.MiddlewareObj<ApiEvent, ApiResult> {
  return {
    onError: async (request) => {
      const error = request.error;
      if (isKilnError(error)) {
        if (error.httpStatus >= 500) logger.error('request failed', { error });
        else logger.info('request refused', { code: error.code, message: error.message });
        const body: { code: string; message: string; details?: unknown } = {
          code: error.code,
          message: error.message,
        };
        if (error.details !== undefined && error.httpStatus < 500) body.details = error.details;
        request.response = json(error.httpStatus, { error: body });
        return;
      }
      logger.error('unexpected error', { error: error as Error });
      request.response = json(500, {
        error: { code: 'INTERNAL', message: 'internal error; the request id is in the logs' },
      });
    },
  };
}

/** Decodes and parses a JSON body, refusing oversized (413) and malformed (400) ones. */
export function parseJsonBody(event: ApiEvent, maxBytes: number): unknown {
  const raw = event.body ?? '';
  const bytes = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  if (bytes.length > maxBytes) {
    throw new PayloadTooLargeError(`request body is ${bytes.length} bytes; the limit is ${maxBytes}`);
  }
  if (bytes.length === 0) throw new ValidationError('request body is empty; send a JSON job');
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (error) {
    throw new ValidationError(`request body is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

export function header(event: ApiEvent, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(event.headers ?? {})) if (k.toLowerCase() === wanted) return v;
  return undefined;
}
