/**
 * Two hosts with separate DATA_DIRs (nothing shared on disk) over one PostgreSQL and one bucket (Ceph
 * RGW under test:postgres): users, keys and admin keys made or changed on one are seen by the other,
 * a change within 1 s (measured, printed, held to the bound); ids and usernames stay unique when both
 * create at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type StartedHost } from '../support/host';
import { useStore, type TestStore } from '../support/store';
import { admin, msUntil, upload, uploadLink } from '../host/admin-support';
import { describeWithPostgres, freshDatabase, twoHosts } from './support';

jest.setTimeout(180_000);

let store: TestStore;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let a: StartedHost;
let b: StartedHost;

describeWithPostgres('two hosts, one PostgreSQL, separate DATA_DIRs', () => {
  beforeAll(async () => {
    store = await useStore();
    db = await freshDatabase();
    [a, b] = await twoHosts(db.url, store);
  });

  afterAll(async () => {
    const codes = await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
    await store?.close();
    expect(codes).toEqual([0, 0]);
  });

  /** Polls until the host refuses (401); asserts it took at most 1 s after the change answered. */
  const refusedWithin1s = async (probe: () => Promise<number>, what: string) => {
    const ms = await msUntil(probe, 401);
    console.log(`PostgreSQL, two hosts: ${what} refused on the other host after ${ms === null ? 'never (3 s)' : ms.toFixed(0) + ' ms'}`);
    expect(ms).not.toBeNull();
    expect(ms!).toBeLessThanOrEqual(1_000);
  };

  test('each host says it uses PostgreSQL (no password printed) and keeps no user file in its DATA_DIR', async () => {
    for (const h of [a, b]) {
      expect(h.logs()).toMatch(/aws-storage users: PostgreSQL at postgres:\/\/aws_storage@127\.0\.0\.1:\d+\/hosts_test_/);
      expect(h.logs()).not.toContain(db.password);
      expect(fs.existsSync(path.join(h.dataDir, 'users.sqlite'))).toBe(false);
      expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    }
    expect(a.dataDir).not.toBe(b.dataDir);
  });

  test('a user made on A works on B: uploaded through A, read through B', async () => {
    const user = await a.addUser('made-on-a');
    const link = await uploadLink(a, user.user_key, 'via-a.txt');
    expect(link.status).toBe(200);
    expect((await fetch(link.body.link, { method: 'PUT', headers: link.body.headers, body: 'uploaded through A' })).status).toBe(200);
    const read = await fetch(`${b.url}/aws-storage/user-read/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-key': user.user_key },
      body: JSON.stringify({ name: 'via-a.txt' }),
    });
    expect(read.status).toBe(200);
    expect(await (await fetch((await read.json()).link)).text()).toBe('uploaded through A');
  });

  test('a key rotated on B is refused on A within 1 s; the new key works on both', async () => {
    const user = await a.addUser('rotated-on-b');
    expect((await uploadLink(a, user.user_key)).status).toBe(200); // A has it cached
    const rotated = await admin(b, 'POST', `users/${user.id}/reset_key/`);
    expect(rotated.status).toBe(200);
    expect((await uploadLink(b, user.user_key)).status).toBe(401);
    await refusedWithin1s(async () => (await uploadLink(a, user.user_key)).status, 'a key rotated');
    expect((await uploadLink(a, rotated.body.user_key)).status).toBe(200);
    expect((await uploadLink(b, rotated.body.user_key)).status).toBe(200);
  });

  test('a disabled user is refused on both hosts', async () => {
    const user = await b.addUser('disabled-on-a');
    expect((await uploadLink(a, user.user_key)).status).toBe(200);
    expect((await uploadLink(b, user.user_key)).status).toBe(200);
    expect((await admin(a, 'PATCH', `users/${user.id}/`, { disabled: true })).body.disabled).toBe(true);
    expect((await uploadLink(a, user.user_key)).status).toBe(401);
    await refusedWithin1s(async () => (await uploadLink(b, user.user_key)).status, 'a user disabled');
    expect((await admin(b, 'GET', `users/${user.id}/`)).body.disabled).toBe(true);
  });

  test('deleted on A with remove_files: its objects are gone from the bucket, another user\'s stay; refused on B', async () => {
    const gone = await a.addUser('deleted-with-files');
    const stays = await b.addUser('keeps-files');
    for (const n of ['one.txt', 'dir/two.txt', 'dir/three.txt']) await upload(b, gone.user_key, n, n);
    await upload(a, stays.user_key, 'mine.txt', 'mine');
    expect((await uploadLink(b, gone.user_key)).status).toBe(200);
    const del = await admin(a, 'DELETE', `users/${gone.id}/?remove_files=true`);
    expect(del).toMatchObject({ status: 200, body: { deleted: true, files: { kept: false, removed: 3, errors: [] } } });
    expect([...del.body.files.names].sort()).toEqual(['dir/three.txt', 'dir/two.txt', 'one.txt']);
    const keys = await store.keys();
    expect(keys.filter((k) => k.startsWith(`${gone.id}/`))).toEqual([]);
    expect(keys).toContain(`${stays.id}/mine.txt`);
    await refusedWithin1s(async () => (await uploadLink(b, gone.user_key)).status, 'a user deleted');
    expect((await admin(b, 'GET', `users/${gone.id}/`)).status).toBe(404);
  });

  test('200 concurrent creations split over both hosts: 200 distinct ids and usernames, every key works', async () => {
    const names = Array.from({ length: 200 }, (_, i) => `burst-${i}`);
    const made = await Promise.all(names.map((n, i) => (i % 2 ? b : a).addUser(n)));
    expect(new Set(made.map((u) => u.id)).size).toBe(200);
    expect(new Set(made.map((u) => u.username)).size).toBe(200);
    expect(new Set(made.map((u) => u.user_key)).size).toBe(200);
    // each key on the host that did not make it
    const statuses = await Promise.all(made.map((u, i) => uploadLink(i % 2 ? a : b, u.user_key).then((r) => r.status)));
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // and the same name asked of both hosts at once: one 201, one 409
    const twice = await Promise.all(
      Array.from({ length: 20 }, (_, i) => `twice-${i}`).map(async (n) =>
        (await Promise.all([a, b].map((h) => admin(h, 'POST', 'users/', { username: n })))).map((r) => r.status).sort(),
      ),
    );
    expect(twice.filter((s) => s.join() !== '201,409')).toEqual([]);
  });

  test('an admin key added on A works on B; revoked on B it is refused on A within 1 s', async () => {
    const added = await admin(a, 'POST', 'api_keys/', { description: 'rotation' });
    expect(added.status).toBe(201);
    const key = added.body.api_key as string;
    expect((await admin(b, 'GET', 'users/?limit=1', undefined, key)).status).toBe(200);
    expect((await admin(a, 'GET', 'users/?limit=1', undefined, key)).status).toBe(200);
    const listed = await admin(b, 'GET', 'api_keys/');
    expect(listed.body.objects.map((k: { id: number }) => k.id)).toContain(added.body.id);
    expect((await admin(b, 'DELETE', `api_keys/${added.body.id}/`)).status).toBe(200);
    expect((await admin(b, 'GET', 'users/?limit=1', undefined, key)).status).toBe(401);
    await refusedWithin1s(async () => (await admin(a, 'GET', 'users/?limit=1', undefined, key)).status, 'an admin key revoked');
    // the start key (ADMIN_KEY, ensured by both hosts) is one key, not two
    expect(listed.body.objects.filter((k: { description: string }) => k.description === 'ADMIN_KEY')).toHaveLength(1);
  });
});
