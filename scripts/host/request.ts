// Request → arguments and keys: query string + JSON or form body (the body wins), keys taken out of args.
import { isAscii } from 'node:buffer';
import type { IncomingMessage } from 'node:http';

export class HttpError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Reads the body, refusing (413) as soon as Content-Length or the bytes read pass `limit`. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit) {
      reject(new HttpError(413, 'payload_too_large', `request body over ${limit} bytes`));
      return;
    }
    // With a Content-Length the body is copied once into a buffer of its size (large base64 uploads
    // would otherwise sit in memory twice: as chunks and as their concatenation).
    const expected = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined;
    const whole = expected !== undefined ? Buffer.allocUnsafe(expected) : undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    const onData = (c: Buffer) => {
      if (size + c.length > limit || (whole && size + c.length > whole.length)) {
        failed = true;
        req.off('data', onData);
        chunks.length = 0;
        reject(new HttpError(413, 'payload_too_large', `request body over ${whole ? 'its Content-Length or ' : ''}${limit} bytes`));
        return;
      }
      if (whole) c.copy(whole, size);
      else chunks.push(c);
      size += c.length;
    };
    req.on('data', onData);
    req.on('end', () => {
      if (!failed) resolve(whole ? whole.subarray(0, size) : Buffer.concat(chunks, size));
    });
    req.on('error', (err) => {
      if (!failed) reject(err);
    });
  });
}

type Args = Record<string, unknown>;

function fromSearchParams(sp: URLSearchParams): Args {
  const out: Args = Object.create(null);
  for (const key of new Set(sp.keys())) {
    const all = sp.getAll(key);
    out[key] = all.length === 1 ? all[0] : all;
  }
  return { ...out };
}

function looksLikeJsonObject(text: string): boolean {
  const trimmed = text.trim();
  return trimmed.startsWith('{') && trimmed.endsWith('}');
}

export function parseBody(body: Buffer, contentType: string | undefined): Args {
  if (body.length === 0) return {};
  const type = mediaType(contentType);
  // For ASCII (every base64 upload) latin1 gives the same text without UTF-8 decoding, and for a large
  // body Node keeps it outside the JS heap, where it is freed sooner.
  const text = isAscii(body) ? body.toString('latin1') : body.toString('utf8');
  // `curl -d '{...}'` sends JSON labelled as a form: a body that is plainly a JSON object is read as JSON.
  if (type === 'application/x-www-form-urlencoded' && !looksLikeJsonObject(text)) return fromSearchParams(new URLSearchParams(text));
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    if (text.trim() === '') return {};
    throw new HttpError(400, 'invalid_argument', 'request body is not valid JSON (send JSON or a form)');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpError(400, 'invalid_argument', 'request body must be a JSON object');
  }
  return value as Args;
}

/** "Application/JSON; charset=utf-8" → "application/json" */
function mediaType(contentType: string | undefined): string {
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

function takeStrings(args: Args, names: string[], into: string[]): void {
  for (const n of names) {
    if (!Object.prototype.hasOwnProperty.call(args, n)) continue;
    const v = args[n];
    delete args[n];
    for (const s of Array.isArray(v) ? v : [v]) {
      if (s === undefined || s === null || s === '') continue;
      into.push(String(s));
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

/** Merges query and body (the body wins) and collects every key candidate, removing them from args. */
export function collectCall(req: IncomingMessage, query: URLSearchParams | undefined, body: Args): CallInput {
  const q = query ? fromSearchParams(query) : {};
  const b: Args = { ...body };
  const userKeys = headerValues(req.headers['x-user-key']);
  const adminKeys = headerValues(req.headers['x-api-key']);
  for (const src of [q, b]) {
    takeStrings(src, USER_KEY_ARGS, userKeys);
    takeStrings(src, ADMIN_KEY_ARGS, adminKeys);
  }
  let methodOverride: string | undefined;
  for (const src of [q, b]) {
    if (Object.prototype.hasOwnProperty.call(src, '_method')) {
      const m = src._method;
      delete src._method;
      if (typeof m === 'string' && /^(GET|POST|PUT|PATCH|DELETE)$/i.test(m)) methodOverride = m.toUpperCase();
    }
  }
  return { args: query ? { ...q, ...b } : b, userKeys, adminKeys, methodOverride };
}

const HIDDEN_HEADERS = new Set(['x-user-key', 'x-api-key', 'authorization', 'cookie', 'proxy-authorization']);

/** meta.request as the platform gave it: REQUEST_METHOD, PATH_INFO, REMOTE_ADDR, HTTP_* (no key headers). */
export function requestMeta(req: IncomingMessage, pathname: string, method: string): Record<string, string> {
  const out: Record<string, string> = {
    REQUEST_METHOD: method,
    PATH_INFO: pathname,
    REMOTE_ADDR: req.socket.remoteAddress ?? '',
  };
  for (const [name, value] of Object.entries(req.headers)) {
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
