/**
 * SIGTERM to the host while uploads are in flight (their bodies half sent): the host stops taking new
 * connections (once no new one has come for 300 ms), the uploads in flight finish with 200 and are
 * whole in the store, the host exits 0.
 */
import crypto from 'node:crypto';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { startEmbeddedStore, type EmbeddedStore } from '../../scripts/s3/embedded-store';
import { startHost, type StartedHost } from '../support/host';
import { credentials, md5, s3Client, slowPost, storeEnv } from './helpers';

jest.setTimeout(90_000);

let host: StartedHost;
let store: EmbeddedStore;
const creds = credentials();

beforeAll(async () => {
  store = await startEmbeddedStore({ accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, buckets: [creds.bucket] });
  host = await startHost({ env: storeEnv(store.endpoint, creds) });
});
afterAll(async () => {
  await host?.stop('SIGKILL');
  await store?.close();
});

test('SIGTERM during uploads: the uploads in flight finish, the host exits 0', async () => {
  const alice = await host.addUser('alice');
  const files = Array.from({ length: 6 }, (_, i) => ({ name: `term/${i}.bin`, bytes: crypto.randomBytes(300_000 + i) }));
  const uploads = files.map((f) => {
    const body = Buffer.from(JSON.stringify({ name: f.name, file: f.bytes.toString('base64') }));
    return slowPost(`${host.url}/aws-storage/user-upload/`, { 'content-type': 'application/json', 'x-user-key': alice.user_key }, body, { first: 100_000, chunk: 50_000, delayMs: 30 });
  });
  await Promise.all(uploads.map((u) => u.sentFirst));
  await new Promise((r) => setTimeout(r, 200)); // the host has the first bytes of every upload

  const exit = new Promise<number | null>((r) => host.process.once('exit', (code) => r(code)));
  host.process.kill('SIGTERM');
  // While stopping the host keeps accepting until no connection has come for 300 ms (a connection made
  // just before the stop is served, not reset); a second later it takes no new connections.
  await new Promise((r) => setTimeout(r, 1_000));
  const late = await fetch(`${host.url}/healthz`).then((r) => r.status, () => 0);
  uploads.forEach((u) => u.release());
  const answers = await Promise.all(uploads.map((u) => u.done));
  const code = await Promise.race([exit, new Promise<string>((r) => setTimeout(() => r('still running after 25 s'), 25_000).unref())]);

  console.log(`SIGTERM: ${answers.filter((a) => a.status === 200).length}/${answers.length} uploads in flight finished 200; a new request got ${late || 'connection refused'}; exit code ${code}`);
  expect(answers.map((a) => a.status)).toEqual(files.map(() => 200));
  expect(late).toBe(0);
  expect(code).toBe(0);
  expect(host.logs()).toMatch(/SIGTERM: finishing requests in flight[\s\S]*stopped/);

  const s3 = s3Client(store.endpoint, creds);
  for (const f of files) {
    const out = await s3.send(new GetObjectCommand({ Bucket: creds.bucket, Key: `${alice.id}/${f.name}` }));
    expect(md5(Buffer.from(await out.Body!.transformToByteArray()))).toBe(md5(f.bytes));
  }
  s3.destroy();
});
