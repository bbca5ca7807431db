// Users with passwords, as on the platform (issue #16):
//
//   POST /v2/instances/<instance>/users/auth/  {username, password}  → 200 the user with its user_key
//                                              (what @syncano/core's users.login() posts); no key needed
//   POST /v2/instances/<instance>/users/       {username, password}  without the admin key: open sign-up,
//                                              only with ALLOW_SIGNUP=true, a few per client address per hour
//   PATCH /v2/instances/<instance>/user/       the signed-in user (X-USER-KEY): {old_password, password,
//                                              signOutEverywhere?}; the user's other sign-in keys end (this
//                                              call's key and the user's key keep working); with
//                                              signOutEverywhere the user's key is rotated too, every sign-in
//                                              key ends, and the answer carries the new key
//
// A wrong username, a user without a password, a disabled user and a wrong password are one 401 after
// the same work (sign-in.ts). Passwords are never logged and never answered.
import { keyDigest } from './admin-key';
import { errorAnswer, jsonAnswer, type HandlerAnswer } from './invoke';
import { hashPassword, InvalidPasswordError, passwordProblem, PasswordsBusyError } from './passwords';
import { addressKey, signIn, SignInThrottled, WrongCredentials, type SignInLimits } from './sign-in';
import type { User, UserStore } from './users/types';
import { InvalidUsernameError, UsernameTakenError } from './users/types';
import { USERNAME_RULE, usernameCandidates } from './users/rules';

export interface AuthRouteDeps {
  instance: string;
  users: UserStore;
  limits: SignInLimits;
  /** ALLOW_SIGNUP=true */
  allowSignup: boolean;
  /** sign-ups one client address may make per hour */
  signupsPerHour: number;
}

type Args = Record<string, unknown>;

/** A user as the platform's v2 user views answered it (UserFullSerializer), with its key where one is given. */
export function platformUser(instance: string, user: User, userKey?: string): Record<string, unknown> {
  const self = `/v2/instances/${instance}/users/${user.id}/`;
  return {
    id: user.id,
    username: user.username,
    ...(userKey === undefined ? {} : { user_key: userKey }),
    created_at: user.createdAt,
    updated_at: user.updatedAt,
    revision: 1,
    acl: {},
    channel: null,
    channel_room: null,
    groups: [],
    links: { self, groups: `${self}groups/`, 'reset-key': `${self}reset_key/` },
  };
}

const WRONG = () => errorAnswer(401, 'unauthorized', 'invalid username or password');

function credentials(args: Args): { username: string; password: string } | HandlerAnswer {
  const { username, password } = args;
  if (typeof username !== 'string' || username === '') return errorAnswer(400, 'invalid_argument', 'username is required (a string)');
  // a name no user can have is said so (the rule is public), before it is counted or looked up
  if (usernameCandidates(username).length === 0) return errorAnswer(400, 'invalid_argument', USERNAME_RULE);
  if (typeof password !== 'string' || password === '') return errorAnswer(400, 'invalid_argument', 'password is required (a string)');
  return { username, password };
}

function throttled(err: SignInThrottled): HandlerAnswer {
  return jsonAnswer(429, { message: err.message, code: 'too_many_requests' }, { 'Retry-After': String(err.retryAfterSeconds) });
}

const busy = (err: Error) => jsonAnswer(503, { message: err.message, code: 'busy' }, { 'Retry-After': '1' });

export async function handleSignIn(deps: AuthRouteDeps, args: Args, address: string): Promise<HandlerAnswer> {
  const given = credentials(args);
  if ('status' in given) return given;
  try {
    const user = await signIn(deps.users, { ...given, address }, deps.limits);
    // Keys are kept only hashed, so a sign-in cannot hand back an existing key: it issues one more for
    // this device. Signing in elsewhere signs no one out; reset_key and signOutEverywhere end them all.
    const issued = await deps.users.issueSignInKey({ id: user.id });
    return jsonAnswer(200, platformUser(deps.instance, issued, issued.user_key));
  } catch (err) {
    if (err instanceof WrongCredentials) return WRONG();
    if (err instanceof SignInThrottled) return throttled(err);
    if (err instanceof PasswordsBusyError) return busy(err);
    throw err;
  }
}

export async function handleSignUp(deps: AuthRouteDeps, args: Args, address: string): Promise<HandlerAnswer> {
  if (!deps.allowSignup) return errorAnswer(403, 'forbidden', 'creating users needs the admin key (open sign-up is off: ALLOW_SIGNUP)');
  const given = credentials(args);
  if ('status' in given) return given;
  const unknown = Object.keys(args).filter((k) => k !== 'username' && k !== 'password');
  if (unknown.length) return errorAnswer(400, 'invalid_argument', `unknown argument ${JSON.stringify(unknown[0])} (allowed: username, password)`);
  const problem = passwordProblem(given.password);
  if (problem) return errorAnswer(400, 'invalid_argument', problem);
  // one client's share of addresses (an IPv6 /64), as for sign-in: its other addresses are no fresh count
  const bucket = `signup:${addressKey(address)}`;
  const seen = await deps.users.loginFailures(bucket);
  const hour = 3600_000;
  const recent = Date.now() - seen.lastFailureAt < hour ? seen.failures : 0;
  if (recent >= deps.signupsPerHour) {
    const wait = Math.max(1, Math.ceil((seen.lastFailureAt + hour - Date.now()) / 1000));
    return throttled(new SignInThrottled(wait));
  }
  if (recent === 0 && seen.failures > 0) await deps.users.clearLoginFailures(bucket);
  await deps.users.recordLoginFailure(bucket, Date.now());
  try {
    const made = await deps.users.createUser(given.username, { passwordHash: await hashPassword(given.password) });
    return jsonAnswer(201, platformUser(deps.instance, made, made.user_key));
  } catch (err) {
    if (err instanceof InvalidUsernameError || err instanceof InvalidPasswordError) return errorAnswer(400, 'invalid_argument', err.message);
    if (err instanceof UsernameTakenError) return errorAnswer(409, 'conflict', err.message);
    if (err instanceof PasswordsBusyError) return busy(err);
    throw err;
  }
}

/**
 * The signed-in user changes its own password: the old one is required, and checked as a sign-in is
 * (the same counts and delays: a stolen key must not make guessing it free). A user without a password
 * gets its first one from the admin: a key alone setting one would outlive the key's reset.
 */
export async function handleOwnPassword(deps: AuthRouteDeps, user: User & { user_key: string }, args: Args, address: string): Promise<HandlerAnswer> {
  const unknown = Object.keys(args).filter((k) => !['old_password', 'password', 'signOutEverywhere'].includes(k));
  if (unknown.length) return errorAnswer(400, 'invalid_argument', `unknown argument ${JSON.stringify(unknown[0])} (allowed: old_password, password, signOutEverywhere)`);
  const { old_password, password, signOutEverywhere } = args;
  if (typeof password !== 'string') return errorAnswer(400, 'invalid_argument', 'password is required (the new password)');
  const problem = passwordProblem(password);
  if (problem) return errorAnswer(400, 'invalid_argument', problem);
  if (signOutEverywhere !== undefined && typeof signOutEverywhere !== 'boolean') return errorAnswer(400, 'invalid_argument', 'signOutEverywhere must be true or false');
  try {
    const stored = await deps.users.passwordOf(user.username);
    if (!stored?.passwordHash) return errorAnswer(403, 'forbidden', 'this user has no password yet: the admin sets the first one (PATCH users/<id>/)');
    if (typeof old_password !== 'string' || old_password === '') return errorAnswer(400, 'invalid_argument', 'old_password is required (the current password)');
    await signIn(deps.users, { username: user.username, password: old_password, address }, deps.limits);
    if (signOutEverywhere === true) {
      // a new user key, and every sign-in key ends: only the answer's key works from now on
      await deps.users.setPasswordHash({ id: user.id }, await hashPassword(password));
      const rotated = await deps.users.rotateKey({ id: user.id });
      return jsonAnswer(200, platformUser(deps.instance, rotated, rotated.user_key));
    }
    // As Django keeps the session that changed the password and ends the others: the user's other sign-in
    // keys end (a device signed in with the old password, maybe a thief's); the key of this call and the
    // user's own key keep working (signOutEverywhere ends those too).
    const ended = await deps.users.setPasswordHash({ id: user.id }, await hashPassword(password), {
      endSignInKeys: { except: keyDigest(user.user_key) },
    });
    return jsonAnswer(200, { ...platformUser(deps.instance, user), sign_in_keys_ended: ended });
  } catch (err) {
    if (err instanceof WrongCredentials) return errorAnswer(403, 'forbidden', 'old_password is wrong');
    if (err instanceof SignInThrottled) return throttled(err);
    if (err instanceof PasswordsBusyError) return busy(err);
    throw err;
  }
}
