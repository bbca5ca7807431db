/**
 * HOST_WORKERS=3: the primary runs the embedded store and forks workers on one port. Calls on new
 * connections (which the primary hands to the workers in turn) all know a user created through any of
 * them; a worker that dies is replaced; and SIGTERM lets uploads in flight finish before all exit 0.
 */
import fs from 'node:fs';
import http from 'node:http';
import { startHost, type StartedHost } from '../support/host';

let host: StartedHost;

beforeAll(async () => {
  host = await startHost({ env: { HOST_WORKERS: '3' }, timeoutMs: 60_000 });
}, 90_000);

afterAll(async () => {
  if (host.process.exitCode === null) await host.stop();
  fs.rmSync(host.dataDir, { recursive: true, force: true });
});

const post = async (endpoint: string, userKey: string, args: object) => {
  const res = await fetch(`${host.url}/aws-storage/${endpoint}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user-key': userKey },
    body: JSON.stringify(args),
    // a new connection each time: the primary hands connections to workers in turn
    keepalive: false,
  });
  return { status: res.status, body: await res.json() };
};

const workerPids = () => {
  const m = /(\d+) workers \(pids ([\d, ]+)\)/.exec(host.logs());
  return m ? m[2].split(', ').map(Number) : [];
};

test('one port, three workers answering', async () => {
  expect(workerPids()).toHaveLength(3);
  expect(host.s3Endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  const health = await fetch(`${host.url}/healthz`);
  expect(health.status).toBe(200);
});

test('a user created through one worker uploads and reads through all of them', async () => {
  const user = await host.addUser('worker-user');
  // A folder of its own: on a shared bucket (Ceph RGW runs) other suites' users share this id.
  const dir = `w-${Date.now().toString(36)}`;
  for (let i = 0; i < 9; i++) {
    const up = await post('user-upload', user.user_key, { name: `${dir}/${i}.txt`, file: Buffer.from(`file ${i}`).toString('base64') });
    expect(up.status).toBe(200);
    const read = await post('user-read', user.user_key, { name: `${dir}/${i}.txt` });
    expect(read.status).toBe(200);
    expect(await (await fetch(read.body.link)).text()).toBe(`file ${i}`);
  }
  const list = await post('user-list', user.user_key, { prefix: `${dir}/` });
  expect(list.body.files.map((f: { name: string }) => f.name).sort()).toEqual([...Array(9).keys()].map((i) => `${dir}/${i}.txt`).sort());
  const wrong = await post('user-read', 'not-a-key', { name: 'w/0.txt' });
  expect(wrong.status).toBe(401);
});

test('a worker that dies is replaced, and the host keeps answering', async () => {
  const [first] = workerPids();
  process.kill(first, 'SIGKILL');
  const deadline = Date.now() + 20_000;
  while (!/worker \d+ exited \(SIGKILL\); starting another/.test(host.logs()) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(host.logs()).toContain(`worker ${first} exited (SIGKILL); starting another`);
  const user = await host.addUser('after-restart');
  for (let i = 0; i < 6; i++) expect((await post('user-list', user.user_key, {})).status).toBe(200);
}, 30_000);

test('SIGTERM: uploads in flight finish, workers and primary exit 0', async () => {
  const user = await host.addUser('sigterm-user');
  const body = Buffer.from(JSON.stringify({ name: 'late/x.bin', file: Buffer.alloc(4 * 1024 * 1024, 7).toString('base64') }));
  const { port } = new URL(host.url);
  // Each upload is connected and has sent half its body before the stop: in flight, whether or not
  // the primary has yet handed its connection to a worker. The rest is sent after SIGTERM.
  const uploads = Array.from({ length: 4 }, (_, i) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/aws-storage/user-upload/', agent: false, headers: {
      'content-type': 'application/json', 'content-length': body.length, 'x-user-key': user.user_key } });
    const answer = new Promise<number>((resolve) => {
      req.on('response', (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)); });
      req.on('error', () => resolve(0));
    });
    const named = Buffer.from(body);
    named.write(`late/${i}.bin`, body.indexOf('late/x.bin'));
    const half = named.length >> 1;
    const connected = new Promise<void>((r) => req.once('socket', (s) => s.once('connect', () => r())));
    req.write(named.subarray(0, half));
    return { connected, answer, finish: () => req.end(named.subarray(half)) };
  });
  await Promise.all(uploads.map((u) => u.connected));
  const pids = workerPids();
  const stopped = host.stop('SIGTERM');
  await new Promise((r) => setTimeout(r, 50));
  for (const u of uploads) u.finish();
  // A connection opened just after the stop (a load balancer not yet told) is served and told to
  // close, not reset; /healthz says the host is stopping, so the balancer sends no more.
  const late = await fetch(`${host.url}/healthz`, { keepalive: false }).then(
    async (res) => ({ status: res.status, connection: res.headers.get('connection'), body: await res.json() }),
    (err) => ({ status: 0, connection: null, body: String(err) }),
  );
  expect(late).toEqual({ status: 503, connection: 'close', body: { status: 'stopping' } });
  const [code, ...statuses] = await Promise.all([stopped, ...uploads.map((u) => u.answer)]);
  expect(statuses).toEqual([200, 200, 200, 200]);
  expect(code).toBe(0);
  expect(host.logs()).toContain('aws-storage stopped');
  for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
}, 60_000);
