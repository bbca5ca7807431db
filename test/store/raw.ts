/**
 * Raw HTTP to the embedded store, for requests the SDK would not send: node:http (and bare TCP) with
 * SigV4 signatures from @smithy/signature-v4, made valid and then tampered with where a test says so;
 * and the aws-chunked chunk signer of the AWS docs ("Signature Calculations for the Authorization
 * Header: Transferring Payload in Multiple Chunks").
 */
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';

export interface StoreCreds {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export const md5hex = (b: Buffer | string): string => crypto.createHash('md5').update(b).digest('hex');
export const md5b64 = (b: Buffer | string): string => crypto.createHash('md5').update(b).digest('base64');
export const sha256hex = (b: Buffer | string): string => crypto.createHash('sha256').update(b).digest('hex');
export const sha256b64 = (b: Buffer | string): string => crypto.createHash('sha256').update(b).digest('base64');
export const EMPTY_SHA256 = sha256hex('');

/** CRC-32 (IEEE, as x-amz-checksum-crc32), big-endian, base64. */
export function crc32b64(b: Buffer): string {
  let crc = 0xffffffff;
  for (const byte of b) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString('base64');
}

/** S3's URI encoding of a key for the path (each segment, `/` kept). */
export function encodeKey(key: string): string {
  return key
    .split('/')
    .map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()))
    .join('/');
}

class Sha256 {
  private h: crypto.Hash | crypto.Hmac;
  constructor(secret?: unknown) {
    this.h = secret ? crypto.createHmac('sha256', Buffer.from(secret as Uint8Array | string)) : crypto.createHash('sha256');
  }
  update(data: unknown): void {
    this.h.update(typeof data === 'string' ? data : Buffer.from(data as Uint8Array));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
}

export function signerFor(c: StoreCreds): SignatureV4 {
  return new SignatureV4({
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
    region: c.region,
    service: 's3',
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
}

export interface SignInput {
  method: string;
  /** already URI-encoded, starting with `/` */
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  /** the payload hash to sign (x-amz-content-sha256); default: the SHA-256 of body */
  payloadHash?: string;
  body?: Buffer;
  signingDate?: Date;
}

/** Headers for a header-signed (Authorization) request; every header given is signed. */
export async function signHeaders(c: StoreCreds, i: SignInput): Promise<Record<string, string>> {
  const url = new URL(c.endpoint);
  const headers: Record<string, string> = { host: url.host, ...(i.headers ?? {}) };
  headers['x-amz-content-sha256'] = i.payloadHash ?? sha256hex(i.body ?? Buffer.alloc(0));
  const signed = await signerFor(c).sign(
    { method: i.method, protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: i.path, query: i.query ?? {}, headers },
    { signingDate: i.signingDate },
  );
  return signed.headers as Record<string, string>;
}

/** A presigned URL (query signature) for method and path; `headers` given are signed too. */
export async function presignUrl(
  c: StoreCreds,
  i: { method: string; path: string; query?: Record<string, string>; headers?: Record<string, string>; expiresIn?: number; signingDate?: Date },
): Promise<string> {
  const url = new URL(c.endpoint);
  // as the SDK's presigner: X-Amz-Content-Sha256=UNSIGNED-PAYLOAD in the query (its casing); headers given stay headers, and signed
  const headers: Record<string, string> = { host: url.host, ...(i.headers ?? {}), 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD' };
  const unhoistableHeaders = new Set(Object.keys(i.headers ?? {}).map((h) => h.toLowerCase()));
  const signed = await signerFor(c).presign(
    { method: i.method, protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: i.path, query: i.query ?? {}, headers },
    { expiresIn: i.expiresIn ?? 300, signingDate: i.signingDate, unhoistableHeaders },
  );
  const qs = Object.entries(signed.query ?? {})
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  return `${c.endpoint}${i.path}?${qs}`;
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/** One request over node:http (a fresh connection); body a Buffer or chunks written one by one. */
export function request(
  url: string,
  o: { method?: string; headers?: Record<string, string | string[]>; body?: Buffer | string | AsyncIterable<Buffer>; timeoutMs?: number } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: o.method ?? 'GET', headers: o.headers, agent: false });
    const timer = setTimeout(() => req.destroy(new Error(`no answer in ${o.timeoutMs ?? 20_000} ms: ${o.method} ${url}`)), o.timeoutMs ?? 20_000);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      res.on('end', () => {
        clearTimeout(timer);
        const body = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
      });
    });
    const b = o.body;
    if (b === undefined || typeof b === 'string' || Buffer.isBuffer(b)) {
      req.end(b);
    } else {
      (async () => {
        for await (const chunk of b) {
          if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        }
        req.end();
      })().catch((err) => req.destroy(err as Error));
    }
  });
}

export type RawOutcome =
  | { kind: 'answer'; status: number; head: string }
  /** the store closed (or reset) the connection without a status line */
  | { kind: 'closed'; error?: string; afterEnd: boolean }
  | { kind: 'timeout'; sent: number; received: string };

/**
 * Writes bytes on a bare TCP connection (each element of `parts` one write, `pauseMs` between them);
 * `endAfterMs` after the last write the client half-closes (node's server then aborts a request it has
 * not answered); the outcome is the store's status line, a close without one, or a timeout. Nothing is
 * parsed by node on the client side.
 */
export function sendRaw(
  port: number,
  parts: Buffer[],
  o: { timeoutMs?: number; endAfterMs?: number; pauseMs?: number } = {},
): Promise<RawOutcome> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let got = Buffer.alloc(0);
    let sent = 0;
    let done = false;
    let ended = false;
    let endTimer: NodeJS.Timeout | undefined;
    const finish = (out: RawOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(endTimer);
      sock.destroy();
      resolve(out);
    };
    const fromGot = (): RawOutcome | null => {
      const s = got.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(s);
      return m ? { kind: 'answer', status: Number(m[1]), head: s.slice(0, Math.max(0, s.indexOf('\r\n\r\n'))) } : null;
    };
    const timer = setTimeout(() => finish(fromGot() ?? { kind: 'timeout', sent, received: got.toString('latin1').slice(0, 200) }), timeoutMs);
    sock.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      // the status line and headers are the answer; whatever follows does not matter here
      if (got.includes('\r\n\r\n')) finish(fromGot() ?? { kind: 'closed', error: 'not HTTP: ' + got.toString('latin1').slice(0, 80), afterEnd: ended });
    });
    sock.on('error', (err) => finish(fromGot() ?? { kind: 'closed', error: err.message, afterEnd: ended }));
    sock.on('close', () => finish(fromGot() ?? { kind: 'closed', afterEnd: ended }));
    sock.on('connect', () => {
      (async () => {
        for (const [i, p] of parts.entries()) {
          if (done) return;
          if (i > 0 && o.pauseMs) await new Promise((r) => setTimeout(r, o.pauseMs));
          sent += p.length;
          if (!sock.write(p)) await new Promise((r) => sock.once('drain', r));
        }
        const end = () => {
          if (done) return;
          ended = true;
          sock.end();
        };
        if (o.endAfterMs === undefined || o.endAfterMs < timeoutMs) endTimer = setTimeout(end, o.endAfterMs ?? 0);
      })().catch(() => undefined);
    });
  });
}

/** A raw HTTP/1.1 request head (CRLF lines, blank line), headers in the order given, repeats allowed. */
export function rawHead(method: string, target: string, headers: Array<[string, string]>): Buffer {
  return Buffer.from(`${method} ${target} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`, 'latin1');
}

// ---- aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) ----

function hmac(key: Buffer | string, data: string): Buffer {
  return crypto.createHmac('sha256', key).update(data, 'utf8').digest();
}

export function signingKey(secret: string, shortDate: string, region: string, service = 's3'): Buffer {
  return hmac(hmac(hmac(hmac('AWS4' + secret, shortDate), region), service), 'aws4_request');
}

export const STREAMING_PAYLOAD = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';

/** The encoded length of an aws-chunked body with these chunk sizes (the final 0-size chunk added). */
export function awsChunkedLength(sizes: number[]): number {
  let n = 0;
  for (const s of [...sizes, 0]) n += s.toString(16).length + ';chunk-signature='.length + 64 + 2 + s + 2;
  return n;
}

/**
 * A header-signed PUT with an aws-chunked body: headers (seed signature) and the framed body, each
 * chunk signed as `AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n<previous signature>\n<hash("")>\n<hash(chunk)>`.
 * `tamper(i, sig)` may return another signature for chunk i (the final empty chunk is i = chunks.length).
 */
export async function awsChunkedPut(
  c: StoreCreds,
  path: string,
  chunks: Buffer[],
  o: { headers?: Record<string, string>; tamper?: (i: number, sig: string) => string } = {},
): Promise<{ headers: Record<string, string>; body: Buffer }> {
  const decoded = chunks.reduce((n, b) => n + b.length, 0);
  const signingDate = new Date();
  const headers = await signHeaders(c, {
    method: 'PUT',
    path,
    payloadHash: STREAMING_PAYLOAD,
    signingDate,
    headers: {
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': String(decoded),
      'content-length': String(awsChunkedLength(chunks.map((b) => b.length))),
      ...(o.headers ?? {}),
    },
  });
  const auth = headers.authorization;
  let prev = /Signature=([0-9a-f]{64})/.exec(auth)![1];
  const longDate = headers['x-amz-date'];
  const shortDate = longDate.slice(0, 8);
  const scope = `${shortDate}/${c.region}/s3/aws4_request`;
  const key = signingKey(c.secretAccessKey, shortDate, c.region);
  const framed: Buffer[] = [];
  const all = [...chunks, Buffer.alloc(0)];
  all.forEach((data, i) => {
    const sts = ['AWS4-HMAC-SHA256-PAYLOAD', longDate, scope, prev, EMPTY_SHA256, sha256hex(data)].join('\n');
    const sig = crypto.createHmac('sha256', key).update(sts, 'utf8').digest('hex');
    prev = sig;
    const sent = o.tamper ? o.tamper(i, sig) : sig;
    framed.push(Buffer.from(`${data.length.toString(16)};chunk-signature=${sent}\r\n`), data, Buffer.from('\r\n'));
  });
  return { headers, body: Buffer.concat(framed) };
}

/** The S3 error code of an XML error body. */
export function codeOf(body: string): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
}
