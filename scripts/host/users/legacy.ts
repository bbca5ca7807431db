// Compatibility only, to be removed as soon as the host's files use openUserStore(): the synchronous
// SQLite store the host called before #14 (same file, same users table), so that every commit
// typechecks while the host's move lands. New code must not use it.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { digestsEqual, keyDigest } from '../admin-key';
import { checkUsername, newUserKey } from './rules';
import { UsernameTakenError, type User } from './types';

/** @deprecated use openUserStore() */
export class LegacyUserStore {
  private db: Database.Database;

  constructor(dataDir: string) {
    fs.mkdirSync(dataDir, { recursive: true });
    this.db = new Database(path.join(dataDir, 'users.sqlite'));
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('journal_mode = WAL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL UNIQUE,
      key_hash BLOB NOT NULL UNIQUE, created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))`);
  }

  add(username: string): { id: number; username: string; user_key: string } {
    const user_key = newUserKey();
    try {
      const r = this.db.prepare('INSERT INTO users (username, key_hash) VALUES (?, ?)').run(checkUsername(username), keyDigest(user_key));
      return { id: Number(r.lastInsertRowid), username, user_key };
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new UsernameTakenError(username);
      throw err;
    }
  }

  findByDigest(h: Buffer): User | undefined {
    const row = this.db.prepare('SELECT id, username, key_hash, created_at FROM users WHERE key_hash = ?').get(h) as
      | { id: number; username: string; key_hash: Buffer; created_at: string }
      | undefined;
    if (!row || !digestsEqual(row.key_hash, h)) return undefined;
    return { id: row.id, username: row.username, disabled: false, createdAt: row.created_at, updatedAt: row.created_at };
  }

  list(): { id: number; username: string }[] {
    return this.db.prepare('SELECT id, username FROM users ORDER BY id').all() as { id: number; username: string }[];
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
