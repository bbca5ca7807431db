// The user store's entry: `import { openUserStore } from './users'`. PostgreSQL when DATABASE_URL is
// given (users shared by every host), else SQLite in DATA_DIR/users.sqlite (the embedded default).
import { SqliteUserStore } from './sqlite';
import type { UserStore } from './types';

export * from './types';
export { validUsername } from './rules';

export interface UserStoreOptions {
  dataDir: string;
  /** postgres://…: users and admin keys in PostgreSQL */
  databaseUrl?: string;
  /** PostgreSQL connections this process may hold at most (default 10) */
  poolSize?: number;
}

/** Opens the store and applies its migrations; rejects with UserStoreUnavailableError when it cannot. */
export async function openUserStore(opts: UserStoreOptions): Promise<UserStore> {
  if (opts.databaseUrl) {
    const { PostgresUserStore } = await import('./postgres');
    return PostgresUserStore.open(opts.databaseUrl, { poolSize: opts.poolSize });
  }
  return new SqliteUserStore(opts.dataDir);
}
