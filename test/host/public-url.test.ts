/**
 * S3_PUBLIC_URL: the embedded store's address in links when browsers reach it by another name than
 * http://<HOST>:<S3_PORT> (HOST=0.0.0.0 made links to http://0.0.0.0:4569, the README audit of this
 * pass). Links are signed for that name, and work through it; a value that is not an http(s) origin
 * stops the host at start with a message that names the setting.
 */
import net from 'node:net';
import { startHost, type StartedHost } from '../support/host';

jest.setTimeout(90_000);
const embedded = !process.env.AWS_S3_ENDPOINT;
const hosts: StartedHost[] = [];
afterAll(async () => {
  for (const h of hosts) await h.stop().catch(() => undefined);
});

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

async function call(host: StartedHost, userKey: string, endpoint: string, args: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${host.url}/aws-storage/${endpoint}/`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-user-key': userKey }, body: JSON.stringify(args) });
  return { status: res.status, body: await res.json() };
}

(embedded ? test : test.skip)('links name S3_PUBLIC_URL and work through it; upload, then read', async () => {
  const port = await freePort();
  const publicUrl = `http://localhost:${port}`;
  const host = await startHost({ env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', PORT: '0', S3_PORT: String(port), S3_PUBLIC_URL: `${publicUrl}/` } });
  hosts.push(host);
  expect(host.logs()).toContain(`aws-storage store: ${publicUrl} (listening on http://127.0.0.1:${port}; embedded`);
  const user = await host.addUser('public-url');
  const up = await call(host, user.user_key, 'user-upload-link', { name: 'a.txt', contentType: 'text/plain' });
  expect(up.status).toBe(200);
  expect(new URL(up.body.link).origin).toBe(publicUrl);
  expect((await fetch(up.body.link, { method: 'PUT', headers: up.body.headers, body: 'through the public name' })).status).toBe(200);
  const read = await call(host, user.user_key, 'user-read', { name: 'a.txt' });
  expect(new URL(read.body.link).origin).toBe(publicUrl);
  expect(await (await fetch(read.body.link)).text()).toBe('through the public name');
  // the host's own calls go there too
  expect((await call(host, user.user_key, 'user-list', {})).body.files.map((f: { name: string }) => f.name)).toEqual(['a.txt']);
});

test.each([['ftp://files.example.com'], ['http://files.example.com/bucket'], ['http://user:pw@files.example.com'], ['not a url']])(
  'S3_PUBLIC_URL=%p stops the host at start, naming the setting',
  async (value) => {
    await expect(startHost({ env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', PORT: '0', S3_PORT: '0', S3_PUBLIC_URL: value }, timeoutMs: 15_000 })).rejects.toThrow(/S3_PUBLIC_URL must be/);
  },
);

test('S3_PUBLIC_URL with AWS_S3_ENDPOINT stops the host at start: there is no embedded store for it to name', async () => {
  const env = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', PORT: '0', S3_PORT: '0', AWS_S3_ENDPOINT: 'http://127.0.0.1:9', S3_PUBLIC_URL: 'http://files.example.com' };
  // a host that starts anyway is stopped by afterAll, so the failure is an assertion, not a hang
  const outcome = await startHost({ env, timeoutMs: 15_000 }).then(
    (h) => (hosts.push(h), 'started'),
    (err: Error) => err.message,
  );
  expect(outcome).toMatch(/S3_PUBLIC_URL names the embedded store, which does not run when AWS_S3_ENDPOINT is set/);
});
