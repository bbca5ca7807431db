import { ZodError } from 'zod';

/** The error codes of SPEC §4, each with its HTTP status. */
export const STATUS = {
  invalid_argument: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  payload_too_large: 413,
  unsupported_media_type: 415,
  not_configured: 500,
  internal: 500,
  storage_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof STATUS;

/** An error the caller is meant to see: its message is safe to answer with. */
export class StorageError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StorageError';
  }

  get status(): number {
    return STATUS[this.code];
  }

  toJSON(): { message: string; code: ErrorCode } {
    return { message: this.message, code: this.code };
  }
}

export const invalidArgument = (message: string) => new StorageError('invalid_argument', message);

/** The HTTP status of an AWS SDK error, if it carries one. */
export function httpStatus(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

/** S3 error names that mean "there is no such object". */
const MISSING = new Set(['NoSuchKey', 'NotFound', 'NoSuchBucket']);

export function isMissingObject(err: unknown): boolean {
  return MISSING.has((err as { name?: string } | undefined)?.name ?? '') || httpStatus(err) === 404;
}

/**
 * Turns anything thrown into an answer. S3 failures become 503 with a message that names only the
 * S3 error code: SDK messages can carry the endpoint, the key or credential fragments.
 */
export function toStorageError(err: unknown): StorageError {
  if (err instanceof StorageError) return err;
  if (err instanceof ZodError) return invalidArgument(describeZodError(err));
  const e = err as { name?: string; $metadata?: unknown; code?: string };
  // A store may hold keys to tighter limits than S3's 1024 bytes (the embedded one keeps files).
  if (e?.name === 'KeyTooLongError') return invalidArgument('the store refused this name as too long');
  if (e && typeof e === 'object' && ('$metadata' in e || isNetworkError(e))) {
    const reason = typeof e.name === 'string' && /^[A-Za-z]{1,64}$/.test(e.name) ? ` (${e.name})` : '';
    return new StorageError('storage_unavailable', `storage is unavailable or failing${reason}`);
  }
  return new StorageError('internal', 'internal error');
}

function isNetworkError(e: { name?: string; code?: string }): boolean {
  return (
    e.name === 'TimeoutError' ||
    e.name === 'AbortError' ||
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ERR_SOCKET)/.test(e.code ?? '')
  );
}

export function describeZodError(err: ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((issue) => (issue.path.length ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
}
