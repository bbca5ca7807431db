/**
 * Defaults that the socket and the host share (SPEC §5). No imports: the host reads them at start
 * without loading the socket's modules.
 */

export const DEFAULT_MAX_FILE_SIZE = 52_428_800;
export const DEFAULT_REGION = 'eu-central-1';
/** The longest a link lives, in seconds: seven days, SigV4's limit on a presigned URL. */
export const MAX_EXPIRE = 604_800;
/** MULTIPART_EXPIRE_DAYS: a new bucket's rule aborts incomplete multipart uploads after this many days. */
export const DEFAULT_MULTIPART_EXPIRE_DAYS = 7;

/** The bucket of an instance without AWS_BUCKET. */
export function defaultBucket(instance: string): string {
  return `${instance.toLowerCase()}-bucket`;
}
