// The two user-store backends the conformance suite runs on, each giving a fresh, empty database per
// test: SQLite in a temp DATA_DIR always; PostgreSQL (a database of its own on the server DATABASE_URL
// names) when DATABASE_URL is set, as `npm run test:postgres` sets it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openUserStore } from '../../scripts/host/users/index';
import type { UserStore } from '../../scripts/host/users/types';

export interface FreshDatabase {
  /** a new store object over this database (as another host would open it) */
  open(): Promise<UserStore>;
  /** what a child process needs to open the same database: DATA_DIR, and DATABASE_URL ('' for SQLite) */
  env: Record<string, string>;
  /** every byte the database holds (files, and for PostgreSQL its tables as text), to look for secrets in */
  contents(): Promise<Buffer>;
  /** runs one statement on the database itself (parameters $1, $2…), as an older host or an operator would */
  exec(sql: string, params?: unknown[]): Promise<void>;
  drop(): Promise<void>;
}

export interface Backend {
  name: 'SQLite' | 'PostgreSQL';
  fresh(): Promise<FreshDatabase>;
}

export const tempDir = (prefix = 'users-test-'): string => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

/** Every file under `dir` (bounded: a database folder, not a disk). */
function filesUnder(dir: string, limit = 10_000): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (out.length >= limit) return;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

const readAll = (dir: string): Buffer => Buffer.concat(filesUnder(dir).map((f) => fs.readFileSync(f)));

export const sqliteBackend: Backend = {
  name: 'SQLite',
  async fresh() {
    const dir = tempDir();
    return {
      open: () => openUserStore({ dataDir: dir }),
      env: { DATA_DIR: dir, DATABASE_URL: '' }, // '' : not the server test:postgres names
      contents: async () => readAll(dir),
      async exec(sql, params = []) {
        const db = new Database(path.join(dir, 'users.sqlite'));
        try {
          // $1, $2… in order (better-sqlite3 binds ? by position)
          db.prepare(sql.replace(/\$\d+/g, '?')).run(...params);
        } finally {
          db.close();
        }
      },
      drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  },
};

export const databaseUrl = process.env.DATABASE_URL;

export const postgresBackend: Backend = {
  name: 'PostgreSQL',
  async fresh() {
    const base = new URL(databaseUrl!);
    const name = `users_test_${crypto.randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    const url = new URL(base);
    url.pathname = `/${name}`;
    const dir = tempDir();
    return {
      open: () => openUserStore({ dataDir: dir, databaseUrl: url.toString() }),
      env: { DATA_DIR: dir, DATABASE_URL: url.toString() },
      async contents() {
        const c = new pg.Client({ connectionString: url.toString() });
        await c.connect();
        try {
          const tables = await c.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'");
          const parts: string[] = [];
          for (const { t } of tables.rows) {
            const rows = await c.query(`SELECT * FROM "${t}"`);
            parts.push(JSON.stringify(rows.rows));
          }
          // and the server's files (WAL included), where `npm run test:postgres` says where they are
          await c.query('CHECKPOINT').catch(() => {});
          const files = process.env.PGDATA ? readAll(process.env.PGDATA) : Buffer.alloc(0);
          return Buffer.concat([Buffer.from(parts.join('\n')), files]);
        } finally {
          await c.end();
        }
      },
      async exec(sql, params = []) {
        const c = new pg.Client({ connectionString: url.toString() });
        await c.connect();
        try {
          await c.query(sql, params);
        } finally {
          await c.end();
        }
      },
      async drop() {
        fs.rmSync(dir, { recursive: true, force: true });
        const c = new pg.Client({ connectionString: databaseUrl });
        await c.connect();
        try {
          await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        } finally {
          await c.end();
        }
      },
    };
  },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` every 10 ms until it is true, at most `boundMs` (and then some, to report how late);
 * returns the milliseconds it took, or Infinity.
 */
export async function msUntil(check: () => Promise<boolean>, boundMs = 3_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < boundMs) {
    if (await check()) return Date.now() - t0;
    await sleep(10);
  }
  return Infinity;
}
