// Users with passwords through the host, as on the platform: the admin makes a user with a password,
// @syncano/core's users.login() signs in over HTTPS (a real child process, a self-signed certificate)
// and its user_key works on user-upload-link; wrong credentials, brute force, password changes, sign-up.
// Runs on SQLite in `npm test`, and on PostgreSQL in `npm run test:postgres` (DATABASE_URL passes through).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT, readAnswer, startHost, tempDir, type StartedHost } from '../support/host';

jest.setTimeout(180_000);

const DELAY_MS = 1_500;
let host: StartedHost;
let cert: string;
const run = Math.random().toString(36).slice(2, 8);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  const dir = tempDir('aws-storage-auth-tls-');
  cert = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', cert,
  ], { stdio: 'ignore' });
  host = await startHost({ env: { TLS_CERT: cert, TLS_KEY: keyFile, SIGN_IN_DELAY_MS: String(DELAY_MS) } });
});

afterAll(async () => {
  if (host) expect(await host.stop()).toBe(0);
});

type Init = { method?: string; headers?: Record<string, string>; body?: unknown };
/** ms: the request's time as the child measured it (no process start in it) */
type Answer = { status: number; retryAfter: string | null; body: any; ms: number };

/** Requests to the host over HTTPS, one after the other, from a child process that trusts the certificate. */
async function httpsSequence(requests: Array<[string, Init]>): Promise<Answer[]> {
  const script = `
(async () => {
  const out = [];
  for (const [url, init] of JSON.parse(process.argv[1])) {
    const t = performance.now();
    const res = await fetch(url, init);
    const text = await res.text();
    out.push({ status: res.status, retryAfter: res.headers.get('retry-after'), text, ms: performance.now() - t });
  }
  process.stdout.write(JSON.stringify(out));
})().catch((err) => { process.stderr.write(String(err)); process.exit(1); });`;
  const wire = requests.map(([pathname, init]) => {
    const body = init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
    const headers = { ...(body !== undefined && typeof init.body !== 'string' ? { 'content-type': 'application/json' } : {}), ...init.headers };
    return [`${host.url}${pathname}`, { method: init.method ?? 'POST', headers, body }];
  });
  const answers = JSON.parse(await child(['-e', script, JSON.stringify(wire)])) as Array<{ status: number; retryAfter: string | null; text: string; ms: number }>;
  return answers.map(({ status, retryAfter, text, ms }) => {
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return { status, retryAfter, body, ms };
  });
}

const https = async (pathname: string, init: Init = {}): Promise<Answer> => (await httpsSequence([[pathname, init]]))[0];

function child(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, args, {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: cert, SYNCANO_HOST: host.url.replace(/^https:\/\//, ''), SYNCANO_INSTANCE_NAME: 'local' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => c.kill('SIGKILL'), 60_000);
    c.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`child exited ${code}: ${stderr}`));
    });
  });
}

const usersPath = '/v2/instances/local/users/';
const admin = () => ({ 'x-api-key': host.adminKey });
async function makeUser(name: string, password: string) {
  const made = await https(usersPath, { headers: admin(), body: { username: `${name}-${run}`, password } });
  expect(made.status).toBe(201);
  return made.body as { id: number; username: string; user_key: string };
}
const signIn = (username: string, password: string) => https(`${usersPath}auth/`, { body: { username, password } });

test("@syncano/core's users.login() over HTTPS gets the user and a user_key that works on user-upload-link", async () => {
  const alice = await makeUser('alice', 'alice has a long password');
  expect(alice).not.toHaveProperty('password');
  const script = `
const Server = require(${JSON.stringify(path.join(PROJECT_ROOT, 'node_modules/@syncano/core'))});
const { users } = new Server({ token: process.env.SYNCANO_API_KEY });
users.login({ username: process.argv[1], password: process.argv[2] })
  .then((u) => process.stdout.write(JSON.stringify(u)), (err) => { process.stderr.write(String(err && err.stack) + JSON.stringify(err && err.data)); process.exit(1); });`;
  const out = await new Promise<string>((resolve, reject) => {
    const c = spawn(process.execPath, ['-e', script, alice.username, 'alice has a long password'], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: cert, SYNCANO_HOST: host.url.replace(/^https:\/\//, ''), SYNCANO_INSTANCE_NAME: 'local', SYNCANO_API_KEY: host.adminKey },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`users.login failed: ${stderr}\n${host.logs()}`))));
  });
  const user = JSON.parse(out);
  // the platform's shape (apps/users v2 UserFullSerializer)
  expect(user).toEqual({
    id: alice.id,
    username: alice.username,
    user_key: expect.stringMatching(/^[0-9a-f]{40}$/),
    created_at: expect.any(String),
    updated_at: expect.any(String),
    revision: 1,
    acl: {},
    channel: null,
    channel_room: null,
    groups: [],
    links: { self: `/v2/instances/local/users/${alice.id}/`, groups: `/v2/instances/local/users/${alice.id}/groups/`, 'reset-key': `/v2/instances/local/users/${alice.id}/reset_key/` },
  });
  expect(user.user_key).not.toBe(alice.user_key); // a key for this sign-in; alice's own still works
  for (const key of [user.user_key, alice.user_key]) {
    const link = await https('/aws-storage/user-upload-link/', { headers: { 'x-user-key': key }, body: { name: 'signed-in.txt', contentType: 'text/plain' } });
    expect(link.status).toBe(200);
    expect(link.body.key).toBe(`${alice.id}/signed-in.txt`);
  }
  expect(host.logs()).toMatch(/POST \/v2\/instances\/local\/users\/auth\/ 200 /);
  expect(host.logs()).not.toContain('alice has a long password');
});

test('a wrong username and a wrong password are the same 401, in about the same time', async () => {
  const bob = await makeUser('bob', 'bob password 123');
  // Timed in one child process, one request after another on one connection: a process start per try
  // was most of what was measured, and varied more than the sign-in itself. The host makes its decoy
  // hash at the first unknown name (that try costs two KDF runs), so one unknown name goes first,
  // unmeasured; then wrong, unknown, unknown, wrong (a drifting load weighs on both alike).
  const unknown = (i: number): [string, Init] => [`${usersPath}auth/`, { body: { username: `nobody-${run}-${i}`, password: 'not the password' } }];
  const wrong: [string, Init] = [`${usersPath}auth/`, { body: { username: bob.username, password: 'not the password' } }];
  const answers = await httpsSequence([['/healthz', { method: 'GET' }], unknown(0), wrong, unknown(1), unknown(2), wrong]);
  for (const r of answers.slice(1)) {
    expect(r.status).toBe(401);
    expect(r.body).toEqual({ message: 'invalid username or password', code: 'unauthorized' });
  }
  const [w1, u1, u2, w2] = answers.slice(2).map((r) => r.ms);
  const ratio = (u1 + u2) / (w1 + w2);
  console.log(`sign-in over HTTPS, ms per try: unknown (first, unmeasured) ${answers[1].ms.toFixed(0)}, then wrong ${w1.toFixed(0)}, unknown ${u1.toFixed(0)}, unknown ${u2.toFixed(0)}, wrong ${w2.toFixed(0)}: unknown/wrong ${ratio.toFixed(2)}`);
  expect(ratio).toBeGreaterThan(0.5);
  expect(ratio).toBeLessThan(2);
});

test('brute force: after 5 wrong passwords every try waits (429 + Retry-After), the right one included, until the delay has passed', async () => {
  const carol = await makeUser('carol', 'carol password 123');
  // one after the other from one process, so that no process start sits between the tries
  const guesses = Array.from({ length: 8 }, (_, i): [string, Init] => [`${usersPath}auth/`, { body: { username: carol.username, password: `guess ${i}` } }]);
  const [...answers] = await httpsSequence([...guesses, [`${usersPath}auth/`, { body: { username: carol.username, password: 'carol password 123' } }]]);
  const held = answers.pop()!;
  expect(answers.map((r) => r.status)).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
  for (const r of answers.slice(5)) expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
  expect(held.status).toBe(429);
  expect(held.body.code).toBe('too_many_requests');
  await sleep(DELAY_MS + 200);
  const ok = await signIn(carol.username, 'carol password 123');
  expect(ok.status).toBe(200);
  expect(ok.body.user_key).toMatch(/^[0-9a-f]{40}$/);
});

test('changing a password: the user needs the old one; signOutEverywhere rotates the key; an admin sets one; reset_key leaves it alone', async () => {
  const dave = await makeUser('dave', 'dave first password');
  const session = (await signIn(dave.username, 'dave first password')).body.user_key as string;
  const own = (key: string, body: unknown) => https('/v2/instances/local/user/', { method: 'PATCH', headers: { 'x-user-key': key }, body });

  expect((await own(session, { old_password: 'wrong', password: 'dave second password' })).status).toBe(403);
  expect((await own(session, { old_password: 'dave first password', password: 'short' })).body.code).toBe('invalid_argument');
  expect((await own(session, { old_password: 'dave first password', password: 'dave second password', extra: 1 })).status).toBe(400);
  expect((await https('/v2/instances/local/user/', { method: 'PATCH', body: { password: 'no key at all here' } })).status).toBe(401);
  const changed = await own(session, { old_password: 'dave first password', password: 'dave second password' });
  expect(changed.status).toBe(200);
  expect(changed.body).not.toHaveProperty('user_key');
  expect((await signIn(dave.username, 'dave first password')).status).toBe(401);
  expect((await signIn(dave.username, 'dave second password')).status).toBe(200);

  const everywhere = await own(session, { old_password: 'dave second password', password: 'dave third password', signOutEverywhere: true });
  expect(everywhere.status).toBe(200);
  const fresh = everywhere.body.user_key as string;
  for (const old of [session, dave.user_key]) {
    expect((await https('/aws-storage/user-list/', { headers: { 'x-user-key': old }, body: {} })).status).toBe(401);
  }
  expect((await https('/aws-storage/user-list/', { headers: { 'x-user-key': fresh }, body: {} })).status).toBe(200);

  const byAdmin = await https(`${usersPath}${dave.id}/`, { method: 'PATCH', headers: admin(), body: { password: 'set by the admin' } });
  expect(byAdmin.status).toBe(200);
  expect((await signIn(dave.username, 'set by the admin')).status).toBe(200);
  expect((await https(`${usersPath}${dave.id}/reset_key/`, { headers: admin(), body: {} })).status).toBe(200);
  expect((await signIn(dave.username, 'set by the admin')).status).toBe(200);

  expect((await https(`${usersPath}${dave.id}/`, { method: 'PATCH', headers: admin(), body: { disabled: true } })).status).toBe(200);
  expect((await signIn(dave.username, 'set by the admin')).status).toBe(401);
  expect(host.logs()).not.toMatch(/dave (first|second|third) password|set by the admin/);
});

test('an admin password set ends every sign-in key of the user (a thief\'s among them); the key from reset_key is untouched', async () => {
  const erin = await makeUser('erin', 'erin first password');
  const reset = (await https(`${usersPath}${erin.id}/reset_key/`, { headers: admin(), body: {} })).body.user_key as string;
  const devices = [(await signIn(erin.username, 'erin first password')).body.user_key, (await signIn(erin.username, 'erin first password')).body.user_key] as string[];
  const list = (key: string) => https('/aws-storage/user-list/', { headers: { 'x-user-key': key }, body: {} });
  for (const k of [...devices, reset]) expect((await list(k)).status).toBe(200);
  const set = await https(`${usersPath}${erin.id}/`, { method: 'PATCH', headers: admin(), body: { password: 'erin new password' } });
  expect(set).toMatchObject({ status: 200, body: { id: erin.id, sign_in_keys_ended: 2 } });
  for (const k of devices) expect((await list(k)).status).toBe(401);
  expect((await list(reset)).status).toBe(200);
  expect((await signIn(erin.username, 'erin first password')).status).toBe(401);
  const again = await signIn(erin.username, 'erin new password');
  expect(again.status).toBe(200);
  expect((await list(again.body.user_key)).status).toBe(200);
  // a PATCH without a password ends nothing
  expect((await https(`${usersPath}${erin.id}/`, { method: 'PATCH', headers: admin(), body: { disabled: false } })).body).not.toHaveProperty('sign_in_keys_ended');
  expect((await list(again.body.user_key)).status).toBe(200);
});

test("the user's own password change ends its other sign-in keys; the calling key and the user key keep working", async () => {
  const finn = await makeUser('finn', 'finn first password');
  const [here, there] = [(await signIn(finn.username, 'finn first password')).body.user_key, (await signIn(finn.username, 'finn first password')).body.user_key] as string[];
  const list = (key: string) => https('/aws-storage/user-list/', { headers: { 'x-user-key': key }, body: {} });
  const changed = await https('/v2/instances/local/user/', { method: 'PATCH', headers: { 'x-user-key': here }, body: { old_password: 'finn first password', password: 'finn second password' } });
  expect(changed).toMatchObject({ status: 200, body: { id: finn.id, sign_in_keys_ended: 1 } });
  expect((await list(there)).status).toBe(401);
  expect((await list(here)).status).toBe(200);
  expect((await list(finn.user_key)).status).toBe(200);
  // changed with the user key: every sign-in key ends, the user key stays
  const later = (await signIn(finn.username, 'finn second password')).body.user_key as string;
  const byUserKey = await https('/v2/instances/local/user/', { method: 'PATCH', headers: { 'x-user-key': finn.user_key }, body: { old_password: 'finn second password', password: 'finn third password' } });
  expect(byUserKey).toMatchObject({ status: 200, body: { sign_in_keys_ended: 2 } });
  for (const k of [here, later]) expect((await list(k)).status).toBe(401);
  expect((await list(finn.user_key)).status).toBe(200);
});

test('usernames are NFKC: the decomposed twin is 409, either form signs in, fullwidth is the ASCII name', async () => {
  const composed = `Jos\u00e9-${run}`;
  const made = await https(usersPath, { headers: admin(), body: { username: composed, password: 'jose password 123' } });
  expect(made).toMatchObject({ status: 201, body: { username: composed } });
  const twin = await https(usersPath, { headers: admin(), body: { username: `Jose\u0301-${run}`, password: 'another password' } });
  expect(twin).toMatchObject({ status: 409, body: { code: 'conflict' } });
  for (const typed of [composed, `Jose\u0301-${run}`]) {
    const r = await signIn(typed, 'jose password 123');
    expect(r).toMatchObject({ status: 200, body: { id: made.body.id, username: composed } });
  }
  // a wrong password under either form is the one 401
  expect(await signIn(`Jose\u0301-${run}`, 'not the password')).toMatchObject({ status: 401, body: { message: 'invalid username or password' } });
  const wide = await https(usersPath, { headers: admin(), body: { username: `\uff47\uff52\uff41\uff43\uff45-${run}`, password: 'grace password 1' } });
  expect(wide).toMatchObject({ status: 201, body: { username: `grace-${run}` } });
  expect((await https(usersPath, { headers: admin(), body: { username: `grace-${run}` } })).status).toBe(409);
  expect((await signIn(`grace-${run}`, 'grace password 1')).status).toBe(200);
  // longer than 150 once normalised: 400
  expect((await https(usersPath, { headers: admin(), body: { username: '\ufdfa'.repeat(9) } })).status).toBe(400);
});

test('bad sign-in and creation input: 400 with a reason, nothing made', async () => {
  for (const body of [{}, { username: 'x' }, { password: 'long enough pw' }, { username: 5, password: 'long enough pw' }]) {
    const r = await signIn((body as { username?: string }).username as string, (body as { password?: string }).password as string);
    expect([400]).toContain(r.status);
  }
  expect((await https(`${usersPath}auth/`, { body: '{"username":', headers: { 'content-type': 'application/json' } })).status).toBe(400);
  const short = await https(usersPath, { headers: admin(), body: { username: `short-${run}`, password: 'short' } });
  expect(short).toMatchObject({ status: 400, body: { code: 'invalid_argument' } });
  const list = await https(`${usersPath}?limit=1000`, { method: 'GET', headers: admin() });
  expect(JSON.stringify(list.body)).not.toContain(`short-${run}`);
});

test('open sign-up is off by default; with ALLOW_SIGNUP=true anyone may sign up, a few times an hour per address', async () => {
  const closed = await https(usersPath, { body: { username: `walk-in-${run}`, password: 'walk-in password' } });
  expect(closed.status).toBe(403);

  const open = await startHost({ env: { ALLOW_SIGNUP: 'true', SIGNUPS_PER_HOUR: '2' } });
  try {
    const post = (username: string) =>
      fetch(`${open.url}${usersPath}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: 'sign-up password' }) }).then(readAnswer);
    const config = await (await fetch(`${open.url}/page-config.json`)).json();
    expect(config).toEqual({ instance: 'local', socket: 'aws-storage', signup: true });
    const first = await post('first-walk-in');
    expect(first.status).toBe(201);
    const res = await fetch(`${open.url}/aws-storage/user-list/`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-user-key': first.body.user_key }, body: '{}' });
    expect(res.status).toBe(200);
    expect((await post('first-walk-in')).status).toBe(409);
    const third = await post('third-walk-in');
    expect(third.status).toBe(429);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
    // the admin is not limited
    const byAdmin = await fetch(`${open.url}${usersPath}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': open.adminKey }, body: JSON.stringify({ username: 'made-by-admin' }) });
    expect(byAdmin.status).toBe(201);
  } finally {
    expect(await open.stop()).toBe(0);
    fs.rmSync(open.dataDir, { recursive: true, force: true });
  }
});
