// The admin routes for users and admin keys, shaped like the platform's (Syncano v2):
//
//   /v2/instances/<instance>/users/                  GET list (?limit, ?after), POST create {"username"}
//   /v2/instances/<instance>/users/<id>/             GET, PATCH {"disabled", "password"} (a password set ends the
//                                                    user's sign-in keys), DELETE (?remove_files=true)
//   /v2/instances/<instance>/users/<id>/reset_key/   POST: a new user key; the old one is refused from now on
//   /v2/instances/<instance>/api_keys/               GET list, POST add {"description"?}
//   /v2/instances/<instance>/api_keys/<id>/          GET, DELETE (revoke)
//
// Every one needs an admin key, checked by the server before it reads a body; these handlers see only
// the call's arguments. Files are the socket's business: removing a user's files goes through the
// socket's own user-list and user-delete endpoints (callAsUser), never through src/lib's storage; only
// the prefix rule comes from there (src/lib/user-prefix.ts).
import { MAX_EXPIRE } from '../../src/lib/defaults';
import { userPrefix } from '../../src/lib/user-prefix';
import type { HandlerAnswer } from './invoke';
import { hashPassword, passwordProblem, PasswordsBusyError } from './passwords';
import { errorAnswer, jsonAnswer } from './invoke';
import type { AdminKeyInfo, User, UserStore } from './users/types';
import { AdminKeyTakenError, InvalidAdminKeyError, InvalidUsernameError, NoSuchUserError, UsernameTakenError } from './users/types';

export type AdminRoute =
  | { kind: 'users' }
  | { kind: 'user'; id: string }
  | { kind: 'reset_key'; id: string }
  | { kind: 'api_keys' }
  | { kind: 'api_key'; id: string };

export const ADMIN_ROUTE_METHODS: Record<AdminRoute['kind'], string[]> = {
  users: ['GET', 'POST', 'OPTIONS'],
  user: ['GET', 'PATCH', 'DELETE', 'OPTIONS'],
  reset_key: ['POST', 'OPTIONS'],
  api_keys: ['GET', 'POST', 'OPTIONS'],
  api_key: ['GET', 'DELETE', 'OPTIONS'],
};

/** The admin route of a path's segments (after /v2/instances/<instance>/), or undefined. */
export function adminRoute(rest: string[]): AdminRoute | undefined {
  const [collection, id, action] = rest;
  if (collection === 'users') {
    if (rest.length === 1) return { kind: 'users' };
    if (rest.length === 2) return { kind: 'user', id };
    if (rest.length === 3 && action === 'reset_key') return { kind: 'reset_key', id };
  } else if (collection === 'api_keys') {
    if (rest.length === 1) return { kind: 'api_keys' };
    if (rest.length === 2) return { kind: 'api_key', id };
  }
  return undefined;
}

export interface AdminRouteDeps {
  instance: string;
  users: UserStore;
  /** Runs one of the socket's endpoints with meta.user set to this user (the host's invoke path). */
  callAsUser: (endpoint: string, user: User, args: Record<string, unknown>) => Promise<HandlerAnswer>;
  /** Runs one of the socket's endpoints with meta.admin set (the host's invoke path). */
  callAsAdmin: (endpoint: string, args: Record<string, unknown>) => Promise<HandlerAnswer>;
}

type Args = Record<string, unknown>;

const PAGE_DEFAULT = 100;
const PAGE_MAX = 1000;
/** user-list pages of this many names, each deleted with one user-delete call */
const REMOVAL_PAGE = 1000;
/** at most this many pages (10 million files) in one DELETE; past it the user is kept and the answer says so */
const MAX_REMOVAL_PAGES = 10_000;
/** names of removed files listed in the answer (all are counted) */
const NAMES_SHOWN = 1000;
const ERRORS_SHOWN = 100;

class Refusal extends Error {
  constructor(readonly answer: HandlerAnswer) {
    super(answer.status.toString());
  }
}
const badArgument = (message: string) => new Refusal(errorAnswer(400, 'invalid_argument', message));
const notFound = (message: string) => new Refusal(errorAnswer(404, 'not_found', message));

/**
 * Only these arguments may come; any other is a mistake of the caller's worth saying. A JSON body's
 * own "__proto__" member is the exception: never read, it is let pass as the endpoints let it.
 */
function onlyArgs(args: Args, allowed: string[]): void {
  const unknown = Object.keys(args).filter((k) => k !== '__proto__' && !allowed.includes(k));
  if (unknown.length) {
    throw badArgument(`unknown argument${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ' (none is taken here)'}`);
  }
}

/** An id in a path or argument: a positive integer in decimal, as the store gives them. */
function idOf(raw: unknown, what: string): number {
  const s = typeof raw === 'number' ? String(raw) : raw;
  if (typeof s !== 'string' || !/^[1-9][0-9]{0,15}$/.test(s) || !Number.isSafeInteger(Number(s))) {
    throw badArgument(`${what} must be a positive integer`);
  }
  return Number(s);
}

/** true/false as JSON gives them, or "true"/"false" as a form or the query does. */
function flagOf(raw: unknown, what: string): boolean {
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  throw badArgument(`${what} must be true or false`);
}

const userView = (u: User) => ({ id: u.id, username: u.username, disabled: u.disabled, created_at: u.createdAt, updated_at: u.updatedAt });
const keyView = (k: AdminKeyInfo) => ({ id: k.id, description: k.label, created_at: k.createdAt, revoked_at: k.revokedAt });

export async function handleAdminRoute(route: AdminRoute, method: string, args: Args, deps: AdminRouteDeps): Promise<HandlerAnswer> {
  try {
    return await dispatchAdmin(route, method, args, deps);
  } catch (err) {
    if (err instanceof Refusal) return err.answer;
    if (err instanceof InvalidUsernameError || err instanceof InvalidAdminKeyError) return errorAnswer(400, 'invalid_argument', err.message);
    if (err instanceof UsernameTakenError || err instanceof AdminKeyTakenError) return errorAnswer(409, 'conflict', err.message);
    if (err instanceof NoSuchUserError) return errorAnswer(404, 'not_found', err.message || 'no such user');
    throw err;
  }
}

function dispatchAdmin(route: AdminRoute, method: string, args: Args, deps: AdminRouteDeps): Promise<HandlerAnswer> {
  switch (route.kind) {
    case 'users':
      return method === 'GET' ? listUsers(args, deps) : createUser(args, deps);
    case 'user': {
      const id = idOf(route.id, 'the user id');
      if (method === 'GET') return getUser(id, args, deps);
      if (method === 'PATCH') return patchUser(id, args, deps);
      return deleteUser(id, args, deps);
    }
    case 'reset_key':
      return resetKey(idOf(route.id, 'the user id'), args, deps);
    case 'api_keys':
      return method === 'GET' ? listAdminKeys(args, deps) : addAdminKey(args, deps);
    case 'api_key':
      return method === 'GET' ? getAdminKey(idOf(route.id, 'the key id'), args, deps) : revokeAdminKey(idOf(route.id, 'the key id'), args, deps);
  }
}

/** A password argument's hash (400 with the rule it breaks); undefined when none was given. */
async function passwordHashOf(args: Args): Promise<string | undefined> {
  if (args.password === undefined) return undefined;
  const problem = passwordProblem(args.password);
  if (problem) throw badArgument(problem);
  try {
    return await hashPassword(args.password as string);
  } catch (err) {
    if (err instanceof PasswordsBusyError) throw new Refusal(jsonAnswer(503, { message: err.message, code: 'busy' }, { 'Retry-After': '1' }));
    throw err;
  }
}

async function createUser(args: Args, { users }: AdminRouteDeps): Promise<HandlerAnswer> {
  onlyArgs(args, ['username', 'password']);
  if (typeof args.username !== 'string') throw badArgument('username must be a string');
  const u = await users.createUser(args.username, { passwordHash: await passwordHashOf(args) });
  return jsonAnswer(201, { id: u.id, username: u.username, user_key: u.user_key });
}

async function listUsers(args: Args, { users, instance }: AdminRouteDeps): Promise<HandlerAnswer> {
  onlyArgs(args, ['limit', 'after']);
  const limit = args.limit === undefined ? PAGE_DEFAULT : idOf(args.limit, 'limit');
  if (limit > PAGE_MAX) throw badArgument(`limit must be from 1 to ${PAGE_MAX}`);
  const afterId = args.after === undefined ? undefined : idOf(args.after, 'after');
  const page = await users.listUsers({ limit, afterId });
  // a full page has a next one, which may turn out empty
  const next = page.length === limit ? `/v2/instances/${instance}/users/?limit=${limit}&after=${page[page.length - 1].id}` : null;
  return jsonAnswer(200, { objects: page.map(userView), next });
}

async function findUser(id: number, users: UserStore): Promise<User> {
  const u = await users.getUser({ id });
  if (!u) throw notFound(`no user with id ${id}`);
  return u;
}

async function getUser(id: number, args: Args, { users }: AdminRouteDeps): Promise<HandlerAnswer> {
  onlyArgs(args, []);
  return jsonAnswer(200, userView(await findUser(id, users)));
}

async function patchUser(id: number, args: Args, { users }: AdminRouteDeps): Promise<HandlerAnswer> {
  onlyArgs(args, ['disabled', 'password']);
  if (args.disabled === undefined && args.password === undefined) {
    throw badArgument('give {"disabled": true|false} and/or {"password": "<new password>"}');
  }
  const disabled = args.disabled === undefined ? undefined : flagOf(args.disabled, 'disabled');
  const passwordHash = await passwordHashOf(args);
  // An admin sets a password without the old one, as after a compromise: every sign-in key of the user
  // ends with it (a thief's among them), the user's own key is left alone (reset_key rotates it).
  // A missing user is the store's NoSuchUserError: 404.
  const ended = passwordHash === undefined ? undefined : await users.setPasswordHash({ id }, passwordHash, { endSignInKeys: {} });
  const user = disabled !== undefined ? await users.setDisabled({ id }, disabled) : await users.getUser({ id });
  if (!user) throw notFound(`no user with id ${id}`);
  return jsonAnswer(200, ended === undefined ? userView(user) : { ...userView(user), sign_in_keys_ended: ended });
}

async function resetKey(id: number, args: Args, { users }: AdminRouteDeps): Promise<HandlerAnswer> {
  onlyArgs(args, []);
  const u = await users.rotateKey({ id });
  return jsonAnswer(200, { id: u.id, username: u.username, user_key: u.user_key });
}

/**
 * Deletes a user; with remove_files=true its files `<id>/...` too, and its unfinished multipart uploads
 * (aborted: their part links write nothing more, and their parts go). The user is disabled first, so its
 * key stops working (every host within 1 s) while its files go. The row is deleted only when every file
 * listed was removed; otherwise the user stays, disabled, and the answer says what was removed and why
 * the rest was not (call again to finish).
 */
async function deleteUser(id: number, args: Args, deps: AdminRouteDeps): Promise<HandlerAnswer> {
  onlyArgs(args, ['remove_files']);
  const removeFiles = args.remove_files === undefined ? false : flagOf(args.remove_files, 'remove_files');
  const { users } = deps;
  const user = await findUser(id, users);
  if (!removeFiles) {
    if (!(await users.deleteUser({ id }))) throw notFound(`no user with id ${id}`);
    // its files are kept: an earlier removal with files that stopped partway is no longer swept
    await users.forgetRemoval(id);
    return jsonAnswer(200, { id, username: user.username, deleted: true, files: { kept: true } });
  }
  if (!user.disabled) await users.setDisabled({ id }, true);
  // Before the first pass: what an admitted request or an old link writes after it is swept later (sweepRemovedUser).
  const sweepUntil = Date.now() + SWEEP_AFTER_REMOVAL_MS;
  await users.recordRemoval(id, sweepUntil);
  const removal = await removeFilesOf(user, deps);
  if (!removal.failure) await abortUploadsOf(user, deps, removal);
  const files = {
    kept: false,
    removed: removal.removed,
    names: removal.names,
    names_truncated: removal.removed > removal.names.length,
    errors: removal.errors,
    uploads_aborted: removal.uploadsAborted,
  };
  if (removal.failure) {
    // no swept_until: a user still there is not swept (a removal that finishes records its own window)
    const { status, code, message } = removal.failure;
    return jsonAnswer(status, {
      message: `${message}; the user is kept, disabled, with the files not yet removed: delete it again to finish`,
      code,
      id,
      username: user.username,
      deleted: false,
      files,
    });
  }
  await users.deleteUser({ id });
  return jsonAnswer(200, { id, username: user.username, deleted: true, files: { ...files, swept_until: new Date(sweepUntil).toISOString() } });
}

/**
 * How long a removed user's prefix is swept again: the longest a link given out before the removal
 * lives (MAX_EXPIRE), and an hour for requests admitted before it and for clocks.
 */
export const SWEEP_AFTER_REMOVAL_MS = (MAX_EXPIRE + 3600) * 1000;

/**
 * Removes what was written under a removed user's prefix since its removal: a request admitted before
 * it (a raw upload still sending, a multipart complete under way) or a link given out before it (valid
 * up to 7 days). The user row is gone, so the socket's endpoints are called for a stand-in with its id,
 * as the removal itself called them. Answers what it removed, or why it stopped (tried again next sweep).
 */
export async function sweepRemovedUser(id: number, deps: Pick<AdminRouteDeps, 'callAsUser' | 'callAsAdmin'>): Promise<Removal> {
  const now = new Date().toISOString();
  const standIn: User = { id, username: `removed-user-${id}`, disabled: true, createdAt: now, updatedAt: now };
  const removal = await removeFilesOf(standIn, deps);
  if (!removal.failure) await abortUploadsOf(standIn, deps, removal);
  return removal;
}

export interface Removal {
  removed: number;
  /** unfinished multipart uploads of the user aborted */
  uploadsAborted: number;
  names: string[];
  errors: Array<{ name: string; message: string }>;
  /** why it stopped before every file was gone */
  failure?: { status: number; code: string; message: string };
}

/** Pages through the user's files with user-list and deletes each page with user-delete (bounded). */
async function removeFilesOf(user: User, { callAsUser }: Pick<AdminRouteDeps, 'callAsUser'>): Promise<Removal> {
  const out: Removal = { removed: 0, uploadsAborted: 0, names: [], errors: [] };
  const failed = (a: HandlerAnswer, what: string): Removal => ({ ...out, failure: failureOf(a, what, out.removed) });
  let cursor: string | null = null;
  for (let page = 0; page < MAX_REMOVAL_PAGES; page++) {
    const listed = await callAsUser('user-list', user, cursor ? { limit: REMOVAL_PAGE, cursor } : { limit: REMOVAL_PAGE });
    const list = parseJson(listed.body) as { files?: Array<{ name: string }>; cursor?: string | null } | undefined;
    if (listed.status !== 200 || !Array.isArray(list?.files)) return failed(listed, 'listing the files');
    if (list.files.length > 0) {
      const dropped = await callAsUser('user-delete', user, { names: list.files.map((f) => f.name) });
      const del = parseJson(dropped.body) as { deleted?: string[]; errors?: Array<{ name: string; message: string }> } | undefined;
      if (dropped.status !== 200 || !Array.isArray(del?.deleted)) return failed(dropped, 'deleting the files');
      out.removed += del.deleted.length;
      for (const n of del.deleted) if (out.names.length < NAMES_SHOWN) out.names.push(n);
      // a file gone between the listing and the delete (another caller) is reported, and is gone
      for (const e of del.errors ?? []) if (out.errors.length < ERRORS_SHOWN) out.errors.push(e);
    }
    cursor = typeof list.cursor === 'string' ? list.cursor : null;
    if (!cursor) return out;
  }
  return { ...out, failure: { status: 409, code: 'conflict', message: `more than ${MAX_REMOVAL_PAGES * REMOVAL_PAGE} files` } };
}

/**
 * Aborts the user's unfinished multipart uploads, under the prefix user files have (userPrefix): a
 * part link given out before the deletion would otherwise still write parts, kept until the bucket's
 * rule for unfinished uploads. A failure keeps the user, as for its files.
 */
async function abortUploadsOf(user: User, { callAsAdmin }: Pick<AdminRouteDeps, 'callAsAdmin'>, out: Removal): Promise<void> {
  const a = await callAsAdmin('admin-multipart-uploads', { prefix: userPrefix(user.id), abort: true });
  const body = parseJson(a.body) as { aborted?: unknown[] } | undefined;
  if (a.status === 200 && Array.isArray(body?.aborted)) {
    out.uploadsAborted = body.aborted.length;
    return;
  }
  out.failure = failureOf(a, 'aborting the unfinished uploads', out.removed);
}

/** Why a removal stopped, from the endpoint's answer that stopped it. */
function failureOf(a: HandlerAnswer, what: string, removed: number): NonNullable<Removal['failure']> {
  const body = parseJson(a.body) as { code?: unknown; message?: unknown } | undefined;
  const code = typeof body?.code === 'string' ? body.code : 'internal';
  const message = typeof body?.message === 'string' ? body.message : `status ${a.status}`;
  // a client-side refusal of a listed name is the host's trouble here, not the caller's: 409, not 400
  const status = a.status >= 500 ? a.status : 409;
  return { status, code, message: `${what} failed after ${removed} files were removed: ${message}` };
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

async function listAdminKeys(args: Args, { users }: AdminRouteDeps): Promise<HandlerAnswer> {
  onlyArgs(args, []);
  return jsonAnswer(200, { objects: (await users.listAdminKeys()).map(keyView), next: null });
}

async function addAdminKey(args: Args, { users }: AdminRouteDeps): Promise<HandlerAnswer> {
  onlyArgs(args, ['description']);
  const description = args.description ?? '';
  if (typeof description !== 'string') throw badArgument('description must be a string');
  // the label's rules are the store's (InvalidAdminKeyError: 400)
  const k = await users.addAdminKey(description);
  return jsonAnswer(201, { id: k.id, api_key: k.key, description: k.label, created_at: k.createdAt });
}

async function getAdminKey(id: number, args: Args, { users }: AdminRouteDeps): Promise<HandlerAnswer> {
  onlyArgs(args, []);
  const k = (await users.listAdminKeys()).find((x) => x.id === id);
  if (!k) throw notFound(`no admin key with id ${id}`);
  return jsonAnswer(200, keyView(k));
}

/** Revokes an admin key (every host refuses it within 1 s); the last working one is kept, or nobody could get in. */
async function revokeAdminKey(id: number, args: Args, { users }: AdminRouteDeps): Promise<HandlerAnswer> {
  onlyArgs(args, []);
  const keys = await users.listAdminKeys();
  const k = keys.find((x) => x.id === id);
  if (!k) throw notFound(`no admin key with id ${id}`);
  if (k.revokedAt !== null) return errorAnswer(409, 'conflict', `admin key ${id} is already revoked`);
  if (!keys.some((x) => x.id !== id && x.revokedAt === null)) {
    return errorAnswer(409, 'conflict', `admin key ${id} is the last working one: add another before revoking it`);
  }
  if (!(await users.revokeAdminKey(id))) throw notFound(`no admin key with id ${id}`);
  const after = (await users.listAdminKeys()).find((x) => x.id === id);
  return jsonAnswer(200, after ? keyView(after) : { id, revoked_at: new Date().toISOString() });
}
