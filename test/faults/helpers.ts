/** Fault-injection helpers: free ports, a store in a child process, a proxy that can stop answering. */
import { ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { storeClient } from '../../scripts/s3/client';
import { PROJECT_ROOT, readAnswer } from '../support/host';

export const md5 = (b: Buffer | string) => crypto.createHash('md5').update(b).digest('hex');

export function credentials() {
  return {
    accessKeyId: `FAULT${crypto.randomBytes(6).toString('hex').toUpperCase()}`,
    secretAccessKey: crypto.randomBytes(30).toString('base64url'),
    bucket: `fault-${crypto.randomBytes(5).toString('hex')}`,
  };
}

/** The host's environment for an external store at `endpoint` with these credentials. */
export function storeEnv(endpoint: string, c: ReturnType<typeof credentials>, extra: Record<string, string> = {}): Record<string, string> {
  return { AWS_S3_ENDPOINT: endpoint, AWS_ACCESS_KEY_ID: c.accessKeyId, AWS_SECRET_ACCESS_KEY: c.secretAccessKey, AWS_BUCKET: c.bucket, ...extra };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface StoreProcess {
  endpoint: string;
  proc: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function spawnStore(o: { port: number; dataDir: string; accessKeyId: string; secretAccessKey: string; bucket?: string }): Promise<StoreProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'test/faults/store-process.ts'], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, STORE_PORT: String(o.port), STORE_DIR: o.dataDir, STORE_KEY_ID: o.accessKeyId, STORE_SECRET: o.secretAccessKey, STORE_BUCKET: o.bucket ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const deadline = Date.now() + 20_000;
  while (!/READY (\S+)/.test(out)) {
    if (Date.now() > deadline || proc.exitCode !== null) {
      proc.kill('SIGKILL');
      throw new Error(`store process did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    endpoint: /READY (\S+)/.exec(out)![1],
    proc,
    async kill(signal = 'SIGKILL') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
}

export function s3Client(endpoint: string, c: { accessKeyId: string; secretAccessKey: string }) {
  return storeClient({ endpoint, region: 'eu-central-1', ...c }, { maxAttempts: 1 });
}

/**
 * A TCP proxy in front of a store: 'pass' forwards, 'hang' accepts connections and never answers
 * (and cuts the connections it was forwarding, so no kept-alive socket keeps working).
 */
export async function switchableProxy(target: { host: string; port: number }) {
  let mode: 'pass' | 'hang' = 'pass';
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (mode === 'hang') return; // accept, read nothing back, answer nothing
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    set(m: 'pass' | 'hang') {
      mode = m;
      for (const s of sockets) s.destroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface Reply {
  status: number;
  body: any;
  ms: number;
}

/** A JSON call to the host, timed; a network error is status 0. */
export async function api(url: string, endpoint: string, headers: Record<string, string>, args: unknown, timeoutMs = 30_000): Promise<Reply> {
  const t0 = Date.now();
  try {
    const res = await fetch(`${url}/aws-storage/${endpoint}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(args),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const { status, body } = await readAnswer(res);
    return { status, body, ms: Date.now() - t0 };
  } catch (err) {
    return { status: 0, body: String((err as Error).message), ms: Date.now() - t0 };
  }
}

/**
 * A POST whose body is sent in pieces: `first` bytes, then waits for `release()`, then the rest slowly.
 * Resolves with the answer (status 0 on a network error).
 */
export function slowPost(url: string, headers: Record<string, string>, body: Buffer, opts: { first: number; chunk: number; delayMs: number; method?: string }) {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let started!: () => void;
  const sentFirst = new Promise<void>((r) => (started = r));
  const done = new Promise<{ status: number; text: string }>((resolve) => {
    const u = new URL(url);
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method: opts.method ?? 'POST', headers: { ...headers, 'content-length': String(body.length) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d) => (text += d)).on('end', () => resolve({ status: res.statusCode ?? 0, text })).on('error', () => resolve({ status: 0, text }));
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, text: err.message }));
    (async () => {
      req.write(body.subarray(0, opts.first));
      started();
      await released;
      for (let off = opts.first; off < body.length && !req.destroyed; off += opts.chunk) {
        req.write(body.subarray(off, off + opts.chunk));
        await new Promise((r) => setTimeout(r, opts.delayMs));
      }
      req.end();
    })();
  });
  return { done, release, sentFirst };
}
