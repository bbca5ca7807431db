// `npm run users -- …`, spawned as an operator runs it, over a real SQLite store in a temp DATA_DIR;
// what it does is checked through the store itself (a second opener, as a host would be).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { keyDigest } from '../../scripts/host/admin-key';
import { openUserStore } from '../../scripts/host/users/index';
import { msUntil, tempDir } from './backends';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'scripts', 'host', 'users-cli.ts');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

function cli(dataDir: string, ...args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, ...args],
      { cwd: ROOT, env: { ...process.env, DATA_DIR: dataDir, DATABASE_URL: '' }, timeout: 60_000 },
      (err, stdout, stderr) => {
        let json: unknown;
        try {
          json = JSON.parse(stdout);
        } catch {
          json = undefined;
        }
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr, json });
      },
    );
  });
}

let dir: string;
beforeEach(() => {
  dir = tempDir('users-cli-');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('add, list, show, rotate, disable, enable, delete: JSON answers, and the store agrees', async () => {
  const added = await cli(dir, 'add', 'alice');
  expect(added).toMatchObject({ code: 0, stderr: '' });
  expect(added.json).toEqual({ id: 1, username: 'alice', user_key: expect.stringMatching(/^[0-9a-f]{40}$/) });
  const store = await openUserStore({ dataDir: dir });
  try {
    expect(await store.findByKeyDigest(keyDigest(added.json.user_key))).toMatchObject({ id: 1 });

    expect((await cli(dir, 'add', 'bob')).json).toMatchObject({ id: 2, username: 'bob' });
    const listed = await cli(dir, 'list');
    expect(listed.json.map((u: { username: string }) => u.username)).toEqual(['alice', 'bob']);
    expect(listed.stdout).not.toContain(added.json.user_key);
    expect((await cli(dir, 'show', 'bob')).json).toMatchObject({ id: 2, username: 'bob' });
    expect((await cli(dir, 'show', '1')).json).toMatchObject({ id: 1, username: 'alice' });

    const rotated = await cli(dir, 'rotate', 'alice');
    expect(rotated.json).toEqual({ id: 1, username: 'alice', user_key: expect.stringMatching(/^[0-9a-f]{40}$/) });
    expect(rotated.json.user_key).not.toBe(added.json.user_key);
    expect(await store.findByKeyDigest(keyDigest(rotated.json.user_key))).toMatchObject({ id: 1 });
    // another process changed it: refused here within the 1 s rule (the cache reads the change counter every 250 ms)
    const refused = (key: string) => msUntil(async () => (await store.findByKeyDigest(keyDigest(key))) === undefined);
    expect(await refused(added.json.user_key)).toBeLessThan(1000);

    expect((await cli(dir, 'disable', '1')).json).toMatchObject({ id: 1, disabled: true });
    expect(await refused(rotated.json.user_key)).toBeLessThan(1000);
    expect((await cli(dir, 'enable', 'alice')).json).toMatchObject({ id: 1, disabled: false });
    expect(await store.findByKeyDigest(keyDigest(rotated.json.user_key))).toMatchObject({ id: 1 });

    expect((await cli(dir, 'delete', 'bob')).json).toEqual({ deleted: true, id: 2, username: 'bob', filesKept: true });
    expect(await store.getUser({ id: 2 })).toBeUndefined();
  } finally {
    await store.close();
  }
});

test('admin keys: add with a label, list (no keys shown), revoke', async () => {
  const added = await cli(dir, 'admin-keys', 'add', 'deploy');
  expect(added.json).toMatchObject({ id: 1, label: 'deploy', revokedAt: null, key: expect.stringMatching(/^[0-9a-f]{48}$/) });
  const unlabelled = await cli(dir, 'admin-keys', 'add');
  expect(unlabelled.json).toMatchObject({ id: 2, label: '' });
  const listed = await cli(dir, 'admin-keys', 'list');
  expect(listed.json).toEqual([
    expect.objectContaining({ id: 1, label: 'deploy', revokedAt: null }),
    expect.objectContaining({ id: 2, label: '', revokedAt: null }),
  ]);
  expect(listed.stdout).not.toContain(added.json.key);
  expect((await cli(dir, 'admin-keys', 'revoke', '1')).json).toEqual({ revoked: true, id: 1 });
  const store = await openUserStore({ dataDir: dir });
  try {
    expect(await store.isAdminKeyDigest(keyDigest(added.json.key))).toBe(false);
    expect(await store.isAdminKeyDigest(keyDigest(unlabelled.json.key))).toBe(true);
  } finally {
    await store.close();
  }
});

test('conflicts and unknown users or keys exit 1 with a clear line on stderr, and change nothing', async () => {
  await cli(dir, 'add', 'carol');
  const taken = await cli(dir, 'add', 'carol');
  expect(taken).toMatchObject({ code: 1, stdout: '' });
  expect(taken.stderr).toMatch(/^conflict: username "carol" is taken/);
  const missing = [['show', 'nobody'], ['rotate', '99'], ['disable', 'nobody'], ['delete', '99'], ['admin-keys', 'revoke', '5']];
  const answers = await Promise.all(missing.map((args) => cli(dir, ...args)));
  answers.forEach((r, i) => {
    expect([missing[i], r.code, r.stdout]).toEqual([missing[i], 1, '']);
    expect(r.stderr).toMatch(/^not found: /);
  });
  expect((await cli(dir, 'list')).json.map((u: { username: string }) => u.username)).toEqual(['carol']);
});

test('usage errors and bad arguments exit 2, before the store is even opened', async () => {
  const fresh = path.join(dir, 'never-made');
  const wrong = [[], ['bogus'], ['add'], ['add', 'a', 'b'], ['add', ' spaced'], ['show'], ['list', 'extra'], ['admin-keys'], ['admin-keys', 'revoke', 'abc'], ['admin-keys', 'add', 'a', 'b'], ['toString']];
  const answers = await Promise.all(wrong.map((args) => cli(fresh, ...args)));
  answers.forEach((r, i) => {
    expect([wrong[i], r.code, r.stdout]).toEqual([wrong[i], 2, '']);
    expect(r.stderr).toMatch(/usage|bad argument/);
  });
  expect(fs.existsSync(fresh)).toBe(false);
  const badLabel = await cli(dir, 'admin-keys', 'add', 'x'.repeat(101));
  expect(badLabel).toMatchObject({ code: 2, stdout: '' });
  expect(badLabel.stderr).toMatch(/^bad argument: an admin key's label/);
});

test('a store that cannot be opened exits 3 and says why', async () => {
  fs.writeFileSync(path.join(dir, 'users.sqlite'), 'not a database '.repeat(100));
  const r = await cli(dir, 'list');
  expect(r).toMatchObject({ code: 3, stdout: '' });
  expect(r.stderr).toMatch(/^unavailable: user store \(SQLite\) unavailable/);
});
