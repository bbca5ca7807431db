/**
 * An outside pass on the host's front door (SPEC §3, §4, §6, §7; issue 12 findings 5, 9, 10): key
 * confusion, prototype pollution, names in every encoding that might reach another user's prefix,
 * forged list cursors and prefixes, header injection, malformed HTTP, odd bodies, the users and static
 * routes, CORS and the logs. Real host process with the embedded store, 127.0.0.1 only. alice is user
 * 1 and owns `secret.txt`; bob (user 2) attacks.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { startHost, type StartedHost, readAnswer } from '../support/host';
import { raw } from '../host/front-door-support';

jest.setTimeout(60_000);

type U = { id: number; username: string; user_key: string };
let h: StartedHost;
let port: number;
let alice: U;
let bob: U;
let carol: U;
const SECRET = "alice's secret";

interface Answer {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}

async function req(pathAndQuery: string, init: RequestInit = {}): Promise<Answer> {
  return readAnswer(await fetch(h.url + pathAndQuery, { redirect: 'manual', ...init }));
}
const ep = (name: string) => `/aws-storage/${name}/`;
const jsonPost = (value: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: typeof value === 'string' ? value : JSON.stringify(value),
});
const formPost = (form: string, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  body: form,
});

async function aliceIntact(): Promise<void> {
  const list = await req(ep('user-list'), jsonPost({}, { 'x-user-key': alice.user_key }));
  expect(list.body.files.map((f: { name: string }) => f.name)).toEqual(['secret.txt']);
  const read = await req(ep('user-read'), jsonPost({ name: 'secret.txt' }, { 'x-user-key': alice.user_key }));
  expect(read.status).toBe(200);
  expect(await fetch(read.body.link).then((r) => r.text())).toBe(SECRET);
}

beforeAll(async () => {
  h = await startHost();
  port = Number(new URL(h.url).port);
  alice = await h.addUser('alice');
  bob = await h.addUser('bob');
  carol = await h.addUser('carol');
  const up = await req(ep('user-upload'), jsonPost({ name: 'secret.txt', file: Buffer.from(SECRET).toString('base64') }, { 'x-user-key': alice.user_key }));
  expect(up.status).toBe(200);
});
afterAll(async () => {
  await h?.stop();
});

describe('key confusion', () => {
  test('two users\' keys in any two places (header, user_key, _user_key; query, JSON, form) are 401, never one user\'s meta with the other\'s args; variants of a key are unknown', async () => {
    const a = alice.user_key;
    const b = bob.user_key;
    const q = (s: string) => `${ep('user-list')}?${s}`;
    const cases: Array<[string, string, RequestInit]> = [
      ['header a + JSON _user_key b', ep('user-list'), jsonPost({ _user_key: b }, { 'x-user-key': a })],
      ['header a + JSON user_key b', ep('user-list'), jsonPost({ user_key: b }, { 'x-user-key': a })],
      ['query user_key a + _user_key b', q(`user_key=${a}&_user_key=${b}`), {}],
      ['query user_key a + JSON _user_key b', q(`user_key=${a}`), jsonPost({ _user_key: b })],
      ['query a twice-and-b', q(`user_key=${a}&user_key=${a}&user_key=${b}`), {}],
      ['form _user_key b + header a', ep('user-list'), formPost(`_user_key=${b}`, { 'x-user-key': a })],
      ['JSON user_key array [a, b]', ep('user-list'), jsonPost({ _user_key: [a, b] })],
      ['JSON user_key a, _user_key b', ep('user-list'), jsonPost({ user_key: a, _user_key: b })],
      ['header a + query b', q(`_user_key=${b}`), { headers: { 'x-user-key': a } }],
      ['upper-cased key', ep('user-list'), { headers: { 'x-user-key': a.toUpperCase() } }],
      ['key + space in query', q(`user_key=${encodeURIComponent(a + ' ')}`), {}],
      ['key + NBSP in JSON', ep('user-list'), jsonPost({ _user_key: a + '\u00a0' })],
      ['key + zero-width space in JSON', ep('user-list'), jsonPost({ _user_key: '\u200b' + a })],
      ['fullwidth digits of the key', ep('user-list'), jsonPost({ _user_key: a.replace(/[0-9]/g, (d) => String.fromCharCode(0xff10 + Number(d))) })],
      ['prefix of the key', ep('user-list'), { headers: { 'x-user-key': a.slice(0, 20) } }],
      ['the admin key as a user key', ep('user-list'), { headers: { 'x-user-key': h.adminKey } }],
      ['a user key as the admin key', ep('user-list'), { headers: { 'x-api-key': a } }],
      ['good user key + wrong admin key', ep('user-list'), { headers: { 'x-user-key': a, 'x-api-key': 'nope' } }],
    ];
    const seen: string[] = [];
    for (const [label, url, init] of cases) {
      const r = await req(url, init);
      seen.push(`${label}: ${r.status}`);
    }
    expect(seen).toEqual(cases.map(([label]) => `${label}: 401`));

    // Duplicated X-USER-KEY headers (Node joins them "a, b"): never one of them.
    for (const second of [b, a]) {
      const r = await raw(port, `GET ${ep('user-list')} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-User-Key: ${a}\r\nX-User-Key: ${second}\r\n\r\n`);
      expect(r.status).toBe(401);
    }
    // Agreeing keys in every place work, and act for that user only.
    const same = await req(`${ep('user-list')}?user_key=${b}&_user_key=${b}`, jsonPost({ _user_key: b, user_key: [b, b] }, { 'x-user-key': ` ${b}\t` }));
    expect([same.status, same.body.files]).toEqual([200, []]);
  });

  test('an admin key with a user key: user endpoints act as that user only; user keys never open admin endpoints or the users route', async () => {
    const both = { 'x-user-key': bob.user_key, 'x-api-key': h.adminKey };
    const list = await req(ep('user-list'), jsonPost({}, both));
    expect([list.status, list.body.files]).toEqual([200, []]);
    const read = await req(ep('user-read'), jsonPost({ name: 'secret.txt' }, both));
    expect(read.status).toBe(404); // bob's own (missing) file, not alice's
    for (const [name, args] of [
      ['make-links', { fileNames: [`${alice.id}/secret.txt`] }],
      ['admin-upload-link', { name: `${alice.id}/secret.txt` }],
      ['admin-upload', { name: `${alice.id}/secret.txt`, file: 'eA==' }],
    ] as const) {
      for (const init of [jsonPost(args, { 'x-user-key': bob.user_key }), jsonPost({ ...args, _user_key: bob.user_key }), jsonPost(args)]) {
        const r = await req(ep(name), init);
        expect([name, r.status, r.text.includes('X-Amz-Signature')]).toEqual([name, 403, false]);
      }
    }
    const users = (init: RequestInit) => req('/v2/instances/local/users/', init);
    expect((await users(jsonPost({ username: 'x1' }))).status).toBe(403);
    expect((await users(jsonPost({ username: 'x1' }, { 'x-user-key': bob.user_key }))).status).toBe(403);
    expect((await users(jsonPost({ username: 'x1', _user_key: bob.user_key }))).status).toBe(403);
    expect((await users(jsonPost({ username: 'x1' }, { 'x-api-key': 'wrong' }))).status).toBe(401);
    expect((await users(jsonPost({ username: 'x1', _api_key: h.adminKey.toUpperCase() }))).status).toBe(401);
    await aliceIntact();
  });

  test('__proto__ and constructor in JSON, form and query bodies pollute nothing: keyless calls stay 401/403, keyed ones act for their own user', async () => {
    const pollute = [
      '{"__proto__": {"admin": true, "user": {"id": 1, "username": "alice"}, "_user_key": "x", "name": "../1/secret.txt"}}',
      '{"constructor": {"prototype": {"admin": true, "user": {"id": 1}}}}',
      '{"__proto__": {"__proto__": {"admin": 1}}, "prefix": {"__proto__": "1/"}}',
    ];
    for (const body of pollute) {
      expect((await req(ep('user-list'), jsonPost(body))).status).toBe(401);
      expect((await req(ep('make-links'), jsonPost(body))).status).toBe(403);
      const asBob = await req(ep('user-list'), jsonPost(body, { 'x-user-key': bob.user_key }));
      expect([200, 400]).toContain(asBob.status);
      if (asBob.status === 200) expect(asBob.body.files).toEqual([]);
    }
    for (const form of ['__proto__[admin]=1&__proto__=x', 'constructor[prototype][admin]=1', '__proto__=1&user_key=&_user_key=']) {
      expect((await req(`${ep('user-list')}?${form}`)).status).toBe(401);
      expect((await req(ep('make-links'), formPost(form))).status).toBe(403);
      const r = await req(`${ep('user-list')}?${form}`, { headers: { 'x-user-key': bob.user_key } });
      expect([r.status, r.body.files]).toEqual([200, []]);
    }
    // After all of it: a keyless call to every endpoint is still refused.
    for (const name of ['user-list', 'user-read', 'user-delete', 'user-upload', 'user-upload-link']) {
      expect((await req(ep(name), jsonPost({ name: 'secret.txt' }))).status).toBe(401);
    }
    await aliceIntact();
  });
});

describe("no name, prefix or cursor reaches another user's files", () => {
  const names = [
    '../1/secret.txt', '..', './../1/secret.txt', 'a/../../1/secret.txt', '/1/secret.txt', '//1/secret.txt', '1//../secret.txt',
    '%2e%2e/1/secret.txt', '%2E%2E%2F1%2Fsecret.txt', '..%2f1%2fsecret.txt', '%252e%252e%252f1%252fsecret.txt',
    '..\\1\\secret.txt', '..\\..\\1/secret.txt', '\uff0e\uff0e/1/secret.txt', '..\uff0f1\uff0fsecret.txt', '..\u22151\u2215secret.txt',
    '..\u20441\u2044secret.txt', '\u2024\u2024/1/secret.txt', '.\u0301./1/secret.txt', 'e\u0301/../../1/secret.txt', '../1/secret.txt\u0000',
    '..\u0000/1/secret.txt', '.. /1/secret.txt', ' ../1/secret.txt', '../1/secret.txt.', '..../1/secret.txt', '.../../1/secret.txt',
    '\ud800/../../1/secret.txt', '..\u00ad/1/secret.txt', '..\u200b/1/secret.txt', '..\r\n/1/secret.txt', 'x/' + '../'.repeat(400) + '1/secret.txt',
    'a'.repeat(1100), '\u00e9'.repeat(600), '1/secret.txt', 'secret.txt',
  ];

  test('user-read, user-delete and user-upload by bob, with every name through JSON, the query string and a form body: a 400 or 404, or bob\'s own key', async () => {
    const seen: string[] = [];
    for (const name of names) {
      const transports: Array<[string, string, RequestInit]> = [['json', ep('user-read'), jsonPost({ name }, { 'x-user-key': bob.user_key })]];
      if (name.isWellFormed()) {
        transports.push(
          ['query', `${ep('user-read')}?name=${encodeURIComponent(name)}`, { headers: { 'x-user-key': bob.user_key } }],
          ['form', ep('user-read'), formPost(`name=${encodeURIComponent(name)}&_user_key=${bob.user_key}`)],
        );
      }
      // The name pasted into the query as it is (its %-escapes decoded once by the host).
      if (/^[\x21-\x7e]*$/.test(name) && !/[#&+]/.test(name)) transports.push(['raw query', `${ep('user-read')}?name=${name}`, { headers: { 'x-user-key': bob.user_key } }]);
      for (const [t, url, init] of transports) {
        const r = await req(url, init);
        const ok = r.status === 400 || r.status === 404 || (r.status === 200 && String(r.body.key).startsWith(`${bob.id}/`));
        if (!ok) seen.push(`read ${t} ${JSON.stringify(name).slice(0, 60)}: ${r.status} ${r.text.slice(0, 120)}`);
      }
    }
    const del = await req(ep('user-delete'), jsonPost({ names: names.filter((n) => n !== 'secret.txt' && n !== '1/secret.txt') }, { 'x-user-key': bob.user_key }));
    expect(del.status).toBe(400); // one bad name fails the call, nothing deleted
    for (const name of names) {
      const d = await req(ep('user-delete'), jsonPost({ name }, { 'x-user-key': bob.user_key }));
      if (d.status === 200 && d.body.deleted.length) seen.push(`delete ${JSON.stringify(name).slice(0, 60)}: deleted ${d.body.deleted}`);
      if (d.status >= 500) seen.push(`delete ${JSON.stringify(name).slice(0, 60)}: ${d.status}`);
      const u = await req(ep('user-upload'), jsonPost({ name, file: Buffer.from('bob was here').toString('base64') }, { 'x-user-key': bob.user_key }));
      if (!(u.status === 400 || (u.status === 200 && String(u.body.key).startsWith(`${bob.id}/`)))) seen.push(`upload ${JSON.stringify(name).slice(0, 60)}: ${u.status}`);
    }
    expect(seen).toEqual([]);
    await aliceIntact();
  });

  test('user-list: prefixes and forged cursors (pointing at "1/", "../", past the prefix, decoding to anything) never list alice\'s file', async () => {
    const enc = (s: string) => Buffer.from(s, 'utf8').toString('base64url');
    const prefixes = ['../1', '../1/', '..', '/', '//', '/1/', '1/', '%2e%2e/', '..\\1', '\uff0e\uff0e/1', '\u0000', '*', '?', '.*', '', 'se'];
    const cursors = [enc('../1/'), enc('../1/secret.txt'), enc('/1/secret.txt'), enc('..'), enc(''), enc('\u0000'), enc('a\\b'), enc('\uffff'), enc('\ud800'),
      'Li4vMS8=', 'Li4vMS8', 'Li4vMS8==', 'Li4v%2FMS8', '../1/', enc('x'.repeat(1100)), enc('0'), enc(' '), 'AAAA', '_-_-', enc('1/secret.txt'), 'x'.repeat(2049)];
    const aliceEtag = crypto.createHash('md5').update(SECRET).digest('hex');
    const leaked: string[] = [];
    const look = async (args: Record<string, unknown>) => {
      for (const init of [jsonPost(args, { 'x-user-key': bob.user_key })]) {
        const r = await req(ep('user-list'), init);
        // bob's own folder has names like "1/secret.txt" (the uploads above): alice's file is told by its ETag.
        if (r.status >= 500 || (r.status === 200 && r.text.includes(aliceEtag))) leaked.push(`${JSON.stringify(args).slice(0, 80)}: ${r.status} ${r.text.slice(0, 100)}`);
        if (r.status !== 200 && r.status !== 400) leaked.push(`${JSON.stringify(args).slice(0, 80)}: status ${r.status}`);
      }
    };
    for (const prefix of prefixes) await look({ prefix });
    for (const cursor of cursors) await look({ cursor });
    for (const cursor of cursors.slice(0, 6)) await look({ cursor, prefix: 'a' });
    const carolList = await req(`${ep('user-list')}?prefix=&limit=1000`, { headers: { 'x-user-key': carol.user_key } });
    expect(carolList.body.files).toEqual([]);
    // bob pages through his whole folder with the cursors he is given: never alice's file.
    let cursor: string | null = null;
    for (let page = 0; page < 200; page++) {
      const r: Answer = await req(ep('user-list'), jsonPost({ limit: 1, ...(cursor ? { cursor } : {}) }, { 'x-user-key': bob.user_key }));
      expect(r.status).toBe(200);
      if (r.text.includes(aliceEtag)) leaked.push(`page ${page}`);
      cursor = r.body.cursor;
      if (!cursor) break;
    }
    expect(cursor).toBeNull();
    expect(leaked).toEqual([]);
  });
});

describe('answers and headers', () => {
  test('download names and content types cannot inject headers: CRLF is refused or percent-encoded, in the host\'s 302 and in the store\'s answer', async () => {
    const evil = 'a\r\nSet-Cookie: stolen=1\r\n\r\n<script>alert(1)</script>';
    const r = await req(ep('user-read'), jsonPost({ name: 'secret.txt', download: evil, redirect: true }, { 'x-user-key': alice.user_key }));
    expect(r.status).toBe(302);
    expect(r.headers.get('set-cookie')).toBeNull();
    const loc = r.headers.get('location')!;
    expect(loc).not.toMatch(/[\r\n]/);
    const got = await fetch(loc);
    expect(await got.text()).toBe(SECRET);
    expect(got.headers.get('set-cookie')).toBeNull();
    expect(got.headers.get('content-disposition')).not.toMatch(/[\r\n]/);
    expect(got.headers.get('content-disposition')).toMatch(/^attachment; filename="[^"]*"; filename\*=UTF-8''[^\s]*$/);
    for (const contentType of ['text/plain\r\nX-Evil: 1', 'text/plain\nx-amz-acl: public-read', 'text/plain; charset="a\r\nb"', 'text/\u0130tml']) {
      for (const name of ['user-upload-link', 'user-upload']) {
        const u = await req(ep(name), jsonPost({ name: 'ct.txt', contentType, file: 'eA==' }, { 'x-user-key': alice.user_key }));
        expect([name, contentType, u.status]).toEqual([name, contentType, 400]);
      }
    }
  });

  test('CORS: any Origin gets "*" and never Allow-Credentials or a reflected origin; preflight on every route shape', async () => {
    for (const origin of ['https://evil.example', 'null', 'http://127.0.0.1.evil.example', 'https://a\u0080b', '*']) {
      for (const url of [ep('user-list'), `/v3/instances/local/endpoints/sockets/aws-storage/user-list/`, '/v2/instances/local/users/']) {
        const r = await raw(port, `OPTIONS ${url} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: ${origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: x-user-key, cookie\r\n\r\n`);
        expect([url, r.status, r.headers['access-control-allow-origin'], r.headers['access-control-allow-credentials']]).toEqual([url, 204, '*', undefined]);
      }
      const g = await raw(port, `GET ${ep('user-list')} HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: ${origin}\r\nX-User-Key: ${bob.user_key}\r\n\r\n`);
      expect([g.status, g.headers['access-control-allow-origin'], g.headers['access-control-allow-credentials']]).toEqual([200, '*', undefined]);
    }
  });
});

describe('malformed HTTP and odd bodies', () => {
  test('smuggling shapes are 400 and closed (CL+TE, two CLs, obs-fold, bad chunk sizes, NUL/CR in headers); chunk extensions are ignored; the body of a refused request is never run as a request', async () => {
    const p = ep('user-list');
    const bad = [
      `POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      `POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}`,
      `POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\n{}`,
      `POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n`,
      `POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}`,
      `POST ${p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n`,
      `POST ${p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`,
      `POST ${p} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n`,
      `POST ${p} HTTP/1.1\r\nHost: x\r\nX-User-Key: zz\r\n ${bob.user_key}\r\nContent-Length: 2\r\n\r\n{}`,
      `POST ${p} HTTP/1.1\r\nHost: x\r\nX-User-Key: ${bob.user_key}\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{}\r\n0\r\n\r\n`,
      `POST ${p} HTTP/1.1\r\nHost: x\r\nX-User-Key: ${bob.user_key}\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\n{}\r\n0\r\n\r\n`,
      `GET ${p} HTTP/1.1\r\nHost: x\r\nX-User-Key: ${bob.user_key}\u0000\r\n\r\n`,
      `GET ${p} HTTP/1.1\r\nHost: x\r\nX-User-Key: a\rb\r\n\r\n`,
      `GET ${p} HTTP/1.1\nHost: x\nX-User-Key: ${bob.user_key}\n\n`.replace('HTTP/1.1\n', 'HTTP/1.1\r\r\n'),
      `GET /a b HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GET ${p} HTTP/1.1\r\n\r\n`,
    ];
    for (const head of bad) {
      const r = await raw(port, head, { timeoutMs: 3_000, waitCloseMs: 300 });
      expect([JSON.stringify(head).slice(0, 90), r.status, r.closed]).toEqual([JSON.stringify(head).slice(0, 90), 400, true]);
    }
    // Chunk extensions are ignored; the body is the chunks.
    const ext = await raw(port, `POST ${p} HTTP/1.1\r\nHost: x\r\nX-User-Key: ${bob.user_key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b;c="d"\r\n{}\r\n0\r\n\r\n`);
    expect(ext.status).toBe(200);
    // The body of a refused request is never read as a request (its length rules): the GET inside is not run.
    const inner = `GET ${p}?user_key=${alice.user_key} HTTP/1.1\r\nHost: x\r\n\r\n`;
    const before = h.logs().split('\n').filter((l) => /GET \/aws-storage\/user-list\/ 200/.test(l)).length;
    const r = await raw(port, `POST ${p} HTTP/1.1\r\nHost: x\r\nX-User-Key: nope\r\nContent-Length: ${inner.length}\r\n\r\n${inner}`, { waitCloseMs: 500 });
    expect(r.status).toBe(401);
    await new Promise((res) => setTimeout(res, 3_000));
    expect(h.logs().split('\n').filter((l) => /GET \/aws-storage\/user-list\/ 200/.test(l)).length).toBe(before);
  });

  test('gzip (a 64 MB zip bomb in 64 KB), multipart and deflate bodies are not inflated or parsed as arguments: 400, and the host holds no more memory', async () => {
    const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${h.process.pid}/status`, 'utf8'))![1]) * 1024;
    const bomb = zlib.gzipSync(Buffer.concat([Buffer.from('{"name":"'), Buffer.alloc(64 * 1024 * 1024, 0x61), Buffer.from('"}')]), { level: 9 });
    expect(bomb.length).toBeLessThan(100 * 1024);
    const base = rss();
    const bombHeaders: Array<Record<string, string>> = [{ 'content-encoding': 'gzip', 'x-user-key': bob.user_key }, { 'content-encoding': 'gzip' }, { 'content-encoding': 'deflate, gzip', 'x-user-key': bob.user_key }];
    for (const headers of bombHeaders) {
      const r = await req(ep('user-read'), { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: bomb });
      expect([400, 401, 413, 415]).toContain(r.status);
    }
    expect(rss() - base).toBeLessThan(50 * 1024 * 1024);
    const form = new FormData();
    form.append('name', 'secret.txt');
    form.append('_user_key', bob.user_key);
    const mp = await req(ep('user-read'), { method: 'POST', body: form });
    expect([400, 401]).toContain(mp.status);
    const mpKeyed = await req(ep('user-read'), { method: 'POST', body: form, headers: { 'x-user-key': bob.user_key } });
    expect(mpKeyed.status).toBe(400);
    // JSON labelled as a form, and a JSON string full of brackets (not nesting).
    const asForm = await req(ep('user-list'), formPost(JSON.stringify({ prefix: 'a', _user_key: bob.user_key })));
    expect(asForm.status).toBe(200);
    const brackets = await req(ep('user-read'), jsonPost({ name: '['.repeat(500) + '{'.repeat(500) }, { 'x-user-key': bob.user_key }));
    expect(brackets.status).toBe(404);
  });
});

describe('users route, static page and logs', () => {
  test('hostile usernames are 201 or 400, never 500; non-strings are 400; a name taken is 409', async () => {
    const add = (body: unknown) => req('/v2/instances/local/users/', jsonPost(body, { 'x-api-key': h.adminKey }));
    const statuses: string[] = [];
    for (const username of ['<img src=x onerror=alert(1)>', '__proto__', 'constructor', 'toString', 'x\u2028y', 'a\u0085b', '\u202eevil', 'alice\u200b', 'ALICE',
      '\ud800', '\udfff', '\ud83d\ude00', 'a'.repeat(150), 'a'.repeat(151), 'x\r\ny', '\u0000', ' alice', 'alice ', '', "'; DROP TABLE users; --", '%00', '..\\..']) {
      statuses.push(`${JSON.stringify(username).slice(0, 40)}: ${(await add({ username })).status}`);
    }
    expect(statuses.filter((s) => !/: (201|400)$/.test(s))).toEqual([]);
    for (const username of [['a'], { a: 1 }, 1, true, null]) expect((await add({ username })).status).toBe(400);
    expect((await add({ username: 'alice' })).status).toBe(409);
    expect((await add({})).status).toBe(400);
    expect((await add('{"username": "ok-user", "__proto__": {"admin": true}}')).status).toBe(201);
  });

  test('static route: no traversal reaches DATA_DIR (admin-key, store-credentials.json, users.sqlite) or the source', async () => {
    const dataRel = path.relative(path.join(__dirname, '..', '..', 'scripts', 'host', 'public'), h.dataDir);
    const targets = ['admin-key', 'store-credentials.json', 'users.sqlite'];
    const paths: string[] = [];
    for (const t of targets) {
      paths.push(`/${dataRel}/${t}`, `/..%2f..%2f..%2f..%2f..%2f..%2f..%2f..%2f${h.dataDir.slice(1).replace(/\//g, '%2f')}%2f${t}`, `${h.dataDir}/${t}`,
        `/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e${h.dataDir}/${t}`, `/..%5c..%5c..%5c..%5c..%5c..%5c..${h.dataDir}/${t}`,
        `/%252e%252e%252f${t}`, `//${h.dataDir}/${t}`, `/.%2e/.%2e/.%2e/.%2e/.%2e/.%2e/.%2e${h.dataDir}/${t}`);
    }
    paths.push('/../server.ts', '/..%2fserver.ts', '/%2e%2e%2fserver.ts', '/index.html%00.txt', '/app.js%00', '/%c0%ae%c0%ae/server.ts', '/..%c0%afserver.ts',
      '/\uff0e\uff0e/server.ts', '/..%ef%bc%8fserver.ts', '/.%00./server.ts', '/%2e%2e%5cserver.ts', '/app.js/', '/app.js/..', '/./app.js/../../server.ts');
    const secrets = [h.adminKey, h.s3Credentials!.secretAccessKey, 'createHostServer'];
    const publicDir = path.join(__dirname, '..', '..', 'scripts', 'host', 'public');
    const pages = fs.readdirSync(publicDir).map((f) => fs.readFileSync(path.join(publicDir, f), 'utf8'));
    const hits: string[] = [];
    for (const p of paths) {
      const r = await raw(port, `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, { timeoutMs: 3_000 });
      // A 200 may only ever be one of the page's own files (`/app.js/..` is `/`, the index).
      if (secrets.some((s) => r.body.includes(s)) || (r.status === 200 && !pages.includes(r.body))) hits.push(`${p}: ${r.status}`);
      if (r.status >= 500) hits.push(`${p}: ${r.status}`);
    }
    expect(hits).toEqual([]);
    expect((await req('/')).text).toContain('<html');
  });

  test('the logs: one line per request, no CR/LF injected from a path, and no user key, admin key, store secret or link signature', async () => {
    await raw(port, `GET /x%0d%0aFAKE-LINE%0aaws-storage%20admin%20key%20generated HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await raw(port, `GET /x\u2028FAKE2 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    await req(`/aws-storage/user-list/?user_key=${bob.user_key}&api_key=${h.adminKey}`);
    await new Promise((r) => setTimeout(r, 300));
    const logs = h.logs();
    expect(logs.split('\n').filter((l) => /^\s*(FAKE|aws-storage admin key generated)/.test(l))).toEqual([]);
    for (const u of [alice, bob, carol]) expect(logs).not.toContain(u.user_key);
    expect(logs).not.toContain(h.adminKey);
    expect(logs).not.toContain(h.s3Credentials!.secretAccessKey);
    expect(logs).not.toMatch(/X-Amz-Signature=[0-9a-f]{8}/);
    expect(logs).not.toMatch(/^\s+at /m);
  });
});
