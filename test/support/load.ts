/**
 * The load run shared by test/load (N = 50, in `npm test`) and test/stress (N = 500): N concurrent
 * clients against one host, each mixing upload link + PUT, base64 uploads and reads (through read links)
 * for several users; afterwards every object is read back from the store by its key and checked by MD5.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { storeClient } from '../../scripts/s3/client';
import http from 'node:http';
import { startHost, type StartedHost } from './host';

export interface LoadOptions {
  clients: number;
  /** operations per client */
  opsPerClient: number;
  users: number;
  /** file sizes to pick from (bytes) */
  sizes: number[];
  /** give up (and fail) after this long */
  deadlineMs: number;
  env?: Record<string, string>;
}

export interface LoadResult {
  requests: number;
  failures: number;
  failureSamples: string[];
  objectsWritten: number;
  objectsVerified: number;
  objectMismatches: string[];
  reads: number;
  readMismatches: number;
  rssBeforeKb: number;
  rssAfterKb: number;
  rssPeakKb: number;
  elapsedMs: number;
  requestsPerSecond: number;
}

export function rssKb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

const md5 = (b: Buffer) => crypto.createHash('md5').update(b).digest('hex');

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const host = await startHost({ env: opts.env });
  // A pool as large as the number of clients: every client has its own connection (no queueing here).
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.clients + 8, keepAliveMsecs: 1_000 });
  try {
    return await drive(host, opts, agent);
  } finally {
    agent.destroy();
    await host.stop();
  }
}

interface Reply {
  status: number;
  body: Buffer;
}

/** Requests retried because a kept-alive socket was closed by the server as it was reused (Node's documented race). */
export const retried = { count: 0 };

/**
 * One HTTP request over the shared agent, bounded by a timeout. A request that fails on a reused
 * keep-alive socket before any answer (ECONNRESET / socket hang up) is sent once more on a new one.
 */
async function send(agent: http.Agent, url: string, init: { method: string; headers?: Record<string, string>; body?: Buffer | string }): Promise<Reply> {
  try {
    return await sendOnce(agent, url, init);
  } catch (err) {
    const e = err as Error & { reusedSocket?: boolean; code?: string };
    if (!e.reusedSocket || !(e.code === 'ECONNRESET' || /socket hang up/.test(e.message))) throw err;
    retried.count++;
    return sendOnce(agent, url, init);
  }
}

function sendOnce(agent: http.Agent, url: string, init: { method: string; headers?: Record<string, string>; body?: Buffer | string }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const body = init.body === undefined ? undefined : Buffer.from(init.body);
    const headers: Record<string, string | number> = { ...init.headers };
    if (body) headers['content-length'] = body.length;
    const req = http.request({ agent, host: u.hostname, port: u.port, path: u.pathname + u.search, method: init.method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(60_000, () => req.destroy(new Error('timed out after 60 s')));
    req.on('error', (err) => reject(Object.assign(err, { reusedSocket: req.reusedSocket, message: `${init.method} ${u.host}: ${err.message}` })));
    req.end(body);
  });
}

async function drive(host: StartedHost, opts: LoadOptions, agent: http.Agent): Promise<LoadResult> {
  const users: Array<{ id: number; username: string; user_key: string }> = [];
  for (let i = 0; i < opts.users; i++) users.push(await host.addUser(`load${i}`));
  const pid = host.process.pid!;
  let requests = 0;
  let failures = 0;
  let reads = 0;
  let readMismatches = 0;
  const failureSamples: string[] = [];
  /** key → md5 of the last successful write */
  const written = new Map<string, string>();
  const fail = (what: string) => {
    failures++;
    if (failureSamples.length < 20) failureSamples.push(what);
  };
  const request = async (url: string, init: { method: string; headers?: Record<string, string>; body?: Buffer | string }) => {
    requests++;
    return send(agent, url, init);
  };
  const api = async (endpoint: string, userKey: string, args: unknown) => {
    const res = await request(`${host.url}/aws-storage/${endpoint}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-key': userKey },
      body: JSON.stringify(args),
    });
    const text = res.body.toString('utf8');
    if (res.status < 200 || res.status > 299) throw new Error(`${endpoint} ${res.status} ${text.slice(0, 200)}`);
    return JSON.parse(text);
  };

  // warm-up: one of each call, so that RSS "before" includes the loaded handlers and SDK
  {
    const u = users[0];
    const up = await api('user-upload', u.user_key, { name: 'warmup.bin', file: Buffer.from('warm').toString('base64') });
    written.set(up.key, md5(Buffer.from('warm')));
    await api('user-read', u.user_key, { name: 'warmup.bin' });
    await api('user-upload-link', u.user_key, { name: 'warmup2.bin' });
  }
  await new Promise((r) => setTimeout(r, 500));
  const rssBeforeKb = rssKb(pid);
  let rssPeakKb = rssBeforeKb;
  const sampler = setInterval(() => {
    try {
      rssPeakKb = Math.max(rssPeakKb, rssKb(pid));
    } catch {
      /* exited */
    }
  }, 100);

  const started = Date.now();
  const deadline = started + opts.deadlineMs;
  const client = async (c: number) => {
    const user = users[c % users.length];
    const mine: Array<{ name: string; key: string; md5: string }> = [];
    for (let op = 0; op < opts.opsPerClient && Date.now() < deadline; op++) {
      const size = opts.sizes[(c + op) % opts.sizes.length];
      const bytes = crypto.randomBytes(size);
      const name = `c${c}/op${op}.bin`;
      const kind = mine.length > 0 && op % 3 === 2 ? 'read' : (c + op) % 2 === 0 ? 'link' : 'base64';
      try {
        if (kind === 'link') {
          const link = await api('user-upload-link', user.user_key, { name, contentType: 'application/octet-stream' });
          const put = await request(link.link, { method: 'PUT', headers: link.headers, body: bytes });
          if (put.status !== 200) throw new Error(`PUT ${put.status}`);
          written.set(link.key, md5(bytes));
          mine.push({ name, key: link.key, md5: md5(bytes) });
        } else if (kind === 'base64') {
          const up = await api('user-upload', user.user_key, { name, file: bytes.toString('base64') });
          if (up.size !== size || up.etag !== md5(bytes)) throw new Error(`user-upload answered size ${up.size} etag ${up.etag}`);
          written.set(up.key, md5(bytes));
          mine.push({ name, key: up.key, md5: md5(bytes) });
        } else {
          const f = mine[(op * 7) % mine.length];
          const read = await api('user-read', user.user_key, { name: f.name });
          const got = await request(read.link, { method: 'GET' });
          const body = got.body;
          if (got.status !== 200) throw new Error(`GET ${got.status}`);
          reads++;
          if (md5(body) !== f.md5) {
            readMismatches++;
            throw new Error(`read ${f.key}: other bytes`);
          }
        }
      } catch (err) {
        fail(`client ${c} op ${op} ${kind}: ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.clients }, (_, c) => client(c)));
  const elapsedMs = Date.now() - started;
  clearInterval(sampler);
  if (Date.now() > deadline) fail(`the run passed its deadline of ${opts.deadlineMs} ms`);

  // let the host settle, then measure
  await new Promise((r) => setTimeout(r, 1_000));
  const rssAfterKb = rssKb(pid);

  // every object, read back from the store by key (with the store's own key pair)
  const s3 = storeClient({ endpoint: host.s3Endpoint!, region: 'eu-central-1', ...host.s3Credentials! });
  const objectMismatches: string[] = [];
  let objectsVerified = 0;
  const entries = [...written.entries()];
  let next = 0;
  const verifier = async () => {
    while (next < entries.length) {
      const [key, sum] = entries[next++];
      try {
        const out = await s3.send(new GetObjectCommand({ Bucket: host.bucket!, Key: key }));
        const body = Buffer.from(await out.Body!.transformToByteArray());
        if (md5(body) === sum) objectsVerified++;
        else objectMismatches.push(`${key}: md5 ${md5(body)} != ${sum}`);
      } catch (err) {
        objectMismatches.push(`${key}: ${(err as Error).name}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, verifier));
  s3.destroy();

  return {
    requests,
    failures,
    failureSamples,
    objectsWritten: written.size,
    objectsVerified,
    objectMismatches: objectMismatches.slice(0, 20),
    reads,
    readMismatches,
    rssBeforeKb,
    rssAfterKb,
    rssPeakKb,
    elapsedMs,
    requestsPerSecond: Math.round((requests / elapsedMs) * 1000),
  };
}

export function printLoad(label: string, r: LoadResult): void {
  process.stdout.write(
    `${label}: requests ${r.requests}, failures ${r.failures}, objects verified ${r.objectsVerified}/${r.objectsWritten}, ` +
      `reads ${r.reads} (mismatches ${r.readMismatches}), keep-alive retries ${retried.count}, ${r.elapsedMs} ms (${r.requestsPerSecond} req/s); ` +
      `host RSS before ${Math.round(r.rssBeforeKb / 1024)} MB, peak ${Math.round(r.rssPeakKb / 1024)} MB, after ${Math.round(r.rssAfterKb / 1024)} MB\n`,
  );
  if (r.failureSamples.length) process.stdout.write(`${label} failures: ${r.failureSamples.join('\n  ')}\n`);
}
