// The user store's one interface (DESIGN.md: "users"). Two implementations: SQLite in DATA_DIR (the
// embedded default) and PostgreSQL with DATABASE_URL. Every method is async, so both fit; the host
// never knows which one it has. One conformance suite (test/users/) runs on both.
//
// Keys (user keys and admin keys) are kept only as SHA-256 digests (`keyDigest` in ../admin-key.ts).
// Passwords (issue #16) are kept only as the KDF's encoded hash string, made and checked by the host;
// the store keeps the string and never looks inside it.

export interface User {
  id: number;
  username: string;
  /** a disabled user's keys are refused; its files stay */
  disabled: boolean;
  /** ISO 8601 */
  createdAt: string;
  updatedAt: string;
}

export interface NewUser extends User {
  /** the one time the key is seen in clear: on creation and on rotation */
  user_key: string;
}

export interface AdminKeyInfo {
  id: number;
  label: string;
  createdAt: string;
  /** null while the key works */
  revokedAt: string | null;
}

export interface NewAdminKey extends AdminKeyInfo {
  key: string;
}

/** Failed sign-ins counted for one bucket ("u:<username>" or "ip:<address>"), shared by every host. */
export interface LoginFailures {
  failures: number;
  /** ms since the epoch of the last failure; 0 when none */
  lastFailureAt: number;
}

/** sign-in keys one user may hold at once (devices signed in); the oldest go first */
export const MAX_SIGN_IN_KEYS = 20;

export interface SetPasswordOptions {
  endSignInKeys?: { except?: Buffer };
}

/** A removed user whose `<id>/` prefix is still swept (UserStore.recordRemoval). */
export interface Removal {
  id: number;
  sweepUntil: number;
}

export type UserRef = { id: number } | { username: string };

/** The store cannot be reached or failed: the host answers 503, never 500 and never a wrong 401. */
export class UserStoreUnavailableError extends Error {}
export class UsernameTakenError extends Error {
  constructor(username: string) {
    super(`username "${username}" is taken`);
  }
}
export class InvalidUsernameError extends Error {}
export class NoSuchUserError extends Error {}
/** A label or a caller-given admin key the store refuses (the message says which rule). */
export class InvalidAdminKeyError extends Error {}
/** addAdminKey with a key that is (or was: revoked keys stay refused) already an admin key. */
export class AdminKeyTakenError extends Error {}

export interface UserStore {
  /** 'sqlite' or 'postgres', for logs and figures */
  readonly kind: string;

  /** A new user with a fresh key; `passwordHash` when it is made with a password. */
  createUser(username: string, opts?: { passwordHash?: string }): Promise<NewUser>;
  /**
   * The enabled user whose key has this digest, or undefined. Found users may be cached, but no cached
   * answer may outlive a change made on any host (rotate, disable, delete) by more than 1 s.
   */
  findByKeyDigest(digest: Buffer): Promise<User | undefined>;
  getUser(ref: UserRef): Promise<User | undefined>;
  /** by id, ascending; `afterId` pages */
  listUsers(opts?: { limit?: number; afterId?: number }): Promise<User[]>;
  /**
   * A new key for the user; the old one, and every sign-in key, is refused from now on (every host
   * within 1 s).
   */
  rotateKey(ref: UserRef): Promise<NewUser>;
  /**
   * #16: one more key for the user, for one signed-in device (keys are kept hashed, so a sign-in cannot
   * hand back an existing one). The user's key keeps working; past MAX_SIGN_IN_KEYS the oldest sign-in
   * keys are dropped. rotateKey and deleting end them all; a disabled user's are refused while it is.
   */
  issueSignInKey(ref: UserRef): Promise<NewUser>;
  setDisabled(ref: UserRef, disabled: boolean): Promise<User>;
  /** Removes the user and its keys; true when there was one. (Its files are the host's business.) */
  deleteUser(ref: UserRef): Promise<boolean>;

  /**
   * Users removed with their files, whose prefix is swept again until `sweepUntil` (ms since the epoch):
   * links given out before the removal (up to 7 days) and requests admitted before it can still write
   * there. recordRemoval keeps the later of two times; forgetRemoval ends the sweeping.
   */
  recordRemoval(id: number, sweepUntil: number): Promise<void>;
  removals(): Promise<Removal[]>;
  forgetRemoval(id: number): Promise<void>;

  /** #16: the stored password hash (null: the user has no password), with the user. */
  passwordOf(username: string): Promise<{ user: User; passwordHash: string | null } | undefined>;
  /**
   * Sets (or with null clears) the password. With `endSignInKeys` the user's sign-in keys end in the same
   * change (every host within 1 s), but for `except` (a key's digest: the caller's own); the user's own key
   * is left alone (rotateKey ends it). Answers how many sign-in keys ended.
   */
  setPasswordHash(ref: UserRef, passwordHash: string | null, opts?: SetPasswordOptions): Promise<number>;
  /** #16: brute-force counters, in the store so that they hold across hosts. */
  recordLoginFailure(bucket: string, now: number): Promise<LoginFailures>;
  loginFailures(bucket: string): Promise<LoginFailures>;
  /** Takes back one failure (never below zero): a try counted before its check, which then succeeded. */
  forgiveLoginFailure(bucket: string): Promise<void>;
  clearLoginFailures(bucket: string): Promise<void>;

  /**
   * Admin keys: several may work at once, so that one can be rotated without downtime. `key` (at least
   * 16 characters) when the caller chose it, else a fresh one; label up to 100 characters.
   */
  addAdminKey(label: string, key?: string): Promise<NewAdminKey>;
  /** Makes sure this key (ADMIN_KEY, or DATA_DIR/admin-key) works, as the first one; idempotent. */
  ensureAdminKey(key: string, label: string): Promise<void>;
  listAdminKeys(): Promise<AdminKeyInfo[]>;
  /** true when a working key with this id was revoked now (false: none, or revoked before) */
  revokeAdminKey(id: number): Promise<boolean>;
  /** true when a working admin key has this digest (cached as users are, same 1 s bound) */
  isAdminKeyDigest(digest: Buffer): Promise<boolean>;

  close(): Promise<void>;
}
