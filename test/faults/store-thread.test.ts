/**
 * The embedded store's thread, should it die, is started again on the same port with the same key
 * pair and files; meanwhile the port does not answer (what /healthz reports as 503).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { storeClient } from '../../scripts/s3/client';
import { startEmbeddedStoreThread, type StoreThread } from '../../scripts/s3/store-worker';

let dir: string;
let store: StoreThread;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-thread-'));
  store = await startEmbeddedStoreThread({ dataDir: dir, buckets: ['thread-bucket'] });
});
afterAll(async () => {
  await store?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a dead store thread comes back on the same port, with the same key pair and objects', async () => {
  const s3 = storeClient(store, { maxAttempts: 1 });
  try {
    await s3.send(new CreateBucketCommand({ Bucket: 'thread-bucket-2' })).catch(() => undefined);
    await s3.send(new PutObjectCommand({ Bucket: 'thread-bucket', Key: 'kept.txt', Body: 'still here' }));
    const before = store.thread();
    expect(before).toBeDefined();
    await before!.terminate(); // as a crash would end it

    // meanwhile the port refuses connections
    await expect(fetch(`${store.endpoint}/`)).rejects.toThrow();

    const deadline = Date.now() + 15_000;
    while (store.restarts() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(store.restarts()).toBe(1);
    expect(store.thread()).not.toBe(before);
    const got = await s3.send(new GetObjectCommand({ Bucket: 'thread-bucket', Key: 'kept.txt' }));
    expect(await got.Body!.transformToString()).toBe('still here');
  } finally {
    s3.destroy();
  }
});
