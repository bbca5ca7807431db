// The HTTP(S) server: routes, keys, CORS, access log, static page, graceful close.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { digestsEqual, keyDigest } from './admin-key';
import { errorAnswer, HandlerAnswer, invokeHandler, jsonAnswer } from './invoke';
import { collectCall, CallInput, HttpError, parseBody, readBody, requestMeta } from './request';
import type { LoadedSocket } from './socket';
import { InvalidUsernameError, User, UsernameTakenError, UserStore } from './users';

export interface ServerDeps {
  instance: string;
  socket: LoadedSocket;
  users: UserStore;
  adminKey: string;
  /** ctx.config for every call */
  config: Record<string, unknown>;
  bodyLimit: number;
  handlerTimeoutMs: number;
  handlerGraceMs: number;
  /** resolves when the store answers, rejects otherwise */
  checkHealth: () => Promise<void>;
  tls?: { cert: Buffer; key: Buffer };
  publicDir?: string;
  log?: (line: string) => void;
}

const CORS_HEADERS: Record<string, string> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'Location, Content-Disposition, ETag',
};
/** On every answer; a handler's own headers may override them. */
const BASE_HEADERS: Record<string, string> = {
  ...CORS_HEADERS,
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
};
const PREFLIGHT_HEADERS: Record<string, string> = {
  'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
  'Access-Control-Allow-Headers': 'Content-Type, X-USER-KEY, X-API-KEY, Authorization, X-Requested-With',
  'Access-Control-Max-Age': '600',
};

const STATIC_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

type Route =
  | { kind: 'health' }
  | { kind: 'users' }
  | { kind: 'endpoint'; endpoint: string }
  | { kind: 'static' }
  | { kind: 'none' };

export interface HostServer {
  server: http.Server | https.Server;
  listen(port: number, host: string): Promise<number>;
  /** stop accepting, wait (bounded) for requests in flight, then drop what is left */
  close(timeoutMs: number): Promise<void>;
}

const distinct = (xs: string[]): string[] => (xs.length < 2 ? xs : [...new Set(xs)]);

/** Log-safe path: no query string ever, control characters escaped, bounded length. */
const UNSAFE_IN_LOG = /[\u0000-\u001f\u007f\s]/;
function logPath(p: string): string {
  const s = UNSAFE_IN_LOG.test(p) ? p.replace(/[\u0000-\u001f\u007f\s]/g, (c) => encodeURIComponent(c)) : p;
  return s.length > 300 ? s.slice(0, 300) + '…' : s;
}

/** Access-log lines written in one batch per turn of the event loop: a write to a pipe is synchronous. */
function batchedStdout(): { log: (line: string) => void; flush: () => void } {
  let pending: string[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const text = pending.join('\n') + '\n';
    pending = [];
    process.stdout.write(text);
  };
  return {
    log(line) {
      if (pending.push(line) === 1) setImmediate(flush);
    },
    flush,
  };
}

/** How long a call spent receiving its body and parsing its arguments, in ms. */
interface Phases {
  read: number;
  parse: number;
}

/**
 * Server-Timing (shown by browsers' developer tools): where an endpoint call's time went, so a slow
 * upload can be told apart as the client's sending (read), argument parsing, or the handler and S3.
 */
function serverTiming(p: Phases, handlerMs: number): string {
  return `read;dur=${p.read.toFixed(1)}, parse;dur=${p.parse.toFixed(1)}, handler;dur=${handlerMs.toFixed(1)}`;
}

/** ISO time of the current millisecond, made once per millisecond however many lines share it. */
let isoMs = 0;
let isoText = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    isoText = new Date(now).toISOString();
  }
  return isoText;
}

export function createHostServer(deps: ServerDeps): HostServer {
  const stdout = batchedStdout();
  const log = deps.log ?? stdout.log;
  const adminDigest = keyDigest(deps.adminKey);
  // Every call gets this one object; frozen so that no handler can change another call's config.
  const config = Object.freeze({ ...deps.config });
  const socketName = deps.socket.definition.name;
  // The page's folder, resolved once; every file served must resolve inside it.
  const publicRoot = deps.publicDir && fs.existsSync(deps.publicDir) ? fs.realpathSync(deps.publicDir) : undefined;
  let inFlight = 0;
  let closing = false;
  const idleWaiters: Array<() => void> = [];

  function route(pathname: string): Route {
    if (pathname === '/healthz' || pathname === '/healthz/') return { kind: 'health' };
    const seg = pathname.split('/').slice(1);
    if (seg.length && seg[seg.length - 1] === '') seg.pop(); // trailing slash optional
    if (seg.length === 4 && seg[0] === 'v2' && seg[1] === 'instances' && seg[2] === deps.instance && seg[3] === 'users') {
      return { kind: 'users' };
    }
    let socket: string | undefined;
    let endpoint: string | undefined;
    if (seg.length === 7 && seg[0] === 'v3' && seg[1] === 'instances' && seg[3] === 'endpoints' && seg[4] === 'sockets') {
      if (seg[2] !== deps.instance) return { kind: 'none' };
      socket = seg[5];
      endpoint = seg[6];
    } else if (seg.length === 2) {
      socket = seg[0];
      endpoint = seg[1];
    }
    if (socket === socketName && endpoint !== undefined && deps.socket.endpoints.has(endpoint)) {
      return { kind: 'endpoint', endpoint };
    }
    return { kind: 'static' };
  }

  function send(res: http.ServerResponse, a: HandlerAnswer): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    const headers: Record<string, string | number> = { ...BASE_HEADERS };
    for (const k in a.headers) headers[k] = a.headers[k];
    headers['Content-Type'] = a.contentType;
    headers['Content-Length'] = a.body.length;
    if (closing) headers.Connection = 'close';
    res.writeHead(a.status, headers);
    res.end(a.body);
  }

  /** Keys → {user, admin}; any unknown or disagreeing key is a 401. */
  function authenticate(call: CallInput): { user?: User & { user_key: string }; admin: boolean } {
    const adminKeys = distinct(call.adminKeys);
    const userKeys = distinct(call.userKeys);
    if (adminKeys.length > 1) throw new HttpError(401, 'unauthorized', 'admin keys given in several places disagree');
    if (userKeys.length > 1) throw new HttpError(401, 'unauthorized', 'user keys given in several places disagree');
    let admin = false;
    if (adminKeys.length === 1) {
      if (!digestsEqual(keyDigest(adminKeys[0]), adminDigest)) throw new HttpError(401, 'unauthorized', 'unknown admin key');
      admin = true;
    }
    let user: (User & { user_key: string }) | undefined;
    if (userKeys.length === 1) {
      const digest = keyDigest(userKeys[0]);
      if (digestsEqual(digest, adminDigest)) {
        throw new HttpError(401, 'unauthorized', 'the admin key is not a user key; send it as X-API-KEY');
      }
      const found = deps.users.findByDigest(digest);
      if (!found) throw new HttpError(401, 'unauthorized', 'unknown user key');
      user = { ...found, user_key: userKeys[0] };
    }
    return { user, admin };
  }

  async function readCall(req: http.IncomingMessage, url: URL, phases?: Phases): Promise<CallInput> {
    const start = performance.now();
    const body = await readBody(req, deps.bodyLimit);
    const read = performance.now();
    // No query string (the usual call): no URLSearchParams at all.
    const call = collectCall(req, url.search ? url.searchParams : undefined, parseBody(body, req.headers['content-type']));
    if (phases) {
      phases.read = read - start;
      phases.parse = performance.now() - read;
    }
    return call;
  }

  async function handleEndpoint(req: http.IncomingMessage, url: URL, endpoint: string): Promise<HandlerAnswer> {
    const phases: Phases = { read: 0, parse: 0 };
    const call = await readCall(req, url, phases);
    const { user, admin } = authenticate(call);
    const ep = deps.socket.endpoints.get(endpoint)!;
    if (ep.metadata.private === true && !admin) {
      return errorAnswer(403, 'forbidden', `${socketName}/${endpoint} is private: it needs the admin key`);
    }
    const method = call.methodOverride ?? req.method ?? 'GET';
    // Built in one order with no deletes, so that every call's meta has the same shape.
    const meta: Record<string, unknown> = {
      request: requestMeta(req, url.pathname, method),
      instance: deps.instance,
      socket: socketName,
      executor: `${socketName}/${endpoint}`,
      executed_by: 'socket_endpoint',
      metadata: ep.metadata,
      api_host: req.headers.host ?? '',
    };
    if (user) meta.user = { id: user.id, username: user.username, user_key: user.user_key };
    if (admin) meta.admin = { id: 1, email: `admin@${deps.instance}` };
    const ctx = { args: call.args, meta, config };
    const handlerStart = performance.now();
    const answer = await invokeHandler(ep.handler, ctx, {
      timeoutMs: deps.handlerTimeoutMs,
      graceMs: deps.handlerGraceMs,
      onError: (err) => log(`error in ${socketName}/${endpoint}: ${(err as Error)?.stack ?? String(err)}`),
    });
    answer.headers['Server-Timing'] ??= serverTiming(phases, performance.now() - handlerStart);
    return answer;
  }

  async function handleUsers(req: http.IncomingMessage, url: URL): Promise<HandlerAnswer> {
    const call = await readCall(req, url);
    const { admin } = authenticate(call);
    if (!admin) return errorAnswer(403, 'forbidden', 'creating users needs the admin key');
    try {
      const u = deps.users.add(call.args.username as string);
      return jsonAnswer(201, { id: u.id, username: u.username, user_key: u.user_key });
    } catch (err) {
      if (err instanceof InvalidUsernameError) return errorAnswer(400, 'invalid_argument', err.message);
      if (err instanceof UsernameTakenError) return errorAnswer(409, 'conflict', err.message);
      throw err;
    }
  }

  async function handleHealth(): Promise<HandlerAnswer> {
    try {
      await deps.checkHealth();
      return jsonAnswer(200, { status: 'ok' });
    } catch {
      return jsonAnswer(503, { status: 'unavailable' });
    }
  }

  function serveStatic(pathname: string): HandlerAnswer {
    const notFound = errorAnswer(404, 'not_found', 'no such route');
    if (!publicRoot) return notFound;
    let rel: string;
    try {
      rel = decodeURIComponent(pathname);
    } catch {
      return notFound;
    }
    if (rel.includes('\0') || rel.includes('\\')) return notFound;
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.resolve(publicRoot, '.' + path.posix.normalize('/' + rel));
    if (file !== publicRoot && !file.startsWith(publicRoot + path.sep)) return notFound;
    let real: string;
    try {
      real = fs.realpathSync(file);
      if (!real.startsWith(publicRoot + path.sep) || !fs.statSync(real).isFile()) return notFound;
    } catch {
      return notFound;
    }
    return {
      status: 200,
      body: fs.readFileSync(real),
      contentType: STATIC_TYPES[path.extname(real).toLowerCase()] ?? 'application/octet-stream',
      headers: { 'Cache-Control': 'no-cache' },
    };
  }

  async function dispatch(req: http.IncomingMessage, url: URL): Promise<HandlerAnswer> {
    const method = req.method ?? 'GET';
    const r = route(url.pathname);
    const allowed =
      r.kind === 'endpoint' ? ['GET', 'POST', 'OPTIONS'] :
      r.kind === 'users' ? ['POST', 'OPTIONS'] :
      r.kind === 'health' ? ['GET'] :
      r.kind === 'static' ? ['GET'] : [];
    if (r.kind === 'none' || (r.kind === 'static' && method !== 'GET')) {
      return errorAnswer(404, 'not_found', 'no such route');
    }
    if (!allowed.includes(method)) {
      return { ...errorAnswer(405, 'method_not_allowed', `${method} is not allowed here`), headers: { Allow: allowed.join(', ') } };
    }
    if (method === 'OPTIONS') return { status: 204, body: Buffer.alloc(0), contentType: 'text/plain', headers: PREFLIGHT_HEADERS };
    switch (r.kind) {
      case 'health':
        return handleHealth();
      case 'users':
        return handleUsers(req, url);
      case 'endpoint':
        return handleEndpoint(req, url, r.endpoint);
      case 'static':
        return serveStatic(url.pathname);
    }
  }

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const started = performance.now();
    inFlight++;
    let pathname = '/';
    res.on('close', () => {
      inFlight--;
      const ms = performance.now() - started;
      log(`${isoNow()} ${req.method} ${logPath(pathname)} ${res.statusCode} ${ms.toFixed(1)}ms`);
      if (inFlight === 0) idleWaiters.splice(0).forEach((f) => f());
    });
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://host');
      pathname = url.pathname;
    } catch {
      send(res, errorAnswer(400, 'invalid_argument', 'malformed request URL'));
      return;
    }
    dispatch(req, url).then(
      (a) => send(res, a),
      (err) => {
        if (err instanceof HttpError) {
          if (err.status === 413) {
            // Answer now, then stop reading: drain what the client still sends (bounded), then close.
            send(res, { ...errorAnswer(413, err.code, err.message), headers: { Connection: 'close' } });
            req.resume();
            const t = setTimeout(() => req.socket.destroy(), 5_000);
            t.unref();
            req.once('end', () => clearTimeout(t));
            return;
          }
          send(res, errorAnswer(err.status, err.code, err.message));
          return;
        }
        log(`error: ${(err as Error)?.stack ?? String(err)}`);
        send(res, errorAnswer(500, 'internal', 'internal error'));
      },
    );
  };

  const server = deps.tls
    ? https.createServer({ cert: deps.tls.cert, key: deps.tls.key }, onRequest)
    : http.createServer(onRequest);
  server.headersTimeout = 30_000;
  server.requestTimeout = 300_000;
  server.keepAliveTimeout = 5_000;

  return {
    server,
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as { port: number }).port);
        });
      });
    },
    async close(timeoutMs) {
      closing = true;
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const idle = inFlight === 0 ? Promise.resolve() : new Promise<void>((r) => idleWaiters.push(r));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
      await Promise.race([idle, timedOut]);
      clearTimeout(timer);
      server.closeAllConnections();
      await Promise.race([closed, new Promise<void>((r) => setTimeout(r, 1_000).unref())]);
      stdout.flush();
    },
  };
}
