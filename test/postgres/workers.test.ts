/**
 * HOST_WORKERS=2 with DATABASE_URL: each worker opens its own store (its own pool, LISTEN connection
 * and cache), so a key rotated through one worker is refused by every worker within 1 s, and the
 * primary ensures the admin key once before the workers start.
 */
import { startHost, tempDir, type StartedHost } from '../support/host';
import { useStore, type TestStore } from '../support/store';
import { admin, uploadLink } from '../host/admin-support';
import { ADMIN_KEY, describeWithPostgres, freshDatabase } from './support';

jest.setTimeout(180_000);

let store: TestStore;
let db: Awaited<ReturnType<typeof freshDatabase>>;
let host: StartedHost;

/** user-upload-link over a new connection each time: the primary hands connections to workers in turn. */
const freshCall = async (key: string) =>
  (await fetch(`${host.url}/aws-storage/user-upload-link/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user-key': key, connection: 'close' },
    body: JSON.stringify({ name: 'w.txt' }),
  })).status;

describeWithPostgres('HOST_WORKERS=2 over PostgreSQL', () => {
  beforeAll(async () => {
    store = await useStore();
    db = await freshDatabase();
    host = await startHost({ env: { ...store.config, DATABASE_URL: db.url, ADMIN_KEY, HOST_WORKERS: '2' }, dataDir: tempDir(), timeoutMs: 60_000 });
  });

  afterAll(async () => {
    const code = await host?.stop();
    await db?.drop();
    await store?.close();
    expect(code).toBe(0);
  });

  test('one admin key, PostgreSQL named once by the primary; a rotation refused by every worker within 1 s', async () => {
    expect(host.logs()).toMatch(/aws-storage users: PostgreSQL at postgres:\/\/aws_storage@127\.0\.0\.1:\d+\/hosts_test_/);
    expect(host.logs()).not.toContain(db.password);
    expect((await admin(host, 'GET', 'api_keys/')).body.objects).toHaveLength(1);

    const user = await host.addUser('worker-rotated');
    // both workers have found (and cached) the key
    const before = await Promise.all(Array.from({ length: 6 }, () => freshCall(user.user_key)));
    expect(before).toEqual(before.map(() => 200));
    expect((await admin(host, 'POST', `users/${user.id}/reset_key/`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1_000));
    const after = await Promise.all(Array.from({ length: 6 }, () => freshCall(user.user_key)));
    expect(after).toEqual(after.map(() => 401));
  });

  test('an unknown key is 401 on every worker while the store answers (503 is only for a store that does not)', async () => {
    const statuses = await Promise.all(Array.from({ length: 4 }, () => uploadLink(host, 'e'.repeat(40)).then((r) => r.status)));
    expect(statuses).toEqual([401, 401, 401, 401]);
  });
});
