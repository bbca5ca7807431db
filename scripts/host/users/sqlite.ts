// The user store in SQLite (DATA_DIR/users.sqlite, WAL): the embedded default. Several hosts sharing a
// DATA_DIR see one another's changes through the change counter (cache.ts), read at most every 250 ms.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { digestsEqual, keyDigest } from '../admin-key';
import { adminKey, FoundCache, MAX_CACHED, userKey } from './cache';
import {
  checkBucket,
  checkChosenAdminKey,
  checkEndSignInKeys,
  checkId,
  checkLabel,
  checkListOptions,
  checkOperatorAdminKey,
  checkPasswordHash,
  checkTime,
  checkUsername,
  isDigest,
  legacyNormalForm,
  newAdminKey,
  newUserKey,
  refColumn,
} from './rules';
import {
  AdminKeyInfo,
  AdminKeyTakenError,
  LoginFailures,
  MAX_SIGN_IN_KEYS,
  NewAdminKey,
  NewUser,
  NoSuchUserError,
  Removal,
  SetPasswordOptions,
  User,
  UserRef,
  UsernameTakenError,
  UserStore,
  UserStoreUnavailableError,
} from './types';

/** How stale a cached answer may be before the change counter is read again (the rule is 1 s). */
export const SQLITE_CHECK_MS = 250;

/**
 * Migrations, applied in order, each once (schema_migrations). 1 is the schema hosts made before #14, so a
 * users.sqlite from then carries over: its users and their keys keep working.
 */
const MIGRATIONS: string[] = [
  `CREATE TABLE IF NOT EXISTS users (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     username TEXT NOT NULL UNIQUE,
     key_hash BLOB NOT NULL UNIQUE,
     created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
   )`,
  `ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE users ADD COLUMN password_hash TEXT;
   ALTER TABLE users ADD COLUMN updated_at TEXT;
   UPDATE users SET updated_at = created_at;
   CREATE TABLE admin_keys (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     label TEXT NOT NULL,
     key_hash BLOB NOT NULL UNIQUE,
     created_at TEXT NOT NULL,
     revoked_at TEXT
   );
   CREATE TABLE login_failures (
     bucket TEXT PRIMARY KEY,
     failures INTEGER NOT NULL,
     last_failure_at INTEGER NOT NULL
   );
   CREATE TABLE change_counter (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
   INSERT INTO change_counter (id, value) VALUES (1, 0);`,
  // #16: a key per signed-in device, beside the user's own key
  `CREATE TABLE sign_in_keys (
     key_hash BLOB PRIMARY KEY,
     user_id INTEGER NOT NULL,
     created_at TEXT NOT NULL
   );
   CREATE INDEX sign_in_keys_user ON sign_in_keys (user_id, created_at);`,
  // usernames are NFKC from now on; a row made before keeps its name, and holds its NFKC form taken
  // (filled in by backfillLegacyNames: SQLite has no NFKC of its own)
  `ALTER TABLE users ADD COLUMN legacy_nfkc TEXT;
   CREATE INDEX users_legacy_nfkc ON users (legacy_nfkc) WHERE legacy_nfkc IS NOT NULL;`,
  // users removed with their files, whose prefix is swept again while their old links may still write
  `CREATE TABLE removed_users (id INTEGER PRIMARY KEY, sweep_until INTEGER NOT NULL);`,
];
const LEGACY_NAMES_MIGRATION = 4;

interface UserRow {
  id: number;
  username: string;
  disabled: number;
  created_at: string;
  updated_at: string | null;
}
const USER_COLUMNS = 'id, username, disabled, created_at, updated_at';

function toUser(row: UserRow): User {
  return Object.freeze({
    id: row.id,
    username: row.username,
    disabled: row.disabled !== 0,
    createdAt: row.created_at,
    updatedAt: row.updated_at ?? row.created_at,
  });
}

function toAdminKey(row: { id: number; label: string; created_at: string; revoked_at: string | null }): AdminKeyInfo {
  return { id: row.id, label: row.label, createdAt: row.created_at, revokedAt: row.revoked_at };
}

/** SQLite's errors that mean "cannot reach or use the file now", not "your input is wrong". */
const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|CORRUPT|NOTADB|PROTOCOL|NOMEM|PERM)/;

function unavailable(err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && UNAVAILABLE.test(code)) {
    return new UserStoreUnavailableError(`user store (SQLite) unavailable: ${code}`, { cause: err });
  }
  return err;
}

export class SqliteUserStore implements UserStore {
  readonly kind = 'sqlite';
  private readonly db: Database.Database;
  private readonly cache = new FoundCache<User | true>(MAX_CACHED);
  private lastCheckAt = 0;

  constructor(dataDir: string) {
    fs.mkdirSync(dataDir, { recursive: true });
    try {
      this.db = new Database(path.join(dataDir, 'users.sqlite'));
      // first, so that every statement below waits for another opener instead of failing
      this.db.pragma('busy_timeout = 5000');
      this.db.pragma('journal_mode = WAL');
      this.migrate();
    } catch (err) {
      throw unavailable(err);
    }
  }

  private readonly statements = new Map<string, Database.Statement>();

  /** A prepared statement, made once per text. */
  private sql(text: string): Database.Statement {
    let st = this.statements.get(text);
    if (!st) {
      st = this.db.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  private migrate(): void {
    // IMMEDIATE: several hosts opening one file at once apply each migration once, in turn
    this.db
      .transaction(() => {
        this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
        const row = this.sql('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
        for (let v = (row.v ?? 0) + 1; v <= MIGRATIONS.length; v++) {
          this.db.exec(MIGRATIONS[v - 1]);
          if (v === LEGACY_NAMES_MIGRATION) this.backfillLegacyNames();
          this.sql('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(v, new Date().toISOString());
        }
      })
      .immediate();
  }

  /** Each stored name not in NFKC form gets its NFKC form in legacy_nfkc (only non-ASCII names can be such). */
  private backfillLegacyNames(): void {
    const rows = this.sql("SELECT id, username FROM users WHERE username GLOB '*[^ -~]*'").all() as { id: number; username: string }[];
    for (const row of rows) {
      const normal = legacyNormalForm(row.username);
      if (normal !== null) this.sql('UPDATE users SET legacy_nfkc = ? WHERE id = ?').run(normal, row.id);
    }
  }

  /** Runs a database step, turning "cannot use the file" into UserStoreUnavailableError. */
  private run<T>(step: () => T): Promise<T> {
    if (!this.db.open) return Promise.reject(new UserStoreUnavailableError('user store closed'));
    try {
      return Promise.resolve(step());
    } catch (err) {
      return Promise.reject(unavailable(err));
    }
  }

  /** A change: its writes and the counter bump in one transaction; this store's cache drops at once. */
  private change<T>(work: () => T | undefined): T | undefined {
    const result = this.db
      .transaction(() => {
        const done = work();
        if (done !== undefined) this.sql('UPDATE change_counter SET value = value + 1 WHERE id = 1').run();
        return done;
      })
      .immediate();
    if (result !== undefined) this.checkChanges(true);
    return result;
  }

  private checkChanges(now = false): void {
    const t = Date.now();
    if (!now && t - this.lastCheckAt < SQLITE_CHECK_MS) return;
    this.lastCheckAt = t;
    this.cache.observe((this.sql('SELECT value FROM change_counter WHERE id = 1').get() as { value: number }).value);
  }

  private userWhere(ref: UserRef): UserRow | undefined {
    const { column, values } = refColumn(ref);
    for (const value of values) {
      const row = this.sql(`SELECT ${USER_COLUMNS} FROM users WHERE ${column} = ?`).get(value) as UserRow | undefined;
      if (row) return row;
    }
    return undefined;
  }

  private mustFind(ref: UserRef): UserRow {
    const row = this.userWhere(ref);
    if (!row) throw new NoSuchUserError('no such user');
    return row;
  }

  createUser(username: string, opts: { passwordHash?: string } = {}): Promise<NewUser> {
    return this.run(() => {
      const name = checkUsername(username);
      const passwordHash = opts.passwordHash === undefined ? null : checkPasswordHash(opts.passwordHash);
      const user_key = newUserKey();
      const now = new Date().toISOString();
      try {
        // a row made before names were normalised holds its NFKC form taken: the check and the insert in one statement
        const r = this
          .sql(
            `INSERT INTO users (username, key_hash, password_hash, created_at, updated_at)
             SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM users WHERE legacy_nfkc = ?)`,
          )
          .run(name, keyDigest(user_key), passwordHash, now, now, name);
        if (r.changes === 0) throw new UsernameTakenError(name);
        return { id: Number(r.lastInsertRowid), username: name, disabled: false, createdAt: now, updatedAt: now, user_key };
      } catch (err) {
        if (String((err as Error).message).includes('users.username')) throw new UsernameTakenError(name);
        throw err;
      }
    });
  }

  /**
   * The enabled user whose key has this digest. Looked up by the digest (an index on a hash reveals nothing
   * usable about the key), then compared in constant time; the counter comes from the same statement.
   */
  findByKeyDigest(digest: Buffer): Promise<User | undefined> {
    return this.run(() => {
      if (!isDigest(digest)) return undefined;
      this.checkChanges();
      const hit = this.cache.get(userKey(digest));
      if (hit) return hit as User;
      const row = this
        .sql(
          `SELECT u.id, u.username, u.disabled, u.created_at, u.updated_at, k.key_hash, c.value AS counter
           FROM change_counter c
           LEFT JOIN (SELECT id AS user_id, key_hash FROM users WHERE key_hash = @digest
                      UNION ALL SELECT user_id, key_hash FROM sign_in_keys WHERE key_hash = @digest) k ON 1
           LEFT JOIN users u ON u.id = k.user_id
           WHERE c.id = 1`,
        )
        .get({ digest }) as Partial<UserRow> & { key_hash: Buffer | null; counter: number };
      this.cache.observe(row.counter);
      if (!row.key_hash || row.disabled || !digestsEqual(row.key_hash, digest)) return undefined;
      const user = toUser(row as UserRow);
      this.cache.put(userKey(digest), user, row.counter);
      return user;
    });
  }

  getUser(ref: UserRef): Promise<User | undefined> {
    return this.run(() => {
      const row = this.userWhere(ref);
      return row && toUser(row);
    });
  }

  listUsers(opts?: { limit?: number; afterId?: number }): Promise<User[]> {
    return this.run(() => {
      const { limit, afterId } = checkListOptions(opts);
      const rows = this.sql(`SELECT ${USER_COLUMNS} FROM users WHERE id > ? ORDER BY id LIMIT ?`).all(afterId, limit);
      return (rows as UserRow[]).map(toUser);
    });
  }

  rotateKey(ref: UserRef): Promise<NewUser> {
    return this.run(
      () =>
        this.change(() => {
          const row = this.mustFind(ref);
          const user_key = newUserKey();
          const now = new Date().toISOString();
          this.sql('UPDATE users SET key_hash = ?, updated_at = ? WHERE id = ?').run(keyDigest(user_key), now, row.id);
          this.sql('DELETE FROM sign_in_keys WHERE user_id = ?').run(row.id);
          return { ...toUser({ ...row, updated_at: now }), user_key };
        })!,
    );
  }

  issueSignInKey(ref: UserRef): Promise<NewUser> {
    return this.run(() =>
      this.db
        .transaction(() => {
          const row = this.mustFind(ref);
          const user_key = newUserKey();
          this.sql('INSERT INTO sign_in_keys (key_hash, user_id, created_at) VALUES (?, ?, ?)').run(keyDigest(user_key), row.id, new Date().toISOString());
          // A new key needs no cache change (misses are never cached); dropping old ones does.
          const dropped = this.sql(
            `DELETE FROM sign_in_keys WHERE user_id = @user AND rowid NOT IN
               (SELECT rowid FROM sign_in_keys WHERE user_id = @user ORDER BY created_at DESC, rowid DESC LIMIT @keep)`,
          ).run({ user: row.id, keep: MAX_SIGN_IN_KEYS }).changes;
          if (dropped > 0) this.sql('UPDATE change_counter SET value = value + 1 WHERE id = 1').run();
          return { user: { ...toUser(row), user_key }, dropped };
        })
        .immediate(),
    ).then(({ user, dropped }) => {
      if (dropped > 0) this.checkChanges(true);
      return user;
    });
  }

  setDisabled(ref: UserRef, disabled: boolean): Promise<User> {
    return this.run(() => {
      if (typeof disabled !== 'boolean') throw new TypeError('disabled is true or false');
      return this.change(() => {
        const row = this.mustFind(ref);
        const now = new Date().toISOString();
        this.sql('UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?').run(disabled ? 1 : 0, now, row.id);
        return toUser({ ...row, disabled: disabled ? 1 : 0, updated_at: now });
      })!;
    });
  }

  deleteUser(ref: UserRef): Promise<boolean> {
    return this.run(() => {
      return (
        this.change(() => {
          const row = this.userWhere(ref);
          if (!row) return undefined;
          this.sql('DELETE FROM sign_in_keys WHERE user_id = ?').run(row.id);
          return this.sql('DELETE FROM users WHERE id = ?').run(row.id).changes > 0 ? true : undefined;
        }) ?? false
      );
    });
  }

  passwordOf(username: string): Promise<{ user: User; passwordHash: string | null } | undefined> {
    return this.run(() => {
      const found = this.userWhere({ username });
      if (!found) return undefined;
      const row = this.sql('SELECT password_hash FROM users WHERE id = ?').get(found.id) as { password_hash: string | null };
      return { user: toUser(found), passwordHash: row.password_hash };
    });
  }

  setPasswordHash(ref: UserRef, passwordHash: string | null, opts: SetPasswordOptions = {}): Promise<number> {
    return this.run(() => {
      const hash = checkPasswordHash(passwordHash);
      const end = checkEndSignInKeys(opts);
      return this.change(() => {
        const row = this.mustFind(ref);
        this.sql('UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?').run(hash, new Date().toISOString(), row.id);
        if (!end) return 0;
        return this.sql('DELETE FROM sign_in_keys WHERE user_id = ? AND key_hash IS NOT ?').run(row.id, end.except ?? null).changes;
      })!;
    });
  }

  recordLoginFailure(bucket: string, now: number): Promise<LoginFailures> {
    return this.run(() => {
      const row = this
        .sql(
          `INSERT INTO login_failures (bucket, failures, last_failure_at) VALUES (?, 1, ?)
           ON CONFLICT (bucket) DO UPDATE SET failures = failures + 1, last_failure_at = MAX(last_failure_at, excluded.last_failure_at)
           RETURNING failures, last_failure_at`,
        )
        .get(checkBucket(bucket), checkTime(now)) as { failures: number; last_failure_at: number };
      return { failures: row.failures, lastFailureAt: row.last_failure_at };
    });
  }

  loginFailures(bucket: string): Promise<LoginFailures> {
    return this.run(() => {
      const row = this.sql('SELECT failures, last_failure_at FROM login_failures WHERE bucket = ?').get(checkBucket(bucket)) as
        | { failures: number; last_failure_at: number }
        | undefined;
      return { failures: row?.failures ?? 0, lastFailureAt: row?.last_failure_at ?? 0 };
    });
  }

  forgiveLoginFailure(bucket: string): Promise<void> {
    return this.run(() => {
      this.sql('UPDATE login_failures SET failures = failures - 1 WHERE bucket = ? AND failures > 0').run(checkBucket(bucket));
    });
  }

  clearLoginFailures(bucket: string): Promise<void> {
    return this.run(() => {
      this.sql('DELETE FROM login_failures WHERE bucket = ?').run(checkBucket(bucket));
    });
  }

  recordRemoval(id: number, sweepUntil: number): Promise<void> {
    return this.run(() => {
      this.sql(
        `INSERT INTO removed_users (id, sweep_until) VALUES (?, ?)
         ON CONFLICT (id) DO UPDATE SET sweep_until = MAX(sweep_until, excluded.sweep_until)`,
      ).run(checkId(id), checkTime(sweepUntil));
    });
  }

  removals(): Promise<Removal[]> {
    return this.run(() =>
      (this.sql('SELECT id, sweep_until FROM removed_users ORDER BY id').all() as Array<{ id: number; sweep_until: number }>).map((r) => ({
        id: r.id,
        sweepUntil: r.sweep_until,
      })),
    );
  }

  forgetRemoval(id: number): Promise<void> {
    return this.run(() => {
      this.sql('DELETE FROM removed_users WHERE id = ?').run(checkId(id));
    });
  }

  addAdminKey(label: string, key?: string): Promise<NewAdminKey> {
    return this.run(() => {
      checkLabel(label);
      const clear = key === undefined ? newAdminKey() : checkChosenAdminKey(key);
      const now = new Date().toISOString();
      const r = this
        .sql('INSERT INTO admin_keys (label, key_hash, created_at) VALUES (?, ?, ?) ON CONFLICT (key_hash) DO NOTHING')
        .run(label, keyDigest(clear), now);
      if (r.changes === 0) throw new AdminKeyTakenError('this key is already an admin key (or was one, and was revoked)');
      return { id: Number(r.lastInsertRowid), label, createdAt: now, revokedAt: null, key: clear };
    });
  }

  ensureAdminKey(key: string, label: string): Promise<void> {
    return this.run(() => {
      checkOperatorAdminKey(key);
      checkLabel(label);
      // DO NOTHING: a key revoked once stays revoked, even while ADMIN_KEY still names it
      this
        .sql('INSERT INTO admin_keys (label, key_hash, created_at) VALUES (?, ?, ?) ON CONFLICT (key_hash) DO NOTHING')
        .run(label, keyDigest(key), new Date().toISOString());
    });
  }

  listAdminKeys(): Promise<AdminKeyInfo[]> {
    return this.run(() =>
      (this.sql('SELECT id, label, created_at, revoked_at FROM admin_keys ORDER BY id').all() as Parameters<typeof toAdminKey>[0][]).map(
        toAdminKey,
      ),
    );
  }

  revokeAdminKey(id: number): Promise<boolean> {
    return this.run(() => {
      checkId(id, "an admin key's id");
      return (
        this.change(() =>
          this.sql('UPDATE admin_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(new Date().toISOString(), id).changes > 0
            ? true
            : undefined,
        ) ?? false
      );
    });
  }

  isAdminKeyDigest(digest: Buffer): Promise<boolean> {
    return this.run(() => {
      if (!isDigest(digest)) return false;
      this.checkChanges();
      if (this.cache.get(adminKey(digest))) return true;
      const row = this
        .sql(
          `SELECT a.key_hash, c.value AS counter
           FROM change_counter c LEFT JOIN admin_keys a ON a.key_hash = ? AND a.revoked_at IS NULL WHERE c.id = 1`,
        )
        .get(digest) as { key_hash: Buffer | null; counter: number };
      this.cache.observe(row.counter);
      if (!row.key_hash || !digestsEqual(row.key_hash, digest)) return false;
      this.cache.put(adminKey(digest), true, row.counter);
      return true;
    });
  }

  close(): Promise<void> {
    if (this.db.open) this.db.close();
    return Promise.resolve();
  }
}
