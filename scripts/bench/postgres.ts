/**
 * A throw-away PostgreSQL for the bench, made by scripts/postgres/run.ts (the one `npm run test:postgres`
 * uses): run.ts starts the server and runs a small command that prints DATABASE_URL and waits; stopping
 * that command makes run.ts stop the server and remove its folder. Resolves with `skipped` and the
 * reason when PostgreSQL cannot be installed or started.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
const START_TIMEOUT_MS = 120_000;

export type BenchPostgres = { url: string; stop: () => Promise<void> } | { skipped: string };

// the command run.ts runs: says where the server is, then waits to be stopped
const WAITER = 'process.stdout.write("DATABASE_URL=" + process.env.DATABASE_URL + "\\n"); process.on("SIGTERM", () => process.exit(0)); setInterval(() => {}, 1 << 30);';

export async function startBenchPostgres(log: (s: string) => void): Promise<BenchPostgres> {
  const install = spawnSync('bash', [path.join(PROJECT_ROOT, 'scripts', 'postgres', 'install.sh')], { encoding: 'utf8', timeout: 600_000 });
  if (install.status !== 0) {
    return { skipped: `PostgreSQL could not be installed: ${(install.stderr || install.stdout || String(install.error ?? install.signal)).trim().split('\n').slice(-3).join(' / ')}` };
  }
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(PROJECT_ROOT, 'scripts', 'postgres', 'run.ts'), '--', process.execPath, '-e', WAITER], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  let exitCode: number | undefined;
  void exited.then((c) => (exitCode = c));
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (let i = 0; Date.now() < deadline && exitCode === undefined; i++) {
    const m = /^DATABASE_URL=(postgres\S+)$/m.exec(out);
    if (m) {
      log(`postgres: a throw-away server for the bench (${err.match(/ready in [^\n]*/)?.[0] ?? 'ready'})`);
      return {
        url: m[1],
        async stop() {
          if (exitCode !== undefined) return;
          child.kill('SIGTERM'); // run.ts passes it on, then stops the server and removes its folder
          const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
          await exited;
          clearTimeout(timer);
        },
      };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
  return { skipped: `PostgreSQL did not start: ${err.trim().split('\n').slice(-3).join(' / ') || 'no output'}` };
}

export interface LookupFigures {
  /** µs per findByKeyDigest of a key found before (the cache's path), SQLite and PostgreSQL */
  cachedUs: { sqlite: number; postgres: number };
  /** µs per findByKeyDigest of an unknown key (never cached: a database round trip each) */
  missUs: { sqlite: number; postgres: number };
}

/**
 * The user stores' own lookup cost in this process, without HTTP: what the host's request rate can
 * at most lose to PostgreSQL (a found key is cached), and what a miss costs. Medians of 3 rounds.
 */
export async function measureLookups(databaseUrl: string, roundMs = 700): Promise<LookupFigures> {
  const { openUserStore } = await import('../host/users');
  const { keyDigest } = await import('../host/admin-key');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-storage-bench-lookups-'));
  const perCall = async (call: () => Promise<unknown>): Promise<number> => {
    const rounds: number[] = [];
    for (let r = 0; r < 3; r++) {
      const t = performance.now();
      let n = 0;
      while (performance.now() - t < roundMs && n < 1_000_000) {
        for (let i = 0; i < 50; i++) await call();
        n += 50;
      }
      rounds.push((1000 * (performance.now() - t)) / n);
    }
    return round2(rounds.sort((x, y) => x - y)[1]);
  };
  const out: LookupFigures = { cachedUs: { sqlite: 0, postgres: 0 }, missUs: { sqlite: 0, postgres: 0 } };
  try {
    for (const kind of ['sqlite', 'postgres'] as const) {
      const store = await openUserStore({ dataDir, databaseUrl: kind === 'postgres' ? databaseUrl : undefined });
      try {
        const found = keyDigest((await store.createUser(`bench-lookups-${kind}`)).user_key);
        const unknown = keyDigest('not a key of anyone');
        if (!(await store.findByKeyDigest(found))) throw new Error(`${kind}: the bench user is not found`);
        out.cachedUs[kind] = await perCall(() => store.findByKeyDigest(found));
        out.missUs[kind] = await perCall(() => store.findByKeyDigest(unknown));
      } finally {
        await store.close();
      }
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  return out;
}

const round2 = (n: number) => Math.round(n * 100) / 100;
