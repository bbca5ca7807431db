/**
 * POST object (browser form uploads). The form is parsed as it streams: the fields before `file`
 * are read (bounded), the policy is verified against them, then the file streams to disk within the
 * policy's content-length-range. Every field must be covered by a condition; fields the store does
 * not implement (acl, tagging, redirects, encryption, ...) are refused even when the policy covers
 * them. `file` may be a file part or a plain field: either way its bytes are taken as sent.
 */
import type { IncomingMessage } from 'node:http';
import { parseCredential, policySignature, sameSignature, type KeyRing } from './auth';
import { MAX_PUT_SIZE, receive } from './body';
import { STORED_HEADERS, storedOf, type Bucket } from './disk';
import { S3Error, fail } from './errors';
import { checkKey, isHeaderValue } from './objects';
import { emptyReply, xmlReply, type Reply } from './reply';
import { xmlEscape } from './xml';

const MAX_FIELDS_BYTES = 64 * 1024;
const MAX_PART_HEADER = 8 * 1024;
const MAX_FIELDS = 100;
/**
 * A form POST is read before anything authenticates it (its policy is one of its fields), so the
 * fields up to the file must arrive within this time: otherwise anyone could hold the store's
 * connections with forms trickled a byte at a time, and no link would be served. A browser sends
 * them at once (a few KB); the file itself is then bounded by the policy and the idle timeout.
 */
export const FORM_FIELDS_TIMEOUT_MS = 10_000;

/** Form fields the store implements; x-amz-meta-* too. Anything else is refused. */
const IMPLEMENTED = new Set([
  'key',
  'policy',
  'x-amz-algorithm',
  'x-amz-credential',
  'x-amz-date',
  'x-amz-signature',
  'content-type',
  'cache-control',
  'content-disposition',
  'content-encoding',
  'content-language',
  'expires',
  'success_action_status',
  'bucket',
]);
/** Fields that need no condition (S3: the policy and signature themselves, x-ignore-*). */
const NEEDS_NO_CONDITION = (name: string) => name === 'policy' || name === 'x-amz-signature' || name === 'file' || name.startsWith('x-ignore-');

interface Part {
  name: string;
  filename?: string;
}

function parseDisposition(value: string): Part {
  if (!/^\s*form-data\s*(;|$)/i.test(value)) fail('MalformedPOSTRequest', 'The body of your POST request is not well-formed multipart/form-data.');
  const params: Record<string, string> = {};
  const re = /;\s*([A-Za-z0-9_*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(value))) {
    const name = m[1].toLowerCase();
    if (name in params) fail('MalformedPOSTRequest', 'A form part names a parameter twice.');
    params[name] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
  }
  if (params.name === undefined) fail('MalformedPOSTRequest', 'A form part has no name.');
  return { name: params.name, filename: params.filename };
}

const timedOut = () => new S3Error('RequestTimeout', 'Your socket connection to the server was not read from or written to within the timeout period.');

/** The request's body as a stream of buffers with a small look-ahead for boundaries. */
class Reader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private readonly it: AsyncIterator<Buffer>;
  /** Date.now() by which the next bytes must have come (RequestTimeout), while set */
  deadline?: number;
  /** one timer for the deadline, whatever the number of pieces the body comes in; the read it ends */
  private late?: { deadline: number; expired: boolean; timer: NodeJS.Timeout; waiting?: (err: S3Error) => void };
  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }
  /** The next piece of the body as it came (undefined at its end). */
  private async next(): Promise<Buffer | undefined> {
    if (this.ended) return undefined;
    const r = this.deadline === undefined ? await this.it.next() : await this.nextBy(this.deadline);
    if (r.done) {
      this.ended = true;
      return undefined;
    }
    return r.value;
  }
  private async more(): Promise<boolean> {
    const piece = await this.next();
    if (piece === undefined) return false;
    this.buf = this.buf.length ? Buffer.concat([this.buf, piece]) : piece;
    return true;
  }
  private nextBy(deadline: number): Promise<IteratorResult<Buffer>> {
    if (this.late?.deadline !== deadline) {
      this.done();
      this.late = { deadline, expired: false, timer: setTimeout(() => this.expire(), Math.max(0, deadline - Date.now())) };
    }
    const late = this.late;
    if (late.expired) return Promise.reject(timedOut());
    return new Promise((resolve, reject) => {
      late.waiting = reject;
      this.it.next().then(
        (r) => {
          late.waiting = undefined;
          resolve(r);
        },
        (err: unknown) => {
          late.waiting = undefined;
          reject(err);
        },
      );
    });
  }
  private expire(): void {
    if (!this.late) return;
    this.late.expired = true;
    this.late.waiting?.(timedOut());
  }
  /** Stops the deadline's timer (the fields are read, or the form has failed). */
  done(): void {
    if (this.late) clearTimeout(this.late.timer);
    this.late = undefined;
  }
  /**
   * Bytes up to `delim` (consumed with it), at most `limit` before it. The pieces are kept apart until
   * the delimiter comes, and each is searched once (with the few bytes before it a delimiter could
   * start in): a field sent a byte a packet costs what it brings, not a copy and a scan of all before.
   */
  async until(delim: Buffer, limit: number): Promise<Buffer> {
    const pieces: Buffer[] = [];
    let size = 0; // bytes in pieces
    let piece = this.buf;
    let carry: Buffer = Buffer.alloc(0); // the last bytes before `piece`, fewer than delim's
    this.buf = Buffer.alloc(0);
    for (;;) {
      const window = carry.length ? Buffer.concat([carry, piece]) : piece;
      const j = window.indexOf(delim);
      if (j >= 0) {
        const at = size - carry.length + j;
        if (at > limit) break;
        pieces.push(piece);
        const all = pieces.length === 1 ? piece : Buffer.concat(pieces, size + piece.length);
        this.buf = all.subarray(at + delim.length);
        return all.subarray(0, at);
      }
      pieces.push(piece);
      size += piece.length;
      if (size > limit + delim.length) break;
      carry = window.subarray(Math.max(0, window.length - delim.length + 1));
      const next = await this.next();
      if (next === undefined) fail('MalformedPOSTRequest', 'The body of your POST request is not well-formed multipart/form-data.');
      piece = next!;
    }
    return fail('MaxMessageLengthExceeded', 'Your POST form fields are too large.');
  }
  /** Streams bytes up to `delim` (consumed with it). */
  async *streamUntil(delim: Buffer): AsyncGenerator<Buffer> {
    for (;;) {
      const i = this.buf.indexOf(delim);
      if (i >= 0) {
        if (i > 0) yield this.buf.subarray(0, i);
        this.buf = this.buf.subarray(i + delim.length);
        return;
      }
      const safe = this.buf.length - delim.length + 1;
      if (safe > 0) {
        yield this.buf.subarray(0, safe);
        this.buf = this.buf.subarray(safe);
      }
      if (!(await this.more())) fail('IncompleteBody', 'The POST body ended inside the file.');
    }
  }
  async startsWith(s: string): Promise<boolean> {
    while (this.buf.length < s.length) if (!(await this.more())) return false;
    return this.buf.toString('latin1', 0, s.length) === s;
  }
  skip(n: number): void {
    this.buf = this.buf.subarray(n);
  }
}

type Condition = { kind: 'eq' | 'starts-with'; field: string; value: string } | { kind: 'range'; min: number; max: number };

interface Policy {
  expiration: number;
  conditions: Condition[];
}

function parsePolicy(b64: string): Policy {
  let doc: { expiration?: unknown; conditions?: unknown };
  try {
    doc = JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as typeof doc;
  } catch {
    return fail('InvalidArgument', 'Invalid Policy: Invalid JSON.');
  }
  const expiration = typeof doc?.expiration === 'string' ? Date.parse(doc.expiration) : NaN;
  if (Number.isNaN(expiration)) fail('InvalidArgument', 'Invalid Policy: Invalid \'expiration\' value.');
  if (!Array.isArray(doc.conditions) || doc.conditions.length > 64) fail('InvalidArgument', 'Invalid Policy: Invalid \'conditions\' value.');
  const conditions: Condition[] = [];
  for (const c of doc.conditions as unknown[]) {
    if (Array.isArray(c) && c[0] === 'content-length-range') {
      const [, min, max] = c as [string, unknown, unknown];
      if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || (min as number) < 0 || (max as number) < (min as number)) {
        fail('InvalidArgument', 'Invalid Policy: Invalid content-length-range.');
      }
      conditions.push({ kind: 'range', min: min as number, max: max as number });
    } else if (Array.isArray(c) && c.length === 3 && (c[0] === 'eq' || c[0] === 'starts-with') && typeof c[1] === 'string' && c[1].startsWith('$') && typeof c[2] === 'string') {
      conditions.push({ kind: c[0], field: c[1].slice(1).toLowerCase(), value: c[2] });
    } else if (c && typeof c === 'object' && !Array.isArray(c) && Object.keys(c).length === 1) {
      const [field, value] = Object.entries(c as Record<string, unknown>)[0];
      if (typeof value !== 'string') fail('InvalidArgument', 'Invalid Policy: Invalid Simple-Condition.');
      conditions.push({ kind: 'eq', field: field.toLowerCase(), value: value as string });
    } else {
      fail('InvalidArgument', 'Invalid Policy: Invalid condition.');
    }
  }
  return { expiration, conditions };
}

const denied = (why: string): never => fail('AccessDenied', `Invalid according to Policy: ${why}`);

/** Checks the signature and every condition against the fields; returns the allowed size range. */
function checkPolicy(fields: Map<string, string>, bucket: Bucket, keys: KeyRing, key: string, now: number): { min: number; max: number } {
  const policyB64 = fields.get('policy');
  const signature = fields.get('x-amz-signature');
  if (policyB64 === undefined || signature === undefined) return fail('AccessDenied', 'Access Denied: a POST needs a policy and its signature');
  if (fields.get('x-amz-algorithm') !== 'AWS4-HMAC-SHA256') fail('InvalidArgument', 'x-amz-algorithm must be AWS4-HMAC-SHA256');
  const credential = parseCredential(fields.get('x-amz-credential'));
  const secret = keys.get(credential.accessKeyId);
  if (secret === undefined) fail('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  if (!sameSignature(signature, policySignature(secret!, credential.shortDate, credential.region, policyB64))) {
    fail('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
  }
  const policy = parsePolicy(policyB64);
  if (now > policy.expiration) denied('Policy expired.');
  let range = { min: 0, max: MAX_PUT_SIZE };
  const covered = new Set<string>();
  for (const c of policy.conditions) {
    if (c.kind === 'range') {
      range = { min: Math.max(range.min, c.min), max: Math.min(range.max, c.max) };
      continue;
    }
    covered.add(c.field);
    const values = c.field === 'bucket' ? [bucket.name] : c.field === 'key' ? [fields.get('key') ?? '', key] : [fields.get(c.field) ?? ''];
    const ok = values.every((v) => (c.kind === 'eq' ? v === c.value : v.startsWith(c.value)));
    if (!ok) denied(`Policy Condition failed: ["${c.kind}", "$${c.field}", "${c.value}"]`);
  }
  if (!covered.has('bucket')) denied('Policy Condition missing: bucket');
  const extra = [...fields.keys()].filter((f) => !NEEDS_NO_CONDITION(f) && !covered.has(f));
  if (extra.length) denied(`Extra input fields: ${extra.join(', ')}`);
  return range;
}

/** POST /<bucket> with multipart/form-data. */
export async function postObject(req: IncomingMessage, bucket: Bucket, keys: KeyRing, now = Date.now(), fieldsTimeoutMs = FORM_FIELDS_TIMEOUT_MS): Promise<Reply> {
  const type = req.headers['content-type'] ?? '';
  const bm = /^multipart\/form-data\s*;.*?boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(type);
  if (!bm) fail('MalformedPOSTRequest', 'The body of your POST request is not well-formed multipart/form-data.');
  const boundary = bm![1] ?? bm![2];
  const reader = new Reader(req);
  reader.deadline = now + fieldsTimeoutMs;
  const dash = Buffer.from(`--${boundary}`, 'latin1');
  const delim = Buffer.from(`\r\n--${boundary}`, 'latin1');
  const crlf2 = Buffer.from('\r\n\r\n');
  const crlf = Buffer.from('\r\n');

  try {
    // preamble up to the first boundary
    await reader.until(dash, MAX_PART_HEADER);
    const fields = new Map<string, string>();
    let fieldBytes = 0;
    for (;;) {
      if (await reader.startsWith('--')) fail('InvalidArgument', 'POST requires exactly one file upload per request.');
      await reader.until(crlf, 64); // rest of the boundary line (transport padding)
      const head = (await reader.until(crlf2, MAX_PART_HEADER)).toString('utf8');
      let disposition: string | undefined;
      for (const line of head.split('\r\n')) {
        const i = line.indexOf(':');
        if (i > 0 && line.slice(0, i).trim().toLowerCase() === 'content-disposition') disposition = line.slice(i + 1);
      }
      if (disposition === undefined) fail('MalformedPOSTRequest', 'A form part has no Content-Disposition.');
      const part = parseDisposition(disposition!);
      const name = part.name.toLowerCase();
      if (name === 'file') {
        reader.deadline = undefined; // the policy is checked next; the file's own time is the idle timeout's
        return receiveFile(reader, delim, part, fields, bucket, keys, now);
      }
      const value = await reader.until(delim, MAX_FIELDS_BYTES - fieldBytes);
      fieldBytes += value.length + name.length;
      if (fields.has(name)) fail('InvalidArgument', `The form field ${name} is given more than once.`);
      if (fields.size >= MAX_FIELDS) fail('MaxMessageLengthExceeded', 'Your POST has too many form fields.');
      fields.set(name, value.toString('utf8'));
    }
  } finally {
    reader.done();
  }
}

async function receiveFile(reader: Reader, delim: Buffer, part: Part, fields: Map<string, string>, bucket: Bucket, keys: KeyRing, now: number): Promise<Reply> {
  const given = fields.get('key');
  if (given === undefined) fail('InvalidArgument', 'Bucket POST must contain a field named \'key\'.');
  // ${filename}: the file part's own name, without a path
  const filename = (part.filename ?? '').split(/[\\/]/).pop() ?? '';
  const key = given!.split('${filename}').join(filename);
  checkKey(key);
  const range = checkPolicy(fields, bucket, keys, key, now);
  for (const name of fields.keys()) {
    if (!IMPLEMENTED.has(name) && !name.startsWith('x-amz-meta-') && !name.startsWith('x-ignore-')) {
      fail('NotImplemented', `The form field ${name} is not implemented by this store`);
    }
  }
  // every field that becomes a header of the object must be one a header can carry
  for (const [name, value] of fields) {
    if ((name === 'content-type' || STORED_HEADERS.includes(name) || name.startsWith('x-amz-meta-')) && !isHeaderValue(value)) {
      fail('InvalidArgument', `The form field ${name} is not a valid HTTP header value`);
    }
  }
  const status = fields.get('success_action_status') ?? '204';
  const got = await receive(reader.streamUntil(delim), bucket, { max: range.max, min: range.min }, (size, md5) => ({
    key,
    size,
    etag: md5.toString('hex'),
    lastModified: Date.now(),
    ...storedOf(fields),
  }));
  const meta = got.meta;
  bucket.commit(got.tmp, meta);
  const location = `/${encodeURIComponent(bucket.name)}/${encodeURIComponent(key).replace(/%2F/g, '/')}`;
  const etag = `"${meta.etag}"`;
  if (status === '201') {
    return xmlReply(
      201,
      `<PostResponse><Location>${xmlEscape(location)}</Location><Bucket>${xmlEscape(bucket.name)}</Bucket><Key>${xmlEscape(key)}</Key><ETag>${etag}</ETag></PostResponse>`,
      { ETag: etag, Location: location },
    );
  }
  return emptyReply(status === '200' ? 200 : 204, { ETag: etag, Location: location });
}

export { S3Error };
