/**
 * The store is down when the host starts: the host starts anyway, /healthz is 503, every endpoint that
 * needs the store answers 503 storage_unavailable (naming no secret); when a store comes up on that
 * port, everything works without a restart.
 */
import { startEmbeddedStore, type EmbeddedStore } from '../../scripts/s3/embedded-store';
import { startHost, type StartedHost } from '../support/host';
import { api, credentials, freePort, md5, storeEnv } from './helpers';

jest.setTimeout(90_000);

let host: StartedHost;
let store: EmbeddedStore | undefined;
const creds = credentials();
let port: number;

beforeAll(async () => {
  port = await freePort();
  host = await startHost({ env: storeEnv(`http://127.0.0.1:${port}`, creds, { AWS_S3_TIMEOUT_MS: '1500' }) });
});
afterAll(async () => {
  await host?.stop();
  await store?.close();
});

test('store down: host up, /healthz 503, endpoints 503 storage_unavailable; store up: all works, no restart', async () => {
  const alice = await host.addUser('alice'); // the user store is the host's own: works without S3
  const health = await fetch(`${host.url}/healthz`);
  expect(health.status).toBe(503);

  const user = { 'x-user-key': alice.user_key };
  const admin = { 'x-api-key': host.adminKey };
  const calls: Array<[string, Record<string, string>, unknown]> = [
    ['user-upload', user, { name: 'a.txt', file: Buffer.from('a').toString('base64') }],
    ['user-upload-link', user, { name: 'a.txt' }],
    ['user-read', user, { name: 'a.txt' }],
    ['user-list', user, {}],
    ['user-delete', user, { name: 'a.txt' }],
    ['make-links', admin, { fileNames: ['a.txt'], check: true }],
    ['admin-upload-link', admin, { name: 'a.txt' }],
    ['admin-upload', admin, { name: 'a.txt', file: Buffer.from('a').toString('base64') }],
  ];
  const down: string[] = [];
  for (const [endpoint, headers, args] of calls) {
    const r = await api(host.url, endpoint, headers, args);
    down.push(`${endpoint} ${r.status} ${r.body?.code}`);
    expect(JSON.stringify(r.body)).not.toContain(creds.secretAccessKey);
    expect(r.ms).toBeLessThan(4_000);
  }
  expect(down).toEqual(calls.map(([e]) => `${e} 503 storage_unavailable`));
  // a bad argument is still a 400 while the store is down: validation comes first
  expect((await api(host.url, 'user-read', user, { name: '../x' })).status).toBe(400);

  // the store comes up on that port (the bucket does not exist yet: the host creates it)
  store = await startEmbeddedStore({ port, accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey });
  let healthy = 0;
  for (let i = 0; i < 40 && healthy !== 200; i++) {
    healthy = (await fetch(`${host.url}/healthz`)).status;
    if (healthy !== 200) await new Promise((r) => setTimeout(r, 250));
  }
  expect(healthy).toBe(200);
  const up = await api(host.url, 'user-upload', user, { name: 'back.txt', file: Buffer.from('back again').toString('base64') });
  expect([up.status, up.body.key]).toEqual([200, `${alice.id}/back.txt`]);
  const link = await api(host.url, 'user-upload-link', user, { name: 'linked.txt' });
  expect(link.status).toBe(200);
  expect((await fetch(link.body.link, { method: 'PUT', headers: link.body.headers, body: 'linked' })).status).toBe(200);
  const read = await api(host.url, 'user-read', user, { name: 'linked.txt' });
  expect(read.status).toBe(200);
  expect(md5(Buffer.from(await (await fetch(read.body.link)).arrayBuffer()))).toBe(md5('linked'));
  const list = await api(host.url, 'user-list', user, {});
  expect(list.body.files.map((f: { name: string }) => f.name)).toEqual(['back.txt', 'linked.txt']);
  expect(host.process.exitCode).toBeNull(); // never restarted
  expect(host.logs()).not.toContain(creds.secretAccessKey);
  console.log(`store down: ${calls.length} endpoints answered 503 storage_unavailable; after the store came up: upload, link PUT, read, list all 200`);
});
