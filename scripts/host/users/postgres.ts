// placeholder until the PostgreSQL store lands (next commits)
import { UserStoreUnavailableError, type UserStore } from './types';

export class PostgresUserStore {
  static open(_url: string, _opts: { poolSize?: number }): Promise<UserStore> {
    return Promise.reject(new UserStoreUnavailableError('the PostgreSQL user store is not built yet'));
  }
}
