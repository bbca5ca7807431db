// The host's own behaviour, against a throwaway socket (fixture handlers) and an external store that
// does not answer (so no store is started and /healthz is 503).
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { PROJECT_ROOT, startHost, StartedHost, tempDir, readAnswer } from '../support/host';
import { makeFixtureSocket } from './fixture-socket';

const MAX_FILE_SIZE = 3000;
const BODY_LIMIT = Math.ceil(MAX_FILE_SIZE / 3) * 4 + 64 * 1024;

let socketDir: string;
let host: StartedHost;
let alice: { id: number; username: string; user_key: string };
let bob: { id: number; username: string; user_key: string };

const baseEnv = () => ({
  SOCKET_DIR: socketDir,
  AWS_S3_ENDPOINT: 'http://127.0.0.1:1',
  MAX_FILE_SIZE: String(MAX_FILE_SIZE),
  HANDLER_TIMEOUT_MS: '1500',
  HOST_KEYLESS_BODY_LIMIT: String(BODY_LIMIT), // a long `file` with its key in the body is read
  HANDLER_GRACE_MS: '300',
});

async function call(pathAndQuery: string, init: RequestInit = {}) {
  const { status, body, headers } = await readAnswer(await fetch(host.url + pathAndQuery, init));
  return { status, body, headers };
}
const json = (value: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(value),
});

beforeAll(async () => {
  socketDir = makeFixtureSocket();
  host = await startHost({ env: baseEnv() });
  alice = JSON.parse(
    execFileSync(process.execPath, ['--import', 'tsx', 'scripts/host/users-cli.ts', 'add', 'alice'], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, DATA_DIR: host.dataDir },
      encoding: 'utf8',
    }),
  );
  bob = await host.addUser('bob');
});

afterAll(async () => {
  if (host) await host.stop();
});

describe('users', () => {
  test('the CLI and the HTTP route create users with integer ids and 40-hex keys', () => {
    expect(alice).toEqual({ id: 1, username: 'alice', user_key: expect.stringMatching(/^[0-9a-f]{40}$/) });
    expect(bob).toEqual({ id: 2, username: 'bob', user_key: expect.stringMatching(/^[0-9a-f]{40}$/) });
  });

  test('keys are stored hashed: the database never holds a key', () => {
    const db = fs.readFileSync(path.join(host.dataDir, 'users.sqlite'));
    const wal = path.join(host.dataDir, 'users.sqlite-wal');
    const all = Buffer.concat([db, fs.existsSync(wal) ? fs.readFileSync(wal) : Buffer.alloc(0)]).toString('latin1');
    expect(all).not.toContain(alice.user_key);
    expect(all).not.toContain(bob.user_key);
  });

  test('duplicate 409, no admin key 403, wrong admin key 401, bad username 400', async () => {
    const dup = await call('/v2/instances/local/users/', json({ username: 'bob' }, { 'x-api-key': host.adminKey }));
    expect(dup).toMatchObject({ status: 409, body: { code: 'conflict' } });
    const anon = await call('/v2/instances/local/users/', json({ username: 'carol' }));
    expect(anon).toMatchObject({ status: 403, body: { code: 'forbidden' } });
    const asUser = await call('/v2/instances/local/users/', json({ username: 'carol' }, { 'x-user-key': alice.user_key }));
    expect(asUser).toMatchObject({ status: 403, body: { code: 'forbidden' } });
    const wrong = await call('/v2/instances/local/users/', json({ username: 'carol' }, { 'x-api-key': 'nope' }));
    expect(wrong).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
    const bad = await call('/v2/instances/local/users/', json({ username: '' }, { 'x-api-key': host.adminKey }));
    expect(bad).toMatchObject({ status: 400, body: { code: 'invalid_argument' } });
    const form = await call('/v2/instances/local/users', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `username=carol&_api_key=${host.adminKey}`,
    });
    expect(form).toMatchObject({ status: 201, body: { username: 'carol', id: 3 } });
  });
});

describe('routes and arguments', () => {
  test('both route shapes, trailing slash optional, ctx as the platform gave it', async () => {
    for (const p of [
      '/aws-storage/echo/',
      '/aws-storage/echo',
      '/v3/instances/local/endpoints/sockets/aws-storage/echo/',
      '/v3/instances/local/endpoints/sockets/aws-storage/echo',
    ]) {
      const r = await call(`${p}?q=1`);
      expect(r.status).toBe(200);
      expect(r.body.args).toEqual({ q: '1' });
      expect(r.body.meta).toMatchObject({
        instance: 'local',
        socket: 'aws-storage',
        executor: 'aws-storage/echo',
        executed_by: 'socket_endpoint',
        metadata: { file: 'src/echo.ts', description: 'echo' },
        request: { REQUEST_METHOD: 'GET', PATH_INFO: p, REMOTE_ADDR: expect.any(String) },
      });
      expect(r.body.meta.user).toBeUndefined();
      expect(r.body.meta.admin).toBeUndefined();
      expect(r.body.config).toEqual({ MAX_FILE_SIZE: String(MAX_FILE_SIZE) });
      expect(r.headers.get('access-control-allow-origin')).toBe('*');
    }
  });

  test('query and body merge (the body wins); repeated query args become arrays; form bodies', async () => {
    const r = await call('/aws-storage/echo/?a=1&b=q&c=1&c=2', json({ b: 'body', n: 5 }));
    expect(r.body.args).toEqual({ a: '1', b: 'body', c: ['1', '2'], n: 5 });
    const f = await call('/aws-storage/echo/?a=1', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=2&x=y',
    });
    expect(f.body.args).toEqual({ a: '2', x: 'y' });
  });

  test('_method as @syncano/core sends it sets REQUEST_METHOD and leaves args', async () => {
    const r = await call('/aws-storage/echo/', json({ _method: 'GET', k: 'v' }));
    expect(r.body.args).toEqual({ k: 'v' });
    expect(r.body.meta.request.REQUEST_METHOD).toBe('GET');
  });

  test('malformed JSON 400, non-object JSON 400', async () => {
    const bad = await call('/aws-storage/echo/', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' });
    expect(bad).toMatchObject({ status: 400, body: { code: 'invalid_argument', message: expect.any(String) } });
    const arr = await call('/aws-storage/echo/', json([1, 2]));
    expect(arr).toMatchObject({ status: 400, body: { code: 'invalid_argument' } });
  });

  test('unknown routes 404 JSON; other methods 405', async () => {
    for (const p of [
      '/aws-storage/nope/',
      '/other-socket/echo/',
      '/v3/instances/other/endpoints/sockets/aws-storage/echo/',
      '/aws-storage/echo/extra/',
      '/v2/instances/other/users/',
    ]) {
      const r = await call(p);
      expect([p, r.status, r.body.code]).toEqual([p, 404, 'not_found']);
    }
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      const r = await call('/aws-storage/echo/', { method });
      expect(r).toMatchObject({ status: 405, body: { code: 'method_not_allowed' } });
      expect(r.headers.get('allow')).toBe('GET, POST, OPTIONS');
    }
  });

  test('CORS preflight', async () => {
    const res = await fetch(`${host.url}/aws-storage/echo/`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'http://app.example',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type,x-user-key',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, POST, OPTIONS');
    const allowed = res.headers.get('access-control-allow-headers')!.toLowerCase();
    for (const h of ['content-type', 'x-user-key', 'x-api-key']) expect(allowed).toContain(h);
  });

  test('static page: / is served from scripts/host/public when present, else 404 JSON; no escape', async () => {
    const hasIndex = fs.existsSync(path.join(PROJECT_ROOT, 'scripts/host/public/index.html'));
    const root = await fetch(`${host.url}/`);
    expect(root.status).toBe(hasIndex ? 200 : 404);
    await root.text();
    for (const p of ['/%2e%2e/main.ts', '/..%2fmain.ts', '/%2e%2e/%2e%2e/package.json']) {
      const r = await call(p);
      expect([p, r.status]).toEqual([p, 404]);
    }
    const post = await call('/', { method: 'POST' });
    expect(post.status).toBe(404);
  });
});

describe('keys', () => {
  test('a user key by header, by user_key query, by _user_key in query or body; all removed from args', async () => {
    const ways: Array<[string, RequestInit]> = [
      ['/aws-storage/echo/?x=1', { headers: { 'X-USER-KEY': alice.user_key } }],
      [`/aws-storage/echo/?x=1&user_key=${alice.user_key}`, {}],
      [`/aws-storage/echo/?x=1&_user_key=${alice.user_key}`, {}],
      ['/aws-storage/echo/?x=1', json({ _user_key: alice.user_key })],
      // @syncano/client sends user_key twice in the query
      [`/aws-storage/echo/?x=1&user_key=${alice.user_key}&user_key=${alice.user_key}`, { headers: { 'x-user-key': alice.user_key } }],
    ];
    for (const [p, init] of ways) {
      const r = await call(p, init);
      expect(r.status).toBe(200);
      expect(r.body.meta.user).toEqual({ id: 1, username: 'alice', user_key: alice.user_key });
      expect(r.body.args).toEqual({ x: '1' });
      expect(JSON.stringify(r.body.meta.request)).not.toContain(alice.user_key);
    }
  });

  test('the admin key by header, api_key or _api_key; meta.admin', async () => {
    const ways: Array<[string, RequestInit]> = [
      ['/aws-storage/echo/', { headers: { 'x-api-key': host.adminKey } }],
      [`/aws-storage/echo/?api_key=${host.adminKey}`, {}],
      [`/aws-storage/echo/?_api_key=${host.adminKey}`, {}],
      ['/aws-storage/echo/', json({ _api_key: host.adminKey })],
      ['/aws-storage/echo/', json({ api_key: host.adminKey })],
    ];
    for (const [p, init] of ways) {
      const r = await call(p, init);
      expect(r.status).toBe(200);
      expect(r.body.meta.admin).toEqual({ id: 1, email: 'admin@local' });
      expect(r.body.args).toEqual({});
      expect(JSON.stringify(r.body)).not.toContain(host.adminKey);
    }
  });

  test('unknown keys 401; disagreeing user keys 401; the admin key as a user key 401', async () => {
    const cases: Array<[string, RequestInit]> = [
      ['/aws-storage/echo/', { headers: { 'x-user-key': 'f'.repeat(40) } }],
      ['/aws-storage/echo/?user_key=nope', {}],
      ['/aws-storage/echo/', { headers: { 'x-api-key': 'nope' } }],
      [`/aws-storage/echo/?user_key=${bob.user_key}`, { headers: { 'x-user-key': alice.user_key } }],
      ['/aws-storage/echo/', json({ _user_key: bob.user_key }, { 'x-user-key': alice.user_key })],
      ['/aws-storage/echo/', { headers: { 'x-user-key': host.adminKey } }],
      [`/aws-storage/echo/?user_key=${host.adminKey}`, {}],
    ];
    for (const [p, init] of cases) {
      const r = await call(p, init);
      expect(r).toMatchObject({ status: 401, body: { code: 'unauthorized', message: expect.any(String) } });
    }
  });

  test('private endpoints answer 403 without the admin key, before the handler runs', async () => {
    const anon = await call('/aws-storage/secret/');
    expect(anon).toMatchObject({ status: 403, body: { code: 'forbidden' } });
    const user = await call('/aws-storage/secret/', { headers: { 'x-user-key': alice.user_key } });
    expect(user).toMatchObject({ status: 403, body: { code: 'forbidden' } });
    const admin = await call('/aws-storage/secret/', { method: 'POST', headers: { 'x-api-key': host.adminKey } });
    expect(admin).toMatchObject({ status: 200, body: { ok: true, admin: { id: 1 } } });
  });
});

describe('handlers', () => {
  test('throwing 500, resolving without an answer 500, hanging 504, answering late 200, redirect 302', async () => {
    expect(await call('/aws-storage/throws/')).toMatchObject({ status: 500, body: { code: 'internal' } });
    expect(await call('/aws-storage/silent/')).toMatchObject({ status: 500, body: { code: 'internal' } });
    expect(await call('/aws-storage/hangs/')).toMatchObject({ status: 504, body: { code: 'timeout' } });
    expect(await call('/aws-storage/late/')).toMatchObject({ status: 200, body: { late: true } });
    const res = await fetch(`${host.url}/aws-storage/redirect/`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('http://127.0.0.1:1/x');
    // the host is still fine
    expect((await call('/aws-storage/echo/')).status).toBe(200);
  });

  test("a handler's own headers: each sent once, over the base ones whatever their case; length, type and connection stay the host's", async () => {
    const raw = await new Promise<{ status: number; lines: string[]; body: string }>((resolve, reject) => {
      const req = http.request(`${host.url}/aws-storage/ownheaders/`, { method: 'POST', headers: { 'x-user-key': alice.user_key } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => {
          const lines: string[] = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push(`${res.rawHeaders[i].toLowerCase()}: ${res.rawHeaders[i + 1]}`);
          resolve({ status: res.statusCode!, lines, body });
        });
      });
      req.on('error', reject);
      req.end();
    });
    expect(raw.status).toBe(200);
    expect(raw.body).toBe('{"own":true}');
    const named = (n: string) => raw.lines.filter((l) => l.startsWith(`${n}: `));
    expect(named('cache-control')).toEqual(['cache-control: private, max-age=60']);
    expect(named('x-own')).toEqual(['x-own: yes']);
    expect(named('content-length')).toEqual([`content-length: ${raw.body.length}`]);
    expect(named('content-type')).toEqual(['content-type: application/json']);
    expect(named('connection')).toEqual(['connection: keep-alive']); // Node's own, for a keep-alive request
    expect(named('x-content-type-options')).toEqual(['x-content-type-options: nosniff']);
    expect(named('access-control-allow-origin')).toEqual(['access-control-allow-origin: *']);
    expect(new Set(raw.lines.map((l) => l.split(':')[0])).size).toBe(raw.lines.length);
  });

  test('a long base64 `file` reaches a handler that takes one already decoded, only for a caller let in; anything else as the string JSON.parse gives', async () => {
    const bytes = crypto.randomBytes(50_000); // 66,668 characters: a long string (64 KiB) in a body under the limit
    const b64 = bytes.toString('base64');
    const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
    const kind = async (body: string, headers: Record<string, string> = { 'x-user-key': alice.user_key }) => {
      const r = await call('/aws-storage/filekind/', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      expect(r.status).toBe(200);
      return r.body;
    };
    expect(await kind(JSON.stringify({ name: 'a', file: b64 }))).toEqual({ kind: 'decoded', size: bytes.length, sha256: sha(bytes), name: 'a' });
    expect(await kind(JSON.stringify({ file: `data:image/png;base64,${b64}` }))).toMatchObject({ kind: 'decoded', sha256: sha(bytes), dataUrlType: 'image/png' });
    // the key in the body: the caller is not let in until the body is read, so nothing is decoded early
    expect(await kind(JSON.stringify({ user_key: alice.user_key, file: b64 }), {})).toMatchObject({ kind: 'string', sha256: sha(bytes) });
    // not strict base64, escaped, short, nested or repeated: the string, exactly as JSON.parse reads it
    const broken = `${b64.slice(0, 60_000)}*${b64.slice(60_001)}`;
    expect(await kind(JSON.stringify({ file: broken }))).toMatchObject({ kind: 'string', sha256: sha(Buffer.from(broken, 'base64')) });
    expect(await kind(`{"file":"${b64.replace(/\//g, '\\/')}"}`)).toMatchObject({ kind: 'string', sha256: sha(bytes) });
    expect(await kind(JSON.stringify({ file: 'aGk=' }))).toMatchObject({ kind: 'string', size: 2 });
    expect(await kind(`{"file":"${b64}","file":"aGk="}`)).toMatchObject({ kind: 'string', size: 2 });
    // a form is never decoded early
    expect(
      (await call('/aws-storage/filekind/', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-user-key': alice.user_key }, body: `file=${encodeURIComponent(b64.slice(0, 40_000))}` })).body,
    ).toMatchObject({ kind: 'string', sha256: sha(bytes.subarray(0, 30_000)) });
    // an endpoint that takes no file gets the string
    const echoed = await call('/aws-storage/echo/', json({ file: b64 }, { 'x-user-key': alice.user_key }));
    expect(echoed.body.args.file).toBe(b64);
  });

  test('Server-Timing says where a call spent its time: reading the body, parsing it, the handler', async () => {
    const timing = (h: Headers) =>
      Object.fromEntries([...String(h.get('server-timing')).matchAll(/(\w+);dur=(\d+\.\d)/g)].map((m) => [m[1], Number(m[2])]));
    const slow = await call('/aws-storage/slowok/', json({ ms: 300 }));
    expect(slow.status).toBe(200);
    const t = timing(slow.headers);
    expect(Object.keys(t)).toEqual(['read', 'parse', 'handler']);
    expect(t.handler).toBeGreaterThanOrEqual(290);
    expect(t.read + t.parse).toBeLessThan(t.handler);
    // on error answers too (a 504 spent its time in the handler)
    const hung = await call('/aws-storage/hangs/');
    expect(hung.status).toBe(504);
    expect(timing(hung.headers).handler).toBeGreaterThanOrEqual(1400);
  });
});

// A body over 64 KiB is read only for a caller whose key came in a header or the query (front-door tests).
describe('body limit', () => {
  test('413 when Content-Length passes the limit; a body just under it is read', async () => {
    const key = { 'x-user-key': alice.user_key };
    const under = await call('/aws-storage/echo/', json({ file: 'A'.repeat(BODY_LIMIT - 20) }, key));
    expect(under.status).toBe(200);
    const over = await call('/aws-storage/echo/', json({ file: 'A'.repeat(BODY_LIMIT) }, key));
    expect(over).toMatchObject({ status: 413, body: { code: 'payload_too_large' } });
  });

  test('413 on a chunked body as soon as the bytes read pass the limit, before it ends', async () => {
    const url = new URL(`${host.url}/aws-storage/echo/`);
    const result = await new Promise<{ status: number; body: string; sent: number }>((resolve, reject) => {
      let sent = 0;
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-user-key': alice.user_key },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode!, body, sent }));
        },
      );
      req.on('error', reject);
      // Keeps sending 16 KiB chunks (bounded: 4x the limit) and never ends the body on its own.
      const chunk = Buffer.alloc(16 * 1024, 0x41);
      const timer = setInterval(() => {
        if (sent > BODY_LIMIT * 4) {
          clearInterval(timer);
          req.end();
          return;
        }
        sent += chunk.length;
        req.write(chunk);
      }, 2);
      req.on('response', () => clearInterval(timer));
      req.on('close', () => clearInterval(timer));
    });
    expect(result.status).toBe(413);
    expect(JSON.parse(result.body)).toMatchObject({ code: 'payload_too_large' });
    expect(result.sent).toBeLessThan(BODY_LIMIT * 4);
  });
});

describe('health and logs', () => {
  test('/healthz is 503 when the store does not answer, and says which part does not', async () => {
    const r = await call('/healthz');
    expect(r).toEqual({ status: 503, body: { status: 'unavailable', store: 'unavailable', users: 'ok' }, headers: expect.anything() });
  });

  test('the access log has method, path, status and time, and never a key or a query string', async () => {
    await call(`/aws-storage/echo/?user_key=${alice.user_key}&secretparam=1`);
    // the line comes through the host's stdout a moment after the answer: waited for (bounded)
    for (let i = 0; i < 100 && !/GET \/aws-storage\/echo\/ 200 /.test(host.logs()); i++) await new Promise((r) => setTimeout(r, 50));
    const logs = host.logs();
    expect(logs).toMatch(/GET \/aws-storage\/echo\/ 200 \d+(\.\d+)?ms/);
    expect(logs).toMatch(/POST \/v2\/instances\/local\/users\/ 201 /);
    expect(logs).not.toContain(alice.user_key);
    expect(logs).not.toContain(bob.user_key);
    expect(logs).not.toContain(host.adminKey);
    expect(logs).not.toContain('secretparam');
    expect(logs).toContain('aws-storage admin key: from ADMIN_KEY');
    expect(logs).toContain('aws-storage store: http://127.0.0.1:1 (external), bucket local-bucket');
  });
});

describe('lifecycle', () => {
  test('SIGTERM finishes the request in flight, exits 0; users and the generated admin key survive', async () => {
    const dataDir = tempDir();
    const first = await startHost({ dataDir, env: { ...baseEnv(), ADMIN_KEY: '' } });
    const generated = /admin key generated: ([0-9a-f]+)/.exec(first.logs())?.[1];
    expect(generated).toBe(first.adminKey);
    expect(fs.statSync(path.join(dataDir, 'admin-key')).mode & 0o777).toBe(0o600);
    const dora = await first.addUser('dora');

    const inFlight = fetch(`${first.url}/aws-storage/slowok/?ms=800`).then(async (r) => [r.status, await r.json()]);
    await new Promise((r) => setTimeout(r, 200));
    const code = await first.stop('SIGTERM');
    expect(code).toBe(0);
    expect(await inFlight).toEqual([200, { slow: true }]);
    expect(first.logs()).toContain('aws-storage stopped');

    const second = await startHost({ dataDir, env: { ...baseEnv(), ADMIN_KEY: '' } });
    try {
      expect(second.adminKey).toBe(generated);
      expect(second.logs()).not.toContain(generated!);
      expect(second.logs()).toContain(`admin key kept in ${path.join(dataDir, 'admin-key')}`);
      const r = await fetch(`${second.url}/aws-storage/echo/`, { headers: { 'x-user-key': dora.user_key } });
      expect((await r.json()).meta.user).toEqual(dora);
      const dup = await fetch(`${second.url}/v2/instances/local/users/`, json({ username: 'dora' }, { 'x-api-key': generated! }));
      expect(dup.status).toBe(409);
    } finally {
      expect(await second.stop('SIGINT')).toBe(0);
    }
  });

  test('a missing build says to run npm run build', async () => {
    const empty = tempDir();
    fs.writeFileSync(path.join(empty, 'socket.yml'), 'name: aws-storage\nendpoints:\n  a:\n    file: src/a.ts\n');
    await expect(startHost({ env: { ...baseEnv(), SOCKET_DIR: empty }, timeoutMs: 15_000 })).rejects.toThrow(/npm run build/);
  });
});
