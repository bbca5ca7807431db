// The user store in PostgreSQL (DATABASE_URL): users and admin keys shared by every host.
//
// Caches drop within 1 s of a change made on any host: every change bumps change_counter and announces
// the new value with NOTIFY in its own transaction; each store LISTENs on one connection of its own. The
// announcement may be lost (a dropped or half-open listener), so the counter is also read on lookups: at
// most every 750 ms while listening, every 250 ms while the listener is down (it reconnects with backoff
// and drops the cache when it is back). Every failure to reach or use the database is a
// UserStoreUnavailableError whose message names no password and no URL.
import pg from 'pg';
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

const CHANNEL = 'aws_storage_user_changes';
/** Any constant: every host takes this lock around the migrations, so they run once, in turn. */
const MIGRATION_LOCK = 14_000_014;
export const CHECK_WHILE_LISTENING_MS = 750;
export const CHECK_WITHOUT_LISTENER_MS = 250;
const LISTENER_BACKOFF_MS = { first: 100, max: 5_000 };

export interface PostgresOptions {
  /** connections this process may hold at most for queries (the listener has one more); default 10 */
  poolSize?: number;
  /** a statement running longer is cancelled by the server; default 5000 */
  statementTimeoutMs?: number;
  /** connecting, or waiting for a free connection of the pool, longer fails; default 3000 */
  connectTimeoutMs?: number;
}

/** Applied in order, each once (schema_migrations), under MIGRATION_LOCK. */
const MIGRATIONS: string[] = [
  `CREATE TABLE users (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     username text NOT NULL UNIQUE,
     key_hash bytea NOT NULL UNIQUE,
     disabled boolean NOT NULL DEFAULT false,
     password_hash text,
     created_at timestamptz NOT NULL DEFAULT now(),
     updated_at timestamptz NOT NULL DEFAULT now()
   );
   CREATE TABLE admin_keys (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     label text NOT NULL,
     key_hash bytea NOT NULL UNIQUE,
     created_at timestamptz NOT NULL DEFAULT now(),
     revoked_at timestamptz
   );
   CREATE TABLE login_failures (
     bucket text PRIMARY KEY,
     failures integer NOT NULL,
     last_failure_at bigint NOT NULL
   );
   CREATE TABLE change_counter (id integer PRIMARY KEY CHECK (id = 1), value bigint NOT NULL);
   INSERT INTO change_counter (id, value) VALUES (1, 0);`,
  // #16: a key per signed-in device, beside the user's own key
  `CREATE TABLE sign_in_keys (
     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     key_hash bytea NOT NULL UNIQUE,
     user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
     created_at timestamptz NOT NULL DEFAULT now()
   );
   CREATE INDEX sign_in_keys_user ON sign_in_keys (user_id, id);`,
  // usernames are NFKC from now on; a row made before keeps its name, and holds its NFKC form taken
  // (filled in by backfillLegacyNames with Node's NFKC, the one that normalises new names)
  `ALTER TABLE users ADD COLUMN legacy_nfkc text;
   CREATE INDEX users_legacy_nfkc ON users (legacy_nfkc) WHERE legacy_nfkc IS NOT NULL;`,
  // users removed with their files, whose prefix is swept again while their old links may still write
  `CREATE TABLE removed_users (id bigint PRIMARY KEY, sweep_until bigint NOT NULL);`,
];
const LEGACY_NAMES_MIGRATION = 3;

interface UserRow {
  id: string;
  username: string;
  disabled: boolean;
  created_at: Date;
  updated_at: Date;
}
const USER_COLUMNS = 'id, username, disabled, created_at, updated_at';

function toUser(row: UserRow): User {
  return Object.freeze({
    id: Number(row.id),
    username: row.username,
    disabled: row.disabled,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  });
}

interface AdminKeyRow {
  id: string;
  label: string;
  created_at: Date;
  revoked_at: Date | null;
}
function toAdminKey(row: AdminKeyRow): AdminKeyInfo {
  return { id: Number(row.id), label: row.label, createdAt: row.created_at.toISOString(), revokedAt: row.revoked_at?.toISOString() ?? null };
}

type Query = <R extends pg.QueryResultRow>(sql: string, params?: unknown[]) => Promise<R[]>;

export class PostgresUserStore implements UserStore {
  readonly kind = 'postgres';
  private readonly cache = new FoundCache<User | true>(MAX_CACHED);
  private readonly pool: pg.Pool;
  private listener: pg.Client | undefined;
  private listenerDelay = LISTENER_BACKOFF_MS.first;
  private listenerTimer: NodeJS.Timeout | undefined;
  private lastCheckAt = 0;
  private checking: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly config: pg.ClientConfig,
    /** what error messages must never show: the URL and its password */
    private readonly secrets: string[],
    poolSize: number,
  ) {
    this.pool = new pg.Pool({ ...config, max: poolSize, idleTimeoutMillis: 10_000 });
    // an idle connection that breaks (the server restarts) is dropped by the pool; without a listener
    // its 'error' would end the process
    this.pool.on('error', () => {});
  }

  /** Connects, applies the migrations and starts listening; rejects with UserStoreUnavailableError. */
  static async open(databaseUrl: string, opts: PostgresOptions = {}): Promise<PostgresUserStore> {
    let url: URL;
    try {
      url = new URL(databaseUrl);
    } catch {
      throw new UserStoreUnavailableError('DATABASE_URL is not a URL (postgres://user:password@host:port/database)');
    }
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
      throw new UserStoreUnavailableError(`DATABASE_URL must be postgres://…, not ${url.protocol}//…`);
    }
    const poolSize = opts.poolSize ?? 10;
    if (!Number.isSafeInteger(poolSize) || poolSize < 1 || poolSize > 1000) throw new RangeError('poolSize is 1..1000');
    const statementTimeout = opts.statementTimeoutMs ?? 5_000;
    const config: pg.ClientConfig = {
      connectionString: databaseUrl,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 3_000,
      statement_timeout: statementTimeout,
      // the client's own bound, for a server that stops answering without closing the connection
      query_timeout: statementTimeout + 2_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 5_000,
      application_name: 'aws-storage',
    };
    let password = url.password;
    try {
      password = decodeURIComponent(url.password);
    } catch {
      /* not percent-encoded: as it is */
    }
    const secrets = [databaseUrl, password, url.password].filter((s) => s.length >= 3);
    const store = new PostgresUserStore(config, secrets, poolSize);
    try {
      await store.migrate();
    } catch (err) {
      await store.pool.end().catch(() => {});
      throw err;
    }
    await store.listen();
    return store;
  }

  // ---------------------------------------------------------------------------------------------
  // Errors, queries, transactions

  private unavailable(err: unknown): UserStoreUnavailableError {
    let message = err instanceof Error ? err.message : String(err);
    for (const s of this.secrets) message = message.split(s).join('***');
    message = message.replace(/postgres(ql)?:\/\/\S*/gi, 'postgres://***');
    const code = (err as { code?: unknown }).code;
    return new UserStoreUnavailableError(`user store (PostgreSQL) unavailable: ${message}${typeof code === 'string' ? ` (${code})` : ''}`);
  }

  /** Any failure of the database as callers see it (conflicts are ON CONFLICT clauses, never errors). */
  private mapped(err: unknown): UserStoreUnavailableError {
    return err instanceof UserStoreUnavailableError ? err : this.unavailable(err);
  }

  private query: Query = async (sql, params) => {
    if (this.closed) throw new UserStoreUnavailableError('user store closed');
    try {
      return (await this.pool.query(sql, params)).rows;
    } catch (err) {
      throw this.mapped(err);
    }
  };

  /** Runs `work` in one transaction on one connection; its errors are passed on, the database's mapped. */
  private async transaction<T>(work: (q: Query) => Promise<T>, setup?: string): Promise<T> {
    if (this.closed) throw new UserStoreUnavailableError('user store closed');
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.unavailable(err);
    }
    const q: Query = async (sql, params) => {
      try {
        return (await client.query(sql, params)).rows;
      } catch (err) {
        throw this.mapped(err);
      }
    };
    let broken = false;
    try {
      await q('BEGIN');
      if (setup) await q(setup);
      const result = await work(q);
      await q('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => (broken = true));
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /**
   * A change: `work` returns undefined when it changed nothing; otherwise the counter is bumped and
   * announced in the same transaction, and this store's own cache drops at once.
   */
  private async change<T>(work: (q: Query) => Promise<T | undefined>): Promise<T | undefined> {
    let counter: number | undefined;
    const result = await this.transaction(async (q) => {
      const done = await work(q);
      if (done !== undefined) {
        const [row] = await q<{ value: string }>('UPDATE change_counter SET value = value + 1 WHERE id = 1 RETURNING value');
        counter = Number(row.value);
        await q('SELECT pg_notify($1, $2)', [CHANNEL, String(counter)]);
      }
      return done;
    });
    if (counter !== undefined) this.cache.observe(counter);
    return result;
  }

  private migrate(): Promise<void> {
    return this.transaction(async (q) => {
      await q('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await q('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
      const [row] = await q<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
      for (let v = (row.v ?? 0) + 1; v <= MIGRATIONS.length; v++) {
        await q(MIGRATIONS[v - 1]);
        if (v === LEGACY_NAMES_MIGRATION) {
          // only non-ASCII names can be other than NFKC
          for (const row of await q<{ id: string; username: string }>("SELECT id, username FROM users WHERE username ~ '[^ -~]'")) {
            const normal = legacyNormalForm(row.username);
            if (normal !== null) await q('UPDATE users SET legacy_nfkc = $1 WHERE id = $2', [normal, row.id]);
          }
        }
        await q('INSERT INTO schema_migrations (version) VALUES ($1)', [v]);
      }
      // several hosts may wait for the lock in turn at start: not the 5 s of an ordinary statement
    }, "SET LOCAL statement_timeout = '60s'");
  }

  // ---------------------------------------------------------------------------------------------
  // Cache invalidation: the listener, and the counter check that covers for it

  private async listen(): Promise<void> {
    const client = new pg.Client(this.config);
    let lost = false;
    const onLost = () => {
      if (lost) return;
      lost = true;
      if (this.listener === client) this.listener = undefined;
      client.end().catch(() => {});
      this.scheduleListen();
    };
    client.on('error', onLost);
    client.on('end', onLost);
    client.on('notification', (msg) => {
      const counter = Number(msg.payload);
      if (Number.isSafeInteger(counter)) this.cache.observe(counter);
      else this.cache.clear();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch {
      onLost();
      return;
    }
    if (this.closed || lost) {
      await client.end().catch(() => {});
      return;
    }
    this.listener = client;
    this.listenerDelay = LISTENER_BACKOFF_MS.first;
    // what was announced while nobody listened is unknown
    this.cache.clear();
  }

  private scheduleListen(): void {
    if (this.closed || this.listenerTimer) return;
    const delay = this.listenerDelay;
    this.listenerDelay = Math.min(delay * 2, LISTENER_BACKOFF_MS.max);
    this.listenerTimer = setTimeout(() => {
      this.listenerTimer = undefined;
      void this.listen();
    }, delay);
    this.listenerTimer.unref();
  }

  /** true while changes made elsewhere are announced to this store */
  get listening(): boolean {
    return this.listener !== undefined;
  }

  /** Reads the change counter when the last read is older than the bound; one read in flight at a time. */
  private async checkChanges(): Promise<void> {
    const bound = this.listening ? CHECK_WHILE_LISTENING_MS : CHECK_WITHOUT_LISTENER_MS;
    if (Date.now() - this.lastCheckAt < bound) return;
    this.checking ??= (async () => {
      const startedAt = Date.now();
      try {
        const [row] = await this.query<{ value: string }>('SELECT value FROM change_counter WHERE id = 1');
        this.cache.observe(Number(row.value));
        this.lastCheckAt = startedAt;
      } finally {
        this.checking = undefined;
      }
    })();
    await this.checking;
  }

  // ---------------------------------------------------------------------------------------------
  // Users

  private async userWhere(q: Query, ref: UserRef): Promise<UserRow | undefined> {
    const { column, values } = refColumn(ref);
    for (const value of values) {
      const [row] = await q<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE ${column} = $1`, [value]);
      if (row) return row;
    }
    return undefined;
  }

  /**
   * Changes the user a UserRef names, by one UPDATE or DELETE whose WHERE is the ref ($1) and whose
   * other parameters follow; its first returned row, or undefined when no user matched.
   */
  private async changeUser<R extends pg.QueryResultRow>(ref: UserRef, statement: (where: string) => string, params: unknown[]): Promise<R | undefined> {
    const { column, values } = refColumn(ref);
    if (values.length === 0) return undefined; // a username that breaks the rules: nobody has it
    if (column === 'id') return this.change(async (q) => (await q<R>(statement('id = $1'), [values[0], ...params]))[0]);
    // the first candidate that names a user (usernameCandidates), never several users at once
    const where = 'id = (SELECT id FROM users WHERE username = ANY($1::text[]) ORDER BY array_position($1::text[], username) LIMIT 1)';
    return this.change(async (q) => (await q<R>(statement(where), [values, ...params]))[0]);
  }

  async createUser(username: string, opts: { passwordHash?: string } = {}): Promise<NewUser> {
    const name = checkUsername(username);
    const passwordHash = opts.passwordHash === undefined ? null : checkPasswordHash(opts.passwordHash);
    const user_key = newUserKey();
    // DO NOTHING, not an error: of two hosts making one name at once, the second gets no row; a row made
    // before names were normalised holds its NFKC form taken
    const [row] = await this.query<UserRow>(
      `INSERT INTO users (username, key_hash, password_hash)
       SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM users WHERE legacy_nfkc = $1)
       ON CONFLICT (username) DO NOTHING RETURNING ${USER_COLUMNS}`,
      [name, keyDigest(user_key), passwordHash],
    );
    if (!row) throw new UsernameTakenError(name);
    return { ...toUser(row), user_key };
  }

  async findByKeyDigest(digest: Buffer): Promise<User | undefined> {
    if (!isDigest(digest)) return undefined;
    await this.checkChanges();
    const hit = this.cache.get(userKey(digest));
    if (hit) return hit as User;
    // the counter from the same statement (one snapshot) as the row
    const [row] = await this.query<Partial<UserRow> & { key_hash: Buffer | null; counter: string }>(
      `SELECT c.value AS counter, u.id, u.username, u.disabled, u.created_at, u.updated_at, k.key_hash
       FROM change_counter c
       LEFT JOIN (SELECT id AS user_id, key_hash FROM users WHERE key_hash = $1
                  UNION ALL SELECT user_id, key_hash FROM sign_in_keys WHERE key_hash = $1) k ON true
       LEFT JOIN users u ON u.id = k.user_id
       WHERE c.id = 1`,
      [digest],
    );
    const counter = Number(row.counter);
    this.cache.observe(counter);
    if (!row.key_hash || row.disabled || !digestsEqual(row.key_hash, digest)) return undefined;
    const user = toUser(row as UserRow);
    this.cache.put(userKey(digest), user, counter);
    return user;
  }

  async getUser(ref: UserRef): Promise<User | undefined> {
    const row = await this.userWhere(this.query, ref);
    return row && toUser(row);
  }

  async listUsers(opts?: { limit?: number; afterId?: number }): Promise<User[]> {
    const { limit, afterId } = checkListOptions(opts);
    const rows = await this.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2`, [afterId, limit]);
    return rows.map(toUser);
  }

  async rotateKey(ref: UserRef): Promise<NewUser> {
    const user_key = newUserKey();
    const row = await this.changeUser<UserRow>(
      ref,
      // the user's sign-in keys end with its old key, in the same statement
      (where) => `WITH u AS (UPDATE users SET key_hash = $2, updated_at = now() WHERE ${where} RETURNING ${USER_COLUMNS}),
                       ended AS (DELETE FROM sign_in_keys WHERE user_id IN (SELECT id FROM u))
                  SELECT * FROM u`,
      [keyDigest(user_key)],
    );
    if (!row) throw new NoSuchUserError('no such user');
    return { ...toUser(row), user_key };
  }

  async issueSignInKey(ref: UserRef): Promise<NewUser> {
    const user_key = newUserKey();
    let owner: UserRow | undefined;
    // A new key needs no cache change (misses are never cached); dropping the oldest ones does.
    await this.change(async (q) => {
      owner = await this.userWhere(q, ref);
      if (!owner) return undefined;
      await q('INSERT INTO sign_in_keys (key_hash, user_id) VALUES ($1, $2)', [keyDigest(user_key), owner.id]);
      const dropped = await q(
        `DELETE FROM sign_in_keys WHERE user_id = $1 AND id NOT IN
           (SELECT id FROM sign_in_keys WHERE user_id = $1 ORDER BY id DESC LIMIT $2) RETURNING id`,
        [owner.id, MAX_SIGN_IN_KEYS],
      );
      return dropped.length > 0 ? true : undefined;
    });
    if (!owner) throw new NoSuchUserError('no such user');
    return { ...toUser(owner), user_key };
  }

  async setDisabled(ref: UserRef, disabled: boolean): Promise<User> {
    if (typeof disabled !== 'boolean') throw new TypeError('disabled is true or false');
    const row = await this.changeUser<UserRow>(
      ref,
      (where) => `UPDATE users SET disabled = $2, updated_at = now() WHERE ${where} RETURNING ${USER_COLUMNS}`,
      [disabled],
    );
    if (!row) throw new NoSuchUserError('no such user');
    return toUser(row);
  }

  async deleteUser(ref: UserRef): Promise<boolean> {
    return (await this.changeUser(ref, (where) => `DELETE FROM users WHERE ${where} RETURNING id`, [])) !== undefined;
  }

  async passwordOf(username: string): Promise<{ user: User; passwordHash: string | null } | undefined> {
    const { values } = refColumn({ username });
    if (values.length === 0) return undefined;
    const [row] = await this.query<UserRow & { password_hash: string | null }>(
      `SELECT ${USER_COLUMNS}, password_hash FROM users WHERE username = ANY($1::text[])
       ORDER BY array_position($1::text[], username) LIMIT 1`,
      [values],
    );
    return row && { user: toUser(row), passwordHash: row.password_hash };
  }

  async setPasswordHash(ref: UserRef, passwordHash: string | null, opts: SetPasswordOptions = {}): Promise<number> {
    const hash = checkPasswordHash(passwordHash);
    const end = checkEndSignInKeys(opts);
    // the sign-in keys end in the same statement as the password changes ($4: end none)
    const row = await this.changeUser<{ ended: string }>(
      ref,
      (where) => `WITH u AS (UPDATE users SET password_hash = $2, updated_at = now() WHERE ${where} RETURNING id),
                       ended AS (DELETE FROM sign_in_keys WHERE $4 AND user_id IN (SELECT id FROM u)
                                 AND key_hash IS DISTINCT FROM $3::bytea RETURNING 1)
                  SELECT (SELECT count(*) FROM ended) AS ended FROM u`,
      [hash, end?.except ?? null, end !== undefined],
    );
    if (!row) throw new NoSuchUserError('no such user');
    return Number(row.ended);
  }

  // ---------------------------------------------------------------------------------------------
  // Sign-in counters

  async recordLoginFailure(bucket: string, now: number): Promise<LoginFailures> {
    const [row] = await this.query<{ failures: number; last_failure_at: string }>(
      `INSERT INTO login_failures AS f (bucket, failures, last_failure_at) VALUES ($1, 1, $2)
       ON CONFLICT (bucket) DO UPDATE SET failures = f.failures + 1, last_failure_at = greatest(f.last_failure_at, excluded.last_failure_at)
       RETURNING failures, last_failure_at`,
      [checkBucket(bucket), checkTime(now)],
    );
    return { failures: row.failures, lastFailureAt: Number(row.last_failure_at) };
  }

  async loginFailures(bucket: string): Promise<LoginFailures> {
    const [row] = await this.query<{ failures: number; last_failure_at: string }>(
      'SELECT failures, last_failure_at FROM login_failures WHERE bucket = $1',
      [checkBucket(bucket)],
    );
    return { failures: row?.failures ?? 0, lastFailureAt: row ? Number(row.last_failure_at) : 0 };
  }

  async forgiveLoginFailure(bucket: string): Promise<void> {
    await this.query('UPDATE login_failures SET failures = failures - 1 WHERE bucket = $1 AND failures > 0', [checkBucket(bucket)]);
  }

  async clearLoginFailures(bucket: string): Promise<void> {
    await this.query('DELETE FROM login_failures WHERE bucket = $1', [checkBucket(bucket)]);
  }

  async recordRemoval(id: number, sweepUntil: number): Promise<void> {
    await this.query(
      `INSERT INTO removed_users AS r (id, sweep_until) VALUES ($1, $2)
       ON CONFLICT (id) DO UPDATE SET sweep_until = greatest(r.sweep_until, excluded.sweep_until)`,
      [checkId(id), checkTime(sweepUntil)],
    );
  }

  async removals(): Promise<Removal[]> {
    const rows = await this.query<{ id: string; sweep_until: string }>('SELECT id, sweep_until FROM removed_users ORDER BY id');
    return rows.map((r) => ({ id: Number(r.id), sweepUntil: Number(r.sweep_until) }));
  }

  async forgetRemoval(id: number): Promise<void> {
    await this.query('DELETE FROM removed_users WHERE id = $1', [checkId(id)]);
  }

  // ---------------------------------------------------------------------------------------------
  // Admin keys

  async addAdminKey(label: string, key?: string): Promise<NewAdminKey> {
    checkLabel(label);
    const clear = key === undefined ? newAdminKey() : checkChosenAdminKey(key);
    const [row] = await this.query<AdminKeyRow>(
      'INSERT INTO admin_keys (label, key_hash) VALUES ($1, $2) ON CONFLICT (key_hash) DO NOTHING RETURNING id, label, created_at, revoked_at',
      [label, keyDigest(clear)],
    );
    if (!row) throw new AdminKeyTakenError('this key is already an admin key (or was one, and was revoked)');
    return { ...toAdminKey(row), key: clear };
  }

  async ensureAdminKey(key: string, label: string): Promise<void> {
    checkOperatorAdminKey(key);
    checkLabel(label);
    // DO NOTHING: a key revoked once stays revoked, even while ADMIN_KEY still names it
    await this.query('INSERT INTO admin_keys (label, key_hash) VALUES ($1, $2) ON CONFLICT (key_hash) DO NOTHING', [label, keyDigest(key)]);
  }

  async listAdminKeys(): Promise<AdminKeyInfo[]> {
    return (await this.query<AdminKeyRow>('SELECT id, label, created_at, revoked_at FROM admin_keys ORDER BY id')).map(toAdminKey);
  }

  async revokeAdminKey(id: number): Promise<boolean> {
    checkId(id, "an admin key's id");
    const done = await this.change((q) =>
      q<{ id: string }>('UPDATE admin_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id', [id]).then((rows) =>
        rows.length ? true : undefined,
      ),
    );
    return done ?? false;
  }

  async isAdminKeyDigest(digest: Buffer): Promise<boolean> {
    if (!isDigest(digest)) return false;
    await this.checkChanges();
    if (this.cache.get(adminKey(digest))) return true;
    const [row] = await this.query<{ key_hash: Buffer | null; counter: string }>(
      `SELECT c.value AS counter, a.key_hash
       FROM change_counter c LEFT JOIN admin_keys a ON a.key_hash = $1 AND a.revoked_at IS NULL WHERE c.id = 1`,
      [digest],
    );
    const counter = Number(row.counter);
    this.cache.observe(counter);
    if (!row.key_hash || !digestsEqual(row.key_hash, digest)) return false;
    this.cache.put(adminKey(digest), true, counter);
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.listenerTimer) clearTimeout(this.listenerTimer);
    const listener = this.listener;
    this.listener = undefined;
    await Promise.all([listener?.end().catch(() => {}), this.pool.end().catch(() => {})]);
  }
}
