/** Reading a Query-protocol request: its form-encoded body and the region of its SigV4 credential scope. */
import type { IncomingMessage } from 'node:http';

export const MAX_BODY_BYTES = 1024 * 1024;

export const MISSING_CREDENTIAL_SCOPE =
  'The request must contain a SigV4 Authorization header whose credential scope names the region.';

/** The body as UTF-8; past `maxBytes` it throws `tooLarge()`. */
export async function readBody(
  req: IncomingMessage,
  tooLarge: () => Error,
  maxBytes = MAX_BODY_BYTES,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.byteLength;
    if (size > maxBytes) throw tooLarge();
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const SCOPE_WITH_PREFIX = /Credential=[^/\s,]+\/\d{8}\/([a-z0-9-]+)\/[a-z0-9-]+\/aws4_request/;
const SCOPE = /(?:Credential=)?[^/\s,=]+\/\d{8}\/([a-z0-9-]+)\/[a-z0-9-]+\/aws4_request/;

/**
 * `Credential=AKID/20240101/eu-west-1/ec2/aws4_request` → `eu-west-1`, from an Authorization
 * header or (without `requirePrefix`) a bare `X-Amz-Credential` value.
 */
export function credentialRegion(credential: string, { requirePrefix = false } = {}): string | undefined {
  return (requirePrefix ? SCOPE_WITH_PREFIX : SCOPE).exec(credential)?.[1];
}
