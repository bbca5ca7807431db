/**
 * The host keeps no storage state of its own: two hosts on different ports over one bucket and one
 * DATA_DIR serve the same users and files (on the embedded store run separately, or on Ceph RGW).
 */
import { startHost, tempDir, type StartedHost } from '../support/host';
import { useStore, type TestStore } from '../support/store';

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
