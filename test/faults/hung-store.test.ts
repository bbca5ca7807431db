/**
 * A store that stops answering (accepts connections, never replies): calls that need it answer 503
 * within AWS_S3_TIMEOUT_MS (1500 ms here; asserted < 4 s), while the host keeps serving everything
 * else at once; when the store answers again, so does everything, without a restart.
 */
import { startEmbeddedStore, type EmbeddedStore } from '../../scripts/s3/embedded-store';
import { startHost, type StartedHost } from '../support/host';
import { api, credentials, switchableProxy, storeEnv } from './helpers';

jest.setTimeout(90_000);

let host: StartedHost;
let store: EmbeddedStore;
let proxy: Awaited<ReturnType<typeof switchableProxy>>;
const creds = credentials();

beforeAll(async () => {
  store = await startEmbeddedStore({ accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, buckets: [creds.bucket] });
  proxy = await switchableProxy({ host: '127.0.0.1', port: store.port });
  host = await startHost({ env: storeEnv(proxy.endpoint, creds, { AWS_S3_TIMEOUT_MS: '1500' }) });
});
afterAll(async () => {
  await host?.stop();
  await proxy?.close();
  await store?.close();
});

test('a hung store: 503 within the timeout, other calls served meanwhile, recovery without restart', async () => {
  const alice = await host.addUser('alice');
  const user = { 'x-user-key': alice.user_key };
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  expect((await api(host.url, 'user-upload', user, { name: 'before.txt', file: b64('before') })).status).toBe(200);

  proxy.set('hang');
  // calls that need the store, all at once
  const needStore = [
    api(host.url, 'user-upload', user, { name: 'hung.txt', file: b64('hung') }),
    api(host.url, 'user-read', user, { name: 'before.txt' }),
    api(host.url, 'user-list', user, {}),
    api(host.url, 'user-delete', user, { name: 'before.txt' }),
    api(host.url, 'make-links', { 'x-api-key': host.adminKey }, { fileNames: ['x'], check: true }),
    api(host.url, 'admin-upload', { 'x-api-key': host.adminKey }, { name: 'hung-admin.txt', file: b64('x') }),
  ];
  // meanwhile: calls that do not need the store answer at once
  await new Promise((r) => setTimeout(r, 200));
  const t0 = Date.now();
  const fast = await Promise.all([
    api(host.url, 'user-read', user, { name: '../x' }), // 400
    api(host.url, 'user-read', { 'x-user-key': 'nope' }, { name: 'x' }), // 401
    api(host.url, 'make-links', user, { fileNames: ['x'] }), // 403
    fetch(`${host.url}/v2/instances/local/users/`, { method: 'POST', headers: { 'x-api-key': host.adminKey, 'content-type': 'application/json' }, body: JSON.stringify({ username: 'bob' }) }).then((r) => ({ status: r.status, ms: Date.now() - t0 })),
  ]);
  expect(fast.map((r) => r.status)).toEqual([400, 401, 403, 201]);
  for (const r of fast) expect(r.ms).toBeLessThan(1_000);
  const health = fetch(`${host.url}/healthz`).then((r) => ({ status: r.status, ms: Date.now() - t0 }));

  const slow = await Promise.all(needStore);
  expect(slow.map((r) => `${r.status} ${r.body?.code}`)).toEqual(slow.map(() => '503 storage_unavailable'));
  for (const r of slow) expect(r.ms).toBeLessThan(4_000);
  const h = await health;
  expect(h.status).toBe(503);
  expect(h.ms).toBeLessThan(4_000);

  proxy.set('pass');
  const back = await api(host.url, 'user-upload', user, { name: 'after.txt', file: b64('after') });
  expect(back.status).toBe(200);
  const list = await api(host.url, 'user-list', user, {});
  expect(list.body.files.map((f: { name: string }) => f.name)).toEqual(['after.txt', 'before.txt']);
  expect((await fetch(`${host.url}/healthz`)).status).toBe(200);
  expect(host.process.exitCode).toBeNull();
  console.log(`hung store: ${slow.length} calls 503 in ${Math.min(...slow.map((r) => r.ms))}-${Math.max(...slow.map((r) => r.ms))} ms (timeout 1500 ms); ${fast.length} other calls in <= ${Math.max(...fast.map((r) => r.ms))} ms meanwhile; /healthz 503 in ${h.ms} ms`);
});
