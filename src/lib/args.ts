/** The argument shapes the endpoints share (zod). Query-string callers send every value as a string. */
import { Readable } from 'node:stream';
import { z } from 'zod';
import { type DecodedFile, isDecodedFile } from './base64';
import { MAX_EXPIRE } from './config';
import { MAX_MEDIA_TYPE, MEDIA_TYPE } from './media-type';

const fromQueryInteger = (v: unknown) => (typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v);
const fromQueryBoolean = (v: unknown) => (v === 'true' ? true : v === 'false' ? false : v);

/** A name is checked by the name rules (names.ts) where the key is built; here only its type. */
export const name = z.string({ error: 'must be a string' });

/**
 * A raw upload's body as the standalone host hands it over: a stream with the request's Content-Type
 * and Content-Length (undefined when chunked). JSON and forms cannot make one.
 */
export interface FileStream extends Readable {
  readonly contentType?: string;
  readonly contentLength?: number;
}

/**
 * A base64 upload's bytes (or a base64 data: URL), decoded and checked in base64.ts; from the
 * standalone host, also that text already decoded (a DecodedFile) or the raw body as a FileStream (on
 * the Syncano platform `file` is always a string).
 */
export const file = z.union([z.string(), z.custom<DecodedFile>(isDecodedFile), z.custom<FileStream>((v) => v instanceof Readable)], {
  error: 'must be a base64 string',
});

export const expiresIn = z.preprocess(
  fromQueryInteger,
  z.number({ error: 'must be a whole number of seconds' }).int().min(1).max(MAX_EXPIRE).optional(),
);

export const size = z.preprocess(fromQueryInteger, z.number({ error: 'must be a number of bytes' }).int().min(0).optional());

export const flag = z.preprocess(fromQueryBoolean, z.boolean({ error: 'must be true or false' }).optional());

/** `download`: true for the file's own name, or the name the browser should save it as. */
export const download = z.preprocess(
  fromQueryBoolean,
  z.union([z.boolean(), z.string().min(1).max(255)], { error: 'must be true, false or a file name' }).optional(),
);

export const method = z.preprocess(
  (v) => (typeof v === 'string' ? v.toUpperCase() : v),
  z.enum(['PUT', 'POST'], { error: 'must be PUT or POST' }).default('PUT'),
);

/** A media type such as `image/png` (the rule: media-type.ts). */
export const contentType = z
  .string({ error: 'must be a string' })
  .max(MAX_MEDIA_TYPE)
  .regex(MEDIA_TYPE, 'must be a media type like image/png')
  .optional();

/** 1..max names, or one name as a string. */
export const nameList = (max: number) =>
  z.union([z.array(z.unknown()).min(1).max(max), name.transform((n) => [n])], {
    error: `must be a name or an array of 1 to ${max} names`,
  });

/** A multipart upload's declared total size (bytes); its upper bound is MAX_UPLOAD_SIZE (413, in multipart.ts). */
export const uploadSize = z.preprocess(
  fromQueryInteger,
  z.number({ error: 'must be a whole number of bytes' }).int({ error: 'must be a whole number of bytes' }).min(1, { error: 'must be at least 1 byte' }),
);

/** Bytes per part; S3's bounds (5 MiB..5 GiB, at most 10,000 parts) are checked with the size, in multipart.ts. */
export const partSize = z.preprocess(
  fromQueryInteger,
  z.number({ error: 'must be a whole number of bytes' }).int({ error: 'must be a whole number of bytes' }).optional(),
);

/** The upload id multipart-start answered with (checked, HMAC and key, in multipart.ts). */
export const uploadId = z.string({ error: 'must be the uploadId multipart-start answered with' }).min(1).max(8192);

/** Part numbers 1..10000 (a query-string caller may send "1,2,3"). */
export const partNumbers = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').map((n) => fromQueryInteger(n)) : v),
  z
    .array(z.number({ error: 'must be part numbers' }).int().min(1).max(10_000), { error: 'must be an array of part numbers' })
    .min(1)
    .max(10_000)
    .optional(),
);
