/**
 * The store streams bodies to disk: a 200 MiB PUT (a generated stream, never a buffer) and a 200 MiB
 * POST-policy upload leave the store's RSS (its own process, sampled from /proc/<pid>/status) within
 * 64 MiB of where it started, and GET gives the same bytes back by SHA-256 (also in flat memory).
 * A POST whose `file` is a plain form field (no filename, as `curl -F file=<x` sends it) is stored
 * byte-exact, or refused whole with a clear 400 — never truncated, never re-encoded.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { credentials, freePort, s3Client, spawnStore, type StoreProcess } from '../faults/helpers';
import { codeOf, encodeKey, request, sha256hex, signHeaders, type StoreCreds } from './raw';

const MiB = 1024 * 1024;
const SIZE = 200 * MiB;
const GROWTH_LIMIT = 64 * MiB;

let proc: StoreProcess;
let dataDir: string;
let creds: StoreCreds & { bucket: string };
let s3: S3Client;

beforeAll(async () => {
  const c = credentials();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-streaming-'));
  proc = await spawnStore({ port: await freePort(), dataDir, accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, bucket: c.bucket });
  creds = { endpoint: proc.endpoint, region: 'eu-central-1', accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, bucket: c.bucket };
  s3 = s3Client(proc.endpoint, c);
  // warm up: every path once with a few MiB, so lazily loaded code and pooled buffers are in the baseline
  await putStream('warm/put', 4 * MiB);
  await getHash('warm/put');
  await postStream('warm/post', 4 * MiB);
}, 30_000);

afterAll(async () => {
  s3?.destroy();
  await proc?.kill();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** Runs fn while sampling the store's RSS every 20 ms: the peak above the RSS just before. */
async function peakGrowth<T>(fn: () => Promise<T>): Promise<{ result: T; growth: number; before: number; peak: number }> {
  const pid = proc.proc.pid!;
  const before = rssBytes(pid);
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid));
  }, 20);
  try {
    const result = await fn();
    peak = Math.max(peak, rssBytes(pid));
    return { result, growth: peak - before, before, peak };
  } finally {
    clearInterval(timer);
  }
}

/** `size` bytes of AES-CTR keystream (incompressible, reproducible), in 1 MiB chunks; the hash as it goes. */
function generated(size: number, seed: string): { chunks: () => AsyncGenerator<Buffer>; sha256: () => string } {
  const hash = crypto.createHash('sha256');
  let digest = '';
  return {
    async *chunks() {
      const key = crypto.createHash('sha256').update(seed).digest().subarray(0, 16);
      const cipher = crypto.createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
      const zeros = Buffer.alloc(MiB);
      for (let sent = 0; sent < size; ) {
        const n = Math.min(MiB, size - sent);
        const chunk = cipher.update(n === MiB ? zeros : zeros.subarray(0, n));
        hash.update(chunk);
        sent += n;
        yield chunk;
      }
      digest = hash.digest('hex');
    },
    sha256: () => digest,
  };
}

async function putStream(key: string, size: number, payloadHash = 'UNSIGNED-PAYLOAD'): Promise<{ status: number; text: string; sha256: string }> {
  const p = `/${creds.bucket}/${encodeKey(key)}`;
  const headers = await signHeaders(creds, { method: 'PUT', path: p, payloadHash, headers: { 'content-length': String(size), 'content-type': 'application/octet-stream' } });
  const g = generated(size, key);
  const res = await request(`${creds.endpoint}${p}`, { method: 'PUT', headers, body: g.chunks(), timeoutMs: 45_000 });
  return { status: res.status, text: res.text, sha256: g.sha256() };
}

/** GET streamed through SHA-256 (the body is never held). */
async function getHash(key: string): Promise<{ status: number; size: number; sha256: string }> {
  const p = `/${creds.bucket}/${encodeKey(key)}`;
  const headers = await signHeaders(creds, { method: 'GET', path: p });
  return new Promise((resolve, reject) => {
    const req = http.request(`${creds.endpoint}${p}`, { headers, agent: false }, (res) => {
      const h = crypto.createHash('sha256');
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        h.update(d);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, size, sha256: h.digest('hex') }));
      res.on('error', reject);
    });
    req.setTimeout(45_000, () => req.destroy(new Error('GET timed out')));
    req.on('error', reject);
    req.end();
  });
}

async function policy(key: string, max: number): Promise<{ url: string; fields: Record<string, string> }> {
  return createPresignedPost(s3, { Bucket: creds.bucket, Key: key, Conditions: [['content-length-range', 0, max]], Expires: 600 });
}

function boundaryFor(...bodies: Buffer[]): string {
  for (;;) {
    const b = '----store-test-' + crypto.randomBytes(16).toString('hex');
    if (!bodies.some((x) => x.includes(b))) return b;
  }
}

/** A multipart POST with the policy's fields, then `file` as a file part of a generated stream. */
async function postStream(key: string, size: number): Promise<{ status: number; text: string; sha256: string }> {
  const { url, fields } = await policy(key, 300 * MiB);
  const boundary = boundaryFor();
  const head = Buffer.from(
    Object.entries(fields)
      .map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
      .join('') + `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const g = generated(size, key);
  async function* body() {
    yield head;
    yield* g.chunks();
    yield tail;
  }
  const res = await request(url, {
    method: 'POST',
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(head.length + size + tail.length) },
    body: body(),
    timeoutMs: 45_000,
  });
  return { status: res.status, text: res.text, sha256: g.sha256() };
}

describe('200 MiB bodies stream through the store in flat memory', () => {
  test('a 200 MiB PUT (UNSIGNED-PAYLOAD): RSS growth < 64 MiB; GET returns the same bytes, also in flat memory', async () => {
    const put = await peakGrowth(() => putStream('big/put.bin', SIZE));
    expect({ status: put.result.status, text: put.result.text.slice(0, 300) }).toEqual({ status: 200, text: '' });
    expect({ growthMiB: Math.round(put.growth / MiB), ok: put.growth < GROWTH_LIMIT }).toEqual({ growthMiB: Math.round(put.growth / MiB), ok: true });
    const get = await peakGrowth(() => getHash('big/put.bin'));
    expect(get.result).toEqual({ status: 200, size: SIZE, sha256: put.result.sha256 });
    expect({ getGrowthMiB: Math.round(get.growth / MiB), ok: get.growth < GROWTH_LIMIT }).toEqual({ getGrowthMiB: Math.round(get.growth / MiB), ok: true });
  }, 50_000);

  test('a 200 MiB PUT whose signed x-amz-content-sha256 is checked: RSS growth < 64 MiB, bytes equal', async () => {
    // the same generated bytes twice: once to know the hash to sign, once to send
    const key = 'big/put-signed.bin';
    const probe = generated(SIZE, key);
    for await (const _ of probe.chunks());
    const put = await peakGrowth(() => putStream(key, SIZE, probe.sha256()));
    expect({ status: put.result.status, text: put.result.text.slice(0, 300) }).toEqual({ status: 200, text: '' });
    expect({ growthMiB: Math.round(put.growth / MiB), ok: put.growth < GROWTH_LIMIT }).toEqual({ growthMiB: Math.round(put.growth / MiB), ok: true });
    expect(await getHash(key)).toEqual({ status: 200, size: SIZE, sha256: probe.sha256() });
  }, 50_000);

  test('a 200 MiB POST-policy upload (createPresignedPost): RSS growth < 64 MiB; GET returns the same bytes', async () => {
    const post = await peakGrowth(() => postStream('big/post.bin', SIZE));
    expect({ status: post.result.status, text: post.result.text.slice(0, 300) }).toEqual({ status: 204, text: '' });
    expect({ growthMiB: Math.round(post.growth / MiB), ok: post.growth < GROWTH_LIMIT }).toEqual({ growthMiB: Math.round(post.growth / MiB), ok: true });
    expect(await getHash('big/post.bin')).toEqual({ status: 200, size: SIZE, sha256: post.result.sha256 });
  }, 50_000);
});

describe('`file` as a plain form field (no filename)', () => {
  async function postPlain(key: string, bytes: Buffer): Promise<{ status: number; text: string }> {
    const { url, fields } = await policy(key, 10 * MiB);
    const boundary = boundaryFor(bytes);
    const body = Buffer.concat([
      Buffer.from(Object.entries(fields).map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('')),
      // as curl -F file=<x sends it: no filename, no Content-Type
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"\r\n\r\n`),
      bytes,
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const res = await request(url, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(body.length) }, body });
    return { status: res.status, text: res.text };
  }

  test.each([
    ['1.5 MiB of random binary', () => crypto.randomBytes(1.5 * MiB)],
    ['1,024 binary bytes (every byte value four times)', () => Buffer.from(Array.from({ length: 1024 }, (_, i) => i % 256))],
    ['invalid UTF-8 and NULs', () => Buffer.concat([Buffer.from([0xff, 0xfe, 0x00, 0xc0, 0xaf, 0xed, 0xa0, 0x80]), crypto.randomBytes(70_000)])],
  ])('%s: stored byte-exact, or refused whole with a 400 (never truncated or re-encoded)', async (_name, make) => {
    const bytes = make();
    const key = `plain/${crypto.randomBytes(4).toString('hex')}`;
    const res = await postPlain(key, bytes);
    const got = await getHash(key);
    if (res.status === 400) {
      expect(codeOf(res.text)).toBeTruthy();
      expect(got.status).toBe(404);
    } else {
      expect({ status: res.status, text: res.text.slice(0, 300) }).toEqual({ status: 204, text: '' });
      expect(got).toEqual({ status: 200, size: bytes.length, sha256: sha256hex(bytes) });
    }
  });
});
