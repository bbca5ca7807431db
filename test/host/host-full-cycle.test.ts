// The real socket served by the host (`npm start`), end to end: users, the full upload/read cycle through
// @syncano/client and plain fetch, admin calls as @syncano/core sends them (over HTTPS, in a child
// process), restart, CORS, limits. Runs against the embedded store, or the external store AWS_* name.
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import SyncanoClient from '@syncano/client';
import { PROJECT_ROOT, startHost, StartedHost, tempDir, readAnswer } from '../support/host';

jest.setTimeout(120_000);

const MAX_FILE_SIZE = 100_000;
const BODY_LIMIT = Math.ceil(MAX_FILE_SIZE / 3) * 4 + 64 * 1024;
const run = crypto.randomBytes(4).toString('hex'); // file names unique per run (external stores persist)

type User = { id: number; username: string; user_key: string };
let host: StartedHost;
let carol: User;
let dave: User;

async function api(endpoint: string, init: RequestInit & { query?: Record<string, string> } = {}) {
  const q = init.query ? '?' + new URLSearchParams(init.query).toString() : '';
  return readAnswer(await fetch(`${host.url}/aws-storage/${endpoint}/${q}`, init));
}
const post = (value: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(value),
});
async function getBytes(url: string): Promise<Buffer> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}
function addUserByCli(dataDir: string, username: string): User {
  return JSON.parse(
    execFileSync(process.execPath, ['--import', 'tsx', 'scripts/host/users-cli.ts', 'add', username], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, DATA_DIR: dataDir },
      encoding: 'utf8',
    }),
  );
}

beforeAll(async () => {
  host = await startHost({ env: { MAX_FILE_SIZE: String(MAX_FILE_SIZE) } });
  carol = addUserByCli(host.dataDir, 'carol');
  dave = await host.addUser('dave');
});

afterAll(async () => {
  if (host) await host.stop();
});

test('two users: one from the CLI, one over HTTP', () => {
  expect(carol).toEqual({ id: 1, username: 'carol', user_key: expect.stringMatching(/^[0-9a-f]{40}$/) });
  expect(dave).toEqual({ id: 2, username: 'dave', user_key: expect.stringMatching(/^[0-9a-f]{40}$/) });
  expect(host.logs()).toMatch(/aws-storage store: http\S* \((embedded|external)/);
});

test('/healthz is 200 when the store answers', async () => {
  const r = await fetch(`${host.url}/healthz`);
  expect([r.status, await r.json()]).toEqual([200, { status: 'ok' }]);
});

test('full cycle through @syncano/client: upload link, PUT, read link, GET; base64 upload, read', async () => {
  const client = new SyncanoClient('local', { token: carol.user_key });
  const bytes = crypto.randomBytes(2048);
  const name = `client-${run}/photo.bin`;

  const up = await client.post(`${host.url}/aws-storage/user-upload-link/`, { name, contentType: 'application/octet-stream' });
  expect(up).toMatchObject({ link: expect.stringMatching(/^https?:\/\//), method: 'PUT', key: `${carol.id}/${name}` });
  const put = await fetch(up.link, { method: 'PUT', headers: up.headers, body: bytes });
  expect(put.status).toBe(200);

  // the v3 route, as the client builds it for a platform host
  const read = await client.post(`${host.url}/v3/instances/local/endpoints/sockets/aws-storage/user-read/`, { name });
  expect(read).toMatchObject({ key: `${carol.id}/${name}` });
  expect((await getBytes(read.link)).equals(bytes)).toBe(true);

  const text = Buffer.from(`hello from the client ${run}`);
  const b64 = await client.post(`${host.url}/aws-storage/user-upload/`, {
    name: `client-${run}/hello.txt`,
    file: text.toString('base64'),
    contentType: 'text/plain',
  });
  expect(b64).toMatchObject({ key: `${carol.id}/client-${run}/hello.txt`, size: text.length });
  const read2 = await client.get(`${host.url}/aws-storage/user-read/`, { name: `client-${run}/hello.txt` });
  expect((await getBytes(read2.link)).equals(text)).toBe(true);
});

test('full cycle through plain fetch with each way of passing the user key', async () => {
  const ways: Array<(args: Record<string, unknown>) => RequestInit & { query?: Record<string, string> }> = [
    (args) => post(args, { 'X-USER-KEY': dave.user_key }),
    (args) => ({ ...post(args), query: { user_key: dave.user_key } }),
    (args) => post({ ...args, _user_key: dave.user_key }),
  ];
  for (const [i, way] of ways.entries()) {
    const name = `fetch-${run}/way-${i}.txt`;
    const bytes = Buffer.from(`way ${i} ${run}`);
    const up = await api('user-upload-link', way({ name, contentType: 'text/plain' }));
    expect(up.status).toBe(200);
    expect(up.body.key).toBe(`${dave.id}/${name}`);
    const put = await fetch(up.body.link, { method: 'PUT', headers: up.body.headers, body: bytes });
    expect(put.status).toBe(200);
    const read = await api('user-read', way({ name }));
    expect(read.status).toBe(200);
    expect((await getBytes(read.body.link)).equals(bytes)).toBe(true);

    const b64name = `fetch-${run}/b64-${i}.txt`;
    const data = Buffer.from(`base64 way ${i}`);
    const upload = await api('user-upload', way({ name: b64name, file: `data:text/plain;base64,${data.toString('base64')}` }));
    expect(upload.status).toBe(200);
    const read2 = await api('user-read', way({ name: b64name }));
    expect((await getBytes(read2.body.link)).equals(data)).toBe(true);
  }
  // dave cannot see carol's files
  const other = await api('user-read', post({ name: `client-${run}/hello.txt` }, { 'x-user-key': dave.user_key }));
  expect(other).toMatchObject({ status: 404, body: { code: 'not_found' } });
});

test('admin calls with x-api-key as @syncano/core sends them; private endpoints refuse a user key', async () => {
  const admin = { 'x-api-key': host.adminKey };
  const data = Buffer.from(`shared ${run}`);
  const name = `shared-${run}/doc.txt`;
  const up = await api('admin-upload', post({ name, file: data.toString('base64'), contentType: 'text/plain', _method: 'POST' }, admin));
  expect(up).toMatchObject({ status: 200, body: { key: name } });
  const links = await api('make-links', post({ fileNames: [name, `shared-${run}/missing.txt`], check: true }, admin));
  expect(links.status).toBe(200);
  expect((await getBytes(links.body.files[name])).equals(data)).toBe(true);
  expect(links.body.errors).toEqual([expect.objectContaining({ name: `shared-${run}/missing.txt` })]);
  const ul = await api('admin-upload-link', post({ name: `shared-${run}/up.txt` }, admin));
  expect(ul).toMatchObject({ status: 200, body: { key: `shared-${run}/up.txt` } });

  for (const endpoint of ['make-links', 'admin-upload', 'admin-upload-link']) {
    const asUser = await api(endpoint, post({ name, fileNames: [name], file: 'aGk=' }, { 'x-user-key': carol.user_key }));
    expect([endpoint, asUser.status, asUser.body.code]).toEqual([endpoint, 403, 'forbidden']);
    const anon = await api(endpoint, post({ name, fileNames: [name], file: 'aGk=' }));
    expect([endpoint, anon.status]).toEqual([endpoint, 403]);
  }
});

test('unknown key 401; no key 401 on user endpoints', async () => {
  const r = await api('user-read', post({ name: 'x.txt' }, { 'x-user-key': '0'.repeat(40) }));
  expect(r).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
  const none = await api('user-read', post({ name: 'x.txt' }));
  expect(none).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
});

test('CORS: a browser preflight to the host and to the store upload link is answered', async () => {
  const origin = 'http://app.example';
  const pre = await fetch(`${host.url}/aws-storage/user-upload-link/`, {
    method: 'OPTIONS',
    headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-user-key' },
  });
  expect(pre.status).toBe(204);
  expect(pre.headers.get('access-control-allow-origin')).toBe('*');

  const up = await api('user-upload-link', post({ name: `cors-${run}.txt`, contentType: 'text/plain' }, { 'x-user-key': carol.user_key }));
  expect(up.headers.get('access-control-allow-origin')).toBe('*');
  const storePre = await fetch(up.body.link, {
    method: 'OPTIONS',
    headers: { Origin: origin, 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'content-type' },
  });
  expect([200, 204]).toContain(storePre.status);
  expect([origin, '*']).toContain(storePre.headers.get('access-control-allow-origin'));
  expect((storePre.headers.get('access-control-allow-methods') ?? '').toUpperCase()).toContain('PUT');
  // and the browser's actual PUT, with its Origin, gets CORS headers back
  const put = await fetch(up.body.link, { method: 'PUT', headers: { ...up.body.headers, Origin: origin }, body: 'from a browser' });
  expect(put.status).toBe(200);
  expect([origin, '*']).toContain(put.headers.get('access-control-allow-origin'));
});

test('limits and errors: body over the limit 413, file over MAX_FILE_SIZE 413, bad JSON 400, 404, 405', async () => {
  const key = { 'x-user-key': carol.user_key };
  const over = await api('user-upload', post({ name: 'big.bin', file: 'A'.repeat(BODY_LIMIT) }, key));
  expect(over).toMatchObject({ status: 413, body: { code: 'payload_too_large' } });
  const tooBig = await api('user-upload', post({ name: 'big.bin', file: crypto.randomBytes(MAX_FILE_SIZE + 1).toString('base64') }, key));
  expect(tooBig).toMatchObject({ status: 413, body: { code: 'payload_too_large' } });
  const bad = await api('user-upload', { method: 'POST', headers: { 'content-type': 'application/json', ...key }, body: '{"name":' });
  expect(bad).toMatchObject({ status: 400, body: { code: 'invalid_argument' } });
  const unknown = await api('no-such-endpoint');
  expect(unknown).toMatchObject({ status: 404, body: { code: 'not_found' } });
  const method = await api('user-read', { method: 'DELETE', headers: key });
  expect(method).toMatchObject({ status: 405 });
  // nothing was written
  const read = await api('user-read', post({ name: 'big.bin' }, key));
  expect(read.status).toBe(404);
});

test('@syncano/core in a child process, over HTTPS with a self-signed certificate, gets working links', async () => {
  const dir = tempDir('aws-storage-tls-');
  const cert = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', keyFile, '-out', cert,
  ], { stdio: 'ignore' });
  const tls = await startHost({ env: { TLS_CERT: cert, TLS_KEY: keyFile } });
  try {
    expect(tls.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const script = path.join(dir, 'core-client.js');
    fs.writeFileSync(
      script,
      `const Server = require(${JSON.stringify(path.join(PROJECT_ROOT, 'node_modules/@syncano/core'))});
const { endpoint } = new Server({});
(async () => {
  const name = process.argv[2];
  const up = await endpoint.post('aws-storage/admin-upload', { name, file: Buffer.from('core ' + name).toString('base64') });
  const links = await endpoint.post('aws-storage/make-links', { fileNames: [name] });
  process.stdout.write(JSON.stringify({ up, links }));
})().catch((err) => { process.stderr.write(String(err && err.stack) + ' ' + JSON.stringify(err && err.data)); process.exit(1); });
`,
    );
    const name = `core-${run}/file.txt`;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [script, name], {
        env: {
          ...process.env,
          NODE_EXTRA_CA_CERTS: cert,
          SYNCANO_HOST: tls.url.replace(/^https:\/\//, ''),
          SYNCANO_INSTANCE_NAME: 'local',
          SYNCANO_API_KEY: tls.adminKey,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(stdout);
        else reject(new Error(`core client exited ${code}: ${stderr}\n${tls.logs()}`));
      });
    });
    const { up, links } = JSON.parse(out);
    expect(up).toMatchObject({ key: name });
    expect((await getBytes(links.files[name])).toString()).toBe(`core ${name}`);
    expect(tls.logs()).toMatch(/POST \/v3\/instances\/local\/endpoints\/sockets\/aws-storage\/make-links\/ 200 /);
    expect(tls.logs()).not.toContain(tls.adminKey);
  } finally {
    expect(await tls.stop()).toBe(0);
  }
});

test('restart: files and users survive SIGTERM and a new start on the same DATA_DIR', async () => {
  const name = `restart-${run}/keep.txt`;
  const data = Buffer.from(`kept ${run}`);
  const up = await api('user-upload', post({ name, file: data.toString('base64') }, { 'x-user-key': carol.user_key }));
  expect(up.status).toBe(200);
  const { dataDir, adminKey } = host;
  expect(await host.stop('SIGTERM')).toBe(0);
  expect(host.logs()).toContain('aws-storage stopped');

  host = await startHost({ dataDir, env: { ADMIN_KEY: adminKey, MAX_FILE_SIZE: String(MAX_FILE_SIZE) } });
  for (const user of [carol, dave]) {
    const r = await api('user-read', post({ name: 'nothing-here.txt' }, { 'x-user-key': user.user_key }));
    expect(r.status).toBe(404); // the key is still known (401 otherwise)
  }
  const read = await api('user-read', post({ name }, { 'x-user-key': carol.user_key }));
  expect(read.status).toBe(200);
  expect((await getBytes(read.body.link)).equals(data)).toBe(true);
  const again = await fetch(`${host.url}/v2/instances/local/users/`, post({ username: 'dave' }, { 'x-api-key': adminKey }));
  expect(again.status).toBe(409);
  const logs = host.logs();
  for (const secret of [carol.user_key, dave.user_key, adminKey]) expect(logs).not.toContain(secret);
  expect(logs).not.toMatch(/X-Amz-Signature=/i);
});

test('an instance name in capitals: the host and the socket agree on its bucket', async () => {
  const demo = await startHost({ env: { INSTANCE: 'Demo' } });
  try {
    if (!process.env.AWS_BUCKET) expect(demo.bucket).toBe('demo-bucket');
    const user = await demo.addUser('demo-user');
    const headers = { 'content-type': 'application/json', 'x-user-key': user.user_key };
    const up = await fetch(`${demo.url}/aws-storage/user-upload/`, { method: 'POST', headers, body: JSON.stringify({ name: `demo-${run}.txt`, file: Buffer.from('demo').toString('base64') }) });
    expect(up.status).toBe(200);
    const read = await fetch(`${demo.url}/aws-storage/user-read/`, { method: 'POST', headers, body: JSON.stringify({ name: `demo-${run}.txt` }) });
    expect(read.status).toBe(200);
    expect((await getBytes((await read.json()).link)).toString()).toBe('demo');
  } finally {
    expect(await demo.stop()).toBe(0);
    fs.rmSync(demo.dataDir, { recursive: true, force: true });
  }
});
