/** The store's S3 errors: one table of codes and statuses (S3 API reference, "Error responses"). */
import { xmlEscape } from './xml';

const STATUS = {
  AccessDenied: 403,
  AuthorizationHeaderMalformed: 400,
  BadDigest: 400,
  BucketAlreadyOwnedByYou: 409,
  BucketNotEmpty: 409,
  EntityTooLarge: 400,
  EntityTooSmall: 400,
  IncompleteBody: 400,
  InternalError: 500,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketName: 400,
  InvalidDigest: 400,
  InvalidPart: 400,
  InvalidPartOrder: 400,
  InvalidRange: 416,
  InvalidRequest: 400,
  KeyTooLongError: 400,
  MalformedPOSTRequest: 400,
  MalformedXML: 400,
  MaxMessageLengthExceeded: 400,
  MethodNotAllowed: 405,
  MissingContentLength: 411,
  MissingSecurityHeader: 400,
  NoSuchBucket: 404,
  NoSuchCORSConfiguration: 404,
  NoSuchKey: 404,
  NoSuchLifecycleConfiguration: 404,
  NoSuchUpload: 404,
  NotImplemented: 501,
  NotModified: 304,
  PreconditionFailed: 412,
  RequestTimeout: 400,
  RequestTimeTooSkewed: 403,
  SignatureDoesNotMatch: 403,
  SlowDown: 503,
  XAmzContentSHA256Mismatch: 400,
} as const;

export type S3ErrorCode = keyof typeof STATUS;

export class S3Error extends Error {
  readonly status: number;
  /** headers the error answer carries besides its XML (InvalidRange: Content-Range) */
  extra?: Record<string, string>;
  constructor(
    readonly code: S3ErrorCode,
    message: string,
  ) {
    super(message);
    this.status = STATUS[code];
  }
}

export const fail = (code: S3ErrorCode, message: string): never => {
  throw new S3Error(code, message);
};

/** The error document. It names no key: an error answer to a refused link says nothing of what it pointed at. */
export function errorXml(err: S3Error, requestId: string): string {
  return '<?xml version="1.0" encoding="UTF-8"?>\n' + `<Error><Code>${err.code}</Code><Message>${xmlEscape(err.message)}</Message><RequestId>${requestId}</RequestId></Error>`;
}

/** An error that is ours, not the caller's; its cause goes to the log, never into the answer. */
export const internalError = (): S3Error => new S3Error('InternalError', 'We encountered an internal error. Please try again.');
