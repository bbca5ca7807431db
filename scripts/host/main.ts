// aws-storage standalone host: serves the socket's endpoints over HTTP(S) exactly as the Syncano platform did.
//
// Built on node:http / node:https, no framework: there are only two route shapes (plus /healthz and
// the users route), the body must be streamed against a size limit (413 before it is read whole), and
// the ctx handed to each handler (args, meta, config, HttpResponse, setResponse) must be built exactly;
// a framework would add body parsers and response conventions we would have to undo.
import './v8-flags';
import cluster from 'node:cluster';
import './quiet';
import fs from 'node:fs';
import path from 'node:path';
import { keyDigest, loadAdminKey, loadStoreCredentials, type AdminKeySource } from './admin-key';
import { runPrimary } from './cluster';
import { bodyLimitFor, describeUserStore, listenUrl, PROJECT_ROOT, readSettings, readSocketYml, socketConfigFromEnv, type HostSettings } from './env';
import { DEFAULT_MULTIPART_EXPIRE_DAYS } from '../../src/lib/defaults';
import { createHostServer } from './server';
import { loadRuntime, loadSocket } from './socket';
import { openUserStore } from './users';
import type { UserStore } from './users/types';

type Closer = () => Promise<void> | void;
const say = (line: string) => process.stdout.write(`aws-storage ${line}\n`);

/**
 * Embedded mode (no AWS_S3_ENDPOINT): an S3-compatible store on its own thread of this process, its
 * files in DATA_DIR/s3. Resolves with the options that point the socket at it, and its closer.
 */
async function startStore(settings: HostSettings, region: unknown): Promise<{ env: Record<string, string>; close: Closer }> {
  const { bucket } = settings;
  const { generateCredentials } = await import('../s3/embedded-store');
  const { startEmbeddedStoreThread } = await import('../s3/store-worker');
  // Given credentials win; else the pair kept in DATA_DIR (made on first start). Never a constant.
  const kept = process.env.AWS_ACCESS_KEY_ID && process.env.AWS_SECRET_ACCESS_KEY
    ? undefined
    : loadStoreCredentials(settings.dataDir, generateCredentials);
  const accessKeyId = kept?.accessKeyId ?? process.env.AWS_ACCESS_KEY_ID!;
  const secretAccessKey = kept?.secretAccessKey ?? process.env.AWS_SECRET_ACCESS_KEY!;
  const store = await startEmbeddedStoreThread({
    port: settings.s3Port,
    host: settings.host,
    dataDir: path.join(settings.dataDir, 's3'),
    accessKeyId,
    secretAccessKey,
    buckets: [bucket],
    // the rule the socket gives a bucket it creates; this one the store makes, so the socket finds it
    abortIncompleteUploadsAfterDays: daysOf(process.env.MULTIPART_EXPIRE_DAYS),
    silent: true,
    maxConnectionsPerAddress: settings.s3MaxConnectionsPerAddress,
  });
  const env: Record<string, string> = {
    // links name the store as browsers reach it; the host's own calls go there too, signed the same way
    AWS_S3_ENDPOINT: settings.s3PublicUrl ?? store.endpoint,
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    AWS_BUCKET: bucket,
  };
  if (!region && store.region) env.AWS_REGION = store.region;
  say(`store: ${settings.s3PublicUrl ? `${settings.s3PublicUrl} (listening on ${store.endpoint}; ` : `${store.endpoint} (`}embedded, files in ${path.join(settings.dataDir, 's3')}), bucket ${bucket}`);
  if (kept) say(`store credentials: access key ${accessKeyId} (kept in ${kept.file}${kept.generated ? ', made now' : ''})`);
  return { env, close: () => store.close() };
}

/** MULTIPART_EXPIRE_DAYS as the socket reads it (0: no rule); one it would refuse is the socket's to report. */
function daysOf(value: unknown): number {
  if (value === undefined || value === '') return DEFAULT_MULTIPART_EXPIRE_DAYS;
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 && n <= 36_500 ? n : DEFAULT_MULTIPART_EXPIRE_DAYS;
}

/**
 * The user store (SQLite in DATA_DIR, or PostgreSQL with DATABASE_URL), with the admin key the host
 * was started with (ADMIN_KEY, or DATA_DIR/admin-key) made one of its working admin keys. A key once
 * revoked stays revoked (the store's rule), so a start with it says so instead of seeming to work.
 */
async function openUsers(settings: HostSettings, admin: AdminKeySource, tell: (line: string) => void = say): Promise<UserStore> {
  const users = await openUserStore({ dataDir: settings.dataDir, databaseUrl: settings.databaseUrl, poolSize: settings.databasePoolSize });
  try {
    await users.ensureAdminKey(admin.key, admin.source === 'env' ? 'ADMIN_KEY' : 'DATA_DIR/admin-key');
    if (!(await users.isAdminKeyDigest(keyDigest(admin.key)))) {
      tell(`admin key ${admin.source === 'env' ? 'ADMIN_KEY' : `in ${admin.source}`} was revoked: it is refused; call with another admin key`);
    }
  } catch (err) {
    await users.close();
    throw err;
  }
  return users;
}

function sayAdminKey(admin: AdminKeySource): void {
  if (admin.source === 'env') say('admin key: from ADMIN_KEY');
  else if (admin.generated) say(`admin key generated: ${admin.key} (kept in ${admin.source}; shown only this once)`);
  else say(`admin key kept in ${admin.source}`);
}

async function main(): Promise<void> {
  const settings = readSettings();
  if (settings.workers > 1 && cluster.isPrimary) {
    await runPrimary(settings, { startStore, openUsers, sayAdminKey, say });
    return;
  }
  // In a worker of runPrimary, the primary has said all of this (and runs the store).
  const quiet = cluster.isWorker;
  const tell = quiet ? () => {} : say;

  // Run under tsx (which turns source maps on), the runtime's 6.6 MB map would be parsed and kept, heap
  // that every full GC walks. Handler stack traces point into .dist/src/*.js instead;
  // `node --enable-source-maps` keeps the maps.
  if (!process.execArgv.includes('--enable-source-maps')) process.setSourceMapsEnabled(false);
  const config: Record<string, unknown> = socketConfigFromEnv(readSocketYml(settings.socketDir));
  const closers: Closer[] = [];

  fs.mkdirSync(settings.dataDir, { recursive: true });
  const admin = loadAdminKey(settings.dataDir, settings.adminKey);
  // each worker of runPrimary opens its own (its own connections, its own cache)
  const users = await openUsers(settings, admin, tell);
  closers.push(() => users.close());
  tell(`users: ${describeUserStore(settings)}`);

  // The store's thread starts first, so that it starts on the other core while this one loads the
  // socket's code (the shared runtime: about a third of the time to healthy).
  const storeStarting = process.env.AWS_S3_ENDPOINT ? undefined : startStore(settings, config.AWS_REGION || config.REGION);
  const socket = loadSocket(settings.socketDir);
  if (storeStarting) {
    const store = await storeStarting;
    closers.unshift(store.close);
    Object.assign(config, store.env);
  } else {
    tell(`store: ${process.env.AWS_S3_ENDPOINT} (external), bucket ${settings.bucket}`);
  }

  // checkStore comes from the built runtime the handlers share (no second copy of the SDK), loaded when
  // first needed, so that a broken storage module shows as 503, not a crash.
  const checkHealth = async () => {
    // (a socket of other handlers, a test's or the bench's, has no runtime: the project's is used)
    const storage = (loadRuntime(settings.socketDir)?.['lib/storage'] ?? loadRuntime(PROJECT_ROOT)?.['lib/storage']) as
      | typeof import('../../src/lib/storage')
      | undefined;
    if (!storage) throw new Error('.dist/src/_runtime.js is missing: run `npm run build`');
    await storage.checkStore(config, settings.instance);
  };

  // One store check now, beside listen(): the S3 client is built and its connection open before the
  // first /healthz (a failure here says nothing: /healthz checks again).
  checkHealth().catch(() => {});

  const tls = settings.tlsCert && settings.tlsKey
    ? { cert: fs.readFileSync(settings.tlsCert), key: fs.readFileSync(settings.tlsKey) }
    : undefined;

  const host = createHostServer({
    instance: settings.instance,
    socket,
    users,
    signIn: settings.signIn,
    config,
    bodyLimit: bodyLimitFor(config.MAX_FILE_SIZE),
    handlerTimeoutMs: settings.handlerTimeoutMs,
    removalSweepMs: settings.removalSweepMs,
    handlerGraceMs: settings.handlerGraceMs,
    checkHealth,
    tls,
    publicDir: path.join(PROJECT_ROOT, 'scripts', 'host', 'public'),
    clientDir: path.join(PROJECT_ROOT, 'client', 'dist'),
    limits: settings.limits,
  });
  const port = await host.listen(settings.port, settings.host);

  // The admin key first: whoever waits for the listening line (a test, a script) has it by then.
  if (!quiet) sayAdminKey(admin);
  tell(`host listening on ${listenUrl(settings, port)}`);
  tell(`the page: ${listenUrl(settings, port)}/ (make a user for it: npm run users -- add <username>)`);
  tell(`instance ${settings.instance}, socket ${socket.definition.name}, ${socket.endpoints.size} endpoints`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    tell(`${signal}: finishing requests in flight`);
    const hardStop = setTimeout(() => {
      say('shutdown took too long; exiting');
      process.exit(1);
    }, settings.shutdownTimeoutMs + 10_000);
    hardStop.unref();
    await host.close(settings.shutdownTimeoutMs);
    for (const c of closers) {
      try {
        await c();
      } catch (err) {
        say(`close failed: ${(err as Error).message}`);
      }
    }
    tell('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // A worker whose primary is gone stops too, rather than serving on as an orphan.
  if (cluster.isWorker) process.on('disconnect', () => void stop('primary gone'));
}

// A second copy of the AWS SDK in this process (a socket built without the shared runtime) would print
// the SDK's Node-version notice again; the host prints it once.
const emitWarning = process.emitWarning.bind(process) as (...a: unknown[]) => void;
let sdkNoticeShown = false;
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
  const name = type ?? (warning instanceof Error ? warning.name : '');
  const text = typeof warning === 'string' ? warning : warning.message;
  if (name === 'NodeVersionSupportWarning' || /^NodeVersionSupportWarning\b/.test(text)) {
    if (sdkNoticeShown) return;
    sdkNoticeShown = true;
  }
  emitWarning(warning, ...rest);
}) as typeof process.emitWarning;

// A handler's detached promise must not take the whole host down.
process.on('unhandledRejection', (err) => {
  process.stderr.write(`aws-storage unhandled rejection: ${(err as Error)?.stack ?? String(err)}\n`);
});

main().catch((err) => {
  process.stderr.write(`aws-storage host failed to start: ${(err as Error)?.message ?? String(err)}\n`);
  process.exit(1);
});
