/**
 * The measurement functions behind `npm run bench` (scripts/bench/run.ts) and its smoke test
 * (test/bench/smoke.test.ts). Each one is bounded in count and time and returns plain numbers.
 * Everything listens on and talks to 127.0.0.1 only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { storeClient } from '../s3/client';

// autocannon ships no types: the little we use.
interface AutocannonResult {
  requests: { average: number; mean: number; total: number };
  latency: { p50: number; p90: number; p99: number; average: number; max: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
  '2xx': number;
}
interface AutocannonInstance extends PromiseLike<AutocannonResult> {
  stop(): void;
}
type Autocannon = (opts: Record<string, unknown>) => AutocannonInstance;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon: Autocannon = require('autocannon');

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

export type Handler = (ctx: object) => Promise<void> | void;

export const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** A built handler (.dist/src/<name>.js, what the host and the platform run), or null when not built. */
export function loadBuiltHandler(name: string): Handler | null {
  const file = path.join(PROJECT_ROOT, '.dist', 'src', `${name}.js`);
  if (!fs.existsSync(file)) return null;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(file);
  return (mod.default ?? mod) as Handler;
}

export interface RawAnswer {
  status: number;
  content: string;
  mimetype: string;
}

/**
 * Calls a handler with a platform-shaped ctx (as test/support/ctx.ts does) and resolves with its raw
 * answer, without parsing it: the parse is the caller's cost, not the handler's.
 */
export function callHandler(
  handler: Handler,
  opts: { args: Record<string, unknown>; config: Record<string, unknown>; admin?: boolean; user?: { id: number | string } },
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const meta: Record<string, unknown> = { instance: 'bench', socket: 'aws-storage', executed_by: 'socket_endpoint' };
    if (opts.admin) meta.admin = { id: 1, email: 'admin@bench' };
    if (opts.user) meta.user = { username: `user${opts.user.id}`, user_key: 'k', ...opts.user };
    const setResponse = (r: BenchHttpResponse) => resolve({ status: r.status, content: r.content, mimetype: r.mimetype });
    Promise.resolve(handler({ args: opts.args, meta, config: opts.config, HttpResponse: BenchHttpResponse, setResponse })).catch(reject);
  });
}

/** One class for every call, as the platform and the host have (a class per call would make every answer a new shape). */
class BenchHttpResponse {
  headers: Record<string, string>;
  constructor(
    public status: number,
    public content: string,
    public mimetype: string,
    headers?: Record<string, string>,
  ) {
    this.headers = headers ?? {};
  }
}

/** One make-links call of `keys`; throws unless it answered 200 with every key linked. Resolves with the body. */
export async function makeLinksOnce(
  handler: Handler,
  config: Record<string, unknown>,
  keys: string[],
): Promise<{ files: Record<string, string>; errors: unknown[] }> {
  const a = await callHandler(handler, { args: { fileNames: keys }, config, admin: true });
  if (a.status !== 200) throw new Error(`make-links answered ${a.status}: ${a.content.slice(0, 300)}`);
  const body = JSON.parse(a.content) as { files: Record<string, string>; errors: unknown[] };
  if (body.errors.length || Object.keys(body.files).length !== new Set(keys).size) {
    throw new Error(`make-links: ${body.errors.length} errors, ${Object.keys(body.files).length} links for ${keys.length} keys`);
  }
  return body;
}

/** A batch function for benchPresign's `extra`: one handler call of `keys`, returning the answer's length. */
export function makeLinksBatch(handler: Handler, config: Record<string, unknown>, keys: string[]): () => Promise<number> {
  const args = { fileNames: keys };
  return async () => {
    const a = await callHandler(handler, { args, config, admin: true });
    if (a.status !== 200) throw new Error(`make-links answered ${a.status}: ${a.content.slice(0, 300)}`);
    return a.content.length;
  };
}

export interface ScalingRow {
  keys: number;
  callsPerSample: number;
  usPerLink: number;
  linksPerSec: number;
  samples: number;
}

/**
 * make-links at several batch sizes: µs per link, median of rounds. Each sample makes about
 * `linksPerSample` links (so 10-key calls are repeated), sizes interleaved within each round.
 */
export async function measureMakeLinksScaling(
  handler: Handler,
  config: Record<string, unknown>,
  opts: { sizes: number[]; keys: (n: number) => string[]; rounds?: number; linksPerSample?: number; budgetMs?: number },
): Promise<ScalingRow[]> {
  const rounds = Math.max(1, opts.rounds ?? 7);
  const perSample = opts.linksPerSample ?? 2000;
  const budgetMs = opts.budgetMs ?? 15_000;
  const plans = opts.sizes.map((n) => ({ n, calls: Math.max(1, Math.ceil(perSample / n)), batch: makeLinksBatch(handler, config, opts.keys(n)) }));
  const sample = async (p: (typeof plans)[number]) => {
    const t0 = nowMs();
    for (let c = 0; c < p.calls; c++) await p.batch();
    return (nowMs() - t0) * 1000 / (p.calls * p.n); // µs per link
  };
  for (const p of plans) for (let w = 0; w < 2; w++) await sample(p); // warm-up
  const samples: number[][] = plans.map(() => []);
  const start = Date.now();
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < plans.length; i++) samples[i].push(await sample(plans[i]));
    if (Date.now() - start > budgetMs && r >= 2) break;
  }
  return plans.map((p, i) => {
    const us = median(samples[i]);
    return { keys: p.n, callsPerSample: p.calls, usPerLink: round(us, 3), linksPerSec: Math.round(1e6 / us), samples: samples[i].length };
  });
}

export interface HttpLoadResult {
  reqPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  total: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  durationS: number;
}

/** autocannon against one URL, bounded: it stops itself after durationS, and we stop it at durationS + 10 s whatever happens. */
export async function measureHttp(opts: {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  connections: number;
  durationS: number;
}): Promise<HttpLoadResult> {
  if (!/^https?:\/\/127\.0\.0\.1[:/]/.test(opts.url)) throw new Error(`load only 127.0.0.1, not ${opts.url}`);
  const instance = autocannon({
    url: opts.url,
    method: opts.method ?? 'GET',
    headers: opts.headers,
    body: opts.body,
    connections: opts.connections,
    pipelining: 1,
    duration: opts.durationS,
    timeout: 10,
  });
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      instance.stop();
      resolve();
    }, (opts.durationS + 10) * 1000);
  });
  const r = await Promise.race([Promise.resolve(instance), guard.then(() => instance)]);
  clearTimeout(timer);
  return {
    reqPerSec: round(r.requests.average, 1),
    p50Ms: r.latency.p50,
    p90Ms: r.latency.p90,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    total: r.requests.total,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    durationS: r.duration,
  };
}

export interface BareServer {
  url: string;
  pid: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * The baseline: a bare node:http server in its own process (as the host is), answering every request
 * with one constant JSON body of `bodyBytes` bytes after reading the request body.
 */
export async function startBareServer(bodyBytes = 64): Promise<BareServer> {
  const code = `
    const http = require('node:http');
    const pad = Math.max(0, ${Number(bodyBytes)} - 14);
    const body = Buffer.from(JSON.stringify({ ok: true, p: 'x'.repeat(pad) }).slice(0, Math.max(${Number(bodyBytes)}, 11) - 2) + '"}');
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
        res.end(body);
      });
    });
    server.keepAliveTimeout = 5000;
    server.listen(0, '127.0.0.1', () => process.stdout.write('listening ' + server.address().port + '\\n'));
    process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); process.exit(0); });
  `;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error('bare server did not start in 10 s')), 10_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (c) => {
      clearTimeout(t);
      reject(new Error(`bare server exited ${c}`));
    });
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    url: `http://127.0.0.1:${port}/`,
    pid: child.pid!,
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** /proc/<pid>/status VmRSS and VmHWM, bytes. */
export function readMem(pid: number): { rss: number; hwm: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Resets the peak RSS (VmHWM) of a process we own; false where the kernel does not let us. */
export function resetPeak(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Samples VmRSS of `pid` every `everyMs` while `work` runs; resolves with its result and the peak. */
export async function withRssPeak<T>(pid: number, work: () => Promise<T>, everyMs = 2): Promise<{ result: T; peakRss: number }> {
  let peak = readMem(pid).rss;
  const t = setInterval(() => {
    try {
      peak = Math.max(peak, readMem(pid).rss);
    } catch {
      /* process gone */
    }
  }, everyMs);
  try {
    const result = await work();
    peak = Math.max(peak, readMem(pid).rss);
    return { result, peakRss: peak };
  } finally {
    clearInterval(t);
  }
}

/** POST a prepared body; resolves with status, headers' timing and the parsed JSON answer. */
export function postJson(
  url: string,
  body: Buffer,
  headers: Record<string, string>,
  agent: http.Agent,
  timeoutMs = 60_000,
): Promise<{ status: number; body: any; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': String(body.length), ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* not JSON: the text as it came */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`POST ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

export interface UploadTarget {
  /** the host's base URL, e.g. http://127.0.0.1:1234 */
  hostUrl: string;
  userKey: string;
  /** the store the host writes to, reached directly from this process */
  s3: { endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string; region: string };
  /** the host's pid, for RSS */
  hostPid: number;
}

export interface UploadResult {
  bytes: number;
  hostMs: number;
  directMs: number;
  ratio: number;
  /** peak RSS of the host over the series minus its RSS just before it, bytes */
  rssGrowthBytes: number;
  rssGrowthRatio: number;
  /** VmHWM after the series minus VmRSS before, when the kernel let us reset the peak; else null */
  hwmGrowthBytes: number | null;
  /** peak RSS growth of the same (store-holding) process during the direct puts alone, bytes: the store's share */
  directRssGrowthBytes: number;
  /**
   * Peak RSS growth over a second series, once the host has served this size (its heap grown to the
   * working size): what each further upload costs, bytes
   */
  steadyRssGrowthBytes: number;
  /** medians of the host's Server-Timing phases over the first series: body read, parse, handler (decode + put), ms */
  hostPhasesMs: { read: number; parse: number; handler: number };
  rounds: number;
  /** the last host answer (key, size, etag, link) */
  answer: { key: string; size: number; etag: string; link: string };
  hostSamplesMs: number[];
  directSamplesMs: number[];
}

/**
 * `user-upload` of `bytes` random bytes through the host (POST JSON, base64) against a direct
 * PutObject of the same bytes to the same store, alternating, median of rounds; host RSS sampled.
 */
export async function measureUpload(
  target: UploadTarget,
  opts: { bytes: number; rounds?: number; budgetMs?: number; client?: S3Client },
): Promise<UploadResult> {
  const rounds = Math.max(1, opts.rounds ?? 5);
  const budgetMs = opts.budgetMs ?? 20_000;
  const bytes = crypto.randomBytes(opts.bytes);
  const name = `bench/upload-${opts.bytes}.bin`;
  const body = Buffer.from(JSON.stringify({ name, file: bytes.toString('base64'), contentType: 'application/octet-stream' }));
  const url = `${target.hostUrl}/aws-storage/user-upload/`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const client =
    opts.client ??
    storeClient(target.s3);
  const phases: Record<'read' | 'parse' | 'handler', number[]> = { read: [], parse: [], handler: [] };
  const viaHost = async () => {
    const r = await postJson(url, body, { 'x-user-key': target.userKey }, agent);
    if (r.status !== 200 || r.body?.size !== opts.bytes) throw new Error(`user-upload answered ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);
    for (const m of String(r.headers['server-timing'] ?? '').matchAll(/(read|parse|handler);dur=([\d.]+)/g)) {
      phases[m[1] as keyof typeof phases].push(Number(m[2]));
    }
    return r.body as UploadResult['answer'];
  };
  const direct = async (i: number) => {
    const put = { Bucket: target.s3.bucket, Key: `direct/upload-${opts.bytes}-${i % 2}.bin`, Body: bytes, ContentType: 'application/octet-stream', ContentLength: bytes.length };
    await client.send(new PutObjectCommand(put), { abortSignal: AbortSignal.timeout(60_000) });
  };
  try {
    // warm-up: one of each (opens connections, loads the handler's paths)
    await viaHost();
    await direct(0);
    for (const list of Object.values(phases)) list.length = 0; // the warm-up's phases are not the figure
    const before = readMem(target.hostPid).rss;
    const reset = resetPeak(target.hostPid);
    const hostSamples: number[] = [];
    const directSamples: number[] = [];
    let peak = before;
    let directPeak = 0;
    let answer: UploadResult['answer'] | undefined;
    const start = Date.now();
    for (let r = 0; r < rounds; r++) {
      const t0 = nowMs();
      const h = await withRssPeak(target.hostPid, viaHost);
      hostSamples.push(nowMs() - t0);
      answer = h.result;
      peak = Math.max(peak, h.peakRss);
      const beforeDirect = readMem(target.hostPid).rss;
      const t1 = nowMs();
      const d = await withRssPeak(target.hostPid, () => direct(r));
      directSamples.push(nowMs() - t1);
      directPeak = Math.max(directPeak, d.peakRss - beforeDirect);
      if (Date.now() - start > budgetMs && r >= 2) break;
    }
    const after = readMem(target.hostPid);
    const firstPhases = { read: median(phases.read), parse: median(phases.parse), handler: median(phases.handler) };
    // The same again on a host that has now served this size: the growth each further upload costs.
    const steadyBefore = readMem(target.hostPid).rss;
    let steadyPeak = steadyBefore;
    for (let r = 0; r < hostSamples.length; r++) {
      steadyPeak = Math.max(steadyPeak, (await withRssPeak(target.hostPid, viaHost)).peakRss);
    }
    const hostMs = median(hostSamples);
    const directMs = median(directSamples);
    const growth = Math.max(0, peak - before);
    return {
      bytes: opts.bytes,
      hostMs: round(hostMs, 2),
      directMs: round(directMs, 2),
      ratio: round(hostMs / directMs, 2),
      rssGrowthBytes: growth,
      rssGrowthRatio: round(growth / opts.bytes, 2),
      hwmGrowthBytes: reset ? Math.max(0, after.hwm - before) : null,
      directRssGrowthBytes: Math.max(0, directPeak),
      steadyRssGrowthBytes: Math.max(0, steadyPeak - steadyBefore),
      hostPhasesMs: { read: round(firstPhases.read, 1), parse: round(firstPhases.parse, 1), handler: round(firstPhases.handler, 1) },
      rounds: hostSamples.length,
      answer: answer!,
      hostSamplesMs: hostSamples.map((x) => round(x, 2)),
      directSamplesMs: directSamples.map((x) => round(x, 2)),
    };
  } finally {
    agent.destroy();
    if (!opts.client) client.destroy();
  }
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function loadAvg(): string {
  try {
    return fs.readFileSync('/proc/loadavg', 'utf8').trim();
  } catch {
    return 'n/a';
  }
}
