// Signing in with a username and a password, and what slows down guessing. Failed sign-ins are counted
// in the user store (so every host sees them) per username and per client address; past a few free
// failures each further try must wait a delay that doubles, and is refused 429 with Retry-After until
// then, without the password being checked. A success clears the username's count (not the address's:
// an attacker's own account must not reset the count of the address it guesses from).
import type { LoginFailures, User, UserStore } from './users/types';
import { needsRehash, hashPassword, verifyPassword } from './passwords';

export interface SignInLimits {
  /** failures per username before delays start */
  freePerUsername: number;
  /** failures per client address before delays start */
  freePerAddress: number;
  /** the first delay; each further failure doubles it */
  delayMs: number;
  maxDelayMs: number;
  /** a count with no failure for this long starts again from zero */
  forgetAfterMs: number;
}

export const DEFAULT_SIGN_IN_LIMITS: SignInLimits = {
  freePerUsername: 5,
  freePerAddress: 20,
  delayMs: 1_000,
  maxDelayMs: 15 * 60_000,
  forgetAfterMs: 24 * 3600_000,
};

export class SignInThrottled extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super(`too many failed sign-ins; try again in ${retryAfterSeconds} s`);
  }
}
export class WrongCredentials extends Error {
  constructor() {
    super('invalid username or password');
  }
}

const usernameBucket = (username: string) => `u:${username}`;
const addressBucket = (address: string) => `ip:${address}`;

/** ms until a bucket with these failures may try again (0: now). */
function waitFor(seen: LoginFailures, free: number, limits: SignInLimits, now: number): number {
  if (seen.failures < free || now - seen.lastFailureAt > limits.forgetAfterMs) return 0;
  const delay = Math.min(limits.maxDelayMs, limits.delayMs * 2 ** Math.min(30, seen.failures - free));
  return Math.max(0, seen.lastFailureAt + delay - now);
}

/** Counts one failure; a count idle for forgetAfterMs starts again from zero. */
async function countFailure(store: UserStore, bucket: string, seen: LoginFailures, limits: SignInLimits, now: number): Promise<LoginFailures> {
  if (seen.failures > 0 && now - seen.lastFailureAt > limits.forgetAfterMs) await store.clearLoginFailures(bucket);
  return store.recordLoginFailure(bucket, now);
}

/**
 * The user these credentials name, or WrongCredentials (the same for an unknown username, a user
 * without a password, a disabled user and a wrong password, after the same work), or SignInThrottled.
 *
 * The username's try is counted as a failure before the password is checked, and cleared on success:
 * of many tries sent at once, only those the count allows are checked (the rest are 429), so guesses
 * sent in parallel get no more checks than guesses sent one by one.
 */
export async function signIn(
  store: UserStore,
  input: { username: string; password: string; address: string },
  limits: SignInLimits = DEFAULT_SIGN_IN_LIMITS,
  now = Date.now(),
): Promise<User> {
  const userBucket = usernameBucket(input.username);
  const addrBucket = addressBucket(input.address);
  const [seenUser, seenAddr] = await Promise.all([store.loginFailures(userBucket), store.loginFailures(addrBucket)]);
  const wait = Math.max(waitFor(seenUser, limits.freePerUsername, limits, now), waitFor(seenAddr, limits.freePerAddress, limits, now));
  if (wait > 0) throw new SignInThrottled(Math.ceil(wait / 1000));

  const claimed = await countFailure(store, userBucket, seenUser, limits, now);
  const stale = now - seenUser.lastFailureAt > limits.forgetAfterMs;
  const expected = (stale ? 0 : seenUser.failures) + 1;
  if (claimed.failures > limits.freePerUsername && claimed.failures !== expected) {
    throw new SignInThrottled(Math.ceil(Math.max(1000, limits.delayMs) / 1000));
  }

  const found = await store.passwordOf(input.username);
  const usable = found && !found.user.disabled ? found.passwordHash : undefined;
  const ok = await verifyPassword(input.password, usable);
  if (!ok || !found) {
    await countFailure(store, addrBucket, seenAddr, limits, Date.now());
    throw new WrongCredentials();
  }
  await store.clearLoginFailures(userBucket);
  if (usable && needsRehash(usable)) await store.setPasswordHash({ id: found.user.id }, await hashPassword(input.password));
  return found.user;
}
