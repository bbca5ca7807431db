/**
 * The store killed (SIGKILL, its own process) in the middle of a run of uploads, through the host
 * (base64) and through presigned PUT links: each call either succeeded, and its object is whole by MD5,
 * or answered an error; after the store comes back on the same files, no partial object is readable.
 */
import crypto from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { startHost, tempDir, type StartedHost } from '../support/host';
import { api, credentials, freePort, md5, s3Client, slowPost, spawnStore, storeEnv, type StoreProcess } from './helpers';

jest.setTimeout(120_000);

let host: StartedHost;
let store: StoreProcess | undefined;
const creds = credentials();

afterAll(async () => {
  await host?.stop();
  await store?.kill();
});

test('SIGKILL of the store mid-run: every object is whole or absent, every call succeeded or answered an error', async () => {
  const port = await freePort();
  const dataDir = tempDir('fault-store-');
  store = await spawnStore({ port, dataDir, ...creds });
  host = await startHost({ env: storeEnv(store.endpoint, creds, { AWS_S3_TIMEOUT_MS: '3000' }) });
  const alice = await host.addUser('alice');
  const user = { 'x-user-key': alice.user_key };

  const intended = new Map<string, string>(); // key → md5 of the bytes meant for it
  const outcomes: Array<{ key: string; kind: string; ok: boolean; status: number }> = [];
  let killed = false;

  // base64 uploads through the host, a few at a time, until the store is gone (bounded)
  const base64Run = async (worker: number) => {
    for (let i = 0; i < 40; i++) {
      const bytes = crypto.randomBytes(256 * 1024 + i * 1000);
      const name = `b64/w${worker}-${i}.bin`;
      intended.set(`${alice.id}/${name}`, md5(bytes));
      const r = await api(host.url, 'user-upload', user, { name, file: bytes.toString('base64') }, 15_000);
      outcomes.push({ key: `${alice.id}/${name}`, kind: 'base64', ok: r.status === 200, status: r.status });
      if (r.status === 200) expect(r.body.etag).toBe(md5(bytes));
      else expect(r.status).toBe(503);
      if (killed && i > 2) break;
    }
  };
  // presigned PUTs streamed slowly straight to the store: the kill lands in the middle of their bodies
  let putsStreaming!: () => void;
  const streaming = new Promise<void>((r) => (putsStreaming = r));
  const slowPuts = async () => {
    const puts = [];
    const started: Promise<void>[] = [];
    for (let i = 0; i < 6; i++) {
      const bytes = crypto.randomBytes(2 * 1024 * 1024);
      const name = `link/slow-${i}.bin`;
      const link = await api(host.url, 'user-upload-link', user, { name });
      expect(link.status).toBe(200);
      intended.set(link.body.key, md5(bytes));
      const p = slowPost(link.body.link, link.body.headers, bytes, { first: 256 * 1024, chunk: 64 * 1024, delayMs: 15, method: 'PUT' });
      releases.push(p.release);
      started.push(p.sentFirst);
      puts.push(p.done.then((r) => outcomes.push({ key: link.body.key, kind: 'link PUT', ok: r.status === 200, status: r.status })));
    }
    await Promise.all(started);
    for (const p of releases) p();
    putsStreaming();
    await Promise.all(puts);
  };
  const releases: Array<() => void> = [];

  const running = Promise.all([base64Run(0), base64Run(1), base64Run(2), slowPuts()]);
  // kill once every slow PUT is streaming its body (about 1/3 of its 2 MB sent): the kill lands mid-body
  await streaming;
  await new Promise((r) => setTimeout(r, 150));
  await store.kill('SIGKILL');
  killed = true;
  await running;

  // the store comes back on the same port and files
  store = await spawnStore({ port, dataDir, ...creds });
  const s3 = s3Client(store.endpoint, creds);
  const listed: string[] = [];
  let token: string | undefined;
  for (let page = 0; page < 100; page++) {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: creds.bucket, ContinuationToken: token }));
    listed.push(...(out.Contents ?? []).map((c) => c.Key!));
    token = out.NextContinuationToken;
    if (!token) break;
  }
  const partial: string[] = [];
  const strangers: string[] = [];
  for (const key of listed) {
    if (!intended.has(key)) {
      strangers.push(key);
      continue;
    }
    const out = await s3.send(new GetObjectCommand({ Bucket: creds.bucket, Key: key }));
    const body = Buffer.from(await out.Body!.transformToByteArray());
    if (md5(body) !== intended.get(key)) partial.push(`${key} (${body.length} bytes readable)`);
  }
  const lost = outcomes.filter((o) => o.ok && !listed.includes(o.key)).map((o) => o.key);
  s3.destroy();

  const ok = outcomes.filter((o) => o.ok).length;
  console.log(
    `store killed: ${outcomes.length} uploads (${ok} succeeded, ${outcomes.length - ok} answered an error: ` +
      `${[...new Set(outcomes.filter((o) => !o.ok).map((o) => `${o.kind} ${o.status}`))].join(', ')}); ` +
      `${listed.length} objects after restart, ${partial.length} partial, ${lost.length} lost`,
  );
  expect(outcomes.some((o) => !o.ok)).toBe(true); // the kill did land mid-run
  expect(ok).toBeGreaterThan(0);
  expect(strangers).toEqual([]);
  expect(lost).toEqual([]);
  expect(partial).toEqual([]);
});
