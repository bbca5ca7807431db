/**
 * The embedded store against a bare `fs` loop of the same sizes, in the same run (issue 12's targets):
 * PUT vs writeFile + rename, GET vs readFile, HEAD vs stat; 1 KiB and 64 KiB objects (PUT, GET, HEAD)
 * and 8 MiB PUT, one request at a time and a few concurrent. The store runs on its own thread, as the
 * host runs it (scripts/s3/store-worker.ts), and is reached over node:http (keep-alive) with presigned
 * URLs from the socket's presigner, made before the clock starts. Each figure is the median of
 * interleaved rounds (fs, store, fs, store, …) so the machine's drift lands on both sides of a ratio.
 *
 * Run alone: node --import tsx scripts/bench/store.bench.ts [--quick]
 */
import './env';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { storeClient } from '../s3/client';
import { startEmbeddedStoreThread } from '../s3/store-worker';
import { createPresigner } from '../../src/lib/presign';

export interface StoreBenchRow {
  figure: string;
  op: 'PUT' | 'GET' | 'HEAD';
  bytes: number;
  concurrency: number;
  /** median ops/s of the store */
  storeOps: number;
  /** median ops/s of the bare fs loop */
  fsOps: number;
  ratio: number;
  /** the least ratio the issue asks for */
  target: number;
  rounds: { store: number[]; fs: number[] };
}

const KiB = 1024;
const MiB = 1024 * KiB;
const POOL = 64; // keys (and files) written over and over

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round2 = (n: number) => Math.round(n * 100) / 100;

/** Runs op(i) with `concurrency` loops for ms (at most maxOps in all): ops per second. */
async function timed(op: (i: number) => Promise<void>, concurrency: number, ms: number, maxOps: number): Promise<number> {
  let n = 0;
  const t0 = process.hrtime.bigint();
  const until = t0 + BigInt(ms) * 1_000_000n;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (n < maxOps && process.hrtime.bigint() < until) await op(n++);
    }),
  );
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return n / s;
}

function send(agent: http.Agent, method: string, url: string, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body ? { 'content-length': String(body.length) } : {} }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${method} answered ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

export async function benchStore(o: { quick?: boolean; log?: (s: string) => void } = {}): Promise<StoreBenchRow[]> {
  const log = o.log ?? (() => undefined);
  const ROUNDS = o.quick ? 3 : 5;
  const SMALL_MS = o.quick ? 400 : 1000;
  const BIG_MS = o.quick ? 800 : 2000;
  const CONC = 4;

  const fsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-storage-bench-fs-'));
  const store = await startEmbeddedStoreThread({});
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONC });
  const bucket = 'bench-store';
  const rows: StoreBenchRow[] = [];
  try {
    const client = storeClient(store);
    try {
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
    } finally {
      client.destroy();
    }
    const presign = createPresigner({ ...store, forcePathStyle: true, bucket });
    const cases: Array<{ op: StoreBenchRow['op']; bytes: number; target: number }> = [
      { op: 'PUT', bytes: KiB, target: 0.5 },
      { op: 'GET', bytes: KiB, target: 0.5 },
      { op: 'HEAD', bytes: KiB, target: 0.5 },
      { op: 'PUT', bytes: 64 * KiB, target: 0.5 },
      { op: 'GET', bytes: 64 * KiB, target: 0.5 },
      { op: 'HEAD', bytes: 64 * KiB, target: 0.5 },
      { op: 'PUT', bytes: 8 * MiB, target: 0.7 },
    ];
    for (const c of cases) {
      const body = crypto.randomBytes(c.bytes);
      const prefix = `b${c.bytes}`;
      const urls = Array.from({ length: POOL }, (_, i) => presign({ method: c.op, key: `${prefix}/obj-${i}`, expiresIn: 3600 }));
      const files = Array.from({ length: POOL }, (_, i) => path.join(fsDir, `${prefix}-obj-${i}`));
      if (c.op !== 'PUT') {
        // the objects and files to read
        const puts = Array.from({ length: POOL }, (_, i) => presign({ method: 'PUT', key: `${prefix}/obj-${i}`, expiresIn: 3600 }));
        for (let i = 0; i < POOL; i++) {
          await send(agent, 'PUT', puts[i], body);
          fs.writeFileSync(files[i], body);
        }
      }
      let tmp = 0;
      const storeOp = (i: number) => send(agent, c.op, urls[i % POOL], c.op === 'PUT' ? body : undefined);
      const fsOp = async (i: number) => {
        const file = files[i % POOL];
        if (c.op === 'PUT') {
          const t = path.join(fsDir, `.tmp-${tmp++}`);
          await fs.promises.writeFile(t, body);
          await fs.promises.rename(t, file);
        } else if (c.op === 'GET') {
          await fs.promises.readFile(file);
        } else {
          await fs.promises.stat(file);
        }
      };
      const ms = c.bytes >= MiB ? BIG_MS : SMALL_MS;
      const maxOps = c.bytes >= MiB ? 2_000 : 200_000;
      for (const conc of [1, CONC]) {
        // warm both sides, then interleaved rounds
        await timed(fsOp, conc, ms / 4, maxOps);
        await timed(storeOp, conc, ms / 4, maxOps);
        const r = { store: [] as number[], fs: [] as number[] };
        for (let k = 0; k < ROUNDS; k++) {
          r.fs.push(await timed(fsOp, conc, ms, maxOps));
          r.store.push(await timed(storeOp, conc, ms, maxOps));
        }
        const size = c.bytes >= MiB ? `${c.bytes / MiB} MiB` : `${c.bytes / KiB} KiB`;
        const storeOps = median(r.store);
        const fsOps = median(r.fs);
        const row: StoreBenchRow = {
          figure: `store ${c.op} ${size}, ${conc === 1 ? '1 at a time' : `${conc} concurrent`}`,
          op: c.op,
          bytes: c.bytes,
          concurrency: conc,
          storeOps: Math.round(storeOps),
          fsOps: Math.round(fsOps),
          ratio: round2(storeOps / fsOps),
          target: c.target,
          rounds: { store: r.store.map(Math.round), fs: r.fs.map(Math.round) },
        };
        rows.push(row);
        log(`${row.figure}: ${row.storeOps} ops/s, fs loop ${row.fsOps} ops/s (x${row.ratio}, target >= ${row.target}x)`);
      }
    }
    return rows;
  } finally {
    agent.destroy();
    await store.close();
    fs.rmSync(fsDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  benchStore({ quick: process.argv.includes('--quick'), log: (s) => process.stdout.write(s + '\n') }).then(
    (rows) => {
      const failed = rows.filter((r) => r.ratio < r.target);
      process.stdout.write(`${rows.length - failed.length} pass, ${failed.length} fail\n`);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
