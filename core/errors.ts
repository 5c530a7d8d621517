/**
 * One error hierarchy for the whole project. Every error carries a stable `code`; the HTTP status
 * for a code is decided here and nowhere else.
 */
export const ERROR_CODES = [
  'VALIDATION_FAILED',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'CONFLICT',
  'IDEMPOTENCY_KEY_REUSED',
  'INVALID_TRANSITION',
  'PAYLOAD_TOO_LARGE',
  'THROTTLED',
  'LEASE_LOST',
  'CONFIG_INVALID',
  'BUILD_FAILED',
  'BUILD_TIMED_OUT',
  'UPLOAD_FAILED',
  'REGISTER_FAILED',
  'AGENT_LOST',
  'INTERNAL',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

const HTTP_STATUS: Record<ErrorCode, number> = {
  VALIDATION_FAILED: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  IDEMPOTENCY_KEY_REUSED: 409,
  INVALID_TRANSITION: 409,
  PAYLOAD_TOO_LARGE: 413,
  THROTTLED: 429,
  LEASE_LOST: 409,
  CONFIG_INVALID: 500,
  BUILD_FAILED: 500,
  BUILD_TIMED_OUT: 500,
  UPLOAD_FAILED: 500,
  REGISTER_FAILED: 500,
  AGENT_LOST: 500,
  INTERNAL: 500,
};

export function httpStatusOf(code: ErrorCode): number {
  return HTTP_STATUS[code];
}

export interface KilnErrorOptions {
  cause?: unknown;
  /** Machine-readable detail for the client, e.g. the list of schema issues. */
  details?: unknown;
}

export class KilnError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: KilnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details;
  }

  get httpStatus(): number {
    return httpStatusOf(this.code);
  }
}

export class ValidationError extends KilnError {
  constructor(message: string, options?: KilnErrorOptions) {
    super('VALIDATION_FAILED', message, options);
  }
}

export class UnauthenticatedError extends KilnError {
  constructor(message = 'missing or invalid credentials', options?: KilnErrorOptions) {
    super('UNAUTHENTICATED', message, options);
  }
}

export class NotFoundError extends KilnError {
  constructor(message: string, options?: KilnErrorOptions) {
    super('NOT_FOUND', message, options);
  }
}

export class ConflictError extends KilnError {
  constructor(message: string, options?: KilnErrorOptions) {
    super('CONFLICT', message, options);
  }
}

export class IdempotencyKeyReusedError extends KilnError {
  constructor(message: string, options?: KilnErrorOptions) {
    super('IDEMPOTENCY_KEY_REUSED', message, options);
  }
}

export class PayloadTooLargeError extends KilnError {
  constructor(message: string, options?: KilnErrorOptions) {
    super('PAYLOAD_TOO_LARGE', message, options);
  }
}

export class InvalidTransitionError extends KilnError {
  constructor(message: string, options?: KilnErrorOptions) {
    super('INVALID_TRANSITION', message, options);
  }
}

/** A compare-and-set on a job failed because another writer changed it first. */
export class LeaseLostError extends KilnError {
  constructor(message: string, options?: KilnErrorOptions) {
    super('LEASE_LOST', message, options);
  }
}

export class ConfigError extends KilnError {
  constructor(problems: readonly string[]) {
    super('CONFIG_INVALID', `invalid configuration:\n  - ${problems.join('\n  - ')}`, { details: problems });
  }
}

export function isKilnError(error: unknown): error is KilnError {
  return error instanceof KilnError;
}
