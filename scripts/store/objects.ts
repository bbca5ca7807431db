/** Object operations: PutObject, GetObject, HeadObject, DeleteObject, ListObjects(V2). One function each. */
import fs from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { escapeKey } from '../../src/lib/sigv4';
import { header, type RequestParts, type Verified } from './auth';
import { bodyOf, discard, expectationsOf, MAX_PUT_SIZE, receive } from './body';
import { openObject, storedOf, type Bucket, type ObjectMeta } from './disk';
import { S3Error, fail } from './errors';
import { emptyReply, httpDate, isoDate, xmlReply, type Reply } from './reply';
import { S3_NS, xmlEscape } from './xml';

/** The x-amz-* request headers PutObject understands; any other is refused, never ignored. */
const PUT_AMZ_HEADERS = new Set([
  'x-amz-content-sha256',
  'x-amz-date',
  'x-amz-decoded-content-length',
  'x-amz-checksum-crc32',
  'x-amz-checksum-crc32c',
  'x-amz-checksum-crc64nvme',
  'x-amz-checksum-sha1',
  'x-amz-checksum-sha256',
  'x-amz-sdk-checksum-algorithm',
  'x-amz-trailer',
  'x-amz-user-agent',
  'x-amz-security-token',
]);
const READ_AMZ_HEADERS = new Set(['x-amz-content-sha256', 'x-amz-date', 'x-amz-user-agent', 'x-amz-security-token', 'x-amz-checksum-mode']);
export const MAX_KEY_BYTES = 1024;
const MAX_METADATA_BYTES = 2048;

/** What an HTTP header value may hold (as node:http checks it): tab, visible ASCII and bytes 0x80..0xFF. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
export const isHeaderValue = (v: string): boolean => HEADER_VALUE.test(v);

export function checkKey(key: string): void {
  if (key === '') fail('InvalidArgument', 'An object key is required');
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) fail('KeyTooLongError', 'Your key is too long');
}

/** Refuses any x-amz-* header the operation does not implement (copy, ACL, tagging, encryption, ...). */
export function refuseUnknownAmzHeaders(parts: RequestParts, allowed: ReadonlySet<string>, opts: { metadata?: boolean } = {}): void {
  for (const name of parts.headers.keys()) {
    if (name.startsWith('x-amz-') && !allowed.has(name) && !(opts.metadata && name.startsWith('x-amz-meta-'))) {
      fail('NotImplemented', `A header you provided implies functionality that is not implemented: ${name}`);
    }
  }
}

/** The metadata a PUT (or an initiated multipart upload) stores from its headers. */
export function storedHeadersOf(parts: RequestParts): Pick<ObjectMeta, 'contentType' | 'headers' | 'metadata'> {
  const pairs: Array<[string, string]> = [];
  let metaBytes = 0;
  for (const [name, values] of parts.headers) {
    let v = values.join(',');
    if (name === 'content-encoding') v = v.split(',').map((e) => e.trim()).filter((e) => e && e !== 'aws-chunked').join(',');
    if (name.startsWith('x-amz-meta-')) metaBytes += name.length - 11 + v.length;
    else if (!v && name !== 'content-type') continue; // an empty stored header is not kept
    pairs.push([name, v]);
  }
  if (metaBytes > MAX_METADATA_BYTES) fail('InvalidArgument', 'Your metadata headers exceed the maximum allowed metadata size');
  return storedOf(pairs);
}

export async function putObject(req: IncomingMessage, parts: RequestParts, v: Verified, bucket: Bucket, key: string): Promise<Reply> {
  checkKey(key);
  refuseUnknownAmzHeaders(parts, PUT_AMZ_HEADERS, { metadata: true });
  const stored = storedHeadersOf(parts);
  const exp = expectationsOf(parts, v.payload, MAX_PUT_SIZE);
  const condition = writeCondition(parts);
  condition?.(bucket.metas.get(key));
  const got = await receive(bodyOf(req, v.payload), bucket, exp, (size, md5) => ({
    key,
    size,
    etag: md5.toString('hex'),
    lastModified: Date.now(),
    ...stored,
  }));
  const meta = got.meta;
  try {
    condition?.(bucket.metas.get(key)); // again, in the commit's turn: a write that landed meanwhile counts
  } catch (err) {
    discard(got);
    throw err;
  }
  bucket.commit(got.tmp, meta);
  const headers: Record<string, string> = { ETag: `"${meta.etag}"` };
  if (got.checksum) headers[`x-amz-checksum-${got.checksum.name}`] = got.checksum.value;
  return emptyReply(200, headers);
}

/**
 * S3's conditional writes (PutObject, CompleteMultipartUpload): `If-None-Match: *` writes only a key
 * that does not exist, `If-Match: <etag>` only over that version (412 PreconditionFailed; 404 NoSuchKey
 * when there is none). Checked before the body is read and again in the turn of the commit. Any other
 * If-None-Match value is 501, as on S3, never ignored.
 */
export function writeCondition(parts: RequestParts): ((current: ObjectMeta | undefined) => void) | undefined {
  const ifNoneMatch = header(parts, 'if-none-match');
  const ifMatch = header(parts, 'if-match');
  if (ifNoneMatch === undefined && ifMatch === undefined) return undefined;
  if (ifNoneMatch !== undefined && ifNoneMatch.trim() !== '*') fail('NotImplemented', 'If-None-Match on a write takes only *');
  return (current) => {
    if (ifNoneMatch !== undefined && current) throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
    if (ifMatch === undefined) return;
    if (!current) throw new S3Error('NoSuchKey', 'The specified key does not exist.');
    if (!etagMatches(ifMatch, current.etag)) throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
  };
}

function objectHeaders(meta: ObjectMeta, query: Map<string, string>): Record<string, string> {
  const h: Record<string, string> = {
    'Content-Type': meta.contentType,
    ETag: `"${meta.etag}"`,
    'Last-Modified': httpDate(meta.lastModified),
    'Accept-Ranges': 'bytes',
  };
  for (const [name, value] of Object.entries(meta.headers ?? {})) h[name] = value;
  for (const [name, value] of Object.entries(meta.metadata ?? {})) h[`x-amz-meta-${name}`] = value;
  // a value no header can carry (stored before the upload check) is left out, never sent
  for (const name of Object.keys(h)) if (!isHeaderValue(h[name]) || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) delete h[name];
  h['Content-Type'] ??= 'binary/octet-stream';
  // response-* overrides, as S3 allows on signed requests
  const overrides: Record<string, string> = {
    'response-content-type': 'Content-Type',
    'response-content-disposition': 'content-disposition',
    'response-content-encoding': 'content-encoding',
    'response-content-language': 'content-language',
    'response-cache-control': 'cache-control',
    'response-expires': 'expires',
  };
  for (const [param, name] of Object.entries(overrides)) {
    const v = query.get(param);
    if (v !== undefined) h[name] = v;
  }
  // A file is its uploader's bytes served from the store's origin: never sniffed into another type,
  // and never run as a page (an uploaded HTML or SVG file shows; its scripts do not run). Not on a
  // PDF, which Chrome's viewer refuses to show under a sandbox (a PDF's scripts are the viewer's).
  h['X-Content-Type-Options'] = 'nosniff';
  if (!isPdf(h['Content-Type'])) h['Content-Security-Policy'] = 'sandbox';
  return h;
}

/**
 * One media type, application/pdf, with parameters at most (RFC 9110 tokens and quoted strings), and
 * no comma anywhere, quoted or not: a browser may read a comma as the start of another type.
 * Anything else a client stored (a link without a signed type takes any value) is sandboxed:
 * `application/pdf;x=1,text/html` starts like a PDF, and Chrome shows it as the last type of the
 * list, HTML, with its scripts.
 */
const PDF_TYPE = /^application\/pdf([ \t]*;[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+=([!#$%&'*+.^_`|~0-9A-Za-z-]+|"[^",\\\u0000-\u001f\u007f]*"))*[ \t]*$/i;
const isPdf = (contentType: string | undefined): boolean => contentType !== undefined && PDF_TYPE.test(contentType);

const unquote = (s: string) => s.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
const etagMatches = (list: string, etag: string) => list.split(',').some((e) => e.trim() === '*' || unquote(e) === etag);

function dateHeader(parts: RequestParts, name: string): number | undefined {
  const v = header(parts, name);
  const t = v === undefined ? NaN : Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

/** If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since, in S3's order of precedence. */
function preconditions(parts: RequestParts, meta: ObjectMeta, isGetOrHead: boolean): Reply | undefined {
  const ifMatch = header(parts, 'if-match');
  const ifNoneMatch = header(parts, 'if-none-match');
  if (ifMatch === undefined && ifNoneMatch === undefined && !parts.headers.has('if-modified-since') && !parts.headers.has('if-unmodified-since')) return undefined;
  const since = (name: string) => dateHeader(parts, name);
  const modifiedSecond = Math.floor(meta.lastModified / 1000) * 1000;
  if (ifMatch !== undefined && !etagMatches(ifMatch, meta.etag)) throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
  const unmodifiedSince = since('if-unmodified-since');
  if (ifMatch === undefined && unmodifiedSince !== undefined && modifiedSecond > unmodifiedSince) {
    throw new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold');
  }
  const notModified = emptyReply(304, { ETag: `"${meta.etag}"`, 'Last-Modified': httpDate(meta.lastModified) });
  if (ifNoneMatch !== undefined) {
    if (etagMatches(ifNoneMatch, meta.etag)) return isGetOrHead ? notModified : undefined;
  } else {
    const modifiedSince = since('if-modified-since');
    if (modifiedSince !== undefined && modifiedSecond <= modifiedSince && modifiedSince <= Date.now()) return notModified;
  }
  return undefined;
}

/** A single `bytes=` range, as S3 reads it; undefined: serve the whole object. */
function rangeOf(value: string | undefined, size: number): { start: number; end: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^bytes=(\d{0,20})-(\d{0,20})$/.exec(value.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined; // malformed or several ranges: ignored, as S3 does
  if (m[1] === '') {
    const n = Number(m[2]);
    // no byte of an empty object can be asked for, the last ones neither (RFC 9110 14.1.1)
    if (n === 0 || size === 0) throw new S3Error('InvalidRange', 'The requested range is not satisfiable');
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) throw new S3Error('InvalidRange', 'The requested range is not satisfiable');
  return { start, end };
}

/** Objects up to this size are read into memory in one call and sent whole; larger ones stream. */
const SMALL_READ = 256 * 1024;

export function getObject(parts: RequestParts, query: Map<string, string>, bucket: Bucket, key: string, head: boolean): Reply {
  checkKey(key);
  refuseUnknownAmzHeaders(parts, READ_AMZ_HEADERS);
  // HEAD answers from the index, which is committed together with each file
  const open = head ? undefined : openObject(bucket, key);
  const meta = head ? bucket.metas.get(key) : open?.meta;
  if (!meta) throw new S3Error('NoSuchKey', 'The specified key does not exist.');
  let handedOver = false;
  try {
    const cond = preconditions(parts, meta, true);
    if (cond) return cond;
    const headers = objectHeaders(meta, query);
    let range: { start: number; end: number } | undefined;
    try {
      range = rangeOf(header(parts, 'range'), meta.size);
    } catch (err) {
      if (err instanceof S3Error && err.code === 'InvalidRange') err.extra = { 'Content-Range': `bytes */${meta.size}` };
      throw err;
    }
    const start = range?.start ?? 0;
    const end = range ? range.end : meta.size - 1;
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${meta.size}`;
    headers['Content-Length'] = String(end - start + 1);
    const status = range ? 206 : 200;
    if (head || !open) return { status, headers };
    if (end - start + 1 <= SMALL_READ) {
      const body = Buffer.alloc(end - start + 1);
      if (body.length > 0) fs.readSync(open.fd, body, 0, body.length, start);
      return { status, headers, body };
    }
    handedOver = true;
    return { status, headers, file: { fd: open.fd, start, end } };
  } finally {
    if (open && !handedOver) fs.closeSync(open.fd);
  }
}

export function deleteObject(parts: RequestParts, bucket: Bucket, key: string): Reply {
  checkKey(key);
  refuseUnknownAmzHeaders(parts, READ_AMZ_HEADERS);
  bucket.remove(key);
  return emptyReply(204);
}

// ---- listing ----

interface Page {
  contents: ObjectMeta[];
  prefixes: string[];
  truncated: boolean;
  /** where the next page starts: after this key, or after every key under this common prefix */
  next?: { after: string; prefix: boolean };
}

/** One page of keys from the index: time in proportion to the page, not to the bucket. */
function listPage(bucket: Bucket, prefix: string, delimiter: string, start: { after: string; prefix: boolean } | undefined, max: number): Page {
  const page: Page = { contents: [], prefixes: [], truncated: false };
  let i = bucket.index.lowerBound(prefix);
  if (start) {
    const j = start.prefix ? bucket.index.endOfPrefix(start.after, bucket.index.lowerBound(start.after)) : bucket.index.lowerBound(start.after, true);
    i = Math.max(i, j);
  }
  let count = 0;
  for (;;) {
    const key = bucket.index.at(i);
    if (key === undefined || !key.startsWith(prefix)) return page;
    const d = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
    if (count >= max) {
      page.truncated = true;
      return page;
    }
    if (d >= 0) {
      const common = key.slice(0, d + delimiter.length);
      page.prefixes.push(common);
      page.next = { after: common, prefix: true };
      i = bucket.index.endOfPrefix(common, i);
    } else {
      page.contents.push(bucket.metas.get(key)!);
      page.next = { after: key, prefix: false };
      i++;
    }
    count++;
  }
}

function tokenOf(bucket: Bucket, next: { after: string; prefix: boolean }): string {
  return Buffer.from(JSON.stringify([bucket.name, next.after, next.prefix ? 1 : 0]), 'utf8').toString('base64url');
}

function parseToken(bucket: Bucket, token: string): { after: string; prefix: boolean } {
  try {
    const [name, after, isPrefix] = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as [unknown, unknown, unknown];
    if (name === bucket.name && typeof after === 'string' && (isPrefix === 0 || isPrefix === 1)) return { after, prefix: isPrefix === 1 };
  } catch {
    // fall through
  }
  return fail('InvalidArgument', 'The continuation token provided is incorrect');
}

const LIST_PARAMS = new Set(['list-type', 'prefix', 'delimiter', 'max-keys', 'start-after', 'continuation-token', 'encoding-type', 'fetch-owner', 'marker', 'x-id']);

export function listObjects(query: Map<string, string>, bucket: Bucket): Reply {
  for (const name of query.keys()) {
    if (!LIST_PARAMS.has(name) && !/^x-amz-/i.test(name)) fail('NotImplemented', `The ${name} parameter is not implemented by this store`);
  }
  const v2 = query.get('list-type') === '2';
  if (query.has('list-type') && !v2) fail('InvalidArgument', 'list-type must be 2');
  const prefix = query.get('prefix') ?? '';
  const delimiter = query.get('delimiter') ?? '';
  const maxRaw = query.get('max-keys') ?? '1000';
  if (!/^\d{1,10}$/.test(maxRaw)) fail('InvalidArgument', 'Provided max-keys not an integer or within integer range');
  const max = Math.min(1000, Number(maxRaw));
  const encoding = query.get('encoding-type');
  if (encoding !== undefined && encoding !== 'url') fail('InvalidArgument', 'Invalid Encoding Method specified in Request');
  const enc = (s: string) => xmlEscape(encoding === 'url' ? escapeKey(s) : s);

  let start: { after: string; prefix: boolean } | undefined;
  const token = query.get('continuation-token');
  if (v2 && token !== undefined) start = parseToken(bucket, token);
  else if (v2 && query.get('start-after')) start = { after: query.get('start-after')!, prefix: false };
  else if (!v2 && query.get('marker')) {
    // a NextMarker that is a common prefix continues after everything under it
    const marker = query.get('marker')!;
    start = { after: marker, prefix: delimiter !== '' && marker.endsWith(delimiter) && marker.startsWith(prefix) };
  }

  const page = listPage(bucket, prefix, delimiter, start, max);
  const contents = page.contents
    .map(
      (m) =>
        `<Contents><Key>${enc(m.key)}</Key><LastModified>${isoDate(m.lastModified)}</LastModified><ETag>"${m.etag}"</ETag>` +
        `<Size>${m.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`,
    )
    .join('');
  const prefixes = page.prefixes.map((p) => `<CommonPrefixes><Prefix>${enc(p)}</Prefix></CommonPrefixes>`).join('');
  let xml = `<ListBucketResult xmlns="${S3_NS}"><Name>${xmlEscape(bucket.name)}</Name><Prefix>${enc(prefix)}</Prefix>`;
  if (v2) {
    xml += `<KeyCount>${page.contents.length + page.prefixes.length}</KeyCount>`;
    if (token !== undefined) xml += `<ContinuationToken>${xmlEscape(token)}</ContinuationToken>`;
    if (query.get('start-after')) xml += `<StartAfter>${enc(query.get('start-after')!)}</StartAfter>`;
  } else xml += `<Marker>${enc(query.get('marker') ?? '')}</Marker>`;
  xml += `<MaxKeys>${max}</MaxKeys>`;
  if (delimiter) xml += `<Delimiter>${enc(delimiter)}</Delimiter>`;
  if (encoding) xml += `<EncodingType>url</EncodingType>`;
  xml += `<IsTruncated>${page.truncated}</IsTruncated>`;
  if (page.truncated && page.next) {
    if (v2) xml += `<NextContinuationToken>${tokenOf(bucket, page.next)}</NextContinuationToken>`;
    else if (delimiter) xml += `<NextMarker>${enc(page.next.after)}</NextMarker>`;
  }
  xml += `${contents}${prefixes}</ListBucketResult>`;
  return xmlReply(200, xml);
}
