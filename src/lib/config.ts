import { z } from 'zod';
import { DEFAULT_MAX_FILE_SIZE, DEFAULT_MULTIPART_EXPIRE_DAYS, DEFAULT_REGION, defaultBucket, MAX_EXPIRE } from './defaults';
import { StorageError } from './errors';

export { DEFAULT_MULTIPART_EXPIRE_DAYS, MAX_EXPIRE };
export const DEFAULT_LINK_EXPIRE = 900;
export const DEFAULT_MAKE_LINKS_EXPIRE = 3600;
export const DEFAULT_TIMEOUT_MS = 5000;
/** S3's largest object, and the default largest multipart upload (5 GiB, S3's largest single PUT). */
export const MAX_OBJECT_SIZE = 5 * 1024 ** 4;
export const DEFAULT_MAX_UPLOAD_SIZE = 5 * 1024 ** 3;

export interface StorageConfig {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /**
   * The identity that signs upload links (PUT and POST), when it is not the main one: an identity that
   * can write but not read (a Ceph RGW subuser with `--access=write`), so that an upload link sent with
   * an unsigned `x-amz-copy-source` cannot copy another object into its key (a copy needs read on its
   * source). Undefined: the main credentials sign every link (stores that refuse unsigned x-amz-*
   * headers: AWS S3, the embedded store).
   */
  upload?: { accessKeyId: string; secretAccessKey: string };
  region: string;
  bucket: string;
  endpoint?: string;
  forcePathStyle: boolean;
  timeoutMs: number;
  /** Link lifetime set by EXPIRE, or undefined for the per-endpoint defaults. */
  expire?: number;
  maxFileSize: number;
  /** MAX_UPLOAD_SIZE: the largest declared size of a multipart upload (bytes). */
  maxUploadSize: number;
  /** MULTIPART_EXPIRE_DAYS: buckets the socket creates abort incomplete uploads after this many days (0: no rule). */
  multipartExpireDays: number;
  /** Content-type patterns (`type/sub` or `type/*`), or undefined for any. */
  allowedContentTypes?: string[];
}

// Syncano hands config values over as strings; an empty string means "not set".
const text = z.preprocess((v) => (v === '' || v === null ? undefined : v), z.string().trim().min(1).optional());
const integer = (min: number, max: number) =>
  z.preprocess(
    (v) => (v === '' || v === null ? undefined : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v),
    z.number().int().min(min).max(max).optional(),
  );
const flag = z.preprocess((v) => {
  if (v === '' || v === null || v === undefined) return undefined;
  if (typeof v === 'string' && /^(true|1|yes)$/i.test(v.trim())) return true;
  if (typeof v === 'string' && /^(false|0|no)$/i.test(v.trim())) return false;
  return v;
}, z.boolean().optional());

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const regionName = text.pipe(z.string().regex(/^[a-z0-9-]{1,32}$/, 'must be a region name like eu-central-1').optional());

const CONTENT_TYPE_PATTERN = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)$/;

const schema = z.object({
  AWS_ACCESS_KEY_ID: text,
  AWS_SECRET_ACCESS_KEY: text,
  AWS_SESSION_TOKEN: text,
  AWS_UPLOAD_ACCESS_KEY_ID: text,
  AWS_UPLOAD_SECRET_ACCESS_KEY: text,
  AWS_REGION: regionName,
  REGION: regionName,
  AWS_BUCKET: text.pipe(z.string().regex(BUCKET_NAME, 'must be an S3 bucket name (3-63 of a-z, 0-9, ".", "-")').optional()),
  AWS_S3_ENDPOINT: text.pipe(
    z
      .string()
      .regex(/^https?:\/\/[^\s/?#]+\/?$/, 'must be an http(s) URL with no path, like http://127.0.0.1:9000')
      .optional(),
  ),
  AWS_S3_FORCE_PATH_STYLE: flag,
  AWS_S3_TIMEOUT_MS: integer(100, 600_000),
  EXPIRE: integer(1, MAX_EXPIRE),
  MAX_FILE_SIZE: integer(1, 5 * 1024 ** 3),
  MAX_UPLOAD_SIZE: integer(1, MAX_OBJECT_SIZE),
  MULTIPART_EXPIRE_DAYS: integer(0, 36_500),
  ALLOWED_CONTENT_TYPES: text,
});

/**
 * Reads ctx.config (SPEC §5). A missing or malformed option is a 500 `not_configured` that names the
 * option, never its value: values can be secrets.
 */
export function parseConfig(raw: unknown, instance: unknown): StorageConfig {
  const parsed = schema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new StorageError('not_configured', `configuration option ${String(issue.path[0])} ${issue.message}`);
  }
  const c = parsed.data;
  // No built-in key pair: the embedded store's is generated per DATA_DIR and handed over by the host.
  for (const option of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] as const) {
    if (!c[option]) throw new StorageError('not_configured', `configuration option ${option} is required`);
  }
  const bucket = c.AWS_BUCKET ?? bucketForInstance(instance);
  const endpoint = c.AWS_S3_ENDPOINT?.replace(/\/$/, '');
  if (Boolean(c.AWS_UPLOAD_ACCESS_KEY_ID) !== Boolean(c.AWS_UPLOAD_SECRET_ACCESS_KEY)) {
    const missing = c.AWS_UPLOAD_ACCESS_KEY_ID ? 'AWS_UPLOAD_SECRET_ACCESS_KEY' : 'AWS_UPLOAD_ACCESS_KEY_ID';
    throw new StorageError('not_configured', `configuration option ${missing} is required with the other AWS_UPLOAD_ option`);
  }
  return {
    accessKeyId: c.AWS_ACCESS_KEY_ID!,
    secretAccessKey: c.AWS_SECRET_ACCESS_KEY!,
    sessionToken: c.AWS_SESSION_TOKEN,
    upload:
      c.AWS_UPLOAD_ACCESS_KEY_ID && c.AWS_UPLOAD_SECRET_ACCESS_KEY
        ? { accessKeyId: c.AWS_UPLOAD_ACCESS_KEY_ID, secretAccessKey: c.AWS_UPLOAD_SECRET_ACCESS_KEY }
        : undefined,
    region: c.AWS_REGION ?? c.REGION ?? DEFAULT_REGION,
    bucket,
    endpoint,
    forcePathStyle: c.AWS_S3_FORCE_PATH_STYLE ?? Boolean(endpoint),
    timeoutMs: c.AWS_S3_TIMEOUT_MS ?? DEFAULT_TIMEOUT_MS,
    expire: c.EXPIRE,
    maxFileSize: c.MAX_FILE_SIZE ?? DEFAULT_MAX_FILE_SIZE,
    maxUploadSize: c.MAX_UPLOAD_SIZE ?? DEFAULT_MAX_UPLOAD_SIZE,
    multipartExpireDays: c.MULTIPART_EXPIRE_DAYS ?? DEFAULT_MULTIPART_EXPIRE_DAYS,
    allowedContentTypes: parseContentTypes(c.ALLOWED_CONTENT_TYPES),
  };
}

function bucketForInstance(instance: unknown): string {
  const name = typeof instance === 'string' ? defaultBucket(instance) : '';
  if (!BUCKET_NAME.test(name)) {
    throw new StorageError('not_configured', 'configuration option AWS_BUCKET is required (no instance name to derive it from)');
  }
  return name;
}

function parseContentTypes(list: string | undefined): string[] | undefined {
  if (!list) return undefined;
  const types = list
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
  const bad = types.find((t) => !CONTENT_TYPE_PATTERN.test(t));
  if (bad !== undefined || types.length === 0) {
    throw new StorageError('not_configured', 'configuration option ALLOWED_CONTENT_TYPES must be a comma list of type/subtype or type/*');
  }
  return types;
}
