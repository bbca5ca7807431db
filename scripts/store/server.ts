/**
 * The embedded S3-compatible store: routes each request to one operation, after its signature is
 * verified. Deny by default: an operation, sub-resource, header or form field it does not implement
 * is refused (501 NotImplemented), never ignored. No request can stop it: every failure becomes an
 * S3 error answer, and a malformed connection is closed.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { escapeUri } from '../../src/lib/sigv4';
import { capConnectionsPerClient, isLoopback } from './address';
import { verifyRequest, type KeyRing, type RequestParts, type Verified } from './auth';
import { ASK_FOR_BODY } from './body';
import * as buckets from './buckets';
import { corsHeaders, preflight } from './cors';
import { Disk, type Bucket } from './disk';
import { errorXml, internalError, S3Error, fail } from './errors';
import { deleteObject, getObject, listObjects, putObject } from './objects';
import { closeAfterAnswer, LINGER_MS } from './linger';
import { postObject } from './post';
import type { Reply } from './reply';
import * as multipart from './multipart';

/** Sub-resources of S3 this store does not implement: refused whatever the method. */
const UNIMPLEMENTED = new Set([
  'acl', 'accelerate', 'analytics', 'attributes', 'encryption', 'intelligent-tiering', 'inventory', 'legal-hold',
  'logging', 'metrics', 'notification', 'object-lock', 'ownershipControls', 'policy', 'policyStatus', 'publicAccessBlock',
  'replication', 'requestPayment', 'restore', 'retention', 'select', 'select-type', 'tagging', 'torrent', 'versionId',
  'versioning', 'versions', 'website', 'renameObject', 'session',
]);
/** The presigned signature's own parameters. */
const SIGNATURE_PARAMS = new Set([
  'x-amz-algorithm', 'x-amz-credential', 'x-amz-date', 'x-amz-expires', 'x-amz-signedheaders', 'x-amz-signature',
  'x-amz-security-token', 'x-amz-content-sha256',
]);
/** Query parameters an object GET/HEAD/PUT/DELETE may carry besides its signature. */
const OBJECT_PARAMS = new Set([
  'x-id', 'response-content-type', 'response-content-disposition', 'response-content-encoding', 'response-content-language',
  'response-cache-control', 'response-expires',
]);

export interface StoreServerOptions {
  disk: Disk;
  keys: KeyRing;
  log?: (line: string) => void;
  /** How long a form POST may take to send its fields, up to the file (default FORM_FIELDS_TIMEOUT_MS). */
  formFieldsTimeoutMs?: number;
  /** Connections one address may hold (default MAX_CONNECTIONS_PER_ADDRESS); loopback not counted unless capLoopback. */
  maxConnectionsPerAddress?: number;
  capLoopback?: boolean;
  /** Refused bodies read and dropped at once (default MAX_DRAINS); past it a refusal is answered at once. */
  maxDrains?: number;
}

/**
 * Links send browsers straight here, so the store sees its clients' own addresses: one client (an IPv4
 * address, an IPv6 /64: addressKey) may hold at most this many connections, and cannot take the
 * MAX_CONNECTIONS from everyone else. Loopback is the host's own (it runs the store on its thread, up
 * to a few hundred pooled connections per process) and is not counted.
 */
export const MAX_CONNECTIONS_PER_ADDRESS = 256;
/**
 * Connections all clients but loopback may hold together. The host's own are on top of these (up to as
 * many again): outsiders who hold all of theirs must not leave the host unable to reach its store.
 */
export const MAX_CONNECTIONS = 2048;

function parseRequest(req: IncomingMessage): { parts: RequestParts; bucket: string; key: string | undefined; query: Map<string, string> } {
  const url = req.url ?? '/';
  if (!url.startsWith('/') || url.length > 16 * 1024) fail('InvalidArgument', 'Invalid URI');
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  let segments: string[];
  const query: Array<[string, string]> = [];
  try {
    segments = rawPath.split('/').map((s) => decodeURIComponent(s));
    for (const pair of rawQuery.split('&')) {
      if (!pair) continue;
      const eq = pair.indexOf('=');
      query.push(eq < 0 ? [decodeURIComponent(pair), ''] : [decodeURIComponent(pair.slice(0, eq)), decodeURIComponent(pair.slice(eq + 1))]);
    }
  } catch {
    return fail('InvalidArgument', 'Couldn\'t parse the specified URI.');
  }
  if (segments.some((s) => s.includes('\0')) || query.length > 100) fail('InvalidArgument', 'Invalid URI');
  const headers = new Map<string, string[]>();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const list = headers.get(name);
    if (list) list.push(raw[i + 1]);
    else headers.set(name, [raw[i + 1]]);
  }
  const parts: RequestParts = { method: req.method ?? 'GET', canonicalPath: segments.map(escapeUri).join('/'), query, headers };
  const first = new Map<string, string>();
  for (const [k, v] of query) if (!first.has(k)) first.set(k, v);
  return { parts, bucket: segments[1] ?? '', key: segments.length > 2 ? segments.slice(2).join('/') : undefined, query: first };
}

/** Whether a request with this method and these headers carries a body the operation will read. */
const isFormPost = (req: IncomingMessage) => /^multipart\/form-data/i.test(req.headers['content-type'] ?? '');

async function route(req: IncomingMessage, res: ServerResponse, o: StoreServerOptions, ctx: { bucket?: Bucket }): Promise<Reply> {
  const { parts, bucket: bucketName, key, query } = parseRequest(req);
  const method = parts.method;
  ctx.bucket = bucketName ? o.disk.buckets.get(bucketName) : undefined;

  if (method === 'OPTIONS') {
    const r = preflight(ctx.bucket, req.headers.origin, req.headers['access-control-request-method'], req.headers['access-control-request-headers'] as string | undefined);
    return { status: r.status, headers: r.headers };
  }
  // Browser form upload: authenticated by its policy, inside the form.
  if (method === 'POST' && bucketName && key === undefined && isFormPost(req) && parts.headers.get('authorization') === undefined && !query.has('X-Amz-Algorithm')) {
    for (const name of parts.headers.keys()) {
      if (name.startsWith('x-amz-')) fail('AccessDenied', `A POST form upload cannot carry the header ${name}`);
    }
    continueIfAsked(req, res);
    return postObject(req, o.disk.get(bucketName), o.keys, Date.now(), o.formFieldsTimeoutMs);
  }

  const v = verifyRequest(parts, o.keys);
  for (const name of query.keys()) {
    if (UNIMPLEMENTED.has(name)) fail('NotImplemented', `The ${name} sub-resource is not implemented by this store`);
    // x-amz-* parameters act as headers on a presigned request: only the signature's own are taken
    if (/^x-amz-/i.test(name) && !SIGNATURE_PARAMS.has(name.toLowerCase())) {
      fail('NotImplemented', `The ${name} parameter implies functionality that is not implemented by this store`);
    }
  }
  continueWhenRead(req, res);

  if (!bucketName) {
    if (method === 'GET' && key === undefined) return buckets.listBuckets(o.disk);
    return fail('MethodNotAllowed', 'The specified method is not allowed against this resource.');
  }
  if (key === undefined || key === '') return bucketOperation(req, parts, v, o.disk, bucketName, query);

  const bucket = o.disk.get(bucketName);
  if (query.has('uploads') || query.has('uploadId')) return multipart.route(req, parts, v, bucket, key, query);
  for (const name of query.keys()) {
    if (!OBJECT_PARAMS.has(name) && !SIGNATURE_PARAMS.has(name.toLowerCase())) fail('NotImplemented', `The ${name} parameter is not implemented by this store`);
  }
  switch (method) {
    case 'PUT':
      return putObject(req, parts, v, bucket, key);
    case 'GET':
    case 'HEAD':
      return getObject(parts, query, bucket, key, method === 'HEAD');
    case 'DELETE':
      return deleteObject(parts, bucket, key);
    default:
      return fail('MethodNotAllowed', 'The specified method is not allowed against this resource.');
  }
}

function bucketOperation(req: IncomingMessage, parts: RequestParts, v: Verified, disk: Disk, name: string, query: Map<string, string>): Promise<Reply> | Reply {
  const method = parts.method;
  if (method === 'PUT' && query.size === 0) return buckets.createBucket(req, parts, v, disk, name);
  const bucket = disk.get(name);
  const sub = query.has('delete') ? 'delete' : query.has('cors') ? 'cors' : query.has('lifecycle') ? 'lifecycle' : query.has('uploads') ? 'uploads' : query.has('location') ? 'location' : '';
  switch (`${method} ${sub}`) {
    case 'HEAD ':
      return { status: 200, headers: { 'x-amz-bucket-region': 'us-east-1' } };
    case 'GET ':
      return listObjects(query, bucket);
    case 'DELETE ':
      disk.drop(name);
      return { status: 204, headers: {} };
    case 'GET location':
      return { status: 200, headers: { 'Content-Type': 'application/xml' }, body: '<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>' };
    case 'PUT cors':
      return buckets.putCors(req, parts, v, bucket);
    case 'GET cors':
      return buckets.getCors(bucket);
    case 'DELETE cors':
      return buckets.deleteSetting(bucket, 'cors');
    case 'PUT lifecycle':
      return buckets.putLifecycle(req, parts, v, bucket);
    case 'GET lifecycle':
      return buckets.getLifecycle(bucket);
    case 'DELETE lifecycle':
      return buckets.deleteSetting(bucket, 'lifecycle');
    case 'POST delete':
      return buckets.deleteObjects(req, parts, v, bucket);
    case 'GET uploads':
      return multipart.listUploads(query, bucket);
    default:
      return fail(sub || method !== 'POST' ? 'MethodNotAllowed' : 'NotImplemented', 'The specified method is not allowed against this resource.');
  }
}

const asksContinue = (req: IncomingMessage) => (req.headers.expect ?? '').toLowerCase() === '100-continue';
const CONTINUED = Symbol('continued');
const DROPPED = Symbol('body dropped');
const CLOSING = Symbol('answered Connection: close');

/** Sends `100 Continue` to a client that asked for it, once: a form at once, any other body when it is first read (bodyOf). */
function continueIfAsked(req: IncomingMessage, res: ServerResponse): void {
  const r = req as IncomingMessage & { [CONTINUED]?: true };
  if (!asksContinue(req) || r[CONTINUED]) return;
  res.writeContinue();
  r[CONTINUED] = true;
}
const continueWhenRead = (req: IncomingMessage, res: ServerResponse) => {
  if (asksContinue(req)) (req as IncomingMessage & { [ASK_FOR_BODY]?: () => void })[ASK_FOR_BODY] = () => continueIfAsked(req, res);
};

/**
 * A refusal is answered once the client has sent its body, if that body has a Content-Length of at
 * most DRAIN_MAX_BYTES: it is read and dropped first, for at most about LINGER_MS. Answered while the
 * client is still sending, the close that follows the answer resets the connection, and the reset
 * throws the answer away: the client saw `EPIPE` instead of its 403 (fetch with a form on Node 22 and
 * 24; a PUT of 20 MB to a link with a bad signature, one in twenty). Any other refused body (chunked,
 * longer, or a client waiting for a 100 it was not sent) is answered at once and not read: a chunked
 * body of 1-byte chunks costs a callback a byte, and a few connections of them kept the store's
 * thread busy (the second attack pass). A body still coming after LINGER_MS is treated the same.
 */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
/**
 * Each drain is bounded (DRAIN_MAX_BYTES, LINGER_MS, the connections per address), but many addresses
 * together could keep the store reading refused bytes: past this many at once, a refusal is answered at
 * once, as a longer body is (the client may then see a reset instead of its answer, never more work).
 */
export const MAX_DRAINS = 64;
interface Drains {
  active: number;
  readonly max: number;
}
function drainable(req: IncomingMessage): boolean {
  if (req.complete || req.destroyed || req.headers['transfer-encoding'] !== undefined) return false;
  if (asksContinue(req) && !(req as IncomingMessage & { [CONTINUED]?: true })[CONTINUED]) return false;
  const length = req.headers['content-length'];
  return length !== undefined && /^\d{1,15}$/.test(length) && Number(length) <= DRAIN_MAX_BYTES;
}

/** Reads and drops the rest of a drainable body (its Content-Length bounds it), then answers; at most about LINGER_MS. */
function dropBodyThen(req: IncomingMessage, answer: () => void): void {
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    clearTimeout(t);
    req.off('readable', drop).off('end', finish).off('close', finish);
    answer();
  };
  // read() in 'readable' mode, not resume(): a parser that gave up may hold the stream in that mode
  const drop = () => {
    while (!done && req.read() !== null);
  };
  const t = setTimeout(finish, LINGER_MS * (0.75 + Math.random() / 2));
  req.on('readable', drop).once('end', finish).once('close', finish);
  drop();
}

/**
 * After a refusal whose body did not all come: closeAfterAnswer (the client reads the answer, nothing
 * more is read, the connection closes about LINGER_MS later), and nothing pipelined behind it runs
 * (RFC 9112 9.6: handle checks CLOSING).
 */
function refusedWhileSending(req: IncomingMessage, res: ServerResponse): void {
  (req.socket as IncomingMessage['socket'] & { [CLOSING]?: true })[CLOSING] = true;
  closeAfterAnswer(req.socket, res);
}

function send(req: IncomingMessage, res: ServerResponse, reply: Reply, extra: Record<string, string>, drains: Drains): void {
  const r = req as IncomingMessage & { [DROPPED]?: true };
  if (reply.status >= 400 && !r[DROPPED] && drains.active < drains.max && drainable(req)) {
    r[DROPPED] = true;
    drains.active++;
    dropBodyThen(req, () => {
      drains.active--;
      if (res.destroyed) return;
      try {
        send(req, res, reply, extra, drains);
      } catch {
        res.destroy();
      }
    });
    return;
  }
  const headers: Record<string, string> = { ...extra, ...reply.headers };
  if (!req.complete) {
    headers.Connection = 'close';
    if (reply.status >= 400) refusedWhileSending(req, res);
  }
  const noBody = req.method === 'HEAD' || reply.status === 304 || reply.status === 204;
  if (reply.file) {
    const { fd, start, end } = reply.file;
    res.writeHead(reply.status, headers);
    const stream = fs.createReadStream('', { fd, start, end, highWaterMark: 256 * 1024, autoClose: true });
    stream.on('error', () => res.destroy());
    res.on('close', () => stream.destroy());
    stream.pipe(res);
    return;
  }
  if (reply.body !== undefined && !noBody) headers['Content-Length'] = String(Buffer.byteLength(reply.body));
  else if (!noBody && headers['Content-Length'] === undefined) headers['Content-Length'] = '0';
  res.writeHead(reply.status, headers);
  res.end(noBody ? undefined : reply.body);
}

const errorReply = (e: S3Error, requestId: string): Reply => ({
  status: e.status,
  headers: { 'Content-Type': 'application/xml', ...e.extra },
  body: errorXml(e, requestId),
});

export function createStoreServer(o: StoreServerOptions): http.Server {
  const log = o.log ?? (() => {});
  // request ids: unique per start without a call to the random source per request
  const idPrefix = randomBytes(4).toString('hex').toUpperCase();
  let requests = 0;
  const drains: Drains = { active: 0, max: o.maxDrains ?? MAX_DRAINS };
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    // RFC 9112 9.6: nothing pipelined behind an answer with Connection: close runs
    if ((req.socket as object & { [CLOSING]?: true })[CLOSING]) return;
    const requestId = `${idPrefix}${(++requests).toString(16).toUpperCase().padStart(8, '0')}`;
    const ctx: { bucket?: Bucket } = {};
    req.on('error', () => {}); // a client gone mid-body ends its own request, nothing else
    res.on('error', () => {});
    route(req, res, o, ctx).then(
      (reply) => {
        if (res.headersSent || res.destroyed) {
          if (reply.file) fs.closeSync(reply.file.fd);
          return;
        }
        try {
          send(req, res, reply, { 'x-amz-request-id': requestId, ...corsHeaders(ctx.bucket, req.headers.origin, req.method ?? '') }, drains);
        } catch (err) {
          // an answer that cannot be written ends this request only, never the store
          if (reply.file) fs.closeSync(reply.file.fd);
          log(`store: ${req.method} answer failed: ${(err as Error)?.message ?? String(err)}`);
          if (!res.headersSent) send(req, res, errorReply(internalError(), requestId), { 'x-amz-request-id': requestId }, drains);
          else res.destroy();
        }
      },
      (err: unknown) => {
        if (res.headersSent || res.destroyed) return;
        let e: S3Error;
        if (err instanceof S3Error) e = err;
        else {
          log(`store: ${req.method} failed: ${(err as Error)?.message ?? String(err)}`);
          e = internalError();
        }
        let cors: Record<string, string> = {};
        try {
          cors = corsHeaders(ctx.bucket, req.headers.origin, req.method ?? '');
        } catch {
          // a bucket's broken CORS document does not hide the error
        }
        send(req, res, errorReply(e, requestId), { 'x-amz-request-id': requestId, ...cors }, drains);
      },
    ).catch((err: unknown) => {
      // the last net: nothing a request does may end the store's thread
      log(`store: ${req.method} failed after answering: ${(err as Error)?.message ?? String(err)}`);
      res.destroy();
    });
  };
  // connectionsCheckingInterval: how often Node checks headersTimeout (its default, 30 s, let a connection
  // trickling its headers stay 26 to 50 s instead of 20)
  const server = http.createServer(
    { requestTimeout: 0, headersTimeout: 20_000, connectionsCheckingInterval: 1_000, keepAliveTimeout: 5_000, maxHeaderSize: 16 * 1024 },
    handle,
  );
  server.on('checkContinue', handle);
  // a connection idle this long (no byte either way) is closed: slow or stuck clients do not pile up
  server.timeout = 60_000;
  server.maxConnections = 2 * MAX_CONNECTIONS; // the outsiders' and, beside them, the host's own
  capConnectionsPerClient(server, {
    perClient: o.maxConnectionsPerAddress ?? MAX_CONNECTIONS_PER_ADDRESS,
    total: MAX_CONNECTIONS,
    counted: (address) => o.capLoopback === true || !isLoopback(address),
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    socket.destroy();
  });
  return server;
}
