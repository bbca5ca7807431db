// The HTTP(S) server: routes, keys, CORS, access log, static page, graceful close.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { capConnectionsPerClient } from '../store/address';
import { closeAfterAnswer } from '../store/linger';
import { keyDigest } from './admin-key';
import { DEFAULT_REMOVAL_SWEEP_MS, startRemovalSweeper } from './removal-sweeper';
import { DEFAULT_LIMITS, type FrontDoorLimits } from './env';
import { errorAnswer, HandlerAnswer, invokeHandler, jsonAnswer } from './invoke';
import {
  BodyBudget,
  BodyShape,
  type BodyTicket,
  CallInput,
  ClientGone,
  collectCall,
  HttpError,
  isRawUpload,
  rawBodyWithoutKey,
  mediaType,
  parseBody,
  RawBody,
  readBody,
  requestMeta,
  requestTarget,
  type RequestTarget,
  withBody,
  withRawBody,
} from './request';
import type { LoadedSocket } from './socket';
import { handleOwnPassword, handleSignIn, handleSignUp, type AuthRouteDeps } from './auth-routes';
import { addressKey, DEFAULT_SIGN_IN_LIMITS, type SignInLimits } from './sign-in';
import { ADMIN_ROUTE_METHODS, adminRoute, handleAdminRoute, type AdminRoute } from './user-routes';
import { guardUserStore } from './user-store-guard';
import { UserStoreUnavailableError, type User, type UserStore } from './users/types';

export interface ServerDeps {
  instance: string;
  socket: LoadedSocket;
  /** users and admin keys (the admin key the host was started with is one of them: ensureAdminKey) */
  users: UserStore;
  /** #16: sign-in limits, open sign-up, and whether X-Forwarded-For names the client */
  signIn?: { limits?: SignInLimits; allowSignup?: boolean; signupsPerHour?: number; trustProxy?: boolean };
  /** ctx.config for every call */
  config: Record<string, unknown>;
  bodyLimit: number;
  handlerTimeoutMs: number;
  handlerGraceMs: number;
  /** resolves when the store answers, rejects otherwise */
  checkHealth: () => Promise<void>;
  tls?: { cert: Buffer; key: Buffer };
  publicDir?: string;
  /** the client library's built browser files (client/dist), served at /client/ (its .js files only) */
  clientDir?: string;
  log?: (line: string) => void;
  /** the front door's bounds (defaults: DEFAULT_LIMITS) */
  limits?: Partial<FrontDoorLimits>;
  /** how often removed users' prefixes are swept (REMOVED_USERS_SWEEP_SECONDS; default DEFAULT_REMOVAL_SWEEP_MS) */
  removalSweepMs?: number;
}

/** Seconds a 503 (a full host, a user store that does not answer) asks the client to wait. */
const RETRY_AFTER_SECONDS = 1;
/** Requests one connection may have in flight (pipelined) before it is answered 503 and closed. */
const MAX_PIPELINED = 8;
/**
 * At shutdown the host keeps accepting until no connection has come for this long (bounded by the
 * shutdown timeout), and requests already sent over open connections get as long to arrive. A
 * connection the kernel (or, with workers, the primary) took before the stop is served, not reset.
 */
const SHUTDOWN_GRACE_MS = 300;
/** How long one /healthz store check answers for every caller. */
const HEALTH_REUSE_MS = 1_000;

interface ConnectionState {
  /** requests received and not yet answered */
  pending: number;
  /** answered `Connection: close`: nothing more runs on it */
  closing: boolean;
  /** for the unread-answer watchdog */
  lastWritten: number;
  stalledSince: number;
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
/** BASE_HEADERS as [name, value, …], and their lower-case names, for send() */
const BASE_HEADER_LIST = Object.entries(BASE_HEADERS).flat();
const BASE_HEADER_NAMES = Object.keys(BASE_HEADERS).map((k) => k.toLowerCase());
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
  | { kind: 'admin'; route: AdminRoute }
  | { kind: 'sign-in' }
  | { kind: 'own-account' }
  | { kind: 'page-config' }
  | { kind: 'endpoint'; endpoint: string }
  | { kind: 'static' }
  | { kind: 'none' };

export interface HostServer {
  server: http.Server | https.Server;
  listen(port: number, host: string): Promise<number>;
  /** stop accepting, wait (bounded) for requests in flight, then drop what is left */
  close(timeoutMs: number): Promise<void>;
}

/** The methods each kind of route takes (the admin routes' are in ADMIN_ROUTE_METHODS). */
const ROUTE_METHODS = {
  endpoint: ['GET', 'POST', 'OPTIONS'],
  'sign-in': ['POST', 'OPTIONS'],
  'own-account': ['PATCH', 'OPTIONS'],
  'page-config': ['GET'],
  health: ['GET'],
  static: ['GET'],
} as const satisfies Record<string, readonly string[]>;

/**
 * A key's SHA-256, remembered for the keys that keep coming back (a client sends its key with every
 * call). Bounded: past MAX_DIGESTS it starts again, so a flood of made-up keys only refills it. Whether
 * a key is valid is never remembered here: that is the user store's (and its cache's) to say.
 */
const MAX_DIGESTS = 10_000;
/** found: a user or admin key this host has found for it (such a key still passes the unknown-key budget) */
interface KnownDigest {
  digest: Buffer;
  found: boolean;
}
const digests = new Map<string, KnownDigest>();
function digestOf(key: string): KnownDigest {
  let known = digests.get(key);
  if (known === undefined) {
    if (digests.size >= MAX_DIGESTS) digests.clear();
    digests.set(key, (known = { digest: keyDigest(key), found: false }));
  }
  return known;
}

/**
 * Keys that no user or admin has, counted per client address (addressKey: an IPv6 /64 is one client)
 * in fixed one-minute windows. Each such key costs a user-store lookup (a PostgreSQL query: misses are
 * never cached), so past the budget an address's keys are refused (429) without one, unless this host
 * has found them before: a known user behind the same address keeps working.
 */
class UnknownKeyBudget {
  private window = -1;
  private readonly counts = new Map<string, number>();
  constructor(private readonly perMinute: number) {}
  private roll(): void {
    const window = Math.floor(Date.now() / 60_000);
    if (window !== this.window) {
      this.window = window;
      this.counts.clear();
    }
  }
  spent(address: string): boolean {
    this.roll();
    return (this.counts.get(addressKey(address)) ?? 0) >= this.perMinute;
  }
  miss(address: string): void {
    this.roll();
    const key = addressKey(address);
    // bounded: a flood from more addresses than this is past what one host's memory should track
    if (this.counts.size < 100_000 || this.counts.has(key)) this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
  secondsLeft(): number {
    return 60 - Math.floor((Date.now() % 60_000) / 1000);
  }
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

const EXCHANGE = Symbol('exchange');
const CONNECTION = Symbol('connection');
type WithExchange = http.IncomingMessage & { [EXCHANGE]?: Exchange };
type WithConnection = object & { [CONNECTION]?: ConnectionState };

/** One request's answer, its share of the in-flight body budget, and whether it waits for a 100. */
interface Exchange {
  res: http.ServerResponse;
  ticket: BodyTicket;
  expectsContinue: boolean;
}

/** Who the keys of a call are (user_key: absent when the host itself calls an endpoint as a user). */
interface Caller {
  user?: User & { user_key?: string };
  admin: boolean;
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

/** ISO time of the current millisecond: Date's toISOString once a second, the milliseconds added to it. */
let isoSecond = -1;
let isoPrefix = '';
function isoNow(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, -4); // "2026-12-02T18:35:12."
  }
  const ms = now - second * 1000;
  return isoPrefix + (ms < 10 ? '00' : ms < 100 ? '0' : '') + ms + 'Z';
}

export function createHostServer(deps: ServerDeps): HostServer {
  const stdout = batchedStdout();
  const log = deps.log ?? stdout.log;
  const users = guardUserStore(deps.users, log);
  // Every call gets this one object; frozen so that no handler can change another call's config.
  const config = Object.freeze({ ...deps.config });
  const socketName = deps.socket.definition.name;
  // The page's folder, resolved once; every file served must resolve inside it.
  const publicRoot = deps.publicDir && fs.existsSync(deps.publicDir) ? fs.realpathSync(deps.publicDir) : undefined;
  // The client library the page imports (`/client/index.js` and the modules it imports), likewise.
  const clientRoot = deps.clientDir && fs.existsSync(deps.clientDir) ? fs.realpathSync(deps.clientDir) : undefined;
  const limits: FrontDoorLimits = { ...DEFAULT_LIMITS, ...deps.limits };
  const keylessLimit = Math.min(limits.keylessBodyLimit, deps.bodyLimit);
  const budget = new BodyBudget(limits.maxInflightBodyBytes);
  const unknownKeys = new UnknownKeyBudget(limits.unknownKeysPerMinute);
  // Each request's exchange and each connection's state live on the request and the socket themselves
  // (symbol-keyed): a WeakMap entry per request would cost every garbage collection more.
  const exchangeOf = (req: http.IncomingMessage): Exchange => (req as WithExchange)[EXCHANGE]!;
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const newConnectionState = (): ConnectionState => ({ pending: 0, closing: false, lastWritten: 0, stalledSince: performance.now() });
  const connectionOf = (socket: object | null): ConnectionState => {
    if (!socket) return newConnectionState(); // a response already detached from its socket: nothing to keep
    const s = socket as WithConnection;
    return (s[CONNECTION] ??= newConnectionState());
  };
  let inFlight = 0;
  let closing = false;
  const idleWaiters: Array<() => void> = [];

  const socketPrefix = `/${socketName}/`;
  function route(pathname: string): Route {
    if (pathname.startsWith(socketPrefix)) {
      // the usual call, /<socket>/<endpoint>/, without splitting the path
      const end = pathname.endsWith('/') ? pathname.length - 1 : pathname.length;
      const endpoint = pathname.slice(socketPrefix.length, end);
      if (deps.socket.endpoints.has(endpoint)) return { kind: 'endpoint', endpoint };
    }
    if (pathname === '/healthz' || pathname === '/healthz/') return { kind: 'health' };
    const seg = pathname.split('/').slice(1);
    if (seg.length && seg[seg.length - 1] === '') seg.pop(); // trailing slash optional
    if (pathname === '/page-config.json') return { kind: 'page-config' };
    if (seg.length >= 4 && seg[0] === 'v2' && seg[1] === 'instances' && seg[2] === deps.instance) {
      const rest = seg.slice(3).join('/');
      if (rest === 'users/auth') return { kind: 'sign-in' };
      if (rest === 'user') return { kind: 'own-account' };
      const admin = adminRoute(seg.slice(3));
      return admin ? { kind: 'admin', route: admin } : { kind: 'none' };
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

  /**
   * The answer's headers go to Node as one flat [name, value, …] array: a headers object built per
   * answer (the base headers spread, then the answer's own added) measured about 50 µs more CPU per
   * request in writeHead than the array or a constant object. The answer's own headers win over the
   * base ones whatever their case; Content-Type, Content-Length and Connection are the host's.
   */
  function send(res: http.ServerResponse, a: HandlerAnswer): void {
    if (res.headersSent) {
      res.end();
      return;
    }
    const headers: string[] = [];
    let own: Set<string> | undefined;
    let close = closing;
    for (const k in a.headers) {
      const lower = k.toLowerCase();
      if (lower === 'connection') close ||= a.headers[k].toLowerCase() === 'close';
      else if (lower !== 'content-type' && lower !== 'content-length') {
        (own ??= new Set()).add(lower);
        headers.push(k, a.headers[k]);
      }
    }
    for (let i = 0; i < BASE_HEADER_LIST.length; i += 2) {
      if (!own?.has(BASE_HEADER_NAMES[i / 2])) headers.push(BASE_HEADER_LIST[i], BASE_HEADER_LIST[i + 1]);
    }
    headers.push('Content-Type', a.contentType, 'Content-Length', String(a.body.length));
    if (close) {
      headers.push('Connection', 'close');
      connectionOf(res.socket).closing = true;
    }
    res.writeHead(a.status, headers);
    res.end(a.body);
  }

  /**
   * Keys → {user, admin}; any unknown, revoked, disabled or disagreeing key is a 401. The store caches
   * what it finds (a changed key is refused on every host within 1 s), so a known key costs no round
   * trip; a store that fails is a 503 (UserStoreUnavailableError), never a 401.
   */
  async function authenticate(call: CallInput, address: string): Promise<Caller> {
    const adminKeys = distinct(call.adminKeys);
    const userKeys = distinct(call.userKeys);
    if (adminKeys.length > 1) throw new HttpError(401, 'unauthorized', 'admin keys given in several places disagree');
    if (userKeys.length > 1) throw new HttpError(401, 'unauthorized', 'user keys given in several places disagree');
    const checked = (key: string): KnownDigest => {
      const known = digestOf(key);
      if (!known.found && unknownKeys.spent(address)) {
        throw new HttpError(429, 'too_many_unknown_keys', `more than ${limits.unknownKeysPerMinute} unknown keys from this address in a minute; try again shortly`, unknownKeys.secondsLeft());
      }
      return known;
    };
    const unknown = (message: string) => {
      unknownKeys.miss(address);
      return new HttpError(401, 'unauthorized', message);
    };
    let admin = false;
    if (adminKeys.length === 1) {
      const known = checked(adminKeys[0]);
      if (!(await users.isAdminKeyDigest(known.digest))) throw unknown('unknown or revoked admin key');
      known.found = true;
      admin = true;
    }
    let user: (User & { user_key: string }) | undefined;
    if (userKeys.length === 1) {
      const known = checked(userKeys[0]);
      const found = await users.findByKeyDigest(known.digest);
      if (!found) {
        if (await users.isAdminKeyDigest(known.digest)) {
          throw new HttpError(401, 'unauthorized', 'the admin key is not a user key; send it as X-API-KEY');
        }
        throw unknown('unknown, rotated or disabled user key');
      }
      known.found = true;
      user = { ...found, user_key: userKeys[0] };
    }
    return { user, admin };
  }

  /**
   * The front door of every call: the keys in the headers and the query are checked before one byte of
   * the body is read (an unknown key is 401 at once). The body is then read against the full limit
   * only for a caller already known to be let in (for `needsAdmin`, the admin key; else any valid key);
   * every other body can bring its key only inside itself, and is read only up to the keyless limit,
   * past which it is refused as a call without its key: every endpoint of this socket needs a key, so
   * such a call could only ever end 401 (403 where the admin key is needed). The keys the body brings
   * are then checked with the others (they must agree).
   */
  async function admitCall(
    req: http.IncomingMessage,
    url: RequestTarget,
    needsAdmin: boolean,
    phases?: Phases,
    takesFile = false,
  ): Promise<{ call: CallInput; caller: Caller; rawBody?: RawBody }> {
    const early = collectCall(req, url.search ? url.searchParams : undefined);
    const earlyCaller = await authenticate(early, clientAddress(req));
    const known = needsAdmin ? earlyCaller.admin : earlyCaller.admin || earlyCaller.user !== undefined;
    const limit = known ? deps.bodyLimit : keylessLimit;
    const overLimit = known
      ? () => new HttpError(413, 'payload_too_large', `request body over ${limit} bytes`)
      : needsAdmin
        ? () => new HttpError(403, 'forbidden', `this needs the admin key; a request body over ${limit} bytes must bring it in the X-API-KEY header (or api_key in the query)`)
        : () => new HttpError(401, 'unauthorized', `no key came in a header or the query; a request body over ${limit} bytes must bring its key in the X-USER-KEY or X-API-KEY header (or user_key / api_key in the query)`);
    const contentType = req.headers['content-type'];
    const ex = exchangeOf(req);
    const sendContinue = ex.expectsContinue ? () => ex.res.writeContinue() : undefined;
    if (isRawUpload(req, takesFile)) {
      // A raw body is streamed to the handler, so its key must have come before it: refused unread.
      if (!known) throw rawBodyWithoutKey(needsAdmin);
      const rawBody = new RawBody(req, { limit, overLimit, budget, ticket: ex.ticket, idleTimeoutMs: limits.bodyIdleTimeoutMs, minBytesPerSecond: limits.minBodyBytesPerSecond, sendContinue });
      return { call: withRawBody(early, rawBody), caller: earlyCaller, rawBody };
    }
    const start = performance.now();
    const shape = new BodyShape(limits.jsonMaxDepth, limits.jsonMaxKeys, mediaType(contentType) === 'application/x-www-form-urlencoded');
    const body = await readBody(req, {
      limit,
      overLimit,
      budget,
      ticket: ex.ticket,
      idleTimeoutMs: limits.bodyIdleTimeoutMs,
      minBytesPerSecond: limits.minBodyBytesPerSecond,
      shape,
      // `Expect: 100-continue`: the client waits for the 100 before it sends the body; it is sent only
      // now that the keys are checked and the body is wanted.
      sendContinue,
    });
    const read = performance.now();
    const call = withBody(early, parseBody(body, contentType, shape.longStrings, known && takesFile));
    if (phases) {
      phases.read = read - start;
      phases.parse = performance.now() - read;
    }
    // Keys only in the headers or query (the usual call): already checked.
    const bodyKeys = call.userKeys.length !== early.userKeys.length || call.adminKeys.length !== early.adminKeys.length;
    return { call, caller: bodyKeys ? await authenticate(call, clientAddress(req)) : earlyCaller };
  }

  async function handleEndpoint(req: http.IncomingMessage, url: RequestTarget, endpoint: string): Promise<HandlerAnswer> {
    const phases: Phases = { read: 0, parse: 0 };
    const ep = deps.socket.endpoints.get(endpoint)!;
    const takesFile = typeof ep.metadata.parameters === 'object' && ep.metadata.parameters !== null && 'file' in ep.metadata.parameters;
    const { call, caller, rawBody } = await admitCall(req, url, ep.metadata.private === true, phases, takesFile);
    if (ep.metadata.private === true && !caller.admin) {
      return errorAnswer(403, 'forbidden', `${socketName}/${endpoint} is private: it needs the admin key`);
    }
    const handlerStart = performance.now();
    const answer = await runEndpoint(req, url, endpoint, call.args, caller, call.methodOverride ?? req.method ?? 'GET', rawBody);
    if (rawBody) {
      // Where the host ended the body (408, the client gone), its answer is the host's, not the handler's.
      rawBody.destroy();
      if (rawBody.failure) throw rawBody.failure;
    }
    answer.headers['Server-Timing'] ??= serverTiming(phases, performance.now() - handlerStart);
    return answer;
  }

  /** One call of one of the socket's handlers, with ctx as the platform built it: for a caller, or the host itself. */
  /** Calls an endpoint for a request; without one (req undefined: the host's own call) as from no address. */
  function runEndpoint(
    req: http.IncomingMessage | undefined,
    url: RequestTarget | undefined,
    endpoint: string,
    args: Record<string, unknown>,
    caller: Caller,
    method: string,
    rawBody?: RawBody,
  ): Promise<HandlerAnswer> {
    const ep = deps.socket.endpoints.get(endpoint);
    if (!ep) return Promise.resolve(errorAnswer(500, 'not_configured', `the socket has no ${endpoint} endpoint`));
    const { user, admin } = caller;
    // Built in one order with no deletes, so that every call's meta has the same shape.
    const meta: Record<string, unknown> = {
      request: req && url ? requestMeta(req, url.pathname, method) : { REQUEST_METHOD: method, PATH_INFO: `/${socketName}/${endpoint}/`, REMOTE_ADDR: '' },
      instance: deps.instance,
      socket: socketName,
      executor: `${socketName}/${endpoint}`,
      executed_by: 'socket_endpoint',
      metadata: ep.metadata,
      api_host: req?.headers.host ?? '',
    };
    if (user) meta.user = user.user_key === undefined ? { id: user.id, username: user.username } : { id: user.id, username: user.username, user_key: user.user_key };
    if (admin) meta.admin = { id: 1, email: `admin@${deps.instance}` };
    return invokeHandler(ep.handler, { args, meta, config }, {
      timeoutMs: deps.handlerTimeoutMs,
      graceMs: deps.handlerGraceMs,
      onError: (err) => log(`error in ${socketName}/${endpoint}: ${(err as Error)?.stack ?? String(err)}`),
      // a streamed body's time is bounded by the body's own timeouts, not the handler's
      stillReceiving: rawBody && (() => rawBody.receiving),
    });
  }

  async function handleAdmin(req: http.IncomingMessage, url: RequestTarget, route: AdminRoute): Promise<HandlerAnswer> {
    // Open sign-up (ALLOW_SIGNUP) is the one keyless call here; its body is read only to the keyless limit.
    const signUp = route.kind === 'users' && req.method === 'POST' && authDeps.allowSignup;
    const { call, caller } = await admitCall(req, url, !signUp);
    if (signUp && !caller.admin && !caller.user) return handleSignUp(authDeps, call.args, clientAddress(req));
    if (!caller.admin) return errorAnswer(403, 'forbidden', 'managing users and admin keys needs the admin key');
    return handleAdminRoute(route, req.method ?? 'GET', call.args, {
      instance: deps.instance,
      users,
      // the deleted user's own user-list and user-delete, so that the socket decides what its files are
      callAsUser: (endpoint, user, args) => runEndpoint(req, url, endpoint, args, { user, admin: false }, 'POST'),
      callAsAdmin: (endpoint, args) => runEndpoint(req, url, endpoint, args, { admin: true }, 'POST'),
    });
  }

  const authDeps: AuthRouteDeps = {
    instance: deps.instance,
    users,
    limits: deps.signIn?.limits ?? DEFAULT_SIGN_IN_LIMITS,
    allowSignup: deps.signIn?.allowSignup ?? false,
    signupsPerHour: deps.signIn?.signupsPerHour ?? 10,
  };

  /**
   * Who is calling, for the sign-in limits: the peer, or (HOST_TRUST_PROXY) the address the nearest
   * proxy saw, when that is an address (anything else there was not written by a proxy).
   */
  function clientAddress(req: http.IncomingMessage): string {
    const peer = req.socket.remoteAddress ?? '';
    if (!deps.signIn?.trustProxy) return peer;
    const forwarded = req.headers['x-forwarded-for'];
    const last = (Array.isArray(forwarded) ? forwarded.join(',') : forwarded ?? '').split(',').pop()?.trim() ?? '';
    return net.isIP(last) ? last : peer;
  }

  /** users/auth/: no key needed (the page and @syncano/core's users.login() call it before they have one). */
  async function handleSignInRoute(req: http.IncomingMessage, url: RequestTarget): Promise<HandlerAnswer> {
    const { call } = await admitCall(req, url, false);
    return handleSignIn(authDeps, call.args, clientAddress(req));
  }

  /** user/: the signed-in user's own account (PATCH: its password). */
  async function handleOwnAccount(req: http.IncomingMessage, url: RequestTarget): Promise<HandlerAnswer> {
    const { call, caller } = await admitCall(req, url, false);
    const key = caller.user?.user_key;
    if (!caller.user || key === undefined) return errorAnswer(401, 'unauthorized', 'this needs the user key (X-USER-KEY)');
    return handleOwnPassword(authDeps, { ...caller.user, user_key: key }, call.args, clientAddress(req));
  }

  const pageConfig = () =>
    jsonAnswer(200, { instance: deps.instance, socket: socketName, signup: authDeps.allowSignup }, { 'Cache-Control': 'no-cache' });

  // One store check at a time, shared by every /healthz that comes while it runs; a good answer is
  // shared for HEALTH_REUSE_MS more. A flood of keyless health calls costs one HeadBucket at a time,
  // and a store that comes back is seen by the next call.
  // The user store is checked with the S3 store: a host whose users cannot be found serves nobody.
  let health: { okAt?: number; answer: Promise<HandlerAnswer> } | undefined;
  const answers = (check: Promise<unknown>) => check.then(() => 'ok' as const, () => 'unavailable' as const);
  function handleHealth(): Promise<HandlerAnswer> {
    // a load balancer that sees this sends no more; the calls it already sent are still served
    if (closing) return Promise.resolve(jsonAnswer(503, { status: 'stopping' }));
    if (health && (health.okAt === undefined || performance.now() - health.okAt < HEALTH_REUSE_MS)) return health.answer;
    const current: { okAt?: number; answer: Promise<HandlerAnswer> } = {
      answer: Promise.all([answers(deps.checkHealth()), answers(users.listUsers({ limit: 1 }))]).then(([store, userStore]) => {
        if (store === 'ok' && userStore === 'ok') {
          current.okAt = performance.now();
          return jsonAnswer(200, { status: 'ok' });
        }
        if (health === current) health = undefined;
        return jsonAnswer(503, { status: 'unavailable', store, users: userStore });
      }),
    };
    health = current;
    return current.answer;
  }

  /** the page's few files, read once (they ship with the host) */
  const staticFiles = new Map<string, Buffer>();
  function serveStatic(pathname: string): HandlerAnswer {
    if (pathname.startsWith('/client/')) {
      // only the library's modules: no .d.ts, no source maps, no index.html fallback
      if (!pathname.endsWith('.js')) return errorAnswer(404, 'not_found', 'no such route');
      return serveFrom(clientRoot, pathname.slice('/client'.length));
    }
    return serveFrom(publicRoot, pathname);
  }

  function serveFrom(root: string | undefined, pathname: string): HandlerAnswer {
    const notFound = errorAnswer(404, 'not_found', 'no such route');
    if (!root) return notFound;
    let rel: string;
    try {
      rel = decodeURIComponent(pathname);
    } catch {
      return notFound;
    }
    if (rel.includes('\0') || rel.includes('\\')) return notFound;
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.resolve(root, '.' + path.posix.normalize('/' + rel));
    if (file !== root && !file.startsWith(root + path.sep)) return notFound;
    let real: string;
    try {
      real = fs.realpathSync(file);
      if (!real.startsWith(root + path.sep) || !fs.statSync(real).isFile()) return notFound;
    } catch {
      return notFound;
    }
    let body = staticFiles.get(real);
    if (body === undefined) {
      body = fs.readFileSync(real);
      staticFiles.set(real, body);
    }
    return {
      status: 200,
      body,
      contentType: STATIC_TYPES[path.extname(real).toLowerCase()] ?? 'application/octet-stream',
      headers: { 'Cache-Control': 'no-cache' },
    };
  }

  async function dispatch(req: http.IncomingMessage, url: RequestTarget): Promise<HandlerAnswer> {
    const method = req.method ?? 'GET';
    const r = route(url.pathname);
    const allowed: readonly string[] = r.kind === 'admin' ? ADMIN_ROUTE_METHODS[r.route.kind] : r.kind === 'none' ? [] : ROUTE_METHODS[r.kind];
    if (r.kind === 'none' || (r.kind === 'static' && method !== 'GET')) {
      return errorAnswer(404, 'not_found', 'no such route');
    }
    if (!allowed.includes(method)) {
      return { ...errorAnswer(405, 'method_not_allowed', `${method} is not allowed here`), headers: { Allow: allowed.join(', ') } };
    }
    if (method === 'OPTIONS') {
      const headers = r.kind === 'admin' ? { ...PREFLIGHT_HEADERS, 'Access-Control-Allow-Methods': allowed.join(', ') } : PREFLIGHT_HEADERS;
      return { status: 204, body: Buffer.alloc(0), contentType: 'text/plain', headers };
    }
    switch (r.kind) {
      case 'health':
        return handleHealth();
      case 'admin':
        return handleAdmin(req, url, r.route);
      case 'sign-in':
        return handleSignInRoute(req, url);
      case 'own-account':
        return handleOwnAccount(req, url);
      case 'page-config':
        return pageConfig();
      case 'endpoint':
        return handleEndpoint(req, url, r.endpoint);
      case 'static':
        return serveStatic(url.pathname);
    }
  }

  /**
   * Answers a refusal while the request's body may still be coming. Closing at once would reset the
   * connection with the client's bytes unread, and a client still sending would then lose the answer
   * too (a TCP reset discards what it has not read yet); reading the rest would let the client choose
   * how much work the refusal costs. So the answer is written with `Connection: close` and
   * closeAfterAnswer (the store's rule too) stops reading and closes about LINGER_MS later: time for
   * the client to read the answer. A stalled body (408) is not waited for.
   */
  function refuse(req: http.IncomingMessage, res: http.ServerResponse, a: HandlerAnswer, linger: boolean): void {
    if (req.complete) {
      send(res, a);
      return;
    }
    if (!linger) {
      send(res, { ...a, headers: { ...a.headers, Connection: 'close' } });
      res.once('finish', () => req.socket.destroy());
      return;
    }
    closeAfterAnswer(req.socket, res);
    send(res, { ...a, headers: { ...a.headers, Connection: 'close' } });
  }

  const busy = (message: string): HandlerAnswer => ({
    ...errorAnswer(503, 'busy', message),
    headers: { 'Retry-After': String(RETRY_AFTER_SECONDS) },
  });

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse, expectsContinue = false) => {
    const conn = connectionOf(req.socket);
    conn.pending++;
    // A connection that was answered `Connection: close` runs nothing pipelined behind that answer
    // (RFC 9112 9.6); its requests end with the connection. One that keeps pipelining past twice the
    // bound is closed at once: its answers are not worth the parsing.
    if (conn.closing || conn.pending > MAX_PIPELINED) res.once('close', () => conn.pending--);
    if (conn.closing) {
      if (conn.pending > 2 * MAX_PIPELINED) req.socket.destroy();
      return;
    }
    if (conn.pending > MAX_PIPELINED) {
      // requests pipelined past the bound: one 503, then the connection closes after the answers before it
      const a = busy(`more than ${MAX_PIPELINED} requests in flight on one connection; wait for answers before sending more`);
      send(res, { ...a, headers: { ...a.headers, Connection: 'close' } });
      return;
    }
    const started = performance.now();
    inFlight++;
    const ex: Exchange = { res, ticket: { bytes: 0 }, expectsContinue };
    (req as WithExchange)[EXCHANGE] = ex;
    let pathname = '/';
    res.once('close', () => {
      conn.pending--;
      inFlight--;
      budget.give(ex.ticket.bytes);
      ex.ticket.bytes = 0;
      const ms = performance.now() - started;
      // 499 (as nginx logs it): the client left before it had an answer; one line, no stack.
      const status = res.headersSent || res.writableFinished ? String(res.statusCode) : '499 client closed the connection';
      log(`${isoNow()} ${req.method} ${logPath(pathname)} ${status} ${ms.toFixed(1)}ms`);
      if (inFlight === 0) idleWaiters.splice(0).forEach((f) => f());
    });
    let url: RequestTarget;
    try {
      url = requestTarget(req.url ?? '/');
      pathname = url.pathname;
    } catch {
      refuse(req, res, errorAnswer(400, 'invalid_argument', 'malformed request URL'), true);
      return;
    }
    if (connections > limits.maxConnections) {
      refuse(req, res, busy(`the host has as many connections as it may (${limits.maxConnections}); try again shortly`), true);
      return;
    }
    dispatch(req, url).then(
      // a handler that answered before it read all of a streamed body (415, 413, 503): close, as for a refusal
      (a) => refuse(req, res, a, true),
      (failure) => {
        if (failure instanceof ClientGone) return; // nobody to answer; the access line says 499
        const err = failure instanceof UserStoreUnavailableError
          ? new HttpError(503, 'users_unavailable', 'the user store does not answer; try again shortly')
          : failure;
        if (err instanceof HttpError) {
          const a = errorAnswer(err.status, err.code, err.message);
          if (err.retryAfterSeconds !== undefined) a.headers['Retry-After'] = String(err.retryAfterSeconds);
          else if (err.status === 503) a.headers['Retry-After'] = String(RETRY_AFTER_SECONDS);
          // Answered while the body may still be coming (a refusal before or while it is read).
          if (!req.complete) refuse(req, res, a, err.status !== 408);
          else send(res, a);
          return;
        }
        log(`error: ${(err as Error)?.stack ?? String(err)}`);
        send(res, errorAnswer(500, 'internal', 'internal error'));
      },
    );
  };

  const options: http.ServerOptions = {
    // How often Node checks headersTimeout and requestTimeout (its default, 30 s, would let a
    // connection that never finishes its headers stay three times as long as the timeout says).
    connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: Math.max(300_000, limits.headersTimeoutMs),
    keepAliveTimeout: 5_000,
  };
  const server = deps.tls
    ? https.createServer({ ...options, cert: deps.tls.cert, key: deps.tls.key }, onRequest)
    : http.createServer(options, onRequest);
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => onRequest(req, res, true));
  // One client's share first: past it a connection is closed before the host spends anything on it.
  if (limits.maxConnectionsPerAddress > 0) capConnectionsPerClient(server, { perClient: limits.maxConnectionsPerAddress });
  // Connections are counted as they open; past the bound their requests answer 503, and past twice
  // the bound a new connection is closed at once (it would hold a socket and a file descriptor).
  let lastConnectionAt = 0;
  server.on('connection', (socket: net.Socket) => {
    lastConnectionAt = performance.now();
    connections++;
    sockets.add(socket);
    socket.once('close', () => {
      connections--;
      sockets.delete(socket);
    });
    if (connections > 2 * limits.maxConnections) socket.destroy();
  });
  // A client that stops reading its answers would make the host hold them: a connection whose
  // answer has not moved for the body idle timeout is closed.
  // Removed users' prefixes, swept again while their old links may still write (removal-sweeper.ts).
  const sweeper = startRemovalSweeper({
    users,
    log,
    intervalMs: deps.removalSweepMs ?? DEFAULT_REMOVAL_SWEEP_MS,
    callAsUser: (endpoint, user, args) => runEndpoint(undefined, undefined, endpoint, args, { user, admin: false }, 'POST'),
    callAsAdmin: (endpoint, args) => runEndpoint(undefined, undefined, endpoint, args, { admin: true }, 'POST'),
  });
  server.once('close', () => sweeper.stop());
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (const socket of sockets) {
      const conn = connectionOf(socket);
      if (socket.writableLength === 0 || socket.bytesWritten !== conn.lastWritten) {
        conn.lastWritten = socket.bytesWritten;
        conn.stalledSince = now;
      } else if (now - conn.stalledSince > limits.bodyIdleTimeoutMs) {
        socket.destroy();
      }
    }
  }, Math.min(1_000, limits.bodyIdleTimeoutMs));
  watchdog.unref();
  server.once('close', () => clearInterval(watchdog));

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
      // Closing the listening socket resets every connection still waiting to be accepted (and, with
      // workers, every one the primary holds for them): keep accepting until the door has been quiet
      // for the grace. Meanwhile a request already on its way over an open connection arrives; both
      // are served and told Connection: close.
      const started = performance.now();
      lastConnectionAt = Math.max(lastConnectionAt, started);
      for (;;) {
        const now = performance.now();
        // at most half the shutdown timeout: the other half is for the requests being served
        const wait = Math.min(lastConnectionAt + SHUTDOWN_GRACE_MS, started + timeoutMs / 2) - now;
        if (wait <= 0) break;
        await new Promise((r) => setTimeout(r, wait));
      }
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const idle = inFlight === 0 ? Promise.resolve() : new Promise<void>((r) => idleWaiters.push(r));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, started + timeoutMs - performance.now()))));
      await Promise.race([idle, timedOut]);
      clearTimeout(timer);
      server.closeAllConnections();
      await Promise.race([closed, new Promise<void>((r) => setTimeout(r, 1_000).unref())]);
      stdout.flush();
    },
  };
}
