/**
 * Uploads through the host and make-links' check (issue 15, "against the peer"), each beside a
 * baseline measured in the same run against the same store (the host's embedded one, as `npm start`):
 *
 *   a. raw-body `user-upload` (the file as the request body, Content-Length) of 1 and 8 MiB through
 *      the host vs a direct `PutObject` (AWS SDK) of the same bytes: one at a time (median of
 *      interleaved rounds) and 8 at once (the batch's time); as throughput, target ≥ 0.8×;
 *   b. base64 JSON `user-upload` of 8 MiB through the host vs the same direct put; target ≤ 1.6× its time;
 *   c. `make-links` of 1000 keys with `check: true` vs the same call without it, over HTTP: all in one
 *      folder, and over 20 folders with 10% missing; target ≤ 3× its time.
 *
 * --quick: fewer rounds. Run alone: node --import tsx scripts/bench/uploads.bench.ts [--quick] (after
 * `npm run build`: the host runs .dist).
 */
import './env';
import crypto from 'node:crypto';
import http from 'node:http';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { storeClient } from '../s3/client';
import { mapLimit } from '../../src/lib/storage';
import { startHost, type StartedHost } from '../../test/support/host';
import { measureUpload, postJson } from './measure';

export interface UploadsBenchRow {
  figure: string;
  value: number;
  unit: string;
  baseline: number;
  baselineName: string;
  ratio: number;
  target: string;
  pass: boolean | null;
  rounds?: { value: number[]; baseline: number[] };
}

const MiB = 1024 * 1024;
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round2 = (n: number) => Math.round(n * 100) / 100;
const msSince = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

/** POSTs `bytes` as a raw body (Content-Length) to user-upload; resolves with the answer's JSON. */
function rawUpload(url: string, userKey: string, bytes: Buffer, agent: http.Agent): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/octet-stream', 'content-length': bytes.length, 'x-user-key': userKey },
    });
    req.setTimeout(60_000, () => req.destroy(new Error('raw upload: no answer in 60 s')));
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => {
        const body = JSON.parse(text);
        if (res.statusCode !== 200 || body.size !== bytes.length) reject(new Error(`raw upload answered ${res.statusCode}: ${text.slice(0, 300)}`));
        else resolve(body);
      });
    });
    req.end(bytes);
  });
}

export async function benchUploads(o: { quick?: boolean; log?: (s: string) => void } = {}): Promise<UploadsBenchRow[]> {
  const log = o.log ?? (() => {});
  const rounds = o.quick ? 3 : 7;
  const rows: UploadsBenchRow[] = [];
  let host: StartedHost | undefined;
  let client: S3Client | undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  try {
    host = await startHost({ env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', MAX_FILE_SIZE: String(64 * MiB) }, logToFile: true });
    const user = await host.addUser('bench-uploads');
    const s3 = { endpoint: host.s3Endpoint!, bucket: host.bucket!, ...host.s3Credentials!, region: 'eu-central-1' };
    client = storeClient(s3, { maxAttempts: 1 });
    const c = client;
    const url = (name: string) => `${host!.url}/aws-storage/user-upload/?name=${encodeURIComponent(name)}`;
    const direct = (key: string, bytes: Buffer) =>
      c.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: bytes, ContentType: 'application/octet-stream', ContentLength: bytes.length }));

    // ---- a: raw bodies, one at a time and 8 at once ----
    for (const size of [1 * MiB, 8 * MiB]) {
      const bytes = crypto.randomBytes(size);
      const mib = size / MiB;
      await rawUpload(url(`bench/raw-${mib}.bin`), user.user_key, bytes, agent); // warm-up
      await direct(`direct/raw-${mib}.bin`, bytes);
      const viaHost: number[] = [];
      const directMs: number[] = [];
      for (let r = 0; r < rounds; r++) {
        let t0 = process.hrtime.bigint();
        await rawUpload(url(`bench/raw-${mib}.bin`), user.user_key, bytes, agent);
        viaHost.push(msSince(t0));
        t0 = process.hrtime.bigint();
        await direct(`direct/raw-${mib}.bin`, bytes);
        directMs.push(msSince(t0));
      }
      const h = median(viaHost);
      const d = median(directMs);
      log(`raw user-upload ${mib} MiB: host ${h.toFixed(1)} ms, direct put ${d.toFixed(1)} ms (throughput x${(d / h).toFixed(2)})`);
      rows.push({ figure: `raw user-upload ${mib} MiB, one at a time`, value: round2((size / MiB / h) * 1000), unit: 'MiB/s', baseline: round2((size / MiB / d) * 1000), baselineName: 'direct PutObject MiB/s', ratio: round2(d / h), target: '>= 0.8x', pass: d / h >= 0.8, rounds: { value: viaHost.map(round2), baseline: directMs.map(round2) } });

      const batchHost: number[] = [];
      const batchDirect: number[] = [];
      for (let r = 0; r < Math.max(2, rounds - 2); r++) {
        let t0 = process.hrtime.bigint();
        await Promise.all(Array.from({ length: 8 }, (_, i) => rawUpload(url(`bench/raw8-${mib}-${i}.bin`), user.user_key, bytes, agent)));
        batchHost.push(msSince(t0));
        t0 = process.hrtime.bigint();
        await Promise.all(Array.from({ length: 8 }, (_, i) => direct(`direct/raw8-${mib}-${i}.bin`, bytes)));
        batchDirect.push(msSince(t0));
      }
      const bh = median(batchHost);
      const bd = median(batchDirect);
      log(`raw user-upload ${mib} MiB, 8 at once: host ${bh.toFixed(1)} ms, direct ${bd.toFixed(1)} ms (x${(bd / bh).toFixed(2)})`);
      rows.push({ figure: `raw user-upload ${mib} MiB, 8 at once`, value: round2(((8 * size) / MiB / bh) * 1000), unit: 'MiB/s', baseline: round2(((8 * size) / MiB / bd) * 1000), baselineName: 'direct PutObject MiB/s', ratio: round2(bd / bh), target: '>= 0.8x', pass: bd / bh >= 0.8, rounds: { value: batchHost.map(round2), baseline: batchDirect.map(round2) } });
    }

    // ---- b: base64 JSON, 8 MiB ----
    const b64 = await measureUpload({ hostUrl: host.url, userKey: user.user_key, s3, hostPid: host.process.pid! }, { bytes: 8 * MiB, rounds: o.quick ? 3 : 7, client: c });
    const p = b64.hostPhasesMs;
    log(`base64 user-upload 8 MiB: host ${b64.hostMs} ms (read ${p.read}, parse ${p.parse}, handler ${p.handler}), direct put ${b64.directMs} ms (x${b64.ratio})`);
    rows.push({ figure: 'base64 user-upload 8 MiB', value: b64.hostMs, unit: 'ms', baseline: b64.directMs, baselineName: 'direct PutObject ms', ratio: b64.ratio, target: '<= 1.6x', pass: b64.ratio <= 1.6, rounds: { value: b64.hostSamplesMs, baseline: b64.directSamplesMs } });
    rows.push({ figure: '  its phases: handler (read / parse)', value: p.handler, unit: 'ms', baseline: b64.directMs, baselineName: 'direct PutObject ms', ratio: round2(p.handler / b64.directMs), target: `info: read ${p.read}, parse ${p.parse} ms`, pass: null });

    // ---- c: make-links check ----
    const oneFolder = Array.from({ length: 1000 }, (_, i) => `shared/one/f${String(i).padStart(4, '0')}.pdf`);
    const spread = Array.from({ length: 1000 }, (_, i) => `shared/d${String(i % 20).padStart(2, '0')}/f${String(i).padStart(4, '0')}.pdf`);
    const stored = [...oneFolder, ...spread.filter((_, i) => i % 10 !== 0)]; // 10% of the spread keys missing
    await mapLimit(stored, 32, (key) => direct(key, Buffer.from('x')));
    const adminHeaders = { 'x-api-key': host.adminKey };
    const linksUrl = `${host.url}/aws-storage/make-links/`;
    for (const [label, keys] of [['1000 keys, one folder', oneFolder], ['1000 keys, 20 folders, 10% missing', spread]] as const) {
      const withCheck = Buffer.from(JSON.stringify({ fileNames: keys, check: true }));
      const without = Buffer.from(JSON.stringify({ fileNames: keys }));
      const call = async (body: Buffer) => {
        const t0 = process.hrtime.bigint();
        const r = await postJson(linksUrl, body, adminHeaders, agent);
        if (r.status !== 200) throw new Error(`make-links answered ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`);
        return { ms: msSince(t0), files: Object.keys(r.body.files).length, errors: r.body.errors.length };
      };
      await call(withCheck);
      await call(without);
      const checked: number[] = [];
      const plain: number[] = [];
      let last = { files: 0, errors: 0 };
      for (let r = 0; r < rounds; r++) {
        const a = await call(withCheck);
        checked.push(a.ms);
        last = a;
        plain.push((await call(without)).ms);
      }
      const expectedFound = keys.filter((k) => stored.includes(k)).length;
      if (last.files !== expectedFound || last.errors !== keys.length - expectedFound) throw new Error(`make-links check found ${last.files} / ${last.errors}, not ${expectedFound}`);
      const cm = median(checked);
      const pm = median(plain);
      log(`make-links ${label}: check ${cm.toFixed(1)} ms, without ${pm.toFixed(1)} ms (x${(cm / pm).toFixed(2)})`);
      rows.push({ figure: `make-links check, ${label}`, value: round2(cm), unit: 'ms', baseline: round2(pm), baselineName: 'same call without check ms', ratio: round2(cm / pm), target: '<= 3x', pass: cm / pm <= 3, rounds: { value: checked.map(round2), baseline: plain.map(round2) } });
    }
  } finally {
    agent.destroy();
    client?.destroy();
    await host?.stop();
  }
  return rows;
}

if (require.main === module) {
  const t0 = Date.now();
  benchUploads({ quick: process.argv.includes('--quick'), log: (s) => process.stdout.write(s + '\n') }).then(
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
