// The user store's conformance suite: the same tests on SQLite (always) and PostgreSQL (when
// DATABASE_URL is set: `npm run test:postgres`). "Another host" is a second store object over the same
// database; "within 1 s" is measured, not assumed.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { keyDigest } from '../../scripts/host/admin-key';
import { hashPassword } from '../../scripts/host/passwords';
import { signIn, WrongCredentials } from '../../scripts/host/sign-in';
import {
  AdminKeyTakenError,
  InvalidAdminKeyError,
  InvalidUsernameError,
  NoSuchUserError,
  UsernameTakenError,
  UserStoreUnavailableError,
  openUserStore,
} from '../../scripts/host/users/index';
import type { UserStore } from '../../scripts/host/users/types';
import type { PostgresUserStore } from '../../scripts/host/users/postgres';
import { databaseUrl, msUntil, postgresBackend, sqliteBackend, tempDir, type Backend, type FreshDatabase } from './backends';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '..', '..');
const digestOf = keyDigest;

const backends: Backend[] = databaseUrl ? [sqliteBackend, postgresBackend] : [sqliteBackend];
if (!databaseUrl) {
  test.skip('PostgreSQL: not run, DATABASE_URL is not set (npm run test:postgres sets it)', () => {});
}

describe.each(backends)('user store on $name', (backend) => {
  let db: FreshDatabase;
  let a: UserStore;
  let b: UserStore;

  beforeEach(async () => {
    db = await backend.fresh();
    a = await db.open();
    b = await db.open();
  });
  afterEach(async () => {
    await a.close();
    await b.close();
    await db.drop();
  });

  describe('users', () => {
    test('created with increasing ids, a 40-hex key and their fields; found by the digest of the key', async () => {
      const u1 = await a.createUser('alice');
      const u2 = await a.createUser('bob');
      expect(u2.id).toBeGreaterThan(u1.id);
      expect(u1).toMatchObject({ username: 'alice', disabled: false });
      expect(u1.user_key).toMatch(/^[0-9a-f]{40}$/);
      expect(Date.parse(u1.createdAt)).toBeGreaterThan(Date.now() - 60_000);
      const found = await b.findByKeyDigest(digestOf(u1.user_key));
      expect(found).toEqual({ id: u1.id, username: 'alice', disabled: false, createdAt: u1.createdAt, updatedAt: u1.updatedAt });
      expect(await b.getUser({ id: u2.id })).toMatchObject({ username: 'bob' });
      expect(await b.getUser({ username: 'bob' })).toMatchObject({ id: u2.id });
    });

    test('a user made on one store is found at once by another (misses are never cached)', async () => {
      const digest = digestOf('not yet a key');
      expect(await b.findByKeyDigest(digest)).toBeUndefined();
      const u = await a.createUser('carol');
      expect(await b.findByKeyDigest(digestOf(u.user_key))).toMatchObject({ id: u.id });
    });

    test.each([[''], [' lead'], ['trail '], ['tab\there'], ['x'.repeat(151)], [42], [null]])(
      'username %p is refused with InvalidUsernameError and nothing is made',
      async (name) => {
        await expect(a.createUser(name as string)).rejects.toBeInstanceOf(InvalidUsernameError);
        expect(await a.listUsers()).toEqual([]);
      },
    );

    test('a taken username is UsernameTakenError, on the same or another store; nothing changes', async () => {
      const u = await a.createUser('dave');
      await expect(a.createUser('dave')).rejects.toBeInstanceOf(UsernameTakenError);
      await expect(b.createUser('dave')).rejects.toThrow('username "dave" is taken');
      expect((await b.listUsers()).map((x) => x.id)).toEqual([u.id]);
      expect(await b.findByKeyDigest(digestOf(u.user_key))).toMatchObject({ id: u.id });
    });

    test('200 users made at once from two stores get 200 distinct ids', async () => {
      const made = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).createUser(`user-${i}`)));
      expect(new Set(made.map((u) => u.id)).size).toBe(200);
      const listed = await a.listUsers();
      expect(listed).toHaveLength(200);
      expect(listed.map((u) => u.id)).toEqual([...made.map((u) => u.id)].sort((x, y) => x - y));
    });

    test('one username asked for by two stores at once: exactly one wins, 20 times', async () => {
      for (let i = 0; i < 20; i++) {
        const results = await Promise.allSettled([a.createUser(`race-${i}`), b.createUser(`race-${i}`)]);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        expect(lost.reason).toBeInstanceOf(UsernameTakenError);
      }
      expect(await a.listUsers()).toHaveLength(20);
    });

    test('unknown, malformed and non-digest keys find nobody', async () => {
      await a.createUser('erin');
      expect(await a.findByKeyDigest(digestOf('nobody'))).toBeUndefined();
      expect(await a.findByKeyDigest(Buffer.alloc(16))).toBeUndefined();
      expect(await a.findByKeyDigest('abc' as unknown as Buffer)).toBeUndefined();
      expect(await a.getUser({ id: 999_999 })).toBeUndefined();
      expect(await a.getUser({ username: 'nobody' })).toBeUndefined();
      expect(await a.getUser({ username: ' bad name' })).toBeUndefined();
      await expect(a.getUser({ id: -1 })).rejects.toBeInstanceOf(TypeError);
      await expect(a.getUser({} as { id: number })).rejects.toBeInstanceOf(TypeError);
    });

    test('listUsers pages by id; a bad limit or afterId is a RangeError', async () => {
      const made = [];
      for (let i = 0; i < 5; i++) made.push(await a.createUser(`p${i}`));
      const first = await b.listUsers({ limit: 2 });
      expect(first.map((u) => u.username)).toEqual(['p0', 'p1']);
      const next = await b.listUsers({ limit: 2, afterId: first[1].id });
      expect(next.map((u) => u.username)).toEqual(['p2', 'p3']);
      for (const bad of [0, 1001, 1.5, NaN]) await expect(b.listUsers({ limit: bad })).rejects.toBeInstanceOf(RangeError);
      await expect(b.listUsers({ afterId: -1 })).rejects.toBeInstanceOf(RangeError);
    });
  });

  describe('changes reach every store within 1 s', () => {
    test('rotate: the old key is refused by the other store within 1 s, the new one found', async () => {
      const u = await a.createUser('frank');
      expect(await b.findByKeyDigest(digestOf(u.user_key))).toBeDefined(); // b has it cached now
      const rotated = await a.rotateKey({ id: u.id });
      expect(rotated.user_key).not.toBe(u.user_key);
      expect(rotated.id).toBe(u.id);
      expect(await a.findByKeyDigest(digestOf(u.user_key))).toBeUndefined(); // at once where it was made
      const ms = await msUntil(async () => (await b.findByKeyDigest(digestOf(u.user_key))) === undefined);
      expect(ms).toBeLessThan(1000);
      expect(await b.findByKeyDigest(digestOf(rotated.user_key))).toMatchObject({ id: u.id, username: 'frank' });
      expect(await b.findByKeyDigest(digestOf(u.user_key))).toBeUndefined();
      process.stdout.write(`${backend.name}: rotated key refused by the other store after ${ms} ms\n`);
    });

    test('disable: refused by the other store within 1 s; enable: found again', async () => {
      const u = await a.createUser('grace');
      const digest = digestOf(u.user_key);
      expect(await b.findByKeyDigest(digest)).toBeDefined();
      expect(await a.setDisabled({ username: 'grace' }, true)).toMatchObject({ id: u.id, disabled: true });
      expect(await msUntil(async () => (await b.findByKeyDigest(digest)) === undefined)).toBeLessThan(1000);
      expect(await b.getUser({ id: u.id })).toMatchObject({ disabled: true });
      await a.setDisabled({ id: u.id }, false);
      expect(await b.findByKeyDigest(digest)).toMatchObject({ id: u.id, disabled: false });
      await expect(a.setDisabled({ id: u.id }, 'yes' as unknown as boolean)).rejects.toBeInstanceOf(TypeError);
      expect(await b.getUser({ id: u.id })).toMatchObject({ disabled: false });
    });

    test('delete: refused by the other store within 1 s; gone; a second delete is false', async () => {
      const u = await a.createUser('heidi');
      const keep = await a.createUser('ivan');
      const digest = digestOf(u.user_key);
      expect(await b.findByKeyDigest(digest)).toBeDefined();
      expect(await a.deleteUser({ username: 'heidi' })).toBe(true);
      expect(await msUntil(async () => (await b.findByKeyDigest(digest)) === undefined)).toBeLessThan(1000);
      expect(await b.getUser({ id: u.id })).toBeUndefined();
      expect(await b.deleteUser({ id: u.id })).toBe(false);
      expect(await b.deleteUser({ username: ' not a name' })).toBe(false);
      expect(await b.findByKeyDigest(digestOf(keep.user_key))).toMatchObject({ id: keep.id });
      // the name is free again, with a new id
      const again = await b.createUser('heidi');
      expect(again.id).not.toBe(u.id);
    });

    test('changes to a user that does not exist are NoSuchUserError', async () => {
      await expect(a.rotateKey({ id: 12345 })).rejects.toBeInstanceOf(NoSuchUserError);
      await expect(a.rotateKey({ username: 'ghost' })).rejects.toBeInstanceOf(NoSuchUserError);
      await expect(a.rotateKey({ username: '' })).rejects.toBeInstanceOf(NoSuchUserError);
      await expect(a.setDisabled({ username: 'ghost' }, true)).rejects.toBeInstanceOf(NoSuchUserError);
      await expect(a.setPasswordHash({ id: 12345 }, 'h')).rejects.toBeInstanceOf(NoSuchUserError);
      expect(await a.listUsers()).toEqual([]);
    });
  });

  describe('passwords and sign-in counters', () => {
    test('a password hash is kept as given, replaced and cleared; bad ones are TypeError', async () => {
      const u = await a.createUser('judy', { passwordHash: 'scrypt$abc$def' });
      expect(await b.passwordOf('judy')).toEqual({ user: expect.objectContaining({ id: u.id }), passwordHash: 'scrypt$abc$def' });
      await b.setPasswordHash({ id: u.id }, 'scrypt$new$hash');
      expect((await a.passwordOf('judy'))!.passwordHash).toBe('scrypt$new$hash');
      await a.setPasswordHash({ username: 'judy' }, null);
      expect((await b.passwordOf('judy'))!.passwordHash).toBeNull();
      for (const bad of ['', 'a\nb', 'x'.repeat(1025), 5]) {
        await expect(a.setPasswordHash({ id: u.id }, bad as string)).rejects.toBeInstanceOf(TypeError);
      }
      await expect(a.createUser('kim', { passwordHash: '' })).rejects.toBeInstanceOf(TypeError);
      expect(await a.getUser({ username: 'kim' })).toBeUndefined();
      expect((await b.passwordOf('judy'))!.passwordHash).toBeNull();
      expect(await b.passwordOf('nobody')).toBeUndefined();
      expect(await b.passwordOf(' bad')).toBeUndefined();
      // a user made without one has none
      await a.createUser('leo');
      expect((await a.passwordOf('leo'))!.passwordHash).toBeNull();
    });

    test('login failures count across stores and clear', async () => {
      const t = Date.now();
      expect(await a.loginFailures('u:mallory')).toEqual({ failures: 0, lastFailureAt: 0 });
      expect(await a.recordLoginFailure('u:mallory', t)).toEqual({ failures: 1, lastFailureAt: t });
      expect(await b.recordLoginFailure('u:mallory', t + 5)).toEqual({ failures: 2, lastFailureAt: t + 5 });
      // a late report never moves the last failure back
      expect(await a.recordLoginFailure('u:mallory', t + 1)).toEqual({ failures: 3, lastFailureAt: t + 5 });
      await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).recordLoginFailure('ip:10.0.0.1', t)));
      expect((await b.loginFailures('ip:10.0.0.1')).failures).toBe(20);
      await b.clearLoginFailures('u:mallory');
      expect(await a.loginFailures('u:mallory')).toEqual({ failures: 0, lastFailureAt: 0 });
      expect((await a.loginFailures('ip:10.0.0.1')).failures).toBe(20);
      // a try counted before a check that succeeded is taken back, one at a time, never below zero
      await Promise.all([a.forgiveLoginFailure('ip:10.0.0.1'), b.forgiveLoginFailure('ip:10.0.0.1')]);
      expect(await a.loginFailures('ip:10.0.0.1')).toEqual({ failures: 18, lastFailureAt: t });
      await a.forgiveLoginFailure('u:never-failed');
      expect(await a.loginFailures('u:never-failed')).toEqual({ failures: 0, lastFailureAt: 0 });
      await expect(a.forgiveLoginFailure('')).rejects.toBeInstanceOf(TypeError);
      await expect(a.recordLoginFailure('', t)).rejects.toBeInstanceOf(TypeError);
      await expect(a.recordLoginFailure('u:x', NaN)).rejects.toBeInstanceOf(TypeError);
      await expect(a.loginFailures('x'.repeat(301))).rejects.toBeInstanceOf(TypeError);
      expect(await a.loginFailures('u:x')).toEqual({ failures: 0, lastFailureAt: 0 });
    });
  });

  describe('removed users whose prefix is still swept', () => {
    test('recorded on one store, listed by another; a later time wins, an earlier one does not; forgotten on either; bad ids are TypeError', async () => {
      const t = Date.now();
      expect(await b.removals()).toEqual([]);
      await a.recordRemoval(7, t + 1000);
      await b.recordRemoval(3, t + 5000);
      expect(await b.removals()).toEqual([{ id: 3, sweepUntil: t + 5000 }, { id: 7, sweepUntil: t + 1000 }]);
      await b.recordRemoval(7, t + 9000);
      await a.recordRemoval(7, t + 2000);
      expect(await a.removals()).toEqual([{ id: 3, sweepUntil: t + 5000 }, { id: 7, sweepUntil: t + 9000 }]);
      await b.forgetRemoval(3);
      await a.forgetRemoval(99); // none: nothing happens
      expect(await a.removals()).toEqual([{ id: 7, sweepUntil: t + 9000 }]);
      await expect(a.recordRemoval(0, t)).rejects.toBeInstanceOf(TypeError);
      await expect(a.recordRemoval(5, NaN)).rejects.toBeInstanceOf(TypeError);
      await expect(a.forgetRemoval(-1)).rejects.toBeInstanceOf(TypeError);
      expect(await b.removals()).toEqual([{ id: 7, sweepUntil: t + 9000 }]);
    });
  });

  describe('usernames are NFKC', () => {
    const composed = 'Jos\u00e9';
    const decomposed = 'Jose\u0301';

    test('the decomposed twin of a user is taken, on any store; either form finds it; fullwidth is the ASCII name', async () => {
      const jose = await a.createUser(composed);
      expect(jose.username).toBe(composed);
      await expect(a.createUser(decomposed)).rejects.toBeInstanceOf(UsernameTakenError);
      await expect(b.createUser(decomposed)).rejects.toBeInstanceOf(UsernameTakenError);
      expect(await b.getUser({ username: decomposed })).toMatchObject({ id: jose.id, username: composed });
      expect((await b.passwordOf(decomposed))?.user.id).toBe(jose.id);

      // made decomposed: stored composed
      const zoe = await b.createUser('Zoe\u0308');
      expect(zoe.username).toBe('Zo\u00eb');
      await expect(a.createUser('Zo\u00eb')).rejects.toBeInstanceOf(UsernameTakenError);

      const alice = await a.createUser('\uff41\uff4c\uff49\uff43\uff45'); // ａｌｉｃｅ
      expect(alice.username).toBe('alice');
      await expect(b.createUser('alice')).rejects.toBeInstanceOf(UsernameTakenError);
      expect(await a.getUser({ username: '\uff41\uff4c\uff49\uff43\uff45' })).toMatchObject({ id: alice.id });
      expect(await a.rotateKey({ username: '\uff41\uff4c\uff49\uff43\uff45' })).toMatchObject({ id: alice.id });
      expect((await a.listUsers()).map((u) => u.username)).toEqual([composed, 'Zo\u00eb', 'alice']);
    });

    test('the rules apply to the NFKC form: a name that grows past 150 characters, or gains an outer space, is refused', async () => {
      // U+FDFA is one character, eighteen once normalised: 9 of them are 162
      await expect(a.createUser('\ufdfa'.repeat(9))).rejects.toBeInstanceOf(InvalidUsernameError);
      await expect(a.createUser('\ufdfa'.repeat(8))).resolves.toMatchObject({ username: '\ufdfa'.normalize('NFKC').repeat(8) });
      // U+00A0 (no-break space) is a space once normalised
      await expect(a.createUser('bob\u00a0')).rejects.toBeInstanceOf(InvalidUsernameError);
      expect(await a.listUsers()).toHaveLength(1);
    });

    test('a user made before names were normalised keeps its exact name, signs in with it, and holds its NFKC form taken', async () => {
      // an older host's database: no legacy_nfkc, and rows stored as typed
      await db.exec('DROP INDEX users_legacy_nfkc');
      await db.exec('ALTER TABLE users DROP COLUMN legacy_nfkc');
      // and none of the migrations since: legacy_nfkc's and removed_users' (the last two)
      await db.exec('DROP TABLE removed_users');
      await db.exec('DELETE FROM schema_migrations WHERE version >= (SELECT max(version) - 1 FROM schema_migrations)');
      const hash = await hashPassword('legacy password');
      await db.exec("INSERT INTO users (username, key_hash, password_hash, created_at, updated_at) VALUES ($1, $2, $3, '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z')", [
        decomposed,
        digestOf('legacy key'),
        hash,
      ]);
      await db.exec("INSERT INTO users (username, key_hash, created_at, updated_at) VALUES ($1, $2, '2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z')", [
        '\uff42\uff4f\uff42', // ｂｏｂ
        digestOf('legacy bob key'),
      ]);
      await a.close();
      await b.close();
      a = await db.open();
      b = await db.open();
      const legacy = await a.getUser({ username: decomposed });
      expect(legacy).toMatchObject({ username: decomposed });
      expect(await b.passwordOf(decomposed)).toEqual({ user: expect.objectContaining({ id: legacy!.id, username: decomposed }), passwordHash: hash });
      expect(await signIn(b, { username: decomposed, password: 'legacy password', address: '192.0.2.7' })).toMatchObject({ id: legacy!.id, username: decomposed });
      await expect(signIn(b, { username: decomposed, password: 'wrong password', address: '192.0.2.7' })).rejects.toBeInstanceOf(WrongCredentials);
      expect(await b.findByKeyDigest(digestOf('legacy key'))).toMatchObject({ id: legacy!.id });
      // its look-alikes are taken: nobody may pose as it
      await expect(b.createUser(composed)).rejects.toBeInstanceOf(UsernameTakenError);
      await expect(b.createUser(decomposed)).rejects.toBeInstanceOf(UsernameTakenError);
      await expect(a.createUser('bob')).rejects.toBeInstanceOf(UsernameTakenError);
      expect(await a.getUser({ username: '\uff42\uff4f\uff42' })).toMatchObject({ username: '\uff42\uff4f\uff42' });
      // changes by the exact name reach that user
      await a.setPasswordHash({ username: decomposed }, 'scrypt$new$hash');
      expect((await b.passwordOf(decomposed))!.passwordHash).toBe('scrypt$new$hash');
      expect(await a.deleteUser({ username: '\uff42\uff4f\uff42' })).toBe(true);
      expect((await a.listUsers()).map((u) => u.username)).toEqual([decomposed]);
    });
  });

  describe('a password set may end the sign-in keys', () => {
    test('endSignInKeys ends every sign-in key (but `except`) on every store within 1 s; the user key stays; without it none ends', async () => {
      const u = await a.createUser('mia', { passwordHash: 'scrypt$a$b' });
      const [k1, k2, k3] = [await a.issueSignInKey({ id: u.id }), await a.issueSignInKey({ id: u.id }), await a.issueSignInKey({ id: u.id })];
      for (const k of [k1, k2, k3, u]) expect(await b.findByKeyDigest(digestOf(k.user_key))).toMatchObject({ id: u.id });
      // a rehash at sign-in: no key ends
      expect(await a.setPasswordHash({ id: u.id }, 'scrypt$c$d')).toBe(0);
      expect(await b.findByKeyDigest(digestOf(k1.user_key))).toMatchObject({ id: u.id });
      // the user's own change: all but the caller's
      expect(await a.setPasswordHash({ id: u.id }, 'scrypt$e$f', { endSignInKeys: { except: digestOf(k1.user_key) } })).toBe(2);
      expect(await msUntil(async () => (await b.findByKeyDigest(digestOf(k2.user_key))) === undefined)).toBeLessThan(1000);
      expect(await b.findByKeyDigest(digestOf(k3.user_key))).toBeUndefined();
      expect(await b.findByKeyDigest(digestOf(k1.user_key))).toMatchObject({ id: u.id });
      // the admin's: all
      expect(await b.setPasswordHash({ username: 'mia' }, 'scrypt$g$h', { endSignInKeys: {} })).toBe(1);
      expect(await msUntil(async () => (await a.findByKeyDigest(digestOf(k1.user_key))) === undefined)).toBeLessThan(1000);
      expect(await a.findByKeyDigest(digestOf(u.user_key))).toMatchObject({ id: u.id });
      expect((await a.passwordOf('mia'))!.passwordHash).toBe('scrypt$g$h');
      // another user's keys are not touched
      const other = await a.createUser('ned');
      const theirs = await a.issueSignInKey({ id: other.id });
      expect(await a.setPasswordHash({ id: u.id }, 'scrypt$i$j', { endSignInKeys: {} })).toBe(0);
      expect(await b.findByKeyDigest(digestOf(theirs.user_key))).toMatchObject({ id: other.id });
      await expect(a.setPasswordHash({ id: u.id }, 'scrypt$k$l', { endSignInKeys: { except: Buffer.from('short') } })).rejects.toBeInstanceOf(TypeError);
      expect((await a.passwordOf('mia'))!.passwordHash).toBe('scrypt$i$j');
    });
  });

  describe('admin keys', () => {
    test('several work at once on every store; revoking one refuses it on the other within 1 s', async () => {
      await a.ensureAdminKey('operator-admin-key', 'ADMIN_KEY');
      const k2 = await a.addAdminKey('deploy');
      const k3 = await a.addAdminKey('chosen', 'a-chosen-admin-key-0123');
      expect(k2.key).toMatch(/^[0-9a-f]{48}$/);
      expect(k3.key).toBe('a-chosen-admin-key-0123');
      for (const key of ['operator-admin-key', k2.key, k3.key]) expect(await b.isAdminKeyDigest(digestOf(key))).toBe(true);
      expect(await b.isAdminKeyDigest(digestOf('not an admin key'))).toBe(false);
      expect(await b.isAdminKeyDigest(Buffer.alloc(3))).toBe(false);

      expect(await a.revokeAdminKey(k2.id)).toBe(true);
      const ms = await msUntil(async () => !(await b.isAdminKeyDigest(digestOf(k2.key))));
      expect(ms).toBeLessThan(1000);
      expect(await b.isAdminKeyDigest(digestOf(k3.key))).toBe(true);
      expect(await b.isAdminKeyDigest(digestOf('operator-admin-key'))).toBe(true);
      expect(await b.revokeAdminKey(k2.id)).toBe(false);
      expect(await b.revokeAdminKey(99_999)).toBe(false);
      await expect(b.revokeAdminKey(0)).rejects.toBeInstanceOf(TypeError);

      const listed = await b.listAdminKeys();
      expect(listed.map((k) => [k.label, k.revokedAt === null])).toEqual([
        ['ADMIN_KEY', true],
        ['deploy', false],
        ['chosen', true],
      ]);
      expect(JSON.stringify(listed)).not.toContain(k3.key);
      process.stdout.write(`${backend.name}: revoked admin key refused by the other store after ${ms} ms\n`);
    });

    test('ensureAdminKey is idempotent and never brings back a revoked key', async () => {
      await Promise.all([a.ensureAdminKey('operator-admin-key', 'ADMIN_KEY'), b.ensureAdminKey('operator-admin-key', 'ADMIN_KEY')]);
      await a.ensureAdminKey('operator-admin-key', 'ADMIN_KEY');
      const keys = await a.listAdminKeys();
      expect(keys).toHaveLength(1);
      expect(await a.revokeAdminKey(keys[0].id)).toBe(true);
      await b.ensureAdminKey('operator-admin-key', 'ADMIN_KEY'); // a host restarting with the same ADMIN_KEY
      expect(await msUntil(async () => !(await b.isAdminKeyDigest(digestOf('operator-admin-key'))))).toBeLessThan(1000);
      expect(await a.isAdminKeyDigest(digestOf('operator-admin-key'))).toBe(false);
      expect(await a.listAdminKeys()).toHaveLength(1);
      // nor by adding it again
      await expect(a.addAdminKey('again', 'operator-admin-key')).rejects.toBeInstanceOf(AdminKeyTakenError);
      expect(await b.isAdminKeyDigest(digestOf('operator-admin-key'))).toBe(false);
    });

    test('bad labels and keys are InvalidAdminKeyError, a key already known AdminKeyTakenError; nothing is added', async () => {
      await a.addAdminKey('first', 'first-admin-key-0123456');
      await expect(b.addAdminKey('dup', 'first-admin-key-0123456')).rejects.toBeInstanceOf(AdminKeyTakenError);
      await expect(a.addAdminKey('x'.repeat(101))).rejects.toBeInstanceOf(InvalidAdminKeyError);
      await expect(a.addAdminKey('line\nbreak')).rejects.toBeInstanceOf(InvalidAdminKeyError);
      await expect(a.addAdminKey(7 as unknown as string)).rejects.toBeInstanceOf(InvalidAdminKeyError);
      await expect(a.addAdminKey('short', 'short')).rejects.toBeInstanceOf(InvalidAdminKeyError);
      await expect(a.addAdminKey('spaces', 'has spaces in the key')).rejects.toBeInstanceOf(InvalidAdminKeyError);
      await expect(a.ensureAdminKey('', 'empty')).rejects.toBeInstanceOf(InvalidAdminKeyError);
      expect((await a.listAdminKeys()).map((k) => k.label)).toEqual(['first']);
    });

    test('keys are stored hashed: no user or admin key appears in the database in clear', async () => {
      const u = await a.createUser('nina');
      const rotated = await a.rotateKey({ id: u.id });
      const admin = await a.addAdminKey('ops');
      await a.ensureAdminKey('operator-admin-key-in-clear', 'ADMIN_KEY');
      await a.close();
      await b.close();
      const bytes = await db.contents();
      expect(bytes.length).toBeGreaterThan(1000);
      // the digest is there (so the search does look at the data), the keys are not
      expect(bytes.includes(digestOf(rotated.user_key))).toBe(true);
      for (const key of [u.user_key, rotated.user_key, admin.key, 'operator-admin-key-in-clear']) {
        expect(bytes.includes(Buffer.from(key))).toBe(false);
      }
      a = await db.open();
      b = await db.open();
    });
  });

  describe('migrations', () => {
    test('opening again and again changes nothing; the data stays', async () => {
      const u = await a.createUser('olga');
      await a.addAdminKey('k');
      for (let i = 0; i < 3; i++) {
        const again = await db.open();
        expect(await again.findByKeyDigest(digestOf(u.user_key))).toMatchObject({ id: u.id });
        expect(await again.listAdminKeys()).toHaveLength(1);
        await again.close();
      }
      expect(await a.listUsers()).toHaveLength(1);
    });

    test('10 processes opening a fresh database at once: each migrates safely and makes its user', async () => {
      const fresh = await backend.fresh();
      try {
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            run(process.execPath, ['--import', 'tsx', path.join(__dirname, 'open-store.ts'), `proc-${i}`], {
              cwd: ROOT,
              env: { ...process.env, ...fresh.env },
              timeout: 60_000,
            }),
          ),
        );
        const ids = results.map((r) => (JSON.parse(r.stdout) as { id: number }).id);
        expect(new Set(ids).size).toBe(10);
        const store = await fresh.open();
        expect((await store.listUsers()).map((u) => u.username).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `proc-${i}`).sort());
        await store.close();
      } finally {
        await fresh.drop();
      }
    });
  });
});

describe('SQLite: a users.sqlite made before #14 carries over', () => {
  test('its users keep their ids, names and keys; new users follow; the new tables work', async () => {
    const dir = tempDir();
    try {
      // the schema and rows exactly as the host before #14 made them
      const old = new Database(path.join(dir, 'users.sqlite'));
      old.pragma('journal_mode = WAL');
      old.exec(`CREATE TABLE IF NOT EXISTS users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        username TEXT NOT NULL UNIQUE,
        key_hash BLOB NOT NULL UNIQUE,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
      )`);
      const insert = old.prepare('INSERT INTO users (username, key_hash) VALUES (?, ?)');
      insert.run('old-alice', keyDigest('old-alice-key-0000000000000000000000000'));
      insert.run('old-bob', keyDigest('old-bob-key-00000000000000000000000000000'));
      old.prepare('DELETE FROM users WHERE username = ?').run('old-bob'); // AUTOINCREMENT: id 2 is never given again
      const createdAt = (old.prepare('SELECT created_at FROM users WHERE id = 1').get() as { created_at: string }).created_at;
      old.close();

      const store = await openUserStore({ dataDir: dir });
      const found = await store.findByKeyDigest(keyDigest('old-alice-key-0000000000000000000000000'));
      expect(found).toEqual({ id: 1, username: 'old-alice', disabled: false, createdAt, updatedAt: createdAt });
      expect(await store.findByKeyDigest(keyDigest('old-bob-key-00000000000000000000000000000'))).toBeUndefined();
      const next = await store.createUser('new-carol');
      expect(next.id).toBe(3);
      await expect(store.createUser('old-alice')).rejects.toBeInstanceOf(UsernameTakenError);
      const rotated = await store.rotateKey({ username: 'old-alice' });
      expect(await store.findByKeyDigest(keyDigest(rotated.user_key))).toMatchObject({ id: 1 });
      expect(await store.findByKeyDigest(keyDigest('old-alice-key-0000000000000000000000000'))).toBeUndefined();
      await store.addAdminKey('after-migration');
      expect(await store.recordLoginFailure('u:old-alice', 1)).toEqual({ failures: 1, lastFailureAt: 1 });
      await store.close();

      const check = new Database(path.join(dir, 'users.sqlite'), { readonly: true });
      const versions = check.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[];
      check.close();
      expect(versions.map((v) => v.version)).toEqual([1, 2, 3, 4, 5]); // 3: sign_in_keys (#16), 4: legacy_nfkc, 5: removed_users
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a users.sqlite that is not a database: UserStoreUnavailableError, the file left as it was', async () => {
    const dir = tempDir();
    try {
      fs.writeFileSync(path.join(dir, 'users.sqlite'), 'this is not a database file, it is text'.repeat(100));
      await expect(openUserStore({ dataDir: dir })).rejects.toBeInstanceOf(UserStoreUnavailableError);
      expect(fs.readFileSync(path.join(dir, 'users.sqlite'), 'utf8')).toContain('this is not a database file');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

const pgDescribe = databaseUrl && process.env.PG_CTL ? describe : describe.skip;
pgDescribe('PostgreSQL stopped and started again (needs DATABASE_URL and PG_CTL: npm run test:postgres)', () => {
  const pgCtl = (...args: string[]) => run(process.env.PG_CTL!, args, { timeout: 90_000 });

  test('while stopped, calls reject with UserStoreUnavailableError within a bound; after, the same store works and invalidates again', async () => {
    const db = await postgresBackend.fresh();
    const a = (await db.open()) as PostgresUserStore;
    const b = (await db.open()) as PostgresUserStore;
    try {
      const u = await a.createUser('before');
      expect(await b.findByKeyDigest(digestOf(u.user_key))).toBeDefined();
      expect(a.listening && b.listening).toBe(true);

      await pgCtl('stop', '-m', 'fast');
      const password = decodeURIComponent(new URL(databaseUrl!).password);
      const calls: [string, () => Promise<unknown>][] = [
        ['findByKeyDigest (cached user)', () => b.findByKeyDigest(digestOf(u.user_key))],
        ['findByKeyDigest (unknown)', () => b.findByKeyDigest(digestOf('someone else'))],
        ['isAdminKeyDigest', () => b.isAdminKeyDigest(digestOf('some admin key'))],
        ['createUser', () => a.createUser('during')],
        ['rotateKey', () => a.rotateKey({ id: u.id })],
        ['listUsers', () => a.listUsers()],
        ['recordLoginFailure', () => a.recordLoginFailure('u:before', Date.now())],
      ];
      // a cached user is refused too once the counter cannot be read (at most 750 ms later)
      await new Promise((r) => setTimeout(r, 800));
      for (const [name, call] of calls) {
        const t0 = Date.now();
        const err = await call().then(
          () => new Error(`${name} answered while PostgreSQL was stopped`),
          (e: unknown) => e,
        );
        const ms = Date.now() - t0;
        expect([name, err]).toEqual([name, expect.any(UserStoreUnavailableError)]);
        expect((err as Error).message).not.toContain(password);
        expect((err as Error).message).not.toContain('postgres://aws');
        expect(ms).toBeLessThan(5_000);
      }
      expect(b.listening).toBe(false);

      await pgCtl('start');
      // the pool reconnects on the next call; the listener reconnects with backoff (at most 5 s)
      expect(await b.findByKeyDigest(digestOf(u.user_key))).toMatchObject({ id: u.id });
      const relistened = await msUntil(async () => a.listening && b.listening, 15_000);
      expect(relistened).toBeLessThan(15_000);
      const rotated = await a.rotateKey({ id: u.id });
      expect(await msUntil(async () => (await b.findByKeyDigest(digestOf(u.user_key))) === undefined)).toBeLessThan(1000);
      expect(await b.findByKeyDigest(digestOf(rotated.user_key))).toMatchObject({ id: u.id });
      expect(await a.listUsers()).toHaveLength(1);
    } finally {
      await a.close();
      await b.close();
      await db.drop().catch(() => {});
    }
  }, 120_000);

  test('a change whose announcement never arrives (a half-open listener) is still refused within 1 s: the counter check', async () => {
    const db = await postgresBackend.fresh();
    const a = await db.open();
    const b = (await db.open()) as PostgresUserStore;
    const { Client } = await import('pg');
    const c = new Client({ connectionString: db.env.DATABASE_URL });
    try {
      const u = await a.createUser('unheard');
      expect(await b.findByKeyDigest(digestOf(u.user_key))).toBeDefined();
      expect(b.listening).toBe(true);
      // a rotation as the store makes it, less the NOTIFY
      await c.connect();
      await c.query("BEGIN; UPDATE users SET key_hash = sha256('other'::bytea) WHERE id = " + u.id + '; UPDATE change_counter SET value = value + 1; COMMIT');
      const ms = await msUntil(async () => (await b.findByKeyDigest(digestOf(u.user_key))) === undefined);
      expect(ms).toBeLessThan(1000);
      process.stdout.write(`PostgreSQL: an unannounced change reached the other store's cache after ${ms} ms\n`);
    } finally {
      await c.end().catch(() => {});
      await a.close();
      await b.close();
      await db.drop();
    }
  });
});
