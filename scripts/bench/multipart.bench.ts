/**
 * Multipart uploads (issue 13's figures), each beside a baseline measured in the same run:
 *
 *   a. a 256 MiB upload (a generated temp file) through part links with the built client (Node entry,
 *      `upload(name, {path}, {partSize: 8 MiB, concurrency: 4})`) against a host with the embedded
 *      store, vs `@aws-sdk/lib-storage`'s `Upload` of the same file to the same store with direct
 *      credentials (partSize 8 MiB, queueSize 4): throughput, median of interleaved rounds;
 *   b. links for 10,000 parts from the socket's part presigner (createPartPresigner, what
 *      user-multipart-start and -links call) vs as many `getSignedUrl(UploadPartCommand)` calls; and,
 *      for information, user-multipart-start over HTTP for a 10,000-part upload;
 *   c. the client's RSS growth while it uploads the file, in a process of its own (sampled from
 *      /proc/<pid>/status by this process), vs the file's size; target under 2 × partSize × concurrency.
 *
 * --quick: one round, a 64 MiB file. Run alone: node --import tsx scripts/bench/multipart.bench.ts [--quick]
 * (after `npm run build`: the client is imported from client/dist, the host runs .dist).
 */
import './env';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DeleteObjectCommand, HeadObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { storeClient } from '../s3/client';
import { createPartPresigner } from '../../src/lib/presign';
import { PROJECT_ROOT, startHost, type StartedHost } from '../../test/support/host';

export interface MultipartBenchRow {
  figure: string;
  value: number;
  unit: string;
  baseline: number;
  baselineName: string;
  ratio: number;
  /** shown in the table's target column */
  target: string;
  /** null: a figure for information */
  pass: boolean | null;
  rounds?: { value: number[]; baseline: number[] };
}

const MiB = 1024 * 1024;
const PART = 8 * MiB;
const CONC = 4;
const LINK_PARTS = 10_000;
const REGION = 'eu-central-1';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round2 = (n: number) => Math.round(n * 100) / 100;
const msSince = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

interface ClientModule {
  createClient(credentials: { url: string; userKey: string }, options?: { storage?: false | { dir: string } }): {
    upload(name: string, source: { path: string }, options: { partSize: number; concurrency: number }): { promise: Promise<{ key: string; size: number }> };
  };
}

/** The built client's Node entry (client/dist/node.js), as `import '@aws-storage/client'` in Node gives it. */
async function importClient(): Promise<ClientModule> {
  const entry = path.join(PROJECT_ROOT, 'client', 'dist', 'node.js');
  if (!fs.existsSync(entry)) throw new Error('client/dist/node.js is missing: run npm run build');
  // a real import(), not the require() a CommonJS transform would make of it: the package is ESM
  const load = new Function('u', 'return import(u)') as (u: string) => Promise<ClientModule>;
  return load(pathToFileURL(entry).href);
}

async function writeRandomFile(file: string, bytes: number): Promise<void> {
  const out = fs.createWriteStream(file);
  const chunk = 8 * MiB;
  for (let done = 0; done < bytes; done += chunk) {
    const buf = crypto.randomBytes(Math.min(chunk, bytes - done));
    if (!out.write(buf)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
}

/** /proc/<pid>/status VmRSS and VmHWM in bytes. */
function procMem(pid: number): { rss: number; hwm: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

// The child for (c): warms (one list call: Node loads its fetch on first use), says "ready", waits for
// "go" on stdin, uploads, says "done". The parent samples its RSS meanwhile.
const CHILD = `import { createClient } from '@aws-storage/client';
const o = JSON.parse(process.argv[2]);
const client = createClient({ url: o.url, userKey: o.userKey }, { storage: { dir: o.stateDir } });
await client.list({ limit: 1 });
console.log(JSON.stringify({ event: 'ready' }));
process.stdin.setEncoding('utf8');
await new Promise((r) => process.stdin.once('data', r));
const t0 = Date.now();
try {
  const result = await client.upload(o.name, { path: o.path }, { partSize: o.partSize, concurrency: o.concurrency }).promise;
  console.log(JSON.stringify({ event: 'done', ms: Date.now() - t0, size: result.size }));
} catch (err) {
  console.log(JSON.stringify({ event: 'error', message: String(err?.message ?? err) }));
  process.exitCode = 1;
}
process.stdin.destroy();
`;

async function childMemory(
  dir: string,
  args: { url: string; userKey: string; name: string; path: string; partSize: number; concurrency: number },
): Promise<{ startRss: number; peakRss: number; hwm: number; ms: number; samples: number }> {
  const home = path.join(dir, 'child-home');
  fs.mkdirSync(path.join(home, 'node_modules', '@aws-storage'), { recursive: true });
  fs.symlinkSync(path.join(PROJECT_ROOT, 'client'), path.join(home, 'node_modules', '@aws-storage', 'client'), 'dir');
  fs.writeFileSync(path.join(home, 'child-upload.mjs'), CHILD);
  const child = spawn(process.execPath, [path.join(home, 'child-upload.mjs'), JSON.stringify({ ...args, stateDir: path.join(home, 'state') })], {
    cwd: home,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const pid = child.pid!;
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    let buf = '';
    let startRss = 0;
    let peakRss = 0;
    let samples = 0;
    let hwm = 0;
    let timer: NodeJS.Timeout | undefined;
    const sample = () => {
      try {
        const m = procMem(pid);
        // a process that has exited (a zombie) has no VmRSS line
        if (Number.isFinite(m.rss)) {
          peakRss = Math.max(peakRss, m.rss);
          samples++;
        }
        if (Number.isFinite(m.hwm)) hwm = m.hwm;
      } catch {
        /* the process has gone */
      }
    };
    const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(killer);
      if (timer) clearInterval(timer);
      if (code !== 0 && !buf.includes('"done"')) reject(new Error(`child exited ${code}: ${stderr.slice(0, 2000)}`));
    });
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const e = JSON.parse(line) as { event: string; ms?: number; message?: string };
        if (e.event === 'ready') {
          startRss = procMem(pid).rss;
          peakRss = startRss;
          timer = setInterval(sample, 5);
          child.stdin.write('go\n');
        } else if (e.event === 'done') {
          sample();
          clearInterval(timer);
          resolve({ startRss, peakRss, hwm, ms: e.ms!, samples });
        } else if (e.event === 'error') {
          clearInterval(timer);
          reject(new Error(`child upload failed: ${e.message}`));
        }
      }
    });
  });
}

/** Links for `n` parts: the socket's part presigner vs getSignedUrl(UploadPartCommand) per part. */
async function linkFigures(
  s3: { endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string },
  rounds: number,
): Promise<{ presignerMs: number[]; sdkMs: number[] }> {
  const key = '1/bench/links-10000.bin';
  const uploadId = 'bench-upload-id-0123456789abcdef';
  const parts = Array.from({ length: LINK_PARTS }, (_, i) => ({ partNumber: i + 1, size: 5 * MiB }));
  const presign = createPartPresigner({ ...s3, region: REGION, forcePathStyle: true });
  const sdk = new S3Client({
    endpoint: s3.endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  // warm both (JIT, the SDK's lazily loaded parts)
  presign({ key, uploadId, expiresIn: 3600, parts });
  for (let i = 1; i <= 200; i++) await getSignedUrl(sdk, new UploadPartCommand({ Bucket: s3.bucket, Key: key, UploadId: uploadId, PartNumber: i, ContentLength: 5 * MiB }), { expiresIn: 3600 });
  const out = { presignerMs: [] as number[], sdkMs: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    const links = presign({ key, uploadId, expiresIn: 3600, parts });
    out.presignerMs.push(msSince(t0));
    if (links.length !== LINK_PARTS) throw new Error(`part presigner gave ${links.length} links`);
  }
  // the SDK loop takes seconds: one round of it, not three
  const t0 = process.hrtime.bigint();
  for (const p of parts) {
    await getSignedUrl(sdk, new UploadPartCommand({ Bucket: s3.bucket, Key: key, UploadId: uploadId, PartNumber: p.partNumber, ContentLength: p.size }), { expiresIn: 3600 });
  }
  out.sdkMs.push(msSince(t0));
  sdk.destroy();
  return out;
}

/** One POST on a connection of its own (node:http, no agent): the answer's status and body. */
function postOnce(url: string, headers: Record<string, string>, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** user-multipart-start over HTTP for a 10,000-part upload (5 MiB parts), then its abort; ms per start. */
async function startOverHttp(host: StartedHost, userKey: string, rounds: number): Promise<number[]> {
  const ms: number[] = [];
  const post = async (ep: string, body: unknown) => {
    const { status, text } = await postOnce(`${host.url}/aws-storage/${ep}/`, { 'content-type': 'application/json', 'x-user-key': userKey }, JSON.stringify(body));
    if (status !== 200) throw new Error(`${ep} answered ${status}: ${text.slice(0, 300)}`);
    return JSON.parse(text) as { uploadId: string; parts: unknown[] };
  };
  for (let r = 0; r <= rounds; r++) {
    const t0 = process.hrtime.bigint();
    const started = await post('user-multipart-start', { name: `bench/links-${r}.bin`, size: LINK_PARTS * 5 * MiB, partSize: 5 * MiB });
    const took = msSince(t0);
    if (started.parts.length !== LINK_PARTS) throw new Error(`user-multipart-start gave ${started.parts.length} parts`);
    if (r > 0) ms.push(took); // the first is a warm-up
    await post('user-multipart-abort', { name: `bench/links-${r}.bin`, uploadId: started.uploadId });
  }
  return ms;
}

export async function benchMultipart(o: { quick?: boolean; log?: (s: string) => void } = {}): Promise<MultipartBenchRow[]> {
  const log = o.log ?? (() => undefined);
  const ROUNDS = o.quick ? 1 : 3;
  const SIZE = (o.quick ? 64 : 256) * MiB;
  const sizeName = `${SIZE / MiB} MiB`;
  const rows: MultipartBenchRow[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-storage-bench-multipart-'));
  let host: StartedHost | undefined;
  try {
    const file = path.join(dir, 'upload.bin');
    await writeRandomFile(file, SIZE);
    const { createClient } = await importClient();
    host = await startHost({
      // a 10,000-part start declares 50 GB: over the default MAX_UPLOAD_SIZE (5 GiB); nothing is stored
      env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', MAX_UPLOAD_SIZE: String(LINK_PARTS * 5 * MiB) },
      logToFile: true,
    });
    const user = await host.addUser('bench');
    const s3 = { endpoint: host.s3Endpoint!, bucket: host.bucket!, ...host.s3Credentials! };
    const s3client = storeClient({ ...s3, region: REGION });
    try {
      // ---- a: throughput, client vs lib-storage, interleaved ----
      const client = createClient({ url: host.url, userKey: user.user_key }, { storage: { dir: path.join(dir, 'state') } });
      const clientKey = `${user.id}/bench/client.bin`;
      const sdkKey = `${user.id}/bench/lib-storage.bin`;
      const viaClient = async () => {
        const t0 = process.hrtime.bigint();
        const r = await client.upload('bench/client.bin', { path: file }, { partSize: PART, concurrency: CONC }).promise;
        const ms = msSince(t0);
        if (r.size !== SIZE) throw new Error(`client upload: size ${r.size}`);
        return ms;
      };
      const viaSdk = async () => {
        const t0 = process.hrtime.bigint();
        await new Upload({ client: s3client, params: { Bucket: s3.bucket, Key: sdkKey, Body: fs.createReadStream(file) }, partSize: PART, queueSize: CONC }).done();
        return msSince(t0);
      };
      const r = { client: [] as number[], sdk: [] as number[] };
      for (let k = 0; k < ROUNDS; k++) {
        r.sdk.push(await viaSdk());
        r.client.push(await viaClient());
      }
      for (const key of [clientKey, sdkKey]) {
        const head = await s3client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
        if (head.ContentLength !== SIZE) throw new Error(`${key}: ${head.ContentLength} bytes stored`);
      }
      const mibps = (ms: number) => round2(SIZE / MiB / (ms / 1000));
      const clientRate = median(r.client.map(mibps));
      const sdkRate = median(r.sdk.map(mibps));
      rows.push({
        figure: `multipart ${sizeName} via client part links`,
        value: clientRate,
        unit: 'MiB/s',
        baseline: sdkRate,
        baselineName: 'lib-storage Upload MiB/s',
        ratio: round2(clientRate / sdkRate),
        target: '>= 0.9x',
        pass: clientRate / sdkRate >= 0.9,
        rounds: { value: r.client.map(mibps), baseline: r.sdk.map(mibps) },
      });
      log(`multipart ${sizeName}: client ${clientRate} MiB/s, lib-storage ${sdkRate} MiB/s (x${round2(clientRate / sdkRate)}); rounds client ${r.client.map(mibps).join('/')}, lib-storage ${r.sdk.map(mibps).join('/')}`);
      for (const key of [clientKey, sdkKey]) await s3client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key }));

      // ---- b: links for 10,000 parts ----
      const links = await linkFigures(s3, ROUNDS);
      const pMs = round2(median(links.presignerMs));
      const sMs = round2(median(links.sdkMs));
      rows.push({
        figure: `links for ${LINK_PARTS.toLocaleString('en-US')} parts (part presigner)`,
        value: pMs,
        unit: 'ms',
        baseline: sMs,
        baselineName: 'getSignedUrl(UploadPart) loop ms',
        ratio: round2(pMs / sMs),
        target: '< 100 ms',
        pass: pMs < 100,
        rounds: { value: links.presignerMs.map(round2), baseline: links.sdkMs.map(round2) },
      });
      log(`links for ${LINK_PARTS} parts: part presigner ${pMs} ms, getSignedUrl loop ${sMs} ms (x${round2(pMs / sMs)})`);
      try {
        const http = await startOverHttp(host, user.user_key, ROUNDS);
        const hMs = round2(median(http));
        rows.push({
          figure: `  user-multipart-start, ${LINK_PARTS.toLocaleString('en-US')} parts, over HTTP`,
          value: hMs,
          unit: 'ms',
          baseline: sMs,
          baselineName: 'getSignedUrl(UploadPart) loop ms',
          ratio: round2(hMs / sMs),
          target: 'info (< 100 ms)',
          pass: null,
          rounds: { value: http.map(round2), baseline: links.sdkMs.map(round2) },
        });
        log(`user-multipart-start over HTTP, ${LINK_PARTS} parts: ${hMs} ms (rounds ${http.map(round2).join('/')})`);
      } catch (err) {
        log(`user-multipart-start over HTTP: skipped (${(err as Error).message}); host log: ${host.logs().slice(-1500)}`);
      }

      // ---- c: the client's RSS in a process of its own ----
      const mem = await childMemory(dir, { url: host.url, userKey: user.user_key, name: 'bench/memory.bin', path: file, partSize: PART, concurrency: CONC });
      const growth = mem.peakRss - mem.startRss;
      const limit = 2 * PART * CONC;
      rows.push({
        figure: `client RSS growth, ${sizeName} from a file`,
        value: round2(growth / MiB),
        unit: 'MiB',
        baseline: SIZE / MiB,
        baselineName: 'file MiB',
        ratio: round2(growth / SIZE),
        target: `< ${limit / MiB} MiB (2 x part x conc)`,
        pass: growth < limit,
      });
      log(
        `client process, ${sizeName} from a file: RSS ${(mem.startRss / MiB).toFixed(0)} MiB after its first call, peak ${(mem.peakRss / MiB).toFixed(0)} MiB ` +
          `(+${(growth / MiB).toFixed(1)} MiB; ${mem.samples} samples; VmHWM ${(mem.hwm / MiB).toFixed(0)} MiB), ${mem.ms} ms`,
      );
      await s3client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: `${user.id}/bench/memory.bin` }));
    } finally {
      s3client.destroy();
    }
    return rows;
  } finally {
    if (host) {
      await host.stop();
      fs.rmSync(host.dataDir, { recursive: true, force: true });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const t0 = Date.now();
  benchMultipart({ quick: process.argv.includes('--quick'), log: (s) => process.stdout.write(s + '\n') }).then(
    (rows) => {
      for (const r of rows) process.stdout.write(`${r.figure}: ${r.value} ${r.unit} vs ${r.baseline} ${r.baselineName} (x${r.ratio}); target ${r.target}: ${r.pass === null ? 'info' : r.pass ? 'PASS' : 'FAIL'}\n`);
      const failed = rows.filter((r) => r.pass === false);
      process.stdout.write(`${rows.filter((r) => r.pass === true).length} pass, ${failed.length} fail (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
