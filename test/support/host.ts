// Starts the standalone host as `npm start` does (node .dist/host/main.js, built by `npm run build`) for tests.
import { ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

export interface StartedHost {
  url: string;
  adminKey: string;
  dataDir: string;
  /** the store endpoint the host printed (embedded or external) */
  s3Endpoint?: string;
  bucket?: string;
  /** the embedded store's key pair, kept in DATA_DIR (undefined with an external store) */
  s3Credentials?: { accessKeyId: string; secretAccessKey: string };
  logs(): string;
  addUser(username: string): Promise<{ id: number; username: string; user_key: string }>;
  /** sends the signal (SIGTERM by default) and resolves with the exit code */
  stop(signal?: NodeJS.Signals): Promise<number>;
  process: ChildProcess;
}

export interface StartHostOptions {
  env?: Record<string, string>;
  dataDir?: string;
  /** how long to wait for the listening line (ms) */
  timeoutMs?: number;
  /**
   * Write the host's output to DATA_DIR/host.log instead of a pipe to this process (the benchmark,
   * whose load generator would otherwise also be reading the host's access log).
   */
  logToFile?: boolean;
  /** node options before the host's entry (e.g. --cpu-prof, which NODE_OPTIONS does not take) */
  nodeArgs?: string[];
}

/** The built host `npm start` runs (scripts/build.mjs bundles scripts/host/main.ts into it). */
export const HOST_ENTRY = path.join(PROJECT_ROOT, '.dist', 'host', 'main.js');

/**
 * Throws unless the built host is newer than every source it is built from: a test must not pass or
 * fail on yesterday's build of a file just edited.
 */
export function assertHostBuilt(): void {
  const built = fs.existsSync(HOST_ENTRY) ? fs.statSync(HOST_ENTRY).mtimeMs : 0;
  for (const dir of ['scripts/host', 'scripts/host/users', 'scripts/store', 'scripts/s3', 'src/lib']) {
    const full = path.join(PROJECT_ROOT, dir);
    if (!fs.existsSync(full)) continue;
    for (const f of fs.readdirSync(full)) {
      if (f.endsWith('.ts') && fs.statSync(path.join(full, f)).mtimeMs > built) {
        throw new Error(built ? `${dir}/${f} is newer than .dist/host/main.js: run \`npm run build\`` : '.dist/host/main.js is missing: run `npm run build`');
      }
    }
  }
}

export function tempDir(prefix = 'aws-storage-host-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Waits (bounded) until every endpoint of the socket has its built handler. `npm run build` empties
 * .dist before it writes it, so a build running next to the tests (a shared tree) would fail a start.
 */
async function waitForBuild(socketDir: string, timeoutMs: number): Promise<void> {
  let names: string[] = [];
  try {
    const yml = fs.readFileSync(path.join(socketDir, 'socket.yml'), 'utf8');
    const section = yml.split(/^endpoints:\s*$/m)[1] ?? '';
    names = [...section.matchAll(/^  ([A-Za-z0-9_-]+):\s*$/gm)].map((m) => m[1]);
  } catch {
    return;
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (names.every((n) => fs.existsSync(path.join(socketDir, '.dist', 'src', `${n}.js`)))) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function startHost(opts: StartHostOptions = {}): Promise<StartedHost> {
  for (let attempt = 1; ; attempt++) {
    try {
      // only the project's own tree is rebuilt beside the tests: another socket dir's missing handlers are
      // what its test means (waiting for them made "a missing build" take 30 s of its 60)
      const socketDir = opts.env?.SOCKET_DIR || PROJECT_ROOT;
      if (socketDir === PROJECT_ROOT) await waitForBuild(socketDir, 30_000);
      return await startHostOnce(opts);
    } catch (err) {
      if (attempt >= 3 || !/built handlers missing/.test(String((err as Error).message))) throw err;
      if (opts.env?.SOCKET_DIR && opts.env.SOCKET_DIR !== PROJECT_ROOT) throw err;
    }
  }
}

async function startHostOnce(opts: StartHostOptions): Promise<StartedHost> {
  const dataDir = opts.dataDir ?? tempDir();
  const adminKey = opts.env?.ADMIN_KEY ?? crypto.randomBytes(20).toString('hex');
  // process.env passes through, so AWS_* set for an external store (the Ceph RGW run) reach the host.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    S3_PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    ADMIN_KEY: adminKey,
    ...opts.env,
  };
  const logFile = opts.logToFile ? path.join(dataDir, 'host.log') : undefined;
  const logFd = logFile ? fs.openSync(logFile, 'a') : undefined;
  assertHostBuilt();
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), HOST_ENTRY], {
    cwd: PROJECT_ROOT,
    env,
    stdio: logFd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', logFd, logFd],
  });
  if (logFd !== undefined) fs.closeSync(logFd);
  let piped = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (piped += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (piped += d));
  const readOutput = () => (logFile ? fs.readFileSync(logFile, 'utf8') : piped);
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  });
  let exitCode: number | undefined;
  void exited.then((c) => (exitCode = c));

  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let url: string | undefined;
  while (Date.now() < deadline) {
    const m = /aws-storage host listening on (https?:\/\/\S+)/.exec(readOutput());
    if (m) {
      url = m[1];
      break;
    }
    if (exitCode !== undefined) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!url) {
    child.kill('SIGKILL');
    throw new Error(`host did not start within ${timeoutMs} ms (exit ${exitCode}):\n${readOutput()}`);
  }
  const store = /aws-storage store: (\S+) .*bucket (\S+)/.exec(readOutput());
  const instance = env.INSTANCE || 'local';
  // ADMIN_KEY: '' lets the host generate (or reuse) the key kept in DATA_DIR.
  let key = adminKey;
  if (!key) {
    const file = path.join(dataDir, 'admin-key');
    key = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim() : '';
  }

  return {
    url,
    adminKey: key,
    dataDir,
    s3Endpoint: store?.[1],
    bucket: store?.[2],
    s3Credentials: storeCredentials(dataDir, env),
    logs: readOutput,
    process: child,
    async addUser(username: string) {
      const res = await fetch(`${url}/v2/instances/${instance}/users/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': key },
        body: JSON.stringify({ username }),
      });
      const body = await res.json();
      if (res.status !== 201) throw new Error(`addUser ${username}: ${res.status} ${JSON.stringify(body)}`);
      return body as { id: number; username: string; user_key: string };
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (exitCode !== undefined) return exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** The store key pair the host uses: the environment's, or the one it keeps in DATA_DIR. */
function storeCredentials(dataDir: string, env: NodeJS.ProcessEnv): { accessKeyId: string; secretAccessKey: string } | undefined {
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY };
  const file = path.join(dataDir, 'store-credentials.json');
  if (!fs.existsSync(file)) return undefined;
  const { accessKeyId, secretAccessKey } = JSON.parse(fs.readFileSync(file, 'utf8')) as { accessKeyId: string; secretAccessKey: string };
  return { accessKeyId, secretAccessKey };
}

/** POSTs JSON args to one of the socket's endpoints on `host`, as a user (X-USER-KEY) or else as the admin (X-API-KEY). */
export async function callEndpoint(
  host: StartedHost,
  endpointName: string,
  args: Record<string, unknown>,
  user?: { user_key: string },
): Promise<{ status: number; headers: Headers; text: string; body: any }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (user) headers['x-user-key'] = user.user_key;
  else headers['x-api-key'] = host.adminKey;
  return readAnswer(await fetch(`${host.url}/aws-storage/${endpointName}/`, { method: 'POST', headers, body: JSON.stringify(args) }));
}

/** An HTTP answer read whole: status, headers, its text, and its body as JSON where it parses (else the text). */
export async function readAnswer(res: Response): Promise<{ status: number; headers: Headers; text: string; body: any }> {
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* shown by the caller's expectation */
  }
  return { status: res.status, headers: res.headers, text, body };
}
