/**
 * startEmbeddedStore(): options, browser CORS on every bucket, restart on the same port and
 * data directory, quick close.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import http from 'http';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutBucketCorsCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { startEmbeddedStore, type EmbeddedStore } from '../../scripts/s3/embedded-store';
import { clientFor, getText } from './helpers';

const tmpDirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'store-test-'));
  tmpDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('options', () => {
  test('defaults: 127.0.0.1, random port, a random key pair per start (never a constant), own temp dir removed on close', async () => {
    const store = await startEmbeddedStore();
    const other = await startEmbeddedStore();
    try {
      expect(store.accessKeyId).toMatch(/^[A-Z0-9]{20}$/);
      expect(store.secretAccessKey).toMatch(/^[A-Za-z0-9]{40}$/);
      expect(other.accessKeyId).not.toBe(store.accessKeyId);
      expect(other.secretAccessKey).not.toBe(store.secretAccessKey);
      expect(store.accessKeyId).not.toBe('S3RVER');
      expect(store.port).toBeGreaterThan(0);
      expect(store.endpoint).toBe(`http://127.0.0.1:${store.port}`);
      expect(store.region).toBe('eu-central-1');
      expect(fs.statSync(store.dataDir).isDirectory()).toBe(true);
    } finally {
      await store.close();
      await other.close();
    }
    expect(fs.existsSync(store.dataDir)).toBe(false);
    await store.close(); // idempotent
  });

  test('buckets given at start exist; a given dataDir is kept on close', async () => {
    const dataDir = tmpDir();
    const store = await startEmbeddedStore({ dataDir, buckets: ['start-one', 'start-two'] });
    const s3 = clientFor(store);
    try {
      await s3.send(new PutObjectCommand({ Bucket: 'start-two', Key: 'k', Body: 'v' }));
      expect(await getText(s3, 'start-two', 'k')).toBe('v');
      const res = await s3.send(new ListObjectsV2Command({ Bucket: 'start-one' }));
      expect(res.KeyCount).toBe(0);
    } finally {
      s3.destroy();
      await store.close();
    }
    expect(fs.existsSync(path.join(dataDir, 'start-two'))).toBe(true);
  });

  test('custom credentials: only that key pair is accepted', async () => {
    const store = await startEmbeddedStore({ accessKeyId: 'CUSTOMKEY', secretAccessKey: 'custom-secret', buckets: ['cred-bucket'] });
    const good = clientFor(store);
    const defaults = clientFor(store, { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
    try {
      expect(store.accessKeyId).toBe('CUSTOMKEY');
      await good.send(new PutObjectCommand({ Bucket: 'cred-bucket', Key: 'k', Body: 'v' }));
      await expect(getText(defaults, 'cred-bucket', 'k')).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
      // another store in the same process still has its own key pair
      const other = await startEmbeddedStore({ buckets: ['cred-bucket'] });
      const otherClient = clientFor(other);
      try {
        await otherClient.send(new PutObjectCommand({ Bucket: 'cred-bucket', Key: 'k', Body: 'w' }));
        await expect(
          clientFor(other, { accessKeyId: 'CUSTOMKEY', secretAccessKey: 'custom-secret' }).send(
            new GetObjectCommand({ Bucket: 'cred-bucket', Key: 'k' }),
          ),
        ).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
      } finally {
        otherClient.destroy();
        await other.close();
      }
      expect(await getText(good, 'cred-bucket', 'k')).toBe('v');
    } finally {
      good.destroy();
      defaults.destroy();
      await store.close();
    }
  });
});

describe('browser CORS', () => {
  let store: EmbeddedStore;
  beforeAll(async () => {
    store = await startEmbeddedStore({ buckets: ['configured-at-start'] });
    const s3 = clientFor(store);
    await s3.send(new CreateBucketCommand({ Bucket: 'created-later' }));
    await s3.send(new PutObjectCommand({ Bucket: 'created-later', Key: 'doc.txt', Body: 'doc' }));
    await s3.send(new CreateBucketCommand({ Bucket: 'strict-cors' }));
    await s3.send(
      new PutBucketCorsCommand({
        Bucket: 'strict-cors',
        CORSConfiguration: { CORSRules: [{ AllowedOrigins: ['https://only.example'], AllowedMethods: ['GET'] }] },
      }),
    );
    s3.destroy();
  });
  afterAll(() => store?.close());

  function preflight(p: string, method: string, origin = 'https://app.example', headers = 'content-type') {
    return fetch(store.endpoint + p, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': headers },
    });
  }

  test.each([
    ['/created-later/some/key.txt', 'PUT'],
    ['/created-later', 'POST'],
    ['/created-later/doc.txt', 'GET'],
    ['/created-later/doc.txt', 'HEAD'],
    ['/configured-at-start/x', 'PUT'],
  ])('preflight %s %s is answered without credentials', async (p, method) => {
    const res = await preflight(p, method, 'https://app.example', 'content-type,x-amz-meta-a');
    expect(res.status).toBe(200);
    await res.text();
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')?.split(/,\s*/)).toEqual(
      expect.arrayContaining(['GET', 'PUT', 'POST', 'HEAD']),
    );
    expect(res.headers.get('access-control-allow-headers')).toMatch(/content-type/);
    expect(res.headers.get('access-control-allow-headers')).toMatch(/x-amz-meta-a/);
  });

  test('a DELETE preflight is not allowed by the default rule', async () => {
    const res = await preflight('/created-later/doc.txt', 'DELETE');
    expect(res.status).toBe(403);
    await res.text();
  });

  test('a presigned GET from a browser origin carries CORS headers exposing ETag', async () => {
    const s3 = clientFor(store);
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'created-later', Key: 'doc.txt' }), { expiresIn: 60 });
    s3.destroy();
    const res = await fetch(url, { headers: { Origin: 'https://app.example' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('doc');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-expose-headers')).toMatch(/ETag/i);
  });

  test('an unsigned request from a browser is still refused (CORS is not auth)', async () => {
    const res = await fetch(`${store.endpoint}/created-later/doc.txt`, { headers: { Origin: 'https://app.example' } });
    expect(res.status).toBe(403);
    expect(await res.text()).not.toContain('doc<');
  });

  test('a bucket with its own CORS configuration keeps it', async () => {
    const denied = await preflight('/strict-cors/x', 'GET', 'https://app.example', '');
    expect(denied.status).toBe(403);
    await denied.text();
    const allowed = await fetch(`${store.endpoint}/strict-cors/x`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://only.example', 'Access-Control-Request-Method': 'GET' },
    });
    expect(allowed.status).toBe(200);
    await allowed.text();
  });

  test('no preflight answer for a bucket that does not exist', async () => {
    const res = await preflight('/no-such-bucket/x', 'PUT');
    expect(res.status).toBe(403);
    await res.text();
  });
});

describe('restart', () => {
  test('close() then start on the same port and dataDir serves the same objects', async () => {
    const dataDir = tmpDir();
    const first = await startEmbeddedStore({ dataDir });
    const port = first.port;
    let s3 = clientFor(first);
    await s3.send(new CreateBucketCommand({ Bucket: 'durable' }));
    for (let i = 0; i < 20; i++) {
      await s3.send(new PutObjectCommand({ Bucket: 'durable', Key: `k/${i} é`, Body: `v${i}`, ContentType: 'text/plain' }));
    }
    s3.destroy();
    await first.close();
    await expect(fetch(first.endpoint)).rejects.toThrow();

    const second = await startEmbeddedStore({ port, dataDir });
    s3 = clientFor(second);
    try {
      expect(second.port).toBe(port);
      expect(second.endpoint).toBe(first.endpoint);
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'durable' }));
      expect(listed.KeyCount).toBe(20);
      const got = await s3.send(new GetObjectCommand({ Bucket: 'durable', Key: 'k/7 é' }));
      expect(got.ContentType).toBe('text/plain');
      expect(await got.Body!.transformToString()).toBe('v7');
      // CORS still answered for the bucket created before the restart
      const pre = await fetch(`${second.endpoint}/durable/k`, {
        method: 'OPTIONS',
        headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'PUT' },
      });
      expect(pre.status).toBe(200);
      await pre.text();
    } finally {
      s3.destroy();
      await second.close();
    }
    expect(fs.existsSync(dataDir)).toBe(true);
  });

  test('close() is quick even with a keep-alive connection and a request in flight', async () => {
    const store = await startEmbeddedStore({ buckets: ['slow'] });
    const agent = new http.Agent({ keepAlive: true });
    // an upload that never finishes its body
    const req = http.request(`${store.endpoint}/slow/never`, { method: 'PUT', agent, headers: { 'Content-Length': '1000000' } });
    req.on('error', () => undefined);
    req.write('partial');
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await store.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    agent.destroy();
    // and the port is free again
    const again = await startEmbeddedStore({ port: store.port });
    expect(again.port).toBe(store.port);
    await again.close();
  });

  test('starting on a port in use fails with an error instead of hanging', async () => {
    const store = await startEmbeddedStore();
    try {
      await expect(startEmbeddedStore({ port: store.port })).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await store.close();
    }
  });
});
