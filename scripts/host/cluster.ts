// HOST_WORKERS > 1: this process (the primary) keeps the embedded store and the admin key, and forks
// that many workers (node:cluster) that serve HTTP on one shared port. The host keeps no state but the
// user store (SQLite in WAL mode, or PostgreSQL), which each worker opens for itself, so workers need
// nothing from each other.
import cluster, { type Worker } from 'node:cluster';
import fs from 'node:fs';
import net from 'node:net';
import { loadAdminKey, type AdminKeySource } from './admin-key';
import { describeUserStore, listenUrl, type HostSettings } from './env';
import type { UserStore } from './users/types';

interface PrimaryDeps {
  startStore: (settings: HostSettings, region: unknown) => Promise<{ env: Record<string, string>; close: () => Promise<void> | void }>;
  openUsers: (settings: HostSettings, admin: AdminKeySource) => Promise<UserStore>;
  sayAdminKey: (admin: AdminKeySource) => void;
  say: (line: string) => void;
}

/** A worker that dies is replaced, but not more often than this within a minute. */
const MAX_RESTARTS_PER_MINUTE = 5;

/** PORT=0: one free port chosen here, so that every worker listens on the same one. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export async function runPrimary(settings: HostSettings, deps: PrimaryDeps): Promise<void> {
  const { say } = deps;
  // Created once here (the admin key, the user store's tables, the admin key in them), so that workers
  // starting together never race to create them.
  fs.mkdirSync(settings.dataDir, { recursive: true });
  const admin = loadAdminKey(settings.dataDir, settings.adminKey);
  await (await deps.openUsers(settings, admin)).close();
  say(`users: ${describeUserStore(settings)}`);

  const env: Record<string, string> = {};
  let closeStore: (() => Promise<void> | void) | undefined;
  if (!process.env.AWS_S3_ENDPOINT) {
    const store = await deps.startStore(settings, process.env.AWS_REGION || process.env.REGION);
    Object.assign(env, store.env);
    closeStore = store.close;
  } else {
    say(`store: ${process.env.AWS_S3_ENDPOINT} (external), bucket ${settings.bucket}`);
  }
  const port = settings.port === 0 ? await freePort(settings.host) : settings.port;
  env.PORT = String(port);

  let stopping = false;
  const restarts: number[] = [];
  const fork = (): Worker => cluster.fork(env);

  // Start: every worker listening, or the first one that exits early fails the start.
  const workers = Array.from({ length: settings.workers }, fork);
  await new Promise<void>((resolve, reject) => {
    let listening = 0;
    const onListening = () => {
      if (++listening === workers.length) {
        cluster.off('listening', onListening);
        cluster.off('exit', onEarlyExit);
        resolve();
      }
    };
    const onEarlyExit = (_w: Worker, code: number | null) => {
      cluster.off('listening', onListening);
      cluster.off('exit', onEarlyExit);
      for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGKILL');
      reject(new Error(`a worker exited (${code}) before it listened`));
    };
    cluster.on('listening', onListening);
    cluster.on('exit', onEarlyExit);
  }).catch(async (err) => {
    await closeStore?.();
    throw err;
  });

  // the workers' line first: whoever waits for "listening" (tests, scripts) has seen both
  say(`instance ${settings.instance}, ${settings.workers} workers (pids ${workers.map((w) => w.process.pid).join(', ')})`);
  say(`host listening on ${listenUrl(settings, port)}`);
  say(`the page: ${listenUrl(settings, port)}/ (make a user for it: npm run users -- add <username>)`);
  deps.sayAdminKey(admin);

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    const now = Date.now();
    restarts.push(now);
    while (restarts.length && restarts[0] < now - 60_000) restarts.shift();
    if (restarts.length > MAX_RESTARTS_PER_MINUTE) {
      say(`worker ${worker.process.pid} exited (${signal ?? code}); too many restarts, stopping`);
      void stop('restarts', 1);
      return;
    }
    say(`worker ${worker.process.pid} exited (${signal ?? code}); starting another`);
    fork();
  });

  const stop = async (why: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    say(`${why}: workers finishing requests in flight`);
    const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => Boolean(w));
    const exited = Promise.all(alive.map((w) => new Promise<void>((r) => (w.isDead() ? r() : w.once('exit', () => r())))));
    for (const w of alive) w.process.kill('SIGTERM');
    const hardStop = setTimeout(() => {
      for (const w of alive) w.process.kill('SIGKILL');
    }, settings.shutdownTimeoutMs + 5_000);
    hardStop.unref();
    await exited;
    clearTimeout(hardStop);
    try {
      await closeStore?.();
    } catch (err) {
      say(`close failed: ${(err as Error).message}`);
    }
    say('stopped');
    process.exit(exitCode);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
