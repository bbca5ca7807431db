/**
 * The one error the client throws. `status` and `code` are the socket's (SPEC §4: invalid_argument,
 * unauthorized, forbidden, not_found, payload_too_large, unsupported_media_type, storage_unavailable,
 * not_configured; the host adds method_not_allowed, conflict, internal, timeout). The client's own:
 * `network_error` (status 0: no answer), `canceled` (status 0: the task was canceled or its signal
 * aborted), `upload_failed` (the store refused a part or a PUT; `status` is the store's),
 * `file_changed` (status 0: a file path's file was rewritten while it was being uploaded).
 */
export type StorageErrorCode =
  | 'invalid_argument'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'storage_unavailable'
  | 'not_configured'
  | 'method_not_allowed'
  | 'conflict'
  | 'internal'
  | 'timeout'
  | 'network_error'
  | 'canceled'
  | 'upload_failed'
  | 'file_changed'
  | (string & {});

export class StorageApiError extends Error {
  override readonly name = 'StorageApiError';
  readonly status: number;
  readonly code: StorageErrorCode;
  /** the endpoint that answered (`user-read`, …), or `store` for a PUT to a link */
  readonly endpoint?: string;
  constructor(message: string, status: number, code: StorageErrorCode, endpoint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
    this.code = code;
    this.endpoint = endpoint;
  }
}

export function isStorageApiError(e: unknown): e is StorageApiError {
  return e instanceof StorageApiError;
}

/** The store's answer to a refused PUT: its XML `<Code>` and `<Message>`, when it sent them. */
export function s3ErrorOf(text: string): { code?: string; message?: string } {
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
  return { code, message };
}

/** A 403 the store gives for a link past its time (S3: AccessDenied "Request has expired"). */
export function isExpiredLink(status: number, text: string): boolean {
  return status === 403 && /expired/i.test(text);
}

export function canceledError(reason?: unknown): StorageApiError {
  return new StorageApiError('upload canceled', 0, 'canceled', undefined, { cause: reason });
}
