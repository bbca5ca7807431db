// Request → arguments and keys: query string + JSON or form body (the body wins), keys taken out of args.
import { isAscii } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { decodeInPlace } from '../../src/lib/base64';

/**
 * An answer the host gives itself (401, 413, 503, …). No stack trace is captured: these are answers,
 * not faults, and a refused flood should not pay for a stack per request.
 */
export class HttpError extends Error {
  status: number;
  code: string;
  /** sent as Retry-After (a 503 without one asks for RETRY_AFTER_SECONDS) */
  retryAfterSeconds?: number;
  constructor(status: number, code: string, message: string, retryAfterSeconds?: number) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** The client went away before its request ended: nothing to answer, nothing to log but the access line. */
export class ClientGone extends Error {
  constructor() {
    super('the client closed the connection before its request ended');
  }
}

/**
 * Request body bytes held by the calls in flight, against one bound. A call reserves its body's
 * Content-Length before reading (the whole buffer is allocated at once), a chunked body as it arrives.
 * When nothing else is in flight a body is always let in, so that a single upload of any allowed size
 * can pass however small the bound.
 */
export class BodyBudget {
  used = 0;
  constructor(readonly max: number) {}
  take(bytes: number): boolean {
    if (this.used > 0 && this.used + bytes > this.max) return false;
    this.used += bytes;
    return true;
  }
  give(bytes: number): void {
    this.used -= bytes;
  }
}

/** One call's share of the BodyBudget, given back when its answer is done. */
export interface BodyTicket {
  bytes: number;
}

export interface ReadBodyOptions {
  limit: number;
  /** the refusal once the declared or read size passes `limit` */
  overLimit: () => HttpError;
  budget: BodyBudget;
  ticket: BodyTicket;
  /** no byte for this long: 408 */
  idleTimeoutMs: number;
  /** once the body has taken idleTimeoutMs, it must average this many bytes a second: else 408 */
  minBytesPerSecond: number;
  /** checks depth and keys as the bytes arrive (see BodyShape) */
  shape?: BodyShape;
  /** the client sent `Expect: 100-continue`: tell it to send the body now */
  sendContinue?: () => void;
}

export const busyError = (message: string) => new HttpError(503, 'busy', message);

/** The parts of a request's target the host reads (a URL has them too). */
export interface RequestTarget {
  readonly pathname: string;
  readonly search: string;
  readonly searchParams: URLSearchParams;
}

// A target that WHATWG URL parsing would leave exactly as it is: an absolute path of unreserved
// characters, with no empty segment and no segment that starts with a dot (so no dot segment), and a
// query of characters it never percent-encodes, with no fragment.
const PLAIN_PATH = /^(?:\/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*\/?$/;
const PLAIN_QUERY = /^[A-Za-z0-9._~!$&()*+,;=:@/?%-]*$/;

class PlainTarget implements RequestTarget {
  private params?: URLSearchParams;
  constructor(
    readonly pathname: string,
    private readonly query: string,
  ) {}
  get search(): string {
    return this.query === '' ? '' : '?' + this.query;
  }
  get searchParams(): URLSearchParams {
    // the '?' is URLSearchParams's to strip: a query that itself starts with '?' keeps it, as in a URL
    return (this.params ??= new URLSearchParams('?' + this.query));
  }
}

/**
 * A request's target, as `new URL(target, 'http://host')` reads it (throws where that throws). The
 * usual target (`/aws-storage/user-upload-link/`) is taken as it is: a URL costs a few µs per request,
 * a tenth of the host's own work for a call. Any other goes through URL, so both agree.
 */
export function requestTarget(raw: string): RequestTarget {
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const query = q < 0 ? '' : raw.slice(q + 1);
  if (path.charCodeAt(0) === 0x2f && PLAIN_PATH.test(path) && (query === '' || PLAIN_QUERY.test(query))) return new PlainTarget(path, query);
  return new URL(raw, 'http://host');
}

/** How often a body being read is checked for stalling: a quarter of the idle timeout, within 50 ms to 1 s. */
const checkPeriod = (idleTimeoutMs: number) => Math.max(50, Math.min(1_000, Math.floor(idleTimeoutMs / 4)));

/**
 * One interval per check period for every body being read, not a timer per body: a timer set and
 * cleared per request goes through Node's timer lists (and libuv) each time, for a check that almost
 * never fires. Unref'd, so it never keeps the process up.
 */
const bodyChecks = new Map<number, Set<() => void>>();
function watchBody(periodMs: number, check: () => void): () => void {
  let checks = bodyChecks.get(periodMs);
  if (!checks) {
    const set = new Set<() => void>();
    bodyChecks.set(periodMs, (checks = set));
    setInterval(() => set.forEach((c) => c()), periodMs).unref();
  }
  checks.add(check);
  return () => checks.delete(check);
}

/**
 * Reads the body: refused (overLimit) as soon as Content-Length or the bytes read pass the limit,
 * 503 past the in-flight budget, 400 as soon as its shape passes the bounds, 408 when it stalls or
 * trickles; ClientGone when the client leaves first.
 */
export function readBody(req: IncomingMessage, o: ReadBodyOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length'];
    const expected = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined;
    if (expected !== undefined && expected > o.limit) {
      reject(o.overLimit());
      return;
    }
    if (expected === 0 || (expected === undefined && req.headers['transfer-encoding'] === undefined)) {
      // No body at all (a GET, an empty POST): nothing to hold.
      req.resume();
      resolve(Buffer.alloc(0));
      return;
    }
    if (expected !== undefined) {
      if (!o.budget.take(expected)) {
        reject(busyError(`the host holds as many request bodies as it may (${o.budget.max} bytes); try again shortly`));
        return;
      }
      o.ticket.bytes += expected;
    }
    o.sendContinue?.();
    // With a Content-Length the body is copied once into a buffer of its size (large base64 uploads
    // would otherwise sit in memory twice: as chunks and as their concatenation).
    const whole = expected !== undefined ? Buffer.allocUnsafe(expected) : undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const started = performance.now();
    let lastData = started;
    const settle = () => {
      settled = true;
      unwatch();
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onGone);
    };
    const fail = (err: Error) => {
      if (settled) return;
      settle();
      chunks.length = 0;
      reject(err);
    };
    const onData = (c: Buffer) => {
      lastData = performance.now();
      if (size + c.length > o.limit || (whole && size + c.length > whole.length)) {
        fail(whole && size + c.length > whole.length ? new HttpError(400, 'invalid_argument', 'request body longer than its Content-Length') : o.overLimit());
        return;
      }
      if (!whole) {
        if (!o.budget.take(c.length)) {
          fail(busyError(`the host holds as many request bodies as it may (${o.budget.max} bytes); try again shortly`));
          return;
        }
        o.ticket.bytes += c.length;
      }
      const problem = o.shape?.feed(c);
      if (problem) {
        fail(new HttpError(400, 'invalid_argument', problem));
        return;
      }
      if (whole) c.copy(whole, size);
      else chunks.push(c);
      size += c.length;
    };
    const onEnd = () => {
      if (settled) return;
      settle();
      resolve(whole ? whole.subarray(0, size) : Buffer.concat(chunks, size));
    };
    const onGone = () => {
      if (!req.complete) fail(new ClientGone());
    };
    // One check a second (or sooner for short timeouts): a stalled or trickling body is dropped.
    const unwatch = watchBody(checkPeriod(o.idleTimeoutMs), () => {
      const now = performance.now();
      if (now - lastData >= o.idleTimeoutMs) {
        fail(new HttpError(408, 'request_timeout', `no request body bytes for ${o.idleTimeoutMs} ms`));
      } else if (now - started >= o.idleTimeoutMs && size < ((now - started) / 1000) * o.minBytesPerSecond) {
        fail(new HttpError(408, 'request_timeout', `the request body came slower than ${o.minBytesPerSecond} bytes a second`));
      }
    });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onGone);
  });
}

/**
 * Bounds on a body's shape, checked as its bytes arrive, so that no JSON.parse or form parse ever
 * starts on a body that nests deeper than maxDepth or has more than maxKeys keys and array elements
 * (or form fields). Linear in the bytes: strings are skipped with Buffer.indexOf, not byte by byte.
 * A body whose first byte is neither `{` nor `[` is not JSON the host will parse as an object; it is
 * refused by JSON.parse's own answer (or read as a form) without this scan.
 */
export class BodyShape {
  private started = false;
  private json = false;
  private inString = false;
  private escaped = false;
  private depth = 0;
  private entries = 0;
  private fields = 1;
  /** arrays[d]: whether the container at depth d is an array */
  private readonly arrays: boolean[] = [];
  /** where this chunk starts in the body, and where the string being read began; whether it has an escape */
  private offset = 0;
  private stringStart = 0;
  private stringEscaped = false;
  /**
   * [start, end) in the body of strings of LONG_STRING bytes or more without an escape (a base64 file):
   * parseBody takes them as they are instead of through JSON.parse.
   */
  readonly longStrings: Array<[number, number]> = [];

  constructor(
    private readonly maxDepth: number,
    private readonly maxKeys: number,
    /** a form body: count its `&`-separated fields too */
    private readonly form: boolean,
  ) {}

  /** undefined while within the bounds; else why not */
  feed(c: Buffer): string | undefined {
    const problem = this.scan(c);
    this.offset += c.length;
    return problem;
  }

  private scan(c: Buffer): string | undefined {
    if (this.form) {
      for (let at = c.indexOf(0x26); at !== -1; at = c.indexOf(0x26, at + 1)) {
        if (++this.fields > this.maxKeys) return `request body has more than ${this.maxKeys} form fields`;
      }
    }
    let i = 0;
    const n = c.length;
    if (!this.started) {
      while (i < n && (c[i] === 0x20 || c[i] === 0x0a || c[i] === 0x0d || c[i] === 0x09)) i++;
      if (i === n) return undefined;
      this.started = true;
      this.json = c[i] === 0x7b || c[i] === 0x5b;
    }
    if (!this.json) return undefined;
    // Where the next quote and backslash are in this chunk (-1: none left), found once each, so that a
    // string full of escapes stays linear.
    let quote = -2;
    let slash = -2;
    while (i < n) {
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          i++;
          continue;
        }
        if (quote !== -1 && quote < i) quote = c.indexOf(0x22, i);
        if (slash !== -1 && slash < i) slash = c.indexOf(0x5c, i);
        if (slash !== -1 && (quote === -1 || slash < quote)) {
          this.escaped = this.stringEscaped = true;
          i = slash + 1;
        } else if (quote === -1) {
          return undefined;
        } else {
          this.inString = false;
          const end = this.offset + quote;
          if (!this.stringEscaped && end - this.stringStart >= LONG_STRING && this.longStrings.length < MAX_LONG_STRINGS) this.longStrings.push([this.stringStart, end]);
          i = quote + 1;
        }
        continue;
      }
      const b = c[i++];
      if (b === 0x22) {
        this.inString = true;
        this.stringStart = this.offset + i;
        this.stringEscaped = false;
      } else if (b === 0x7b || b === 0x5b) {
        if (++this.depth > this.maxDepth) return `request body nests deeper than ${this.maxDepth} levels`;
        this.arrays[this.depth] = b === 0x5b;
      } else if (b === 0x7d || b === 0x5d) {
        if (this.depth > 0) this.depth--;
      } else if (b === 0x3a || (b === 0x2c && this.arrays[this.depth])) {
        if (++this.entries > this.maxKeys) return `request body has more than ${this.maxKeys} keys and array elements`;
      }
    }
    return undefined;
  }
}

/** A JSON string this long without an escape is taken from the body as it is (see parseBody). */
const LONG_STRING = 64 * 1024;
const MAX_LONG_STRINGS = 8;
/** What JSON allows in a string only escaped (RFC 8259 §7) */
const RAW_CONTROL = /[\u0000-\u001f]/;

type Args = Record<string, unknown>;

/** One pass over the parameters (getAll per distinct name would be quadratic in their number). */
function fromSearchParams(sp: URLSearchParams): Args {
  const out: Args = Object.create(null);
  for (const [key, value] of sp) {
    const had = out[key];
    if (had === undefined) out[key] = value;
    else if (Array.isArray(had)) had.push(value);
    else out[key] = [had as string, value];
  }
  return { ...out };
}

function looksLikeJsonObject(text: string): boolean {
  const trimmed = text.trim();
  return trimmed.startsWith('{') && trimmed.endsWith('}');
}

/**
 * `fileInPlace` (a caller let in to an endpoint that takes `file`): a long top-level `file` string that
 * is strict base64 becomes a DecodedFile, decoded inside `body` itself, which is then no longer the text.
 */
export function parseBody(body: Buffer, contentType: string | undefined, longStrings: ReadonlyArray<[number, number]> = [], fileInPlace = false): Args {
  if (body.length === 0) return {};
  const type = mediaType(contentType);
  // For ASCII (every base64 upload) latin1 gives the same text without UTF-8 decoding, and for a large
  // body Node keeps it outside the JS heap, where it is freed sooner.
  const ascii = isAscii(body);
  const decode = (start = 0, end = body.length) => (body.toString(ascii ? 'latin1' : 'utf8', start, end));
  if (longStrings.length > 0 && type !== 'application/x-www-form-urlencoded') {
    const args = parseAroundLongStrings(body, longStrings, decode, fileInPlace);
    if (args) return args;
  }
  const text = decode();
  // `curl -d '{...}'` sends JSON labelled as a form: a body that is plainly a JSON object is read as JSON.
  if (type === 'application/x-www-form-urlencoded' && !looksLikeJsonObject(text)) return fromSearchParams(new URLSearchParams(text));
  return asArgs(parseJson(text));
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    if (text.trim() === '') return {};
    throw new HttpError(400, 'invalid_argument', 'request body is not valid JSON (send JSON or a form)');
  }
}

function asArgs(value: unknown): Args {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpError(400, 'invalid_argument', 'request body must be a JSON object');
  }
  return value as Args;
}

/**
 * JSON.parse of a base64 upload spends most of its time on the one huge string (scanning it for
 * escapes and copying it: ~25 ms for 8 MiB). A string BodyShape saw without an escape is its bytes as
 * they are, so it is cut out: the rest is parsed with a placeholder in its place (a per-call random
 * one), and the placeholder, where it is a top-level value, becomes the bytes as a string. Anything
 * else (a long key, a long string inside an array, a raw line break JSON would refuse) is undefined:
 * the caller parses the whole body as before.
 */
function parseAroundLongStrings(
  body: Buffer,
  spans: ReadonlyArray<[number, number]>,
  decode: (start?: number, end?: number) => string,
  fileInPlace: boolean,
): Args | undefined {
  const nonce = `\\u0000${randomBytes(9).toString('base64')}:`; // JSON text for a string no JSON caller would send
  const parsedNonce = JSON.parse(`"${nonce}"`) as string;
  const pieces: string[] = [];
  let at = 0;
  for (let i = 0; i < spans.length; i++) {
    const [start, end] = spans[i];
    const span = body.subarray(start, end);
    // Raw line breaks and tabs are not JSON (and decodeFile would take them as MIME line breaks): the
    // whole parse refuses them. Other control characters: below, on the strings.
    if (span.indexOf(0x0a) !== -1 || span.indexOf(0x0d) !== -1 || span.indexOf(0x09) !== -1) return undefined;
    pieces.push(decode(at, start), nonce, String(i));
    at = end;
  }
  pieces.push(decode(at));
  const args = asArgs(parseJson(pieces.join('')));
  const found: Array<[string, [number, number]]> = [];
  for (const [name, value] of Object.entries(args)) {
    if (typeof value !== 'string' || !value.startsWith(parsedNonce)) continue;
    const span = spans[Number(value.slice(parsedNonce.length))];
    if (!span) return undefined;
    found.push([name, span]);
  }
  if (found.length !== spans.length) return undefined;
  // Every string JSON.parse would refuse for a raw control character is refused the same way (the
  // whole parse says so). The file decoded in place needs no such check: its decoder refuses any
  // character that is not base64, and the text then goes on as a string, which decodeFile refuses.
  const inPlace = (name: string) => name === 'file' && fileInPlace;
  const strings = found.map(([name, [start, end]]) => (inPlace(name) ? undefined : decode(start, end)));
  if (strings.some((v) => v !== undefined && RAW_CONTROL.test(v))) return undefined;
  // Only now, with no whole-body parse left to fall back to, may the file's text be decoded where it is.
  found.forEach(([name, [start, end]], i) => (args[name] = strings[i] ?? (decodeInPlace(body, start, end) || decode(start, end))));
  return args;
}

/** "Application/JSON; charset=utf-8" → "application/json" */
export function mediaType(contentType: string | undefined): string {
  if (!contentType) return '';
  const semi = contentType.indexOf(';');
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

export interface CallInput {
  args: Args;
  userKeys: string[];
  adminKeys: string[];
  /** `_method` override, as @syncano/core sends it */
  methodOverride?: string;
}

const USER_KEY_ARGS = ['user_key', '_user_key'];
const ADMIN_KEY_ARGS = ['api_key', '_api_key'];

/**
 * Takes the key arguments out of args. A key is a string (a number is taken as its digits, as a form
 * would send it); a repeated query argument gives an array of them. Anything else (an object, a
 * nested array, a boolean) is a malformed argument: 400, before any lookup.
 */
function takeStrings(args: Args, names: string[], into: string[]): void {
  for (const n of names) {
    if (!Object.prototype.hasOwnProperty.call(args, n)) continue;
    const v = args[n];
    delete args[n];
    for (const s of Array.isArray(v) ? v : [v]) {
      if (s === undefined || s === null || s === '') continue;
      if (typeof s === 'string') into.push(s);
      else if (typeof s === 'number' && Number.isFinite(s)) into.push(String(s));
      else throw new HttpError(400, 'invalid_argument', `${n} must be a string`);
    }
  }
}

function headerValues(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  if (typeof v === 'string') {
    const t = v.trim();
    return t === '' ? [] : [t];
  }
  return (Array.isArray(v) ? v : [v]).map((s) => s.trim()).filter((s) => s !== '');
}

function takeMethod(args: Args): string | undefined {
  if (!Object.prototype.hasOwnProperty.call(args, '_method')) return undefined;
  const m = args._method;
  delete args._method;
  return typeof m === 'string' && /^(GET|POST|PUT|PATCH|DELETE)$/i.test(m) ? m.toUpperCase() : undefined;
}

/**
 * What the headers and the query string bring, before any body is read: the keys (removed from the
 * query's args) and the query's arguments.
 */
export function collectCall(req: IncomingMessage, query: URLSearchParams | undefined): CallInput {
  const q = query ? fromSearchParams(query) : {};
  const userKeys = headerValues(req.headers['x-user-key']);
  const adminKeys = headerValues(req.headers['x-api-key']);
  takeStrings(q, USER_KEY_ARGS, userKeys);
  takeStrings(q, ADMIN_KEY_ARGS, adminKeys);
  return { args: q, userKeys, adminKeys, methodOverride: takeMethod(q) };
}

/** The call with its body's arguments merged in (the body wins), and the keys the body brings. */
export function withBody(early: CallInput, body: Args): CallInput {
  const b: Args = { ...body };
  const userKeys = [...early.userKeys];
  const adminKeys = [...early.adminKeys];
  takeStrings(b, USER_KEY_ARGS, userKeys);
  takeStrings(b, ADMIN_KEY_ARGS, adminKeys);
  const methodOverride = takeMethod(b) ?? early.methodOverride;
  return { args: { ...early.args, ...b }, userKeys, adminKeys, methodOverride };
}

const HIDDEN_HEADERS = new Set(['x-user-key', 'x-api-key', 'authorization', 'cookie', 'proxy-authorization']);

/** meta.request as the platform gave it: REQUEST_METHOD, PATH_INFO, REMOTE_ADDR, HTTP_* (no key headers). */
export function requestMeta(req: IncomingMessage, pathname: string, method: string): Record<string, string> {
  const out: Record<string, string> = {
    REQUEST_METHOD: method,
    PATH_INFO: pathname,
    REMOTE_ADDR: req.socket.remoteAddress ?? '',
  };
  const headers = req.headers;
  for (const name in headers) {
    const value = headers[name];
    if (HIDDEN_HEADERS.has(name) || value === undefined) continue;
    out[metaHeaderName(name)] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

// "user-agent" → "HTTP_USER_AGENT", remembered: clients send the same few header names every time.
const metaNames = new Map<string, string>();
function metaHeaderName(name: string): string {
  let meta = metaNames.get(name);
  if (meta === undefined) {
    meta = 'HTTP_' + name.toUpperCase().replace(/-/g, '_');
    if (metaNames.size < 1000) metaNames.set(name, meta);
  }
  return meta;
}

/**
 * A call whose body is the file itself (`curl --data-binary @photo.png -H 'Content-Type: image/png'`):
 * a POST to an endpoint that declares a `file` parameter, with a body that is neither JSON nor a form.
 * Such a body is never parsed; the handler gets it as a stream in `args.file`.
 */
export function isRawUpload(req: IncomingMessage, takesFile: boolean): boolean {
  if (!takesFile || req.method !== 'POST') return false;
  const type = mediaType(req.headers['content-type']);
  // multipart/form-data is a form, not a file: it is refused as a body the host does not parse (400), as before
  if (type === '' || type === 'application/json' || type === 'application/x-www-form-urlencoded' || type === 'multipart/form-data') return false;
  return req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
}

/** A raw body is never read to find a key in it: without one in a header or the query it is refused unread. */
export function rawBodyWithoutKey(needsAdmin: boolean): HttpError {
  return needsAdmin
    ? new HttpError(403, 'forbidden', 'this needs the admin key in the X-API-KEY header (or api_key in the query): a file sent as the request body is not read without it')
    : new HttpError(401, 'unauthorized', 'no key came in a header or the query: a file sent as the request body needs its key in the X-USER-KEY or X-API-KEY header (or user_key / api_key in the query)');
}

/** The call with its raw body as `file`: a `file` in the query is not the file. */
export function withRawBody(early: CallInput, body: RawBody): CallInput {
  return { ...early, args: { ...early.args, file: body } };
}

/** What a streamed body holds of the in-flight budget at most: its share is bounded by what the handler buffers (one part). */
export const RAW_BODY_HOLD = 8 * 1024 * 1024;

/** A streamed body is read under the same bounds as a buffered one; its shape is the handler's business. */
export type RawBodyOptions = Omit<ReadBodyOptions, 'shape'>;

/**
 * A raw upload's body as the handler reads it, under the bounds readBody keeps: the byte limit, the
 * idle and slow-body timeouts (408), ClientGone when the client leaves first. The timeouts count only
 * while the handler wants bytes: a store that is slow to take them is not the client's fault.
 * `Expect: 100-continue` is answered when the handler first reads, so a call refused before (415,
 * 400, 413 by Content-Length) never makes the client send its body. `failure` is why the host ended it.
 */
export class RawBody extends Readable {
  /** the request's Content-Type, as sent */
  readonly contentType: string | undefined;
  /** the declared Content-Length; undefined for a chunked body */
  readonly contentLength: number | undefined;
  failure?: Error;
  private received = 0;
  private wanting = false;
  private continued = false;
  private lastData = 0;
  private activeMs = 0;
  private activeSince = 0;
  private unwatch: (() => void) | undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly o: RawBodyOptions,
  ) {
    super({ highWaterMark: 256 * 1024 });
    this.contentType = req.headers['content-type'];
    const declared = req.headers['content-length'];
    this.contentLength = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined;
    if (this.contentLength !== undefined && this.contentLength > o.limit) throw o.overLimit();
    const hold = Math.min(this.contentLength ?? RAW_BODY_HOLD, RAW_BODY_HOLD);
    if (!o.budget.take(hold)) throw busyError(`the host holds as many request bodies as it may (${o.budget.max} bytes); try again shortly`);
    o.ticket.bytes += hold;
    req.pause();
    req.on('data', this.onData);
    req.on('end', this.onEnd);
    req.on('error', this.onGone);
    req.on('close', this.onGone);
  }

  /** Being read by the handler, bytes still coming (within the idle timeout): a call still busy with its body. */
  get receiving(): boolean {
    return this.continued && !this.destroyed && !this.readableEnded && performance.now() - this.lastData < this.o.idleTimeoutMs;
  }

  _read(): void {
    if (!this.continued) {
      this.continued = true;
      this.o.sendContinue?.();
      this.unwatch = watchBody(checkPeriod(this.o.idleTimeoutMs), this.check);
    }
    if (!this.wanting) {
      this.wanting = true;
      this.activeSince = this.lastData = performance.now();
    }
    this.req.resume();
  }

  private readonly onData = (c: Buffer) => {
    this.lastData = performance.now();
    this.received += c.length;
    if (this.received > this.o.limit) return this.fail(this.o.overLimit());
    if (!this.push(c)) {
      this.req.pause();
      this.pauseClock();
    }
  };

  private readonly onEnd = () => {
    this.detach();
    this.push(null);
  };

  private readonly onGone = () => {
    if (!this.req.complete) this.fail(new ClientGone());
  };

  private pauseClock(): void {
    if (!this.wanting) return;
    this.wanting = false;
    this.activeMs += performance.now() - this.activeSince;
  }

  private readonly check = () => {
    if (!this.wanting) return;
    const now = performance.now();
    const active = this.activeMs + (now - this.activeSince);
    if (now - this.lastData >= this.o.idleTimeoutMs) {
      this.fail(new HttpError(408, 'request_timeout', `no request body bytes for ${this.o.idleTimeoutMs} ms`));
    } else if (active >= this.o.idleTimeoutMs && this.received < (active / 1000) * this.o.minBytesPerSecond) {
      this.fail(new HttpError(408, 'request_timeout', `the request body came slower than ${this.o.minBytesPerSecond} bytes a second`));
    }
  };

  private fail(err: Error): void {
    if (this.failure || this.readableEnded) return;
    this.failure = err;
    this.destroy(err);
  }

  private detach(): void {
    this.unwatch?.();
    this.req.off('data', this.onData);
    this.req.off('end', this.onEnd);
    this.req.off('error', this.onGone);
    this.req.off('close', this.onGone);
  }

  _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.detach();
    this.req.pause(); // the rest is not read: the host answers with Connection: close
    callback(err);
  }
}
