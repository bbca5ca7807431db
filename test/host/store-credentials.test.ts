/**
 * The embedded store's key pair: made on the first start, kept in DATA_DIR/store-credentials.json
 * (mode 0600) and reused on the next; another DATA_DIR gets another pair; the old public constant
 * S3RVER/S3RVER opens nothing. The host prints the access key id, never the secret.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { storeClient } from '../../scripts/s3/client';
import { startHost, tempDir, type StartedHost } from '../support/host';

jest.setTimeout(90_000);
const embedded = !process.env.AWS_S3_ENDPOINT;
const hosts: StartedHost[] = [];
afterAll(async () => {
  for (const h of hosts) await h.stop().catch(() => undefined);
});

(embedded ? test : test.skip)('made once per DATA_DIR, kept 0600, reused, never printed whole; S3RVER/S3RVER is refused', async () => {
  const dataDir = tempDir();
  const env = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', S3_PORT: '0', PORT: '0' };
  let host = await startHost({ dataDir, env });
  hosts.push(host);
  const file = path.join(dataDir, 'store-credentials.json');
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  const first = JSON.parse(fs.readFileSync(file, 'utf8')) as { accessKeyId: string; secretAccessKey: string };
  expect(first.accessKeyId).toMatch(/^[A-Z0-9]{20}$/);
  expect(first.secretAccessKey).toMatch(/^[A-Za-z0-9]{40}$/);
  expect(host.logs()).toContain(first.accessKeyId);
  expect(host.logs()).not.toContain(first.secretAccessKey);

  // a link carries the pair's access key id, not a constant
  const user = await host.addUser('alice');
  const res = await fetch(`${host.url}/aws-storage/user-upload-link/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user-key': user.user_key },
    body: JSON.stringify({ name: 'a.txt' }),
  });
  const link = ((await res.json()) as { link: string }).link;
  expect(new URL(link).searchParams.get('X-Amz-Credential')).toMatch(new RegExp(`^${first.accessKeyId}/`));

  // the constant of the former store lists nothing
  const old = storeClient({ endpoint: host.s3Endpoint!, region: 'eu-central-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, { maxAttempts: 1 });
  try {
    await expect(old.send(new ListObjectsV2Command({ Bucket: host.bucket! }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
  } finally {
    old.destroy();
  }

  await host.stop();
  host = await startHost({ dataDir, env });
  hosts.push(host);
  expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(first);
  expect(host.s3Credentials).toEqual(first);

  const other = await startHost({ dataDir: tempDir(), env });
  hosts.push(other);
  expect(other.s3Credentials!.accessKeyId).not.toBe(first.accessKeyId);
  expect(other.s3Credentials!.secretAccessKey).not.toBe(first.secretAccessKey);
});
