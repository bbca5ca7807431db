/**
 * The host keeps no storage state of its own: two hosts on different ports over one bucket and one
 * DATA_DIR serve the same users and files (on the embedded store run separately, or on Ceph RGW), and
 * a key changed through one (rotated, disabled, revoked) is refused by the other within 1 s.
 */
import { startHost, tempDir, type StartedHost } from '../support/host';
import { useStore, type TestStore } from '../support/store';
import { admin, msUntil, uploadLink } from './admin-support';

let store: TestStore;
let a: StartedHost;
let b: StartedHost;

beforeAll(async () => {
  store = await useStore();
  const dataDir = tempDir();
  const env = {
    ...store.config,
    ADMIN_KEY: 'two-hosts-admin-key-0123456789',
  };
  a = await startHost({ env, dataDir });
  b = await startHost({ env, dataDir });
});

afterAll(async () => {
  expect(await a.stop()).toBe(0);
  expect(await b.stop()).toBe(0);
  await store.close();
});

const post = async (host: StartedHost, endpoint: string, userKey: string, args: object) => {
  const res = await fetch(`${host.url}/aws-storage/${endpoint}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user-key': userKey },
    body: JSON.stringify(args),
  });
  return { status: res.status, body: await res.json() };
};

test('a file uploaded through one host is read and listed through the other', async () => {
  expect(a.url).not.toBe(b.url);
  expect(a.s3Endpoint).toBe(store.endpoint);
  const user = await a.addUser('shared-user');

  const link = await post(a, 'user-upload-link', user.user_key, { name: 'via-a.txt', contentType: 'text/plain' });
  expect(link.status).toBe(200);
  expect((await fetch(link.body.link, { method: 'PUT', headers: link.body.headers, body: 'uploaded through A' })).status).toBe(200);
  const up = await post(a, 'user-upload', user.user_key, { name: 'b64-via-a.txt', file: Buffer.from('base64 through A').toString('base64') });
  expect(up.status).toBe(200);

  const read = await post(b, 'user-read', user.user_key, { name: 'via-a.txt' });
  expect(read.status).toBe(200);
  expect(await (await fetch(read.body.link)).text()).toBe('uploaded through A');
  const list = await post(b, 'user-list', user.user_key, {});
  expect(list.body.files.map((f: { name: string }) => f.name).sort()).toEqual(['b64-via-a.txt', 'via-a.txt']);
  expect(await store.keys()).toEqual([`${user.id}/b64-via-a.txt`, `${user.id}/via-a.txt`]);
});

test('a user created on one host is known to the other', async () => {
  const user = await b.addUser('made-on-b');
  const res = await post(a, 'user-list', user.user_key, {});
  expect(res).toEqual({ status: 200, body: { files: [], cursor: null } });
});

/** How long the other host keeps taking a key after a change; printed, and held to the 1 s bound. */
const refusedWithin = async (probe: () => Promise<number>, what: string) => {
  const ms = await msUntil(probe, 401);
  console.log(`two hosts, one DATA_DIR: ${what} refused on the other host after ${ms === null ? 'never' : ms.toFixed(0) + ' ms'}`);
  expect(ms).not.toBeNull();
  expect(ms!).toBeLessThanOrEqual(1_000);
};

test('a key rotated on A: refused at once on A, within 1 s on B; the new key works on both', async () => {
  const user = await a.addUser('rotated');
  expect((await uploadLink(b, user.user_key)).status).toBe(200); // B has it cached
  const rotated = await admin(a, 'POST', `users/${user.id}/reset_key/`);
  expect(rotated.status).toBe(200);
  expect((await uploadLink(a, user.user_key)).status).toBe(401);
  await refusedWithin(async () => (await uploadLink(b, user.user_key)).status, 'a rotated key');
  expect((await uploadLink(a, rotated.body.user_key)).status).toBe(200);
  expect((await uploadLink(b, rotated.body.user_key)).status).toBe(200);
});

test('a user disabled on B is refused on A within 1 s; deleted on A, refused on B', async () => {
  const user = await b.addUser('disabled-one');
  expect((await uploadLink(a, user.user_key)).status).toBe(200);
  expect((await admin(b, 'PATCH', `users/${user.id}/`, { disabled: true })).status).toBe(200);
  await refusedWithin(async () => (await uploadLink(a, user.user_key)).status, 'a disabled user');
  expect((await admin(b, 'PATCH', `users/${user.id}/`, { disabled: false })).status).toBe(200);
  expect(await msUntil(async () => (await uploadLink(a, user.user_key)).status, 200)).not.toBeNull();
  expect((await admin(a, 'DELETE', `users/${user.id}/`)).status).toBe(200);
  await refusedWithin(async () => (await uploadLink(b, user.user_key)).status, 'a deleted user');
});

test('an admin key added on A works on B; revoked on B, refused on A within 1 s', async () => {
  const added = await admin(a, 'POST', 'api_keys/', { description: 'moved callers' });
  expect(added.status).toBe(201);
  const key = added.body.api_key as string;
  expect((await admin(b, 'GET', 'users/?limit=1', undefined, key)).status).toBe(200);
  expect((await admin(a, 'GET', 'users/?limit=1', undefined, key)).status).toBe(200);
  expect((await admin(b, 'DELETE', `api_keys/${added.body.id}/`)).status).toBe(200);
  await refusedWithin(async () => (await admin(a, 'GET', 'users/?limit=1', undefined, key)).status, 'a revoked admin key');
});
