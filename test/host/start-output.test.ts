/**
 * What `npm start` tells a newcomer: where the page is and the one command that makes a user; and no
 * third-party notice (the AWS SDK's Node-version warning) in the host's output, even when the
 * environment does not switch it off.
 */
import { startHost, type StartedHost } from '../support/host';

jest.setTimeout(60_000);
let host: StartedHost | undefined;
afterAll(async () => {
  await host?.stop().catch(() => undefined);
});

test('the page URL and the user command are printed; the SDK notice is not', async () => {
  host = await startHost({ env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: '' } });
  const user = await host.addUser('newcomer');
  // a call that builds the socket's S3 client (where the SDK would warn)
  const res = await fetch(`${host.url}/aws-storage/user-upload-link/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user-key': user.user_key },
    body: JSON.stringify({ name: 'first.txt' }),
  });
  expect(res.status).toBe(200);
  expect((await fetch(`${host.url}/healthz`)).status).toBe(200);
  await new Promise((r) => setTimeout(r, 300));
  const logs = host.logs();
  expect(logs).toContain(`aws-storage the page: ${host.url}/ (make a user for it: npm run users -- add <username>)`);
  expect(logs).not.toMatch(/NodeVersionSupportWarning|AWS SDK for JavaScript/);
});
