/**
 * AWS Signature V4 for S3: the pieces the socket's presigner (src/lib/presign.ts) signs with and the
 * embedded store (scripts/store/auth.ts) verifies with. One module, so that what is signed and what
 * is checked cannot drift apart.
 */
import * as nodeCrypto from 'node:crypto';
import { createHash, createHmac } from 'node:crypto';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
export const SERVICE = 's3';
export const MAX_EXPIRES = 604800;
/** sha256 of the empty string, hex */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** RFC 3986 escaping as `@smithy/core`'s escapeUri: everything but A-Za-z0-9-._~ */
const HEX_ESCAPES: Record<string, string> = { '!': '%21', "'": '%27', '(': '%28', ')': '%29', '*': '%2A' };
const hexEncode = (c: string): string => HEX_ESCAPES[c];
const RESERVED_BY_ENCODE_URI_COMPONENT = /[!'()*]/g;
const HAS_RESERVED = /[!'()*]/;
export function escapeUri(s: string): string {
  const e = encodeURIComponent(s);
  return HAS_RESERVED.test(e) ? e.replace(RESERVED_BY_ENCODE_URI_COMPONENT, hexEncode) : e;
}

/** escapeUri of each `/`-separated segment, slashes kept (a literal "%2F" in the key was already turned into "%252F") */
const NEEDS_NO_ESCAPING = /^[A-Za-z0-9\-._~/]*$/;
export function escapeKey(key: string): string {
  if (NEEDS_NO_ESCAPING.test(key)) return key;
  return escapeUri(key).replace(/%2F/g, '/');
}

/** hex SHA-256 of a UTF-8 string or of bytes: the one-shot crypto.hash (Node >= 20.12) where there is one */
export const sha256Hex: (data: string | Buffer) => string =
  typeof nodeCrypto.hash === 'function'
    ? (data) => nodeCrypto.hash('sha256', data, 'hex')
    : (data) => (typeof data === 'string' ? createHash('sha256').update(data, 'utf8') : createHash('sha256').update(data)).digest('hex');

/** canonical header value: line breaks and runs of blanks become one space, ends trimmed */
export function canonicalHeaderValue(v: string): string {
  return v.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '');
}

// ---- signing key cache: per (secret, yyyymmdd, region), bounded, oldest out first ----
const SIGNING_KEY_CACHE_MAX = 64;
const signingKeys = new Map<string, Buffer>();

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

export function getSigningKey(secretAccessKey: string, shortDate: string, region: string): Buffer {
  const cacheKey = `${shortDate}\n${region}\n${secretAccessKey}`;
  let key = signingKeys.get(cacheKey);
  if (key === undefined) {
    key = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, shortDate), region), SERVICE), 'aws4_request');
    if (signingKeys.size >= SIGNING_KEY_CACHE_MAX) {
      const oldest = signingKeys.keys().next().value;
      if (oldest !== undefined) signingKeys.delete(oldest);
    }
    signingKeys.set(cacheKey, key);
  }
  return key;
}

/** For tests and benchmarks. */
export function clearSigningKeyCache(): void {
  signingKeys.clear();
}
export function signingKeyCacheSize(): number {
  return signingKeys.size;
}

/** The credential scope after the access key: "<yyyymmdd>/<region>/s3/aws4_request". */
export function credentialScope(shortDate: string, region: string): string {
  return `${shortDate}/${region}/${SERVICE}/aws4_request`;
}

/** The whole canonical request, as SigV4 defines it. */
export function canonicalRequest(
  method: string,
  path: string,
  canonicalQuery: string,
  canonicalHeaders: string,
  signedHeaders: string,
  payloadHash: string,
): string {
  return `${method}\n${path}\n${canonicalQuery}\n${canonicalHeaders}\n${signedHeaders}\n${payloadHash}`;
}

/** Hex signature of a canonical request under a derived signing key. */
export function signCanonicalRequest(signingKey: Buffer, longDate: string, scope: string, canonical: string): string {
  return signString(signingKey, `${ALGORITHM}\n${longDate}\n${scope}\n${sha256Hex(canonical)}`);
}

/** Hex HMAC-SHA256 of any string to sign (a canonical request's, a POST policy, a chunk's). */
export function signString(signingKey: Buffer, stringToSign: string): string {
  return createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest('hex');
}

/** The string to sign of one aws-chunked chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD). */
export function chunkStringToSign(longDate: string, scope: string, previousSignature: string, chunkSha256Hex: string): string {
  return `${ALGORITHM}-PAYLOAD\n${longDate}\n${scope}\n${previousSignature}\n${EMPTY_SHA256}\n${chunkSha256Hex}`;
}

/** "20240506T070809Z" from a Date */
export function longDateOf(d: Date): string {
  const s = d.toISOString();
  return s.slice(0, 4) + s.slice(5, 7) + s.slice(8, 13) + s.slice(14, 16) + s.slice(17, 19) + 'Z';
}
