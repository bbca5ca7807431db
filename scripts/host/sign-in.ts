// Signing in with a username and a password, and what slows down guessing. Failed sign-ins are counted
// in the user store (so every host sees them) per username from each client address, per username from
// all addresses together (a looser bound), and per client address; past a few free failures each
// further try must wait a delay that doubles, and is refused 429 with Retry-After until then, without
// the password being checked. Wrong passwords sent from one address hold the name at that address
// only: from anywhere else its owner can still sign in, until the name's looser all-address bound.
// A success clears the username's counts (not the address's: an attacker's own account must not reset
// the count of the address it guesses from; its own try is only taken back).
import { createHash } from 'node:crypto';
import { addressKey } from '../store/address';
import type { LoginFailures, User, UserStore } from './users/types';
import { needsRehash, hashPassword, verifyPassword } from './passwords';
import { usernameCandidates } from './users/rules';

export interface SignInLimits {
  /** failures per username from one client address before delays start */
  freePerUsername: number;
  /** failures per username from all addresses together before delays start (guessing from many) */
  freePerUsernameTotal: number;
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
  freePerUsernameTotal: 100,
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

// one count for every way of typing a name (its NFKC form, when that fits), or alternating forms would be fresh counts
const countedName = (username: string) => usernameCandidates(username).at(-1) ?? username;
const usernameBucket = (username: string) => `u:${countedName(username)}`;
const addressBucket = (address: string) => `ip:${addressKey(address)}`;
// hashed: a username (150 characters) and an address kept whole could pass a bucket's 300
const pairBucket = (username: string, address: string) =>
  `p:${createHash('sha256').update(`${addressKey(address)}\n${countedName(username)}`).digest('base64url')}`;

// addressKey (an IPv6 client as its /64) is the store's too: it lives in scripts/store/address.ts
export { addressKey };

/** ms until a bucket with these failures may try again (0: now). */
function waitFor(seen: LoginFailures, free: number, limits: SignInLimits, now: number): number {
  if (seen.failures < free || now - seen.lastFailureAt > limits.forgetAfterMs) return 0;
  const delay = Math.min(limits.maxDelayMs, limits.delayMs * 2 ** Math.min(30, seen.failures - free));
  return Math.max(0, seen.lastFailureAt + delay - now);
}

/**
 * Counts this try as a failure before its check (a count idle for forgetAfterMs starts again from zero).
 * Of many tries sent at once only those the count allows are checked: past the free ones, a try that
 * finds the count moved by others since it read it is refused.
 */
async function claimTry(store: UserStore, bucket: string, seen: LoginFailures, free: number, limits: SignInLimits, now: number): Promise<void> {
  const stale = now - seen.lastFailureAt > limits.forgetAfterMs;
  if (seen.failures > 0 && stale) await store.clearLoginFailures(bucket);
  const claimed = await store.recordLoginFailure(bucket, now);
  const expected = (stale ? 0 : seen.failures) + 1;
  if (claimed.failures > free && claimed.failures !== expected) {
    throw new SignInThrottled(Math.ceil(Math.max(1000, limits.delayMs) / 1000));
  }
}

/**
 * Moves a bucket's last failure to now, its count unchanged. Counted up first: a try sent meanwhile
 * sees the count moved and is refused, never let through.
 */
async function restamp(store: UserStore, bucket: string): Promise<void> {
  await store.recordLoginFailure(bucket, Date.now());
  await store.forgiveLoginFailure(bucket);
}

/**
 * The user these credentials name, or WrongCredentials (the same for an unknown username, a user
 * without a password, a disabled user and a wrong password, after the same work), or SignInThrottled.
 *
 * The try is counted as a failure of the address, of the username from that address and of the
 * username before the password is checked (on success the username's counts are cleared and the
 * address's try taken back): of many tries sent at once, only those the counts allow are checked (the
 * rest are 429), so guesses sent in parallel, at one username or at many, get no more checks than
 * guesses sent one by one.
 */
export async function signIn(
  store: UserStore,
  input: { username: string; password: string; address: string },
  limits: SignInLimits = DEFAULT_SIGN_IN_LIMITS,
  now = Date.now(),
): Promise<User> {
  const buckets = [
    { bucket: addressBucket(input.address), free: limits.freePerAddress },
    { bucket: pairBucket(input.username, input.address), free: limits.freePerUsername },
    { bucket: usernameBucket(input.username), free: limits.freePerUsernameTotal },
  ];
  const [addr, pair, user] = buckets.map((b) => b.bucket);
  const seen = await Promise.all(buckets.map((b) => store.loginFailures(b.bucket)));
  const wait = Math.max(...buckets.map((b, i) => waitFor(seen[i], b.free, limits, now)));
  if (wait > 0) throw new SignInThrottled(Math.ceil(wait / 1000));

  // the address first: a try refused for the username's counts still counts against its address
  for (const [i, b] of buckets.entries()) await claimTry(store, b.bucket, seen[i], b.free, limits, now);

  const found = await store.passwordOf(input.username);
  const usable = found && !found.user.disabled ? found.passwordHash : undefined;
  let ok: boolean;
  try {
    ok = await verifyPassword(input.password, usable);
  } catch (err) {
    // never checked (PasswordsBusyError: too many at once): the try is taken back from both counts
    await Promise.all([addr, pair, user].map((b) => store.forgiveLoginFailure(b)));
    throw err;
  }
  if (!ok || !found) {
    // the delays run from the failure, not from the try's start (the check may have waited its turn)
    await Promise.all([addr, pair, user].map((b) => restamp(store, b)));
    throw new WrongCredentials();
  }
  await Promise.all([store.clearLoginFailures(pair), store.clearLoginFailures(user), store.forgiveLoginFailure(addr)]);
  if (usable && needsRehash(usable)) await store.setPasswordHash({ id: found.user.id }, await hashPassword(input.password));
  return found.user;
}
