/**
 * Attack pass 4, regression: the links the host hands out name the configured store address, whatever
 * the request's Host or X-Forwarded-Host header says (a forged one must not send a user's upload or
 * read to another server); and S3_PUBLIC_URL values that are not an http(s) origin stop the host at start.
 */
import { startHost, type StartedHost } from '../support/host';
import { request } from '../store/raw';

jest.setTimeout(90_000);

let host: StartedHost;
let user: { user_key: string };
beforeAll(async () => {
  host = await startHost();
  user = await host.addUser('forged-host');
});
afterAll(async () => {
  await host?.stop();
});

const FORGED = { host: 'evil.example.com', 'x-forwarded-host': 'evil.example.com', 'x-forwarded-proto': 'https', forwarded: 'host=evil.example.com;proto=https' };

async function forgedCall(endpoint: string, args: Record<string, unknown>) {
  const res = await request(`${host.url}/aws-storage/${endpoint}/`, {
    method: 'POST',
    headers: { ...FORGED, 'content-type': 'application/json', 'x-user-key': user.user_key },
    body: JSON.stringify(args),
  });
  expect([endpoint, res.status]).toEqual([endpoint, 200]);
  return JSON.parse(res.text);
}

test('user-upload-link (PUT and POST) and user-read made with a forged Host / X-Forwarded-Host name the store, and work', async () => {
  const store = new URL(host.s3Endpoint!).origin;
  const put = await forgedCall('user-upload-link', { name: 'forged/a.txt', contentType: 'text/plain' });
  const post = await forgedCall('user-upload-link', { name: 'forged/b.txt', method: 'POST' });
  expect((await fetch(put.link, { method: 'PUT', headers: put.headers, body: 'to the store' })).status).toBe(200);
  const read = await forgedCall('user-read', { name: 'forged/a.txt' });
  for (const link of [put.link, post.link, read.link]) {
    expect(new URL(link).origin).toBe(store);
    expect(link).not.toContain('evil.example.com');
  }
  expect(await (await fetch(read.link)).text()).toBe('to the store');
});

test.each([['http://files.example.com?x=1'], ['http://files.example.com#top'], ['javascript:alert(1)'], ['file:///etc/passwd'], ['//files.example.com']])(
  'S3_PUBLIC_URL=%p stops the host at start',
  async (value) => {
    const env = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', PORT: '0', S3_PORT: '0', S3_PUBLIC_URL: value };
    await expect(startHost({ env, timeoutMs: 15_000 })).rejects.toThrow(/S3_PUBLIC_URL must be/);
  },
);
