/**
 * The admin key a host starts with (ADMIN_KEY, or DATA_DIR/admin-key) is one of the store's admin keys:
 * it works beside keys added by the route, and once revoked it stays refused across restarts, the host
 * saying so at start (a revoked key that came back with a restart would undo the revocation).
 */
import { startHost, tempDir } from '../support/host';
import { admin } from './admin-support';

jest.setTimeout(120_000);

const env = { AWS_S3_ENDPOINT: 'http://127.0.0.1:1' }; // no store needed: admin routes only

test('ADMIN_KEY revoked by another admin key stays revoked after a restart, and the start says so', async () => {
  const dataDir = tempDir();
  const first = 'first-admin-key-0123456789abcdef';
  let host = await startHost({ dataDir, env: { ...env, ADMIN_KEY: first } });
  const second = await admin(host, 'POST', 'api_keys/', { description: 'the new one' });
  expect(second.status).toBe(201);
  const listed = (await admin(host, 'GET', 'api_keys/')).body.objects;
  expect(listed.map((k: { description: string }) => k.description)).toEqual(['ADMIN_KEY', 'the new one']);
  expect((await admin(host, 'DELETE', `api_keys/${listed[0].id}/`, undefined, second.body.api_key)).status).toBe(200);
  expect((await admin(host, 'GET', 'users/', undefined, first)).status).toBe(401);
  expect(await host.stop()).toBe(0);

  host = await startHost({ dataDir, env: { ...env, ADMIN_KEY: first } });
  try {
    expect(host.logs()).toContain('aws-storage admin key ADMIN_KEY was revoked: it is refused; call with another admin key');
    expect((await admin(host, 'GET', 'users/', undefined, first)).status).toBe(401);
    expect((await admin(host, 'GET', 'users/', undefined, second.body.api_key)).status).toBe(200);
    expect((await admin(host, 'GET', 'api_keys/', undefined, second.body.api_key)).body.objects).toHaveLength(2);
  } finally {
    expect(await host.stop()).toBe(0);
  }
});

test('the key kept in DATA_DIR/admin-key (no ADMIN_KEY) works, once, across restarts', async () => {
  const dataDir = tempDir();
  let host = await startHost({ dataDir, env: { ...env, ADMIN_KEY: '' } });
  expect(host.adminKey).toMatch(/^[0-9a-f]{48}$/);
  expect((await admin(host, 'GET', 'users/')).status).toBe(200);
  expect(await host.stop()).toBe(0);
  host = await startHost({ dataDir, env: { ...env, ADMIN_KEY: '' } });
  try {
    expect((await admin(host, 'GET', 'users/')).status).toBe(200);
    expect((await admin(host, 'GET', 'api_keys/')).body.objects).toEqual([expect.objectContaining({ description: 'DATA_DIR/admin-key', revoked_at: null })]);
  } finally {
    expect(await host.stop()).toBe(0);
  }
});
