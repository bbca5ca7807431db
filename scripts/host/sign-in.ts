// Signing in with a username and a password, and what slows down guessing. Failed sign-ins are counted
// in the user store (so every host sees them) per username and per client address; past a few free
// failures each further try must wait a delay that doubles, and is refused 429 with Retry-After until
// then, without the password being checked. A success clears the username's count (not the address's:
// an attacker's own account must not reset the count of the address it guesses from; its own try is
// only taken back).
import net from 'node:net';
import type { LoginFailures, User, UserStore } from './users/types';
import { needsRehash, hashPassword, verifyPassword } from './passwords';
import { usernameCandidates } from './users/rules';

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

// one count for every way of typing a name (its NFKC form, when that fits), or alternating forms would be fresh counts
const usernameBucket = (username: string) => `u:${usernameCandidates(username).at(-1) ?? username}`;
const addressBucket = (address: string) => `ip:${addressKey(address)}`;

/**
 * The share of addresses one client is taken to hold, for the limits: an IPv4 address as it is (an
 * IPv4-mapped IPv6 one as its IPv4 address), an IPv6 address as its /64 (one subscriber's usual share:
 * its other addresses must not be fresh counts). Anything else is kept whole.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped && net.isIPv4(mapped[1])) return mapped[1];
  if (!net.isIPv6(address)) return address;
  const groups = (part: string) => (part === '' ? [] : part.split(':')).flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  const [head, tail] = address.split('%')[0].split('::');
  const front = groups(head);
  const back = tail === undefined ? [] : groups(tail);
  const full = [...front, ...Array(Math.max(0, 8 - front.length - back.length)).fill('0'), ...back];
  return `${full.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

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
 * The try is counted as a failure of the address and of the username before the password is checked
 * (on success the username's count is cleared and the address's try taken back): of many tries sent at
 * once, only those the counts allow are checked (the rest are 429), so guesses sent in parallel, at
 * one username or at many, get no more checks than guesses sent one by one.
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

  // the address first: a try refused for the username's count still counts against its address
  await claimTry(store, addrBucket, seenAddr, limits.freePerAddress, limits, now);
  await claimTry(store, userBucket, seenUser, limits.freePerUsername, limits, now);

  const found = await store.passwordOf(input.username);
  const usable = found && !found.user.disabled ? found.passwordHash : undefined;
  let ok: boolean;
  try {
    ok = await verifyPassword(input.password, usable);
  } catch (err) {
    // never checked (PasswordsBusyError: too many at once): the try is taken back from both counts
    await Promise.all([store.forgiveLoginFailure(userBucket), store.forgiveLoginFailure(addrBucket)]);
    throw err;
  }
  if (!ok || !found) {
    // the delays run from the failure, not from the try's start (the check may have waited its turn)
    await Promise.all([restamp(store, userBucket), restamp(store, addrBucket)]);
    throw new WrongCredentials();
  }
  await Promise.all([store.clearLoginFailures(userBucket), store.forgiveLoginFailure(addrBucket)]);
  if (usable && needsRehash(usable)) await store.setPasswordHash({ id: found.user.id }, await hashPassword(input.password));
  return found.user;
}
