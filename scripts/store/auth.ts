/**
 * SigV4 verification for every request: the Authorization header or a presigned query, with the
 * canonical request built by src/lib/sigv4.ts, the same code the socket signs with. As S3 does, a
 * request that carries an `x-amz-*` header it did not sign is refused: nothing can be added to a link.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import {
  ALGORITHM,
  canonicalHeaderValue,
  canonicalRequest,
  chunkStringToSign,
  credentialScope,
  escapeUri,
  getSigningKey,
  MAX_EXPIRES,
  SERVICE,
  signCanonicalRequest,
  signString,
  UNSIGNED_PAYLOAD,
} from '../../src/lib/sigv4';
import { S3Error, fail } from './errors';

/** Access key id → secret. */
export type KeyRing = ReadonlyMap<string, string>;

export interface RequestParts {
  method: string;
  /** the canonical URI: each path segment decoded and escaped again */
  canonicalPath: string;
  /** decoded query pairs, in the order sent */
  query: Array<[string, string]>;
  /** lower-case name → values in the order sent */
  headers: Map<string, string[]>;
}

export type Payload =
  | { kind: 'unsigned' }
  | { kind: 'sha256'; hex: string }
  | { kind: 'chunked'; signingKey: Buffer; longDate: string; scope: string; seed: string };

export interface Verified {
  accessKeyId: string;
  secretAccessKey: string;
  presigned: boolean;
  payload: Payload;
}

const MAX_SKEW_MS = 15 * 60 * 1000;
const LONG_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const HEX64 = /^[0-9a-f]{64}$/;
const HEX_SIG = /^[0-9a-f]{64}$/;

export function parseLongDate(s: string | undefined): number | undefined {
  const m = s === undefined ? null : LONG_DATE.exec(s);
  if (!m) return undefined;
  const t = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  return Number.isNaN(t) ? undefined : t;
}

export const header = (parts: RequestParts, name: string): string | undefined => parts.headers.get(name)?.join(',');

function queryValue(parts: RequestParts, name: string): string | undefined {
  const found = parts.query.filter(([k]) => k === name);
  if (found.length > 1) fail('InvalidArgument', `${name} is given more than once`);
  return found[0]?.[1];
}

function canonicalQueryOf(pairs: Array<[string, string]>): string {
  return pairs
    .map(([k, v]) => [escapeUri(k), escapeUri(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function sameSignature(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

interface Credential {
  accessKeyId: string;
  shortDate: string;
  region: string;
}

function parseCredential(value: string | undefined): Credential {
  const parts = (value ?? '').split('/');
  if (parts.length !== 5 || !parts[0] || parts[3] !== SERVICE || parts[4] !== 'aws4_request' || !/^\d{8}$/.test(parts[1]) || !parts[2]) {
    fail('AuthorizationHeaderMalformed', 'The authorization header is malformed; the Credential is mal-formed.');
  }
  return { accessKeyId: parts[0], shortDate: parts[1], region: parts[2] };
}

/** Checks the signature of a request (header or presigned); throws the S3 error S3 would answer. */
export function verifyRequest(parts: RequestParts, keys: KeyRing, now = Date.now()): Verified {
  const authorization = header(parts, 'authorization');
  const presigned = parts.query.some(([k]) => k === 'X-Amz-Algorithm');
  if (authorization !== undefined && presigned) fail('InvalidArgument', 'Only one auth mechanism allowed');

  let credential: Credential;
  let signedHeaders: string;
  let signature: string;
  let longDate: string;
  let payloadHash: string;
  let queryForSigning = parts.query;

  if (presigned) {
    if (queryValue(parts, 'X-Amz-Algorithm') !== ALGORITHM) fail('AuthorizationHeaderMalformed', 'Unsupported X-Amz-Algorithm');
    credential = parseCredential(queryValue(parts, 'X-Amz-Credential'));
    signedHeaders = queryValue(parts, 'X-Amz-SignedHeaders') ?? '';
    signature = queryValue(parts, 'X-Amz-Signature') ?? '';
    longDate = queryValue(parts, 'X-Amz-Date') ?? '';
    const expires = queryValue(parts, 'X-Amz-Expires') ?? '';
    const date = parseLongDate(longDate);
    if (date === undefined) fail('AuthorizationHeaderMalformed', 'X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd\'T\'HHmmss\'Z\'"');
    if (!/^\d{1,6}$/.test(expires) || +expires < 1 || +expires > MAX_EXPIRES) {
      fail('AuthorizationHeaderMalformed', `X-Amz-Expires must be an integer from 1 to ${MAX_EXPIRES}`);
    }
    if (now > date! + +expires * 1000) fail('AccessDenied', 'Request has expired');
    if (date! > now + MAX_SKEW_MS) fail('AccessDenied', 'Request is not valid yet');
    queryForSigning = parts.query.filter(([k]) => k !== 'X-Amz-Signature');
    const contentSha = header(parts, 'x-amz-content-sha256');
    payloadHash = contentSha ?? UNSIGNED_PAYLOAD;
  } else if (authorization !== undefined) {
    const m = /^AWS4-HMAC-SHA256 +Credential=([^,\s]+), *SignedHeaders=([^,\s]+), *Signature=([^,\s]+)$/.exec(authorization.trim());
    if (!m) {
      if (/^AWS /.test(authorization)) fail('InvalidRequest', 'Please use AWS4-HMAC-SHA256.');
      fail('AuthorizationHeaderMalformed', 'The authorization header is malformed');
    }
    credential = parseCredential(m![1]);
    signedHeaders = m![2];
    signature = m![3];
    longDate = header(parts, 'x-amz-date') ?? '';
    const date = parseLongDate(longDate);
    if (date === undefined) fail('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
    if (Math.abs(now - date!) > MAX_SKEW_MS) {
      fail('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.');
    }
    const contentSha = header(parts, 'x-amz-content-sha256');
    if (contentSha === undefined) fail('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
    payloadHash = contentSha!;
  } else {
    fail('AccessDenied', 'Access Denied: the request is not signed');
  }

  if (longDate!.slice(0, 8) !== credential!.shortDate) {
    fail('SignatureDoesNotMatch', 'The credential date does not match the request date');
  }
  const secret = keys.get(credential!.accessKeyId);
  if (secret === undefined) fail('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  if (!HEX_SIG.test(signature!)) fail('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');

  // Signed headers: sorted, lower case, host among them; every x-amz-* header sent must be one.
  const names = signedHeaders!.split(';');
  const signedSet = new Set(names);
  if (!signedSet.has('host') || names.some((n, i) => !n || n !== n.toLowerCase() || (i > 0 && names[i - 1] >= n))) {
    fail('AuthorizationHeaderMalformed', 'SignedHeaders must be sorted, lower case, and include host');
  }
  const unsigned = [...parts.headers.keys()].filter((n) => n.startsWith('x-amz-') && !signedSet.has(n));
  if (unsigned.length > 0) {
    fail('AccessDenied', `There were headers present in the request which were not signed: ${unsigned.join(', ')}`);
  }
  const canonicalHeaders = names.map((n) => `${n}:${canonicalHeaderValue(header(parts, n) ?? '')}\n`).join('');

  const scope = credentialScope(credential!.shortDate, credential!.region);
  const signingKey = getSigningKey(secret!, credential!.shortDate, credential!.region);
  const payload = payloadOf(payloadHash!, presigned, { signingKey, longDate: longDate!, scope, seed: signature! });
  const canonical = canonicalRequest(parts.method, parts.canonicalPath, canonicalQueryOf(queryForSigning), canonicalHeaders, signedHeaders!, payloadHash!);
  const expected = signCanonicalRequest(signingKey, longDate!, scope, canonical);
  if (!sameSignature(signature!, expected)) {
    fail('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
  }
  return {
    accessKeyId: credential!.accessKeyId,
    secretAccessKey: secret!,
    presigned,
    payload,
  };
}

/** What the request says of its body; an aws-chunked one carries what its chunk signatures chain from. */
function payloadOf(hash: string, presigned: boolean, chain: Omit<Extract<Payload, { kind: 'chunked' }>, 'kind'>): Payload {
  if (hash === UNSIGNED_PAYLOAD) return { kind: 'unsigned' };
  if (HEX64.test(hash)) return { kind: 'sha256', hex: hash };
  if (hash === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' && !presigned) return { kind: 'chunked', ...chain };
  if (hash.startsWith('STREAMING-')) fail('NotImplemented', `x-amz-content-sha256 ${hash} is not implemented by this store`);
  return fail('InvalidArgument', 'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD or a SHA-256 in hex');
}

/** Signs a POST policy document (base64) as the form's X-Amz-Signature must. */
export function policySignature(secret: string, shortDate: string, region: string, policyBase64: string): string {
  return signString(getSigningKey(secret, shortDate, region), policyBase64);
}

export { parseCredential, sameSignature };

const MAX_CHUNK_LINE = 256;

/**
 * Decodes an aws-chunked body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), checking every chunk's signature
 * against the chain that starts at the request's signature. Data flows on as it arrives; a bad
 * signature or frame fails the stream, so the caller discards what it wrote.
 */
export class ChunkedDecoder extends Transform {
  private buf: Buffer = Buffer.alloc(0);
  private remaining = -1; // bytes of chunk data still to come; -1: a chunk header is next
  private expectCrlf = false;
  private chunkSig = '';
  private hash = createHash('sha256');
  private previous: string;
  private done = false;
  private final = false;

  constructor(private readonly p: Extract<Payload, { kind: 'chunked' }>) {
    super();
    this.previous = p.seed;
  }

  override _transform(data: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
      this.drain();
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    if (!this.done || this.buf.length > 0) cb(new S3Error('IncompleteBody', 'The aws-chunked body ended before its final chunk'));
    else cb();
  }

  private drain(): void {
    for (;;) {
      if (this.done) {
        if (this.buf.length > 0) throw new S3Error('InvalidRequest', 'Data after the final aws-chunked chunk');
        return;
      }
      if (this.expectCrlf) {
        if (this.buf.length < 2) return;
        if (this.buf[0] !== 13 || this.buf[1] !== 10) throw new S3Error('InvalidRequest', 'Malformed aws-chunked body');
        this.buf = this.buf.subarray(2);
        this.expectCrlf = false;
        if (this.final) this.done = true;
        continue;
      }
      if (this.remaining < 0) {
        const eol = this.buf.indexOf('\r\n');
        if (eol < 0) {
          if (this.buf.length > MAX_CHUNK_LINE) throw new S3Error('InvalidRequest', 'Malformed aws-chunked chunk header');
          return;
        }
        const line = this.buf.toString('latin1', 0, eol);
        const m = /^([0-9a-fA-F]{1,8});chunk-signature=([0-9a-f]{64})$/.exec(line);
        if (!m) throw new S3Error('InvalidRequest', 'Malformed aws-chunked chunk header');
        this.buf = this.buf.subarray(eol + 2);
        this.remaining = parseInt(m[1], 16);
        this.chunkSig = m[2];
        this.hash = createHash('sha256');
        this.final = this.remaining === 0;
        if (this.final) this.endChunk();
        continue;
      }
      if (this.buf.length === 0) return;
      const take = Math.min(this.remaining, this.buf.length);
      const piece = this.buf.subarray(0, take);
      this.hash.update(piece);
      this.push(piece);
      this.buf = this.buf.subarray(take);
      this.remaining -= take;
      if (this.remaining === 0) this.endChunk();
    }
  }

  private endChunk(): void {
    const expected = signString(this.p.signingKey, chunkStringToSign(this.p.longDate, this.p.scope, this.previous, this.hash.digest('hex')));
    if (!sameSignature(this.chunkSig, expected)) {
      throw new S3Error('SignatureDoesNotMatch', 'The chunk signature we calculated does not match the signature you provided.');
    }
    this.previous = this.chunkSig;
    this.remaining = -1;
    this.expectCrlf = true;
  }
}
