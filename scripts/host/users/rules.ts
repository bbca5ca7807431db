// The user store's input rules and key making, shared by both implementations: one place for each rule.
import crypto from 'node:crypto';
import { InvalidAdminKeyError, InvalidUsernameError, type SetPasswordOptions, type UserRef } from './types';

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
export const MAX_LABEL_LENGTH = 100;
export const MIN_CHOSEN_ADMIN_KEY_LENGTH = 16;
const MAX_KEY_LENGTH = 256;
const MAX_PASSWORD_HASH_LENGTH = 1024;
const MAX_BUCKET_LENGTH = 300;
export const MAX_LIST_LIMIT = 1000;

/** The shape rules, on a name as it is stored. */
function fitsUsernameRule(name: string): boolean {
  return (
    name.length >= 1 &&
    name.length <= 150 &&
    name.trim() === name &&
    !CONTROL_CHARACTERS.test(name) &&
    // no lone surrogate: it has no UTF-8 form (Node 24 stores each as U+FFFD, so two would collide)
    !/\p{Cs}/u.test(name)
  );
}

/**
 * The one form a username is stored, compared and counted in: NFKC (as Django normalises usernames),
 * so that "José" composed and decomposed, or fullwidth "ａｌｉｃｅ" and "alice", are one name and no
 * user can pose as another with a name that looks the same.
 */
export const normalUsername = (name: string): string => name.normalize('NFKC');

/** A name that fits the rules once normalised (the rules apply to the stored form: NFKC may lengthen it). */
export function validUsername(username: unknown): username is string {
  return typeof username === 'string' && fitsUsernameRule(normalUsername(username));
}

export const USERNAME_RULE = 'username must be 1..150 characters once NFKC-normalised, no control characters, lone surrogates or outer spaces';

/** The normalised name, or InvalidUsernameError. */
export function checkUsername(username: unknown): string {
  if (!validUsername(username)) throw new InvalidUsernameError(USERNAME_RULE);
  return normalUsername(username);
}

/**
 * The stored names a typed username may mean, in order: when it is not in NFKC form, first the name
 * exactly as typed (only a user made before names were normalised can have it: that user keeps its
 * name, even where another's is its NFKC form), then its NFKC form, which every user made since has.
 */
export function usernameCandidates(username: unknown): string[] {
  if (typeof username !== 'string') return [];
  const normal = normalUsername(username);
  const out = username !== normal && fitsUsernameRule(username) ? [username] : [];
  if (fitsUsernameRule(normal)) out.push(normal);
  return out;
}

/** A stored name not in NFKC form (made before names were normalised): its NFKC form, which it holds taken. */
export const legacyNormalForm = (stored: string): string | null => (normalUsername(stored) === stored ? null : normalUsername(stored));

export function checkLabel(label: unknown): string {
  if (typeof label !== 'string' || label.length > MAX_LABEL_LENGTH || CONTROL_CHARACTERS.test(label)) {
    throw new InvalidAdminKeyError(`an admin key's label is a string of at most ${MAX_LABEL_LENGTH} characters, no control characters`);
  }
  return label;
}

export function checkChosenAdminKey(key: unknown): string {
  if (typeof key !== 'string' || key.length < MIN_CHOSEN_ADMIN_KEY_LENGTH || key.length > MAX_KEY_LENGTH || /\s/.test(key)) {
    throw new InvalidAdminKeyError(
      `an admin key is ${MIN_CHOSEN_ADMIN_KEY_LENGTH}..${MAX_KEY_LENGTH} characters without spaces or control characters`,
    );
  }
  return key;
}

/** ensureAdminKey's key (ADMIN_KEY or DATA_DIR/admin-key) is the operator's: any non-empty string fits. */
export function checkOperatorAdminKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new InvalidAdminKeyError(`an admin key is 1..${MAX_KEY_LENGTH} characters`);
  }
  return key;
}

export function checkPasswordHash(hash: unknown): string | null {
  if (hash === null) return null;
  if (typeof hash !== 'string' || hash.length === 0 || hash.length > MAX_PASSWORD_HASH_LENGTH || CONTROL_CHARACTERS.test(hash)) {
    throw new TypeError(`a password hash is null or 1..${MAX_PASSWORD_HASH_LENGTH} characters without control characters`);
  }
  return hash;
}

export function checkBucket(bucket: unknown): string {
  if (typeof bucket !== 'string' || bucket.length === 0 || bucket.length > MAX_BUCKET_LENGTH) {
    throw new TypeError(`a login-failure bucket is 1..${MAX_BUCKET_LENGTH} characters`);
  }
  return bucket;
}

export function checkTime(now: unknown): number {
  if (typeof now !== 'number' || !Number.isSafeInteger(now) || now < 0) {
    throw new TypeError('a time is whole milliseconds since the epoch');
  }
  return now;
}

export function checkId(id: unknown, what = 'an id'): number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw new TypeError(`${what} is a positive integer`);
  return id;
}

export function checkListOptions(opts: { limit?: number; afterId?: number } = {}): { limit: number; afterId: number } {
  const limit = opts.limit ?? MAX_LIST_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new RangeError(`limit is 1..${MAX_LIST_LIMIT}`);
  }
  const afterId = opts.afterId ?? 0;
  if (!Number.isSafeInteger(afterId) || afterId < 0) throw new RangeError('afterId is a whole number');
  return { limit, afterId };
}

/**
 * Which column a UserRef names, and the values to try in turn (usernameCandidates). A username that
 * breaks the rules names nobody (`values: []`): no such user can exist, so it is "not found", not a
 * malformed call.
 */
export function refColumn(ref: UserRef): { column: 'id' | 'username'; values: Array<number | string> } {
  if (ref && typeof ref === 'object' && 'id' in ref) return { column: 'id', values: [checkId(ref.id, "a user's id")] };
  if (ref && typeof ref === 'object' && 'username' in ref) return { column: 'username', values: usernameCandidates(ref.username) };
  throw new TypeError('a user is named by { id } or { username }');
}

/** setPasswordHash's options: what to end with the password, or undefined for nothing. */
export function checkEndSignInKeys(opts: SetPasswordOptions): { except?: Buffer } | undefined {
  const end = opts?.endSignInKeys;
  if (end === undefined) return undefined;
  if (typeof end !== 'object' || end === null || (end.except !== undefined && !isDigest(end.except))) {
    throw new TypeError('endSignInKeys is { except?: a key digest }');
  }
  return end;
}

/** A SHA-256 digest, as keyDigest() makes: anything else matches no key. */
export function isDigest(digest: unknown): digest is Buffer {
  return Buffer.isBuffer(digest) && digest.length === 32;
}

export const newUserKey = (): string => crypto.randomBytes(20).toString('hex');
export const newAdminKey = (): string => crypto.randomBytes(24).toString('hex');
