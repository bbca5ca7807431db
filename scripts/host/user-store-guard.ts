// The host's one view of the user store: whatever goes wrong inside it (PostgreSQL restarting, a
// dropped connection, a driver error) reaches the host as UserStoreUnavailableError, which the server
// answers 503 users_unavailable with Retry-After: never a 500, and never a 401 for a key that may be good.
import {
  AdminKeyTakenError,
  InvalidAdminKeyError,
  InvalidUsernameError,
  NoSuchUserError,
  UsernameTakenError,
  UserStoreUnavailableError,
  type UserStore,
} from './users/types';

/**
 * The store's answers about the request itself (a bad name, a taken one, no such user) are passed on as
 * they are, and so are TypeError and RangeError: the store's word that the host called it wrongly (a bug
 * here, worth its 500 and its stack in the log, not a store to wait for).
 */
const REFUSALS = [InvalidUsernameError, UsernameTakenError, NoSuchUserError, InvalidAdminKeyError, AdminKeyTakenError, TypeError, RangeError];

/**
 * Wraps every method of the store. The first failure after a good call is logged with its message, and
 * the next good call says the store is back: one line each way, however many calls fail meanwhile.
 */
export function guardUserStore(store: UserStore, log: (line: string) => void): UserStore {
  let failing = false;
  const guarded = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    let result: T;
    try {
      result = await run();
    } catch (err) {
      if (REFUSALS.some((E) => err instanceof E)) throw err;
      if (!failing) {
        failing = true;
        log(`user store (${store.kind}) failing: ${name}: ${(err as Error)?.message ?? String(err)}`);
      }
      throw err instanceof UserStoreUnavailableError ? err : new UserStoreUnavailableError(`the user store failed (${name})`);
    }
    if (failing) {
      failing = false;
      log(`user store (${store.kind}) answering again`);
    }
    return result;
  };
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== 'function') return value;
      let w = wrapped.get(prop);
      if (!w) {
        const method = value as (...a: unknown[]) => Promise<unknown>;
        w = prop === 'close' ? method.bind(target) : (...args: unknown[]) => guarded(String(prop), () => method.apply(target, args));
        wrapped.set(prop, w);
      }
      return w;
    },
  });
}
