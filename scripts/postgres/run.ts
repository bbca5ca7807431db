/**
 * Runs a command against a throw-away PostgreSQL server on 127.0.0.1, all inside a fresh temp folder.
 *
 *   node --import tsx scripts/postgres/run.ts -- <command...>
 *
 * The command gets:
 *   DATABASE_URL  postgres://aws_storage:<random password>@127.0.0.1:<free port>/aws_storage
 *                 (password auth, so tests can check that no error names it)
 *   PG_CTL        a script running this server's pg_ctl as the server's owner with its data folder and
 *                 log: `$PG_CTL stop -m fast`, `$PG_CTL start`, `$PG_CTL restart -m fast` (waits for each)
 *   PGDATA, PG_BIN  the data folder and the server binaries' folder
 * PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user Debian's package
 * makes (else one made here, `aws-storage-pg`). Afterwards (also on failure, SIGINT or SIGTERM) the server
 * is stopped, the temp folder removed, and the script exits with the command's exit code.
 *
 * Needs the packages scripts/postgres/install.sh installs.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';

const DB_USER = 'aws_storage';
const DB_NAME = 'aws_storage';
const STEP_TIMEOUT_S = 60;

const t0 = Date.now();
const log = (msg: string): void => {
  process.stderr.write(`postgres: ${msg}\n`);
};
const since = (t: number): string => `${((Date.now() - t) / 1000).toFixed(1)} s`;

const argv = process.argv.slice(2);
const dashdash = argv.indexOf('--');
const command = dashdash >= 0 ? argv.slice(dashdash + 1) : argv;
if (command.length === 0) {
  process.stderr.write('usage: node --import tsx scripts/postgres/run.ts -- <command...>\n');
  process.exit(2);
}

class StepError extends Error {}

/** Debian's newest server binaries, else the ones on PATH (PG_BIN wins). */
function findBin(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions.length) return join(root, versions[0], 'bin');
  }
  const which = spawnSync('sh', ['-c', 'dirname "$(command -v pg_ctl)"'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim() !== '.') return which.stdout.trim();
  throw new StepError('no pg_ctl: run scripts/postgres/install.sh');
}

/** Who runs the server: ourselves, or (as root, which PostgreSQL refuses) an unprivileged user. */
function serverOwner(): { name: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = (name: string) => {
    const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
    return uid.status === 0 && gid.status === 0 ? { name, uid: Number(uid.stdout), gid: Number(gid.stdout) } : undefined;
  };
  const found = lookup('postgres') ?? lookup('aws-storage-pg');
  if (found) return found;
  const made = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'aws-storage-pg'], { encoding: 'utf8' });
  if (made.status !== 0) throw new StepError(`cannot make a user to run PostgreSQL as: ${made.stderr.trim()}`);
  return lookup('aws-storage-pg')!;
}

/** A port nobody listens on right now (127.0.0.1). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const bin = findBin();
const owner = serverOwner();
// the unix socket's path must stay short (<= 107 bytes)
const dir = mkdtempSync('/tmp/pg-');
const data = join(dir, 'data');
const sockets = join(dir, 'sock');
const serverLog = join(dir, 'server.log');
const pgCtlScript = join(dir, 'pg_ctl.sh');
const password = randomBytes(18).toString('hex');
let started = false;
let aborted = false;
let child: ChildProcess | undefined;

/** argv that runs a server binary as the server's owner */
function asOwner(tool: string, args: string[]): string[] {
  const path = join(bin, tool);
  return owner ? ['runuser', '-u', owner.name, '--', path, ...args] : [path, ...args];
}

function must(argvOf: string[], timeoutS = STEP_TIMEOUT_S): string {
  const r = spawnSync(argvOf[0], argvOf.slice(1), { encoding: 'utf8', timeout: timeoutS * 1000, cwd: dir });
  if (r.status !== 0) {
    throw new StepError(`${argvOf.join(' ')} failed (${r.signal ?? `exit ${r.status}`}): ${(r.stderr || r.stdout || '').trim().slice(-2000)}`);
  }
  return r.stdout;
}

function pgCtl(args: string[], timeoutS = STEP_TIMEOUT_S): ReturnType<typeof spawnSync> {
  return spawnSync(pgCtlScript, args, { encoding: 'utf8', timeout: (timeoutS + 10) * 1000 });
}

async function bootstrap(): Promise<number> {
  if (owner) chownSync(dir, owner.uid, owner.gid);
  chmodSync(dir, 0o700);
  mkdirSync(sockets, { mode: 0o700 });
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, password + '\n', { mode: 0o600 });
  if (owner) {
    chownSync(sockets, owner.uid, owner.gid);
    chownSync(pwfile, owner.uid, owner.gid);
  }
  let t = Date.now();
  must(asOwner('initdb', ['-D', data, '-U', DB_USER, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-instructions']));
  rmSync(pwfile);
  log(`initdb (${since(t)})`);
  writeFileSync(
    pgCtlScript,
    `#!/bin/sh\n# this test server's pg_ctl, as its owner\nexec ${asOwner('pg_ctl', ['-D', data, '-l', serverLog, '-w', '-t', String(STEP_TIMEOUT_S)])
      .map((a) => `'${a}'`)
      .join(' ')} "$@"\n`,
    { mode: 0o755 },
  );
  // a port may be taken between our probe and the server's bind: try a few
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    appendFileSync(
      join(data, 'postgresql.conf'),
      [
        '',
        '# scripts/postgres/run.ts',
        "listen_addresses = '127.0.0.1'",
        `port = ${port}`,
        `unix_socket_directories = '${sockets}'`,
        'max_connections = 300',
        // a throw-away server: durability buys nothing here
        'fsync = off',
        'synchronous_commit = off',
        'full_page_writes = off',
        '',
      ].join('\n'),
    );
    t = Date.now();
    const r = pgCtl(['start']);
    if (r.status === 0) {
      started = true;
      log(`server on 127.0.0.1:${port} (${since(t)})`);
      return port;
    }
    log(`start on port ${port} failed (attempt ${attempt}): ${String(r.stderr || r.stdout).trim().slice(-500)}`);
    if (aborted) break;
  }
  throw new StepError('the server did not start');
}

async function createDatabase(port: number): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: DB_USER, password, database: 'postgres', connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${DB_NAME}`);
  } finally {
    await client.end();
  }
}

let stopping: Promise<void> | undefined;
function stopAll(): Promise<void> {
  stopping ??= (async () => {
    if (started) {
      const t = Date.now();
      // a test may have stopped it already: then pg_ctl says so and there is nothing to do
      const fast = pgCtl(['stop', '-m', 'fast'], 30);
      if (fast.status !== 0 && existsSync(join(data, 'postmaster.pid'))) {
        log(`fast stop failed: ${String(fast.stderr || fast.stdout).trim().slice(-300)}; immediate`);
        pgCtl(['stop', '-m', 'immediate'], 30);
      }
      log(`server stopped (${since(t)})`);
    }
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (e) {
      log(`could not remove ${dir}: ${(e as Error).message}`);
    }
  })();
  return stopping;
}

function logTail(lines = 30): void {
  try {
    const tail = readFileSync(serverLog, 'utf8').trim().split('\n').slice(-lines).join('\n');
    if (tail) process.stderr.write(`----- server.log (last ${lines} lines) -----\n${tail}\n`);
  } catch {
    /* no log yet */
  }
}

function runCommand(port: number): Promise<number> {
  return new Promise((resolve) => {
    const env = {
      ...process.env,
      DATABASE_URL: `postgres://${DB_USER}:${password}@127.0.0.1:${port}/${DB_NAME}`,
      PG_CTL: pgCtlScript,
      PGDATA: data,
      PG_BIN: bin,
    };
    child = spawn(command[0], command.slice(1), { stdio: 'inherit', env });
    child.once('error', (e) => {
      log(`could not start ${command[0]}: ${e.message}`);
      resolve(127);
    });
    child.once('exit', (code, signal) => {
      child = undefined;
      resolve(signal ? 128 + (signalNumber[signal] ?? 1) : (code ?? 1));
    });
  });
}

const signalNumber: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
let signalled: NodeJS.Signals | undefined;
function onSignal(sig: NodeJS.Signals): void {
  if (signalled) return;
  signalled = sig;
  aborted = true;
  log(`${sig}: stopping`);
  // The command shares our process group: a terminal's Ctrl-C already reached it; SIGTERM is passed on.
  if (child?.pid) {
    const c = child;
    try {
      c.kill(sig);
    } catch {
      /* gone */
    }
    setTimeout(() => {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, 10_000).unref();
  } else {
    void stopAll().then(() => process.exit(128 + (signalNumber[sig] ?? 1)));
  }
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
process.on('SIGHUP', onSignal);

async function main(): Promise<number> {
  let port: number;
  try {
    port = await bootstrap();
    await createDatabase(port);
  } catch (e) {
    if (!aborted) {
      log(`start failed: ${(e as Error).message}`);
      logTail();
    }
    await stopAll();
    return aborted ? 128 + (signalNumber[signalled!] ?? 1) : 1;
  }
  log(`ready in ${since(t0)} (${dir}${owner ? `, as ${owner.name}` : ''})`);
  if (aborted) {
    await stopAll();
    return 128 + (signalNumber[signalled!] ?? 1);
  }
  const code = await runCommand(port);
  await stopAll();
  return code;
}

main().then(
  (code) => process.exit(signalled && code === 0 ? 128 + (signalNumber[signalled] ?? 1) : code),
  async (e) => {
    log(`unexpected error: ${(e as Error).stack ?? e}`);
    await stopAll();
    process.exit(1);
  },
);
