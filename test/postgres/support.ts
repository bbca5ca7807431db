// For the suites `npm run test:postgres` runs: a database of their own on the PostgreSQL server it
// brings up (DATABASE_URL), and two hosts over it with separate DATA_DIRs (nothing shared on disk).
import crypto from 'node:crypto';
import pg from 'pg';
import { startHost, tempDir, type StartedHost } from '../support/host';
import type { TestStore } from '../support/store';

export const serverUrl = process.env.DATABASE_URL;
/** Without a server (plain `npm test`) these suites are skipped, and say so once. */
export const describeWithPostgres = serverUrl ? describe : describe.skip;
if (!serverUrl) console.log('test/postgres skipped: no DATABASE_URL (run `npm run test:postgres`)');

/** A new empty database on the server; `drop` removes it (after the hosts over it have stopped). */
export async function freshDatabase(): Promise<{ url: string; password: string; drop: () => Promise<void> }> {
  const name = `hosts_test_${crypto.randomBytes(6).toString('hex')}`;
  const query = async (sql: string) => {
    const c = new pg.Client({ connectionString: serverUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await query(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl!);
  url.pathname = `/${name}`;
  return { url: url.toString(), password: decodeURIComponent(url.password), drop: () => query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

export const ADMIN_KEY = `pg-hosts-admin-${crypto.randomBytes(8).toString('hex')}`;

/** Two hosts over one database and one bucket, each with its own DATA_DIR. */
export async function twoHosts(databaseUrl: string, store: TestStore, extra: Record<string, string> = {}): Promise<[StartedHost, StartedHost]> {
  const env = { ...store.config, DATABASE_URL: databaseUrl, ADMIN_KEY, ...extra };
  // started together: migrations and the admin key must be safe when several hosts start at once
  const [a, b] = await Promise.all([startHost({ env, dataDir: tempDir() }), startHost({ env, dataDir: tempDir() })]);
  return [a, b];
}
