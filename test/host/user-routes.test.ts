/**
 * The admin routes for users and admin keys (SQLite in DATA_DIR; the real socket over the embedded
 * store, or Ceph RGW under test:rgw): list and look up, rotate (reset_key), disable, delete with and
 * without the user's files, admin keys added and revoked; every refusal clear and changing nothing.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { callEndpoint, startHost, type StartedHost } from '../support/host';
import { useStore, type TestStore } from '../support/store';
import { admin, upload, uploadLink } from './admin-support';

jest.setTimeout(120_000);

let store: TestStore;
let host: StartedHost;
type Made = { id: number; username: string; user_key: string };
const made: Made[] = [];

beforeAll(async () => {
  store = await useStore();
  host = await startHost({ env: store.config });
  // ids 1..12: user 1 and users 10..12 share the digit "1" (their prefixes "1/" and "1x/" must stay apart)
  for (let i = 1; i <= 12; i++) made.push(await host.addUser(`user-${i}`));
});

afterAll(async () => {
  if (host) expect(await host.stop()).toBe(0);
  await store?.close();
});

const user = (id: number) => made[id - 1];

describe('list and look up', () => {
  test('pages by ?limit and ?after, ascending ids, next until null; no key in any view', async () => {
    const seen: number[] = [];
    let route: string | null = 'users/?limit=5';
    for (let page = 0; route && page < 10; page++) {
      const a = await admin(host, 'GET', route);
      expect(a.status).toBe(200);
      expect(a.body.objects.length).toBeLessThanOrEqual(5);
      seen.push(...a.body.objects.map((u: { id: number }) => u.id));
      route = a.body.next ? a.body.next.replace('/v2/instances/local/', '') : null;
    }
    expect(seen.slice(0, 12)).toEqual(made.map((u) => u.id));
    const all = await admin(host, 'GET', 'users/?limit=1000');
    expect([all.status, all.body.objects.length, all.body.next]).toEqual([200, 12, null]);
    const one = await admin(host, 'GET', 'users/3/');
    expect(one).toMatchObject({ status: 200, body: { id: 3, username: 'user-3', disabled: false, created_at: expect.any(String), updated_at: expect.any(String) } });
    expect(one.text).not.toContain(user(3).user_key);
    expect(one.body.user_key).toBeUndefined();
  });

  test('bad paging, bad ids, unknown ids, unknown arguments: 400 / 404 with the reason', async () => {
    for (const q of ['limit=0', 'limit=1001', 'limit=x', 'after=-1', 'after=1.5', 'page=2']) {
      const a = await admin(host, 'GET', `users/?${q}`);
      expect([q, a.status, a.body.code]).toEqual([q, 400, 'invalid_argument']);
    }
    expect(await admin(host, 'GET', 'users/abc/')).toMatchObject({ status: 400, body: { code: 'invalid_argument' } });
    expect(await admin(host, 'GET', 'users/0/')).toMatchObject({ status: 400, body: { code: 'invalid_argument' } });
    expect(await admin(host, 'GET', 'users/99999/')).toMatchObject({ status: 404, body: { code: 'not_found' } });
    expect(await admin(host, 'GET', 'users/1/nope/')).toMatchObject({ status: 404 });
    expect(await admin(host, 'PUT', 'users/1/')).toMatchObject({ status: 405 });
  });

  test('preflight names the methods of each route', async () => {
    const res = await fetch(`${host.url}/v2/instances/local/users/1/`, { method: 'OPTIONS' });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, PATCH, DELETE, OPTIONS');
  });
});

describe('who may call', () => {
  test('no key or a user key: 403; an unknown admin key: 401; nothing changes', async () => {
    for (const [method, route, body] of [
      ['GET', 'users/', undefined],
      ['PATCH', 'users/2/', { disabled: true }],
      ['POST', 'users/2/reset_key/', undefined],
      ['DELETE', 'users/2/?remove_files=true', undefined],
      ['POST', 'api_keys/', {}],
      ['DELETE', 'api_keys/1/', undefined],
    ] as const) {
      expect((await admin(host, method, route, body, null)).status).toBe(403);
      expect((await admin(host, method, route, body, { userKey: user(2).user_key })).status).toBe(403);
      // a user key sent as an admin key is an unknown admin key
      expect((await admin(host, method, route, body, user(2).user_key)).status).toBe(401);
      expect((await admin(host, method, route, body, 'not-an-admin-key-0123456789')).status).toBe(401);
    }
    expect((await uploadLink(host, user(2).user_key)).status).toBe(200);
    expect((await admin(host, 'GET', 'users/2/')).body.disabled).toBe(false);
  });
});

describe('rotate (reset_key)', () => {
  test('a new key; the old one refused at once on this host', async () => {
    const old = user(4).user_key;
    expect((await uploadLink(host, old)).status).toBe(200); // cached as found
    const a = await admin(host, 'POST', 'users/4/reset_key/');
    expect(a).toMatchObject({ status: 200, body: { id: 4, username: 'user-4', user_key: expect.stringMatching(/^[0-9a-f]{40}$/) } });
    expect(a.body.user_key).not.toBe(old);
    expect(await uploadLink(host, old)).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
    expect((await uploadLink(host, a.body.user_key)).status).toBe(200);
    made[3] = a.body;
  });

  test('unknown user 404, an argument 400: the key keeps working', async () => {
    expect(await admin(host, 'POST', 'users/99999/reset_key/')).toMatchObject({ status: 404, body: { code: 'not_found' } });
    // a user_key argument is a key (unknown here), not a wish for one
    expect(await admin(host, 'POST', 'users/5/reset_key/', { user_key: 'mine' })).toMatchObject({ status: 401 });
    expect(await admin(host, 'POST', 'users/5/reset_key/', { key: 'mine' })).toMatchObject({ status: 400, body: { code: 'invalid_argument' } });
    expect((await uploadLink(host, user(5).user_key)).status).toBe(200);
  });
});

describe('disable', () => {
  test('disabled: the key refused at once; enabled again: it works', async () => {
    const key = user(6).user_key;
    expect((await uploadLink(host, key)).status).toBe(200);
    expect(await admin(host, 'PATCH', 'users/6/', { disabled: true })).toMatchObject({ status: 200, body: { id: 6, disabled: true } });
    expect((await uploadLink(host, key)).status).toBe(401);
    expect((await admin(host, 'GET', 'users/6/')).body.disabled).toBe(true);
    expect(await admin(host, 'PATCH', 'users/6/', { disabled: false })).toMatchObject({ status: 200, body: { disabled: false } });
    expect((await uploadLink(host, key)).status).toBe(200);
  });

  test('a bad patch is 400 and changes nothing', async () => {
    for (const body of [{}, { disabled: 'yes' }, { disabled: 1 }, { disabled: true, username: 'renamed' }, { username: 'renamed' }]) {
      const a = await admin(host, 'PATCH', 'users/7/', body);
      expect([JSON.stringify(body), a.status, a.body.code]).toEqual([JSON.stringify(body), 400, 'invalid_argument']);
    }
    expect((await admin(host, 'GET', 'users/7/')).body).toMatchObject({ username: 'user-7', disabled: false });
    expect((await uploadLink(host, user(7).user_key)).status).toBe(200);
    expect(await admin(host, 'PATCH', 'users/99999/', { disabled: true })).toMatchObject({ status: 404 });
  });
});

describe('delete', () => {
  test('by default the files stay; the user and its key are gone', async () => {
    await upload(host, user(8).user_key, 'kept.txt', 'kept');
    const a = await admin(host, 'DELETE', 'users/8/');
    expect(a).toEqual(expect.objectContaining({ status: 200, body: { id: 8, username: 'user-8', deleted: true, files: { kept: true } } }));
    expect((await uploadLink(host, user(8).user_key)).status).toBe(401);
    expect((await admin(host, 'GET', 'users/8/')).status).toBe(404);
    expect(await admin(host, 'DELETE', 'users/8/')).toMatchObject({ status: 404 });
    expect(await store.keys()).toContain('8/kept.txt');
  });

  test('remove_files=true removes every file of the user (over two pages) and no one else\'s', async () => {
    const victim = user(1);
    await upload(host, victim.user_key, 'a/first.txt', 'one');
    // 1004 more put straight into the bucket: user-list pages are 1000 names
    const names = Array.from({ length: 1004 }, (_, i) => `bulk/f${String(i).padStart(4, '0')}`);
    for (let i = 0; i < names.length; i += 32) {
      await Promise.all(names.slice(i, i + 32).map((n) => store.client.send(new PutObjectCommand({ Bucket: store.bucket, Key: `1/${n}`, Body: 'x' }))));
    }
    for (const u of [user(10), user(11), user(12)]) await upload(host, u.user_key, 'mine.txt', String(u.id));
    await upload(host, user(2).user_key, '1/looks-like-a-prefix.txt', 'two');

    const a = await admin(host, 'DELETE', 'users/1/?remove_files=true');
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ id: 1, username: 'user-1', deleted: true, files: { kept: false, removed: 1005, names_truncated: true, errors: [] } });
    expect(a.body.files.names).toHaveLength(1000);
    expect(a.body.files.names).toContain('a/first.txt');
    const keys = await store.keys();
    expect(keys.filter((k) => k.startsWith('1/'))).toEqual([]);
    expect(keys).toEqual(expect.arrayContaining(['10/mine.txt', '11/mine.txt', '12/mine.txt', '2/1/looks-like-a-prefix.txt']));
    expect((await uploadLink(host, victim.user_key)).status).toBe(401);
    expect((await admin(host, 'GET', 'users/1/')).status).toBe(404);
  });

  test('remove_files=true aborts the user\'s unfinished uploads: a part link given out before writes nothing after; others\' uploads stay', async () => {
    const leaving = await host.addUser('leaving-with-an-upload');
    const staying = await host.addUser('staying-with-an-upload');
    const start = (u: { user_key: string }) => callEndpoint(host, 'user-multipart-start', { name: 'big.bin', size: 6 * 1024 * 1024 }, u);
    const mine = await start(leaving);
    const theirs = await start(staying);
    expect([mine.status, theirs.status]).toEqual([200, 200]);
    const partLink: string = mine.body.parts[0].link;

    const a = await admin(host, 'DELETE', `users/${leaving.id}/?remove_files=true`);
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ deleted: true, files: { kept: false, uploads_aborted: 1 } });
    const put = await fetch(partLink, { method: 'PUT', body: Buffer.alloc(mine.body.parts[0].size, 1) });
    expect(put.status).toBe(404); // NoSuchUpload
    const left = await callEndpoint(host, 'admin-multipart-uploads', { prefix: '' });
    const keys = (left.body.uploads as Array<{ key: string }>).map((u) => u.key);
    expect(keys).not.toContain(`${leaving.id}/big.bin`);
    expect(keys).toContain(`${staying.id}/big.bin`);
  });

  test('remove_files that is not true/false: 400, the user and its files stay', async () => {
    await upload(host, user(9).user_key, 'stays.txt', 'stays');
    for (const q of ['remove_files=yes', 'remove_files=1', 'purge=true']) {
      expect(await admin(host, 'DELETE', `users/9/?${q}`)).toMatchObject({ status: 400, body: { code: 'invalid_argument' } });
    }
    expect((await uploadLink(host, user(9).user_key)).status).toBe(200);
    expect(await store.keys()).toContain('9/stays.txt');
    const a = await admin(host, 'DELETE', 'users/9/', { remove_files: true });
    expect(a.body).toMatchObject({ deleted: true, files: { removed: 1, names: ['stays.txt'] } });
    expect(await store.keys()).not.toContain('9/stays.txt');
  });
});

describe('admin keys', () => {
  test('the start key is listed; a new one works at once, revoked it is 401 at once', async () => {
    const list = await admin(host, 'GET', 'api_keys/');
    expect(list.status).toBe(200);
    expect(list.body.objects).toEqual([expect.objectContaining({ id: expect.any(Number), revoked_at: null })]);
    expect(list.text).not.toContain(host.adminKey);

    const added = await admin(host, 'POST', 'api_keys/', { description: 'deploy bot' });
    expect(added).toMatchObject({ status: 201, body: { id: expect.any(Number), api_key: expect.any(String), description: 'deploy bot' } });
    const key = added.body.api_key as string;
    expect((await admin(host, 'GET', 'users/2/', undefined, key)).status).toBe(200);
    expect(await admin(host, 'GET', `api_keys/${added.body.id}/`)).toMatchObject({ status: 200, body: { description: 'deploy bot', revoked_at: null } });
    expect((await admin(host, 'GET', 'api_keys/')).text).not.toContain(key);

    // a key may revoke itself while another works
    const revoked = await admin(host, 'DELETE', `api_keys/${added.body.id}/`, undefined, key);
    expect(revoked).toMatchObject({ status: 200, body: { id: added.body.id, revoked_at: expect.any(String) } });
    expect(await admin(host, 'GET', 'users/2/', undefined, key)).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
    expect(await admin(host, 'DELETE', `api_keys/${added.body.id}/`)).toMatchObject({ status: 409, body: { code: 'conflict' } });
    // a revoked admin key is not a user key either
    expect((await uploadLink(host, key)).status).toBe(401);
  });

  test('the last working key cannot be revoked; unknown 404; bad description 400', async () => {
    const start = (await admin(host, 'GET', 'api_keys/')).body.objects.find((k: { revoked_at: string | null }) => k.revoked_at === null);
    expect(await admin(host, 'DELETE', `api_keys/${start.id}/`)).toMatchObject({ status: 409, body: { code: 'conflict' } });
    expect((await admin(host, 'GET', 'users/2/')).status).toBe(200);
    expect(await admin(host, 'DELETE', 'api_keys/99999/')).toMatchObject({ status: 404, body: { code: 'not_found' } });
    const before = (await admin(host, 'GET', 'api_keys/')).body.objects.length;
    for (const body of [{ description: 'x'.repeat(101) }, { description: 'tab\there' }, { description: 5 }, { label: 'x' }, { key: 'chosen-key-0123456789' }]) {
      const a = await admin(host, 'POST', 'api_keys/', body);
      expect([JSON.stringify(body), a.status]).toEqual([JSON.stringify(body), 400]);
    }
    expect((await admin(host, 'GET', 'api_keys/')).body.objects.length).toBe(before);
  });

  test('an admin key sent as a user key is refused with the reason', async () => {
    expect(await uploadLink(host, host.adminKey)).toMatchObject({ status: 401, body: { message: expect.stringMatching(/not a user key/) } });
  });
});
