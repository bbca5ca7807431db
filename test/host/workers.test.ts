/**
 * HOST_WORKERS=3: the primary runs the embedded store and forks workers on one port. Calls on new
 * connections (which the primary hands to the workers in turn) all know a user created through any of
 * them; a worker that dies is replaced; and SIGTERM lets uploads in flight finish before all exit 0.
 */
import fs from 'node:fs';
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
  const big = Buffer.alloc(4 * 1024 * 1024, 7).toString('base64');
  const uploads = Array.from({ length: 4 }, (_, i) => post('user-upload', user.user_key, { name: `late/${i}.bin`, file: big }));
  await new Promise((r) => setTimeout(r, 50));
  const pids = workerPids();
  const code = await host.stop('SIGTERM');
  const answers = await Promise.all(uploads.map((p) => p.catch((err) => ({ status: 0, body: String(err) }))));
  expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
  expect(code).toBe(0);
  expect(host.logs()).toContain('aws-storage stopped');
  for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
}, 60_000);
