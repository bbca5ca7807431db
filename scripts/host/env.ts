// Host settings from the environment, and the socket's ctx.config built from the same environment.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { DEFAULT_MAX_FILE_SIZE, defaultBucket } from '../../src/lib/defaults';
import { DEFAULT_SIGN_IN_LIMITS, type SignInLimits } from './sign-in';


export interface HostSettings {
  port: number;
  host: string;
  instance: string;
  /** AWS_BUCKET, else the instance's bucket as the socket derives it */
  bucket: string;
  dataDir: string;
  /** DATABASE_URL: users and admin keys in PostgreSQL; without it, SQLite in DATA_DIR */
  databaseUrl?: string;
  /** DATABASE_POOL_SIZE: PostgreSQL connections one process holds at most (the store's default when unset) */
  databasePoolSize?: number;
  s3Port: number;
  /** the embedded store's connections from one address, loopback (the host's own) not counted */
  s3MaxConnectionsPerAddress: number;
  /** S3_PUBLIC_URL: the embedded store's address in links (else http://<HOST>:<S3_PORT>) */
  s3PublicUrl?: string;
  adminKey?: string;
  tlsCert?: string;
  tlsKey?: string;
  socketDir: string;
  handlerTimeoutMs: number;
  handlerGraceMs: number;
  shutdownTimeoutMs: number;
  /** REMOVED_USERS_SWEEP_SECONDS: how often removed users' prefixes are swept for what their old links wrote */
  removalSweepMs: number;
  /** HOST_WORKERS: processes serving HTTP (node:cluster); 1 serves from this process */
  workers: number;
  /** what unauthenticated or slow traffic may hold (per process) */
  limits: FrontDoorLimits;
  /** #16: signing in with a password */
  signIn: {
    /** ALLOW_SIGNUP=true: anyone may make a user with a password (POST users/ without the admin key) */
    allowSignup: boolean;
    /** SIGNUPS_PER_HOUR: sign-ups one client address may make in an hour */
    signupsPerHour: number;
    /** HOST_TRUST_PROXY=true: the client address is the last X-Forwarded-For entry (behind a load balancer) */
    trustProxy: boolean;
    limits: SignInLimits;
  };
}

/**
 * The front door's bounds: what one process lets callers hold before their key is checked, and in all.
 * Each is an environment variable (README, "The host").
 */
export interface FrontDoorLimits {
  /** HOST_KEYLESS_BODY_LIMIT: bytes of body read from a call that brings no key in a header or the query */
  keylessBodyLimit: number;
  /** HOST_MAX_CONNECTIONS: open connections; past it requests answer 503 (and at twice it new ones are dropped) */
  maxConnections: number;
  /**
   * HOST_MAX_CONNECTIONS_PER_ADDRESS: connections one client address (IPv6: its /64) may hold, so that
   * one client cannot take maxConnections from everyone; past it a new one is closed unread. 0: no cap,
   * the default behind HOST_TRUST_PROXY (every client's connection is the proxy's)
   */
  maxConnectionsPerAddress: number;
  /** HOST_MAX_INFLIGHT_BODY_BYTES: request body bytes held at once; past it 503 (one body is always let in) */
  maxInflightBodyBytes: number;
  /** HOST_HEADERS_TIMEOUT_MS: a request's headers must arrive within this */
  headersTimeoutMs: number;
  /** HOST_BODY_IDLE_TIMEOUT_MS: a body that sends nothing for this long is dropped (408) */
  bodyIdleTimeoutMs: number;
  /** HOST_MIN_BODY_RATE: bytes a second a body must average once it has taken HOST_BODY_IDLE_TIMEOUT_MS */
  minBodyBytesPerSecond: number;
  /** HOST_JSON_MAX_DEPTH: nesting of a JSON body */
  jsonMaxDepth: number;
  /** HOST_JSON_MAX_KEYS: keys and array elements of a JSON body, or fields of a form body */
  jsonMaxKeys: number;
  /**
   * HOST_UNKNOWN_KEYS_PER_MINUTE: keys one client address (IPv6: its /64) may bring that no user or
   * admin has, in a minute; past it, its keys this host has not found before are 429 without a lookup
   */
  unknownKeysPerMinute: number;
}

export const DEFAULT_LIMITS: FrontDoorLimits = {
  keylessBodyLimit: 64 * 1024,
  maxConnections: 1024,
  maxConnectionsPerAddress: 256,
  maxInflightBodyBytes: 256 * 1024 * 1024,
  headersTimeoutMs: 10_000,
  bodyIdleTimeoutMs: 10_000,
  minBodyBytesPerSecond: 1024,
  jsonMaxDepth: 64,
  jsonMaxKeys: 10_000,
  unknownKeysPerMinute: 600,
};

export function readLimits(env: NodeJS.ProcessEnv = process.env): FrontDoorLimits {
  const d = DEFAULT_LIMITS;
  return {
    keylessBodyLimit: intEnv(env, 'HOST_KEYLESS_BODY_LIMIT', d.keylessBodyLimit, 1024),
    maxConnections: intEnv(env, 'HOST_MAX_CONNECTIONS', d.maxConnections, 1),
    maxConnectionsPerAddress: intEnv(env, 'HOST_MAX_CONNECTIONS_PER_ADDRESS', boolEnv(env, 'HOST_TRUST_PROXY') ? 0 : d.maxConnectionsPerAddress, 0),
    maxInflightBodyBytes: intEnv(env, 'HOST_MAX_INFLIGHT_BODY_BYTES', d.maxInflightBodyBytes, 1),
    headersTimeoutMs: intEnv(env, 'HOST_HEADERS_TIMEOUT_MS', d.headersTimeoutMs, 100),
    bodyIdleTimeoutMs: intEnv(env, 'HOST_BODY_IDLE_TIMEOUT_MS', d.bodyIdleTimeoutMs, 100),
    minBodyBytesPerSecond: intEnv(env, 'HOST_MIN_BODY_RATE', d.minBodyBytesPerSecond, 0),
    jsonMaxDepth: intEnv(env, 'HOST_JSON_MAX_DEPTH', d.jsonMaxDepth, 1, 10_000),
    jsonMaxKeys: intEnv(env, 'HOST_JSON_MAX_KEYS', d.jsonMaxKeys, 1),
    unknownKeysPerMinute: intEnv(env, 'HOST_UNKNOWN_KEYS_PER_MINUTE', d.unknownKeysPerMinute, 1),
  };
}

function intEnv(env: NodeJS.ProcessEnv, name: string, def: number, min = 0, max = 2 ** 31): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${name} must be an integer between ${min} and ${max}`);
  }
  return n;
}

/** The project root: scripts/host/../.. */
export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

export function readSettings(env: NodeJS.ProcessEnv = process.env): HostSettings {
  const tlsCert = env.TLS_CERT || undefined;
  const tlsKey = env.TLS_KEY || undefined;
  if (Boolean(tlsCert) !== Boolean(tlsKey)) throw new Error('TLS_CERT and TLS_KEY must be set together');
  const s3PublicUrl = publicUrlOf(env.S3_PUBLIC_URL);
  // S3_PUBLIC_URL names the embedded store, which runs only without AWS_S3_ENDPOINT: both set is a mistake
  if (s3PublicUrl && env.AWS_S3_ENDPOINT) {
    throw new Error('S3_PUBLIC_URL names the embedded store, which does not run when AWS_S3_ENDPOINT is set: links name AWS_S3_ENDPOINT; unset one of the two');
  }
  const instance = env.INSTANCE || 'local';
  if (!/^[a-z0-9][a-z0-9_-]{0,63}$/i.test(instance)) throw new Error('INSTANCE must be letters, digits, - or _');
  return {
    port: intEnv(env, 'PORT', 8080, 0, 65535),
    host: env.HOST || '127.0.0.1',
    instance,
    bucket: env.AWS_BUCKET || defaultBucket(instance),
    dataDir: path.resolve(env.DATA_DIR || './.data'),
    databaseUrl: env.DATABASE_URL || undefined,
    databasePoolSize: env.DATABASE_POOL_SIZE ? intEnv(env, 'DATABASE_POOL_SIZE', 10, 1, 1000) : undefined,
    s3Port: intEnv(env, 'S3_PORT', 4569, 0, 65535),
    s3MaxConnectionsPerAddress: intEnv(env, 'S3_MAX_CONNECTIONS_PER_ADDRESS', 256, 1, 2048),
    s3PublicUrl,
    adminKey: env.ADMIN_KEY || undefined,
    tlsCert,
    tlsKey,
    // SOCKET_DIR exists for the host's own tests (a throwaway socket); it defaults to the project root.
    socketDir: path.resolve(env.SOCKET_DIR || PROJECT_ROOT),
    handlerTimeoutMs: intEnv(env, 'HANDLER_TIMEOUT_MS', 30_000, 1),
    handlerGraceMs: intEnv(env, 'HANDLER_GRACE_MS', 5_000, 0),
    shutdownTimeoutMs: intEnv(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0),
    removalSweepMs: intEnv(env, 'REMOVED_USERS_SWEEP_SECONDS', 60, 1, 86_400) * 1000,
    workers: env.HOST_WORKERS === 'auto' ? os.availableParallelism() : intEnv(env, 'HOST_WORKERS', 1, 1, 64),
    limits: readLimits(env),
    signIn: {
      allowSignup: boolEnv(env, 'ALLOW_SIGNUP'),
      signupsPerHour: intEnv(env, 'SIGNUPS_PER_HOUR', 10, 1),
      trustProxy: boolEnv(env, 'HOST_TRUST_PROXY'),
      limits: {
        ...DEFAULT_SIGN_IN_LIMITS,
        freePerUsername: intEnv(env, 'SIGN_IN_FREE_PER_USERNAME', DEFAULT_SIGN_IN_LIMITS.freePerUsername, 1),
        freePerUsernameTotal: intEnv(env, 'SIGN_IN_FREE_PER_USERNAME_TOTAL', DEFAULT_SIGN_IN_LIMITS.freePerUsernameTotal, 1),
        freePerAddress: intEnv(env, 'SIGN_IN_FREE_PER_ADDRESS', DEFAULT_SIGN_IN_LIMITS.freePerAddress, 1),
        delayMs: intEnv(env, 'SIGN_IN_DELAY_MS', DEFAULT_SIGN_IN_LIMITS.delayMs, 1),
        maxDelayMs: intEnv(env, 'SIGN_IN_MAX_DELAY_MS', DEFAULT_SIGN_IN_LIMITS.maxDelayMs, 1),
      },
    },
  };
}

/** S3_PUBLIC_URL: an http(s) origin, with no path, query or credentials (links are signed for it). */
function publicUrlOf(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new Error('S3_PUBLIC_URL must be a URL like http://files.example.com:4569');
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search || url.hash || url.pathname !== '/') {
    // the value is not echoed: it may hold credentials
    throw new Error('S3_PUBLIC_URL must be an http(s) origin with no path, query or credentials, like http://files.example.com:4569');
  }
  return url.origin;
}

function boolEnv(env: NodeJS.ProcessEnv, name: string): boolean {
  const v = env[name];
  if (v === undefined || v === '' || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1') return true;
  throw new Error(`${name} must be true or false`);
}

/** Which user store the host uses, as it prints it: never the URL's password (nor its query, which may hold one). */
export function describeUserStore(settings: Pick<HostSettings, 'dataDir' | 'databaseUrl'>): string {
  if (!settings.databaseUrl) return `SQLite in ${path.join(settings.dataDir, 'users.sqlite')}`;
  let url: URL;
  try {
    url = new URL(settings.databaseUrl);
  } catch {
    return 'PostgreSQL (DATABASE_URL, not a URL the host can show)';
  }
  const user = url.username ? `${url.username}@` : '';
  return `PostgreSQL at ${url.protocol}//${user}${url.host}${url.pathname}`;
}

/** The URL the host answers on, as it prints it. */
export function listenUrl(settings: HostSettings, port: number): string {
  const host = settings.host.includes(':') ? `[${settings.host}]` : settings.host;
  return `${settings.tlsCert && settings.tlsKey ? 'https' : 'http'}://${host}:${port}`;
}

export interface EndpointMeta {
  file?: string;
  description?: string;
  private?: boolean;
  [k: string]: unknown;
}

export interface SocketDefinition {
  name: string;
  config: Record<string, unknown>;
  endpoints: Record<string, EndpointMeta>;
}

export function readSocketYml(socketDir: string): SocketDefinition {
  const file = path.join(socketDir, 'socket.yml');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new Error(`cannot read ${file}`);
  }
  const doc = YAML.parse(text) as Partial<SocketDefinition> | null;
  if (!doc || typeof doc.name !== 'string' || !doc.endpoints || typeof doc.endpoints !== 'object') {
    throw new Error(`${file}: expected a name and endpoints`);
  }
  return {
    name: doc.name,
    config: doc.config && typeof doc.config === 'object' ? doc.config : {},
    endpoints: doc.endpoints as Record<string, EndpointMeta>,
  };
}

/** ctx.config: the socket.yml `config:` option names that are set in the environment. */
export function socketConfigFromEnv(def: SocketDefinition, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(def.config)) {
    const v = env[name];
    if (v !== undefined && v !== '') out[name] = v;
  }
  return out;
}

/**
 * Largest request body accepted: a base64 file of MAX_FILE_SIZE bytes (4/3 inflation), plus room for a
 * data: URL prefix and the other JSON fields (64 KiB).
 */
export function bodyLimitFor(maxFileSize: unknown): number {
  const n = Number(maxFileSize);
  const size = Number.isFinite(n) && n > 0 ? Math.floor(n) : DEFAULT_MAX_FILE_SIZE;
  return Math.ceil(size / 3) * 4 + 64 * 1024;
}
