/**
 * What the host costs in memory and start time (issue #15): the host as `npm start` runs it once built
 * (`node .dist/host/main.js`), embedded store on its thread, a fresh DATA_DIR.
 *
 *   - healthy: ms from spawn to the first `GET /healthz` 200 (polled every 10 ms);
 *   - RSS at rest: VmRSS once it is healthy, has made one user and answered one call, and has sat 2 s;
 *   - peak RSS: VmHWM after a 32-connection `user-upload-link` load (autocannon) of `loadS` seconds.
 *
 * Run alone: `node --import tsx scripts/bench/host-cost.ts [--quick]` after `npm run build`; section 7
 * of `npm run bench`.
 */
import './env';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PROJECT_ROOT, measureHttp, readMem, round, type HttpLoadResult } from './measure';
import { assertHostBuilt, HOST_ENTRY, tempDir } from '../../test/support/host';

export interface HostCost {
  healthyMs: number;
  restRssMiB: number;
  peakRssMiB: number;
  load: HttpLoadResult;
  heapUsedMiB: number | null;
}

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

/** Starts a host on a port of our choosing and measures it; always stops it and removes its DATA_DIR. */
export async function measureHostCost(opts: { loadS: number; env?: Record<string, string> }): Promise<HostCost> {
  const dataDir = tempDir('aws-storage-cost-');
  const port = await freePort();
  const adminKey = crypto.randomBytes(20).toString('hex');
  const url = `http://127.0.0.1:${port}`;
  const log = fs.openSync(path.join(dataDir, 'host.log'), 'a');
  const started = performance.now();
  assertHostBuilt();
  const child = spawn(process.execPath, [HOST_ENTRY], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, PORT: String(port), S3_PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, ADMIN_KEY: adminKey, ...opts.env },
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    let healthyMs = NaN;
    for (let i = 0; i < 3000 && child.exitCode === null; i++) {
      const ok = await fetch(`${url}/healthz`).then((r) => r.status === 200, () => false);
      if (ok) {
        healthyMs = round(performance.now() - started, 0);
        break;
      }
      await sleep(10);
    }
    if (!Number.isFinite(healthyMs)) throw new Error(`host not healthy: ${fs.readFileSync(path.join(dataDir, 'host.log'), 'utf8').slice(-2000)}`);
    const res = await fetch(`${url}/v2/instances/local/users/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': adminKey },
      body: JSON.stringify({ username: 'cost' }),
    });
    const user = (await res.json()) as { user_key: string };
    if (res.status !== 201) throw new Error(`add user: ${res.status}`);
    const linkUrl = `${url}/aws-storage/user-upload-link/`;
    const headers = { 'content-type': 'application/json', 'x-user-key': user.user_key };
    const body = JSON.stringify({ name: 'bench/photo.jpg', contentType: 'image/jpeg' });
    const first = await fetch(linkUrl, { method: 'POST', headers, body });
    if (first.status !== 200) throw new Error(`user-upload-link: ${first.status} ${await first.text()}`);
    await sleep(2000);
    const restRssMiB = round(readMem(child.pid!).rss / MiB, 1);
    const load = await measureHttp({ url: linkUrl, method: 'POST', headers, body, connections: 32, durationS: opts.loadS });
    if (load.ok === 0 || load.non2xx || load.errors) throw new Error(`load: ${load.ok} ok, ${load.non2xx} non-2xx, ${load.errors} errors`);
    const peakRssMiB = round(readMem(child.pid!).hwm / MiB, 1);
    return { healthyMs, restRssMiB, peakRssMiB, load, heapUsedMiB: null };
  } finally {
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const quick = process.argv.includes('--quick');
  void (async () => {
    const runs: HostCost[] = [];
    for (let i = 0; i < (quick ? 1 : 3); i++) runs.push(await measureHostCost({ loadS: quick ? 3 : 5 }));
    for (const r of runs) {
      process.stdout.write(`healthy ${r.healthyMs} ms, RSS at rest ${r.restRssMiB} MiB, peak ${r.peakRssMiB} MiB under 32 connections (${Math.round(r.load.reqPerSec)} req/s)\n`);
    }
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
