/**
 * Keys over HTTP against the host: none, empty, unknown, a user key on admin endpoints, the admin key
 * as a user key, keys in two places that disagree: 401/403 as SPEC §4/§6 say, and nothing written.
 */
import { readAnswer } from '../support/host';
import { b64, expectNoSecrets, startHarness, type Harness, type User } from './harness';

jest.setTimeout(60_000);

let h: Harness;
let alice: User;
let bob: User;
let setupKeys: string[];
const USER_ENDPOINTS = ['user-upload-link', 'user-read', 'user-upload', 'user-list', 'user-delete'];
const ADMIN_ENDPOINTS = ['make-links', 'admin-upload-link', 'admin-upload'];
const ARGS: Record<string, Record<string, unknown>> = {
  'user-upload-link': { name: 'k/x.txt' },
  'user-read': { name: 'k/x.txt' },
  'user-upload': { name: 'k/x.txt', file: b64('nope') },
  'user-list': {},
  'user-delete': { name: 'k/x.txt' },
  'make-links': { fileNames: ['k/x.txt'] },
  'admin-upload-link': { name: 'k/x.txt' },
  'admin-upload': { name: 'k/x.txt', file: b64('nope') },
};
let calls = 0;

beforeAll(async () => {
  h = await startHarness({ users: ['alice', 'bob'] });
  [alice, bob] = h.users;
  const r = await h.call('user-upload', { userKey: alice.user_key, args: { name: 'mine.txt', file: b64('alice') } });
  expect(r.status).toBe(200);
  setupKeys = await h.keys();
});
afterAll(async () => {
  await h?.close();
});

type Case = { label?: string; headers?: Record<string, string>; query?: Record<string, string>; body?: Record<string, unknown> };

function cases(): { user: Array<Case & { status: number }>; admin: Array<Case & { status: number }> } {
  const unknown = 'f'.repeat(40);
  return {
    user: [
      { label: 'no key', status: 401 },
      { label: 'empty X-USER-KEY', headers: { 'x-user-key': '' }, status: 401 },
      { label: 'blank X-USER-KEY', headers: { 'x-user-key': '   ' }, status: 401 },
      { label: 'empty user_key in query', query: { user_key: '' }, status: 401 },
      { label: 'unknown key', headers: { 'x-user-key': unknown }, status: 401 },
      { label: 'unknown key in query', query: { user_key: unknown }, status: 401 },
      { label: 'unknown key in body', body: { _user_key: unknown }, status: 401 },
      { label: '10 kB key', headers: { 'x-user-key': 'k'.repeat(10_000) }, status: 401 },
      { label: 'key with a prefix of a real key', headers: { 'x-user-key': alice.user_key.slice(0, 20) }, status: 401 },
      { label: 'real key, other case', headers: { 'x-user-key': alice.user_key.toUpperCase() }, status: 401 },
      { label: 'the admin key as a user key', headers: { 'x-user-key': h.adminKey }, status: 401 },
      { label: 'the admin key as user_key in the body', body: { _user_key: h.adminKey }, status: 401 },
      { label: 'only the admin key (X-API-KEY)', headers: { 'x-api-key': h.adminKey }, status: 401 },
      { label: 'header and query disagree (two users)', headers: { 'x-user-key': alice.user_key }, query: { user_key: bob.user_key }, status: 401 },
      { label: 'header and body disagree', headers: { 'x-user-key': alice.user_key }, body: { _user_key: bob.user_key }, status: 401 },
      { label: 'query and body disagree', query: { user_key: alice.user_key }, body: { _user_key: unknown }, status: 401 },
      { label: 'good header, unknown in query', headers: { 'x-user-key': alice.user_key }, query: { _user_key: unknown }, status: 401 },
      { label: 'user key plus an unknown admin key', headers: { 'x-user-key': alice.user_key, 'x-api-key': unknown }, status: 401 },
    ],
    admin: [
      { label: 'no key', status: 403 },
      { label: 'empty X-API-KEY', headers: { 'x-api-key': '' }, status: 403 },
      { label: 'a user key (X-USER-KEY)', headers: { 'x-user-key': alice.user_key }, status: 403 },
      { label: 'a user key in the body', body: { _user_key: alice.user_key }, status: 403 },
      { label: 'a user key as X-API-KEY', headers: { 'x-api-key': alice.user_key }, status: 401 },
      { label: 'unknown admin key', headers: { 'x-api-key': unknown }, status: 401 },
      { label: 'unknown api_key in query', query: { api_key: unknown }, status: 401 },
      { label: 'unknown _api_key in body', body: { _api_key: unknown }, status: 401 },
      { label: 'admin key with a character changed', headers: { 'x-api-key': h.adminKey.slice(0, -1) + (h.adminKey.endsWith('0') ? '1' : '0') }, status: 401 },
      { label: 'admin key truncated', headers: { 'x-api-key': h.adminKey.slice(0, 8) }, status: 401 },
      { label: '10 kB admin key', headers: { 'x-api-key': 'k'.repeat(10_000) }, status: 401 },
      { label: 'header and query disagree', headers: { 'x-api-key': h.adminKey }, query: { api_key: unknown }, status: 401 },
      { label: 'header and body disagree', headers: { 'x-api-key': h.adminKey }, body: { _api_key: unknown }, status: 401 },
      { label: 'the admin key plus an unknown user key', headers: { 'x-api-key': h.adminKey, 'x-user-key': unknown }, status: 401 },
    ],
  };
}

async function run(endpoint: string, c: Case) {
  calls++;
  const q = c.query ? '?' + new URLSearchParams(c.query).toString() : '';
  const res = await fetch(`${h.host.url}/aws-storage/${endpoint}/${q}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...c.headers },
    body: JSON.stringify({ ...ARGS[endpoint], ...c.body }),
  });
  const { status, text, body } = await readAnswer(res);
  h.captured.push(`${status}\n${text}`);
  return { status, body };
}

test('user endpoints: every missing, empty, unknown or disagreeing key is a 401 unauthorized', async () => {
  const wrong: string[] = [];
  for (const endpoint of USER_ENDPOINTS) {
    for (const c of cases().user) {
      const r = await run(endpoint, c);
      if (r.status !== c.status || r.body?.code !== 'unauthorized') wrong.push(`${endpoint} / ${c.label}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  }
  expect(wrong).toEqual([]);
});

test('admin endpoints: no admin key is 403 forbidden, an unknown or disagreeing key 401', async () => {
  const wrong: string[] = [];
  for (const endpoint of ADMIN_ENDPOINTS) {
    for (const c of cases().admin) {
      const r = await run(endpoint, c);
      const code = c.status === 403 ? 'forbidden' : 'unauthorized';
      if (r.status !== c.status || r.body?.code !== code) wrong.push(`${endpoint} / ${c.label}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  }
  // creating users: the admin key only
  for (const c of [{ label: 'user key', headers: { 'x-user-key': alice.user_key } }, { label: 'none' }] as Case[]) {
    const res = await fetch(`${h.host.url}/v2/instances/local/users/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...c.headers },
      body: JSON.stringify({ username: 'mallory' }),
    });
    calls++;
    if (res.status !== 403) wrong.push(`users / ${c.label}: ${res.status}`);
  }
  expect(wrong).toEqual([]);
});

test('the same key in every accepted place works (positive control), and keys agreeing in two places too', async () => {
  const ok: Case[] = [
    { headers: { 'x-user-key': alice.user_key } },
    { query: { user_key: alice.user_key } },
    { query: { _user_key: alice.user_key } },
    { body: { _user_key: alice.user_key } },
    { headers: { 'x-user-key': alice.user_key }, query: { user_key: alice.user_key }, body: { _user_key: alice.user_key } },
  ];
  for (const c of ok) {
    const r = await run('user-list', c);
    expect([r.status, r.body.files?.map((f: { name: string }) => f.name)]).toEqual([200, ['mine.txt']]);
  }
  for (const c of [{ headers: { 'x-api-key': h.adminKey } }, { query: { api_key: h.adminKey } }, { body: { _api_key: h.adminKey } }] as Case[]) {
    const r = await run('make-links', c);
    expect(r.status).toBe(200);
  }
  // bob's key lists bob's (empty) prefix, never alice's
  const r = await run('user-list', { label: 'bob', headers: { 'x-user-key': bob.user_key } });
  expect([r.status, r.body.files]).toEqual([200, []]);
});

test('nothing was written by any refused call, and no key was answered or logged', async () => {
  expect(await h.keys()).toEqual(setupKeys);
  const seen = expectNoSecrets(h);
  console.log(`keys: ${calls} calls with bad or good keys; ${seen.answers} answers and ${seen.logBytes} bytes of log free of secrets`);
});
