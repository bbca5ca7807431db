// The user store: SQLite in DATA_DIR/users.sqlite; user keys are kept only as SHA-256 hashes.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { digestsEqual, keyDigest as hashKey } from './admin-key';

export interface User {
  id: number;
  username: string;
}
export interface NewUser extends User {
  user_key: string;
}

const MAX_KNOWN_USERS = 10_000;

export class UsernameTakenError extends Error {
  constructor(username: string) {
    super(`username "${username}" is taken`);
  }
}
export class InvalidUsernameError extends Error {}

export function validUsername(username: unknown): username is string {
  return (
    typeof username === 'string' &&
    username.length >= 1 &&
    username.length <= 150 &&
    username.trim() === username &&
    // no control characters
    !/[\u0000-\u001f\u007f]/.test(username) &&
    // no lone surrogate: it has no UTF-8 form (Node 24 stores each as U+FFFD, so two would collide)
    !/\p{Cs}/u.test(username)
  );
}

export class UserStore {
  private db: Database.Database;
  private byHash: Database.Statement<[Buffer], { id: number; username: string; key_hash: Buffer }>;
  private insert: Database.Statement<[string, Buffer]>;
  private known = new Map<string, User>();

  constructor(dataDir: string) {
    fs.mkdirSync(dataDir, { recursive: true });
    this.db = new Database(path.join(dataDir, 'users.sqlite'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`CREATE TABLE IF NOT EXISTS users (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      username TEXT NOT NULL UNIQUE,
      key_hash BLOB NOT NULL UNIQUE,
      created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )`);
    this.byHash = this.db.prepare('SELECT id, username, key_hash FROM users WHERE key_hash = ?');
    this.insert = this.db.prepare('INSERT INTO users (username, key_hash) VALUES (?, ?)');
  }

  add(username: string): NewUser {
    if (!validUsername(username)) {
      throw new InvalidUsernameError('username must be 1..150 characters, no control characters or outer spaces');
    }
    const user_key = crypto.randomBytes(20).toString('hex');
    try {
      const r = this.insert.run(username, hashKey(user_key));
      return { id: Number(r.lastInsertRowid), username, user_key };
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new UsernameTakenError(username);
      throw err;
    }
  }

  /**
   * The user whose key has this SHA-256. The lookup is by the hash (an index lookup on a hash reveals
   * nothing usable about the key); the stored hash is then compared in constant time. Found users are
   * remembered (a bounded map): users are never removed or re-keyed, and a miss always asks the
   * database, so a user another host created is found at once.
   */
  findByDigest(h: Buffer): User | undefined {
    const cacheKey = h.toString('base64');
    const cached = this.known.get(cacheKey);
    if (cached) return cached;
    const row = this.byHash.get(h);
    if (!row || !digestsEqual(Buffer.from(row.key_hash), h)) return undefined;
    const user = { id: row.id, username: row.username };
    if (this.known.size >= MAX_KNOWN_USERS) this.known.delete(this.known.keys().next().value as string);
    this.known.set(cacheKey, user);
    return user;
  }

  list(): User[] {
    return this.db.prepare('SELECT id, username FROM users ORDER BY id').all() as User[];
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
