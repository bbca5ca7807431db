/**
 * A tiny run of each `npm run bench` measurement (scripts/bench/measure.ts): they produce numbers and
 * working results. Nothing here asserts speed.
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import makeLinks from '../../src/make-links';
import { startEmbeddedStore, type EmbeddedStore } from '../../scripts/s3/embedded-store';
import { benchPresign, presignBenchKeys } from '../../scripts/bench/presign.bench';
import {
  makeLinksBatch,
  makeLinksOnce,
  measureHttp,
  measureMakeLinksScaling,
  measureUpload,
  readMem,
  startBareServer,
  type Handler,
} from '../../scripts/bench/measure';
import { startHost, type StartedHost } from '../support/host';
import fs from 'node:fs';

jest.setTimeout(30_000);

const handler = makeLinks as unknown as Handler;

describe('bench smoke: make-links', () => {
  let store: EmbeddedStore;
  let config: Record<string, string>;
  beforeAll(async () => {
    store = await startEmbeddedStore({ buckets: [] });
    config = {
      AWS_S3_ENDPOINT: store.endpoint,
      AWS_ACCESS_KEY_ID: store.accessKeyId,
      AWS_SECRET_ACCESS_KEY: store.secretAccessKey,
      AWS_REGION: store.region,
      AWS_BUCKET: 'bench-smoke',
    };
  });
  afterAll(() => store?.close());

  it('a 10-key make-links gives links that fetch their objects', async () => {
    const keys = presignBenchKeys(10);
    const { files } = await makeLinksOnce(handler, config, keys); // creates the bucket
    const client = new S3Client({
      region: store.region,
      endpoint: store.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey },
    });
    try {
      await client.send(new PutObjectCommand({ Bucket: 'bench-smoke', Key: keys[3], Body: 'smoke' }));
    } finally {
      client.destroy();
    }
    const res = await fetch(files[keys[3]]);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('smoke');
    expect(await makeLinksBatch(handler, config, keys)()).toBeGreaterThan(0);
  });

  it('the scaling measurement gives µs per link for each size', async () => {
    const rows = await measureMakeLinksScaling(handler, config, { sizes: [10, 100], keys: presignBenchKeys, rounds: 1, linksPerSample: 100 });
    expect(rows.map((r) => r.keys)).toEqual([10, 100]);
    for (const r of rows) {
      expect(r.usPerLink).toBeGreaterThan(0);
      expect(Number.isFinite(r.linksPerSec)).toBe(true);
    }
  });

  it('benchPresign with the handler as an extra row gives links/s and ratios', async () => {
    const rows = await benchPresign({ rounds: 1, budgetMs: 0, batchSize: 50, extra: [{ name: '(h) handler', batch: makeLinksBatch(handler, config, presignBenchKeys(50)) }] });
    expect(rows.map((r) => r.name[1])).toEqual(['a', 'b', 'c', 'h']);
    for (const r of rows) {
      expect(r.linksPerSec).toBeGreaterThan(0);
      expect(r.ratioVsSignatureV4).toBeGreaterThan(0);
    }
  });
});

describe('bench smoke: host', () => {
  let host: StartedHost;
  let userKey: string;
  beforeAll(async () => {
    host = await startHost();
    userKey = (await host.addUser('smoke')).user_key;
  });
  afterAll(async () => {
    if (!host) return;
    await host.stop();
    fs.rmSync(host.dataDir, { recursive: true, force: true });
  });

  it('autocannon (1 s, 4 connections) against the host and a bare server gives req/s and latencies', async () => {
    const bare = await startBareServer(100);
    try {
      const b = await measureHttp({ url: bare.url, connections: 4, durationS: 1 });
      expect(b.reqPerSec).toBeGreaterThan(0);
      expect(b.non2xx).toBe(0);
    } finally {
      await bare.stop();
    }
    const h = await measureHttp({
      url: `${host.url}/aws-storage/user-upload-link/`,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-key': userKey },
      body: JSON.stringify({ name: 'smoke/a.txt' }),
      connections: 4,
      durationS: 1,
    });
    expect(h.reqPerSec).toBeGreaterThan(0);
    expect(h.ok).toBeGreaterThan(0);
    expect(h.non2xx).toBe(0);
    expect(h.p99Ms).toBeGreaterThanOrEqual(h.p50Ms);
  });

  it('a 64 KiB upload through the host and directly gives times, RSS and a link to the bytes', async () => {
    const pid = host.process.pid!;
    expect(readMem(pid).rss).toBeGreaterThan(0);
    const u = await measureUpload(
      {
        hostUrl: host.url,
        userKey,
        hostPid: pid,
        s3: { endpoint: host.s3Endpoint!, bucket: host.bucket!, ...host.s3Credentials!, region: 'eu-central-1' },
      },
      { bytes: 64 * 1024, rounds: 1 },
    );
    expect(u.hostMs).toBeGreaterThan(0);
    expect(u.directMs).toBeGreaterThan(0);
    expect(u.rssGrowthBytes).toBeGreaterThanOrEqual(0);
    expect(u.steadyRssGrowthBytes).toBeGreaterThanOrEqual(0);
    // the host's Server-Timing phases came back and were read: the handler (decode + put) takes time
    expect(u.hostPhasesMs.handler).toBeGreaterThan(0);
    expect(u.hostPhasesMs.read).toBeGreaterThanOrEqual(0);
    expect(u.hostPhasesMs.handler).toBeLessThanOrEqual(u.hostMs);
    const res = await fetch(u.answer.link);
    expect(res.status).toBe(200);
    expect((await res.arrayBuffer()).byteLength).toBe(64 * 1024);
  });
});
