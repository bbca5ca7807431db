/**
 * A throw-away PostgreSQL for the bench, made by scripts/postgres/run.ts (the one `npm run test:postgres`
 * uses): run.ts starts the server and runs a small command that prints DATABASE_URL and waits; stopping
 * that command makes run.ts stop the server and remove its folder. Resolves with `skipped` and the
 * reason when PostgreSQL cannot be installed or started.
 */
import { spawn, spawnSync } from 'node:child_process';
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
