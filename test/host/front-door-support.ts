// Helpers for the front-door suites: raw HTTP over one socket (so a test controls every byte and sees
// when the host answers or closes), a stand-in S3 store for /healthz, and the host process's RSS.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { makeFixtureSocket } from './fixture-socket';

/**
 * The fixture socket, with the store's options in its socket.yml too: ctx.config (and so /healthz's
 * store check) holds only the options a socket declares.
 */
export function makeStoreFixtureSocket(): string {
  const dir = makeFixtureSocket();
  const file = path.join(dir, 'socket.yml');
  const options = ['AWS_S3_ENDPOINT', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION'];
  const text = fs.readFileSync(file, 'utf8').replace(/^config:\n/m, `config:\n${options.map((o) => `  ${o}:\n    description: ${o}\n`).join('')}`);
  fs.writeFileSync(file, text);
  return dir;
}

export interface RawAnswer {
  /** 0 when the host closed the connection (or the timeout came) before a whole answer */
  status: number;
  headers: Record<string, string>;
  body: string;
  /** ms from the first byte written to the whole answer (or to the close) */
  ms: number;
  /** body bytes this client had written when the answer came */
  sent: number;
  /** a 100 Continue came first */
  continued: boolean;
  /** the host closed the connection (by the time this resolved) */
  closed: boolean;
}

export interface RawOptions {
  /** writes body bytes; `write` counts them and says false once the answer has come */
  feed?: (write: (b: Buffer | string) => boolean, socket: net.Socket) => void | Promise<void>;
  /** resolve with status 0 after this long (ms) */
  timeoutMs?: number;
  /** after the answer, wait this long (ms) to see whether the host closes the connection */
  waitCloseMs?: number;
  /** the client's own address (another loopback one, 127.0.0.2, is another client to the host) */
  localAddress?: string;
}

/** One request over its own socket: the head as given (CRLFs included), then `feed`'s body bytes. */
export function raw(port: number, head: string, opts: RawOptions = {}): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: opts.localAddress });
    const started = performance.now();
    let input = Buffer.alloc(0);
    let sent = 0;
    let answered: RawAnswer | undefined;
    let done = false;
    let continued = false;
    const finish = (a: RawAnswer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(a);
    };
    const timer = setTimeout(
      () => finish(answered ?? { status: 0, headers: {}, body: '', ms: performance.now() - started, sent, continued, closed: false }),
      opts.timeoutMs ?? 10_000,
    );
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (answered) finish({ ...answered, closed: true });
      else finish({ status: 0, headers: {}, body: '', ms: performance.now() - started, sent, continued, closed: true });
    });
    socket.on('data', (d: Buffer) => {
      if (answered) return;
      input = Buffer.concat([input, d]);
      for (;;) {
        const end = input.indexOf('\r\n\r\n');
        if (end === -1) return;
        const lines = input.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(lines[0].split(' ')[1]);
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const c = l.indexOf(':');
          headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
        }
        if (status === 100) {
          continued = true;
          input = input.subarray(end + 4);
          continue;
        }
        const length = Number(headers['content-length'] ?? 0);
        if (input.length < end + 4 + length) return;
        answered = {
          status,
          headers,
          body: input.subarray(end + 4, end + 4 + length).toString('utf8'),
          ms: performance.now() - started,
          sent,
          continued,
          closed: false,
        };
        if (!opts.waitCloseMs) finish(answered);
        else setTimeout(() => finish(answered!), opts.waitCloseMs);
        return;
      }
    });
    socket.once('connect', () => {
      socket.write(head);
      const write = (b: Buffer | string) => {
        if (answered || done || socket.destroyed) return false;
        sent += Buffer.byteLength(b);
        socket.write(b);
        return true;
      };
      void opts.feed?.(write, socket);
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Opens n sockets to the host on 127.0.0.1 that send nothing; resolves once all are connected. */
export function openIdle(port: number, n: number): Promise<net.Socket[]> {
  return Promise.all(
    Array.from({ length: n }, () => new Promise<net.Socket>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s));
      s.on('error', () => undefined);
    })),
  );
}

/** A request head for POST `path` with these headers (Host and the CRLFs added). */
export function postHead(path: string, headers: Record<string, string | number>): string {
  const lines = [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return lines.join('\r\n') + '\r\n\r\n';
}

/** One chunk of a chunked body. */
export const chunk = (b: Buffer | string) => Buffer.concat([Buffer.from(Buffer.byteLength(b).toString(16) + '\r\n'), Buffer.from(b), Buffer.from('\r\n')]);

/** A stand-in S3 store that answers 200 to everything: all /healthz asks of it is a HeadBucket. */
export async function startStubStore(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Length': 0 });
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Resident set size of a process, in bytes (Linux). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/**
 * Calls GET /healthz one after another (over one kept-alive connection) until stop() and records how
 * long each took: the host's own responsiveness while a test loads it.
 */
export function probeHealth(url: string, everyMs = 20): { stop: () => Promise<{ count: number; maxMs: number; failures: string[] }> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const u = new URL('/healthz', url);
  let running = true;
  let count = 0;
  let maxMs = 0;
  const failures: string[] = [];
  const once = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = http.get({ host: u.hostname, port: u.port, path: u.pathname, agent }, (res) => {
        res.resume();
        res.on('end', () => {
          const ms = performance.now() - t0;
          count++;
          maxMs = Math.max(maxMs, ms);
          if (res.statusCode !== 200) failures.push(`status ${res.statusCode}`);
          resolve();
        });
      });
      req.setTimeout(5_000, () => req.destroy(new Error('no answer in 5 s')));
      req.on('error', (err) => {
        count++;
        maxMs = Math.max(maxMs, performance.now() - t0);
        failures.push(err.message);
        resolve();
      });
    });
  const loop = (async () => {
    while (running) {
      await once();
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      agent.destroy();
      return { count, maxMs, failures };
    },
  };
}
