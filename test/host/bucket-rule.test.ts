/**
 * The bucket the host's embedded store makes at start gets the rule a bucket the socket creates gets
 * (MULTIPART_EXPIRE_DAYS, 7 by default; 0: none): the socket finds that bucket already there, so
 * before this its incomplete multipart uploads were never swept (the README audit of this pass).
 */
import { GetBucketLifecycleConfigurationCommand } from '@aws-sdk/client-s3';
import { storeClient } from '../../scripts/s3/client';
import { startHost, tempDir, type StartedHost } from '../support/host';

jest.setTimeout(90_000);
const embedded = !process.env.AWS_S3_ENDPOINT;
const hosts: StartedHost[] = [];
afterAll(async () => {
  for (const h of hosts) await h.stop().catch(() => undefined);
});

async function ruleOf(host: StartedHost): Promise<unknown> {
  const s3 = storeClient({ endpoint: host.s3Endpoint!, region: 'eu-central-1', ...host.s3Credentials! }, { maxAttempts: 1 });
  try {
    const out = await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: host.bucket! }));
    return out.Rules?.map((r) => ({ status: r.Status, prefix: r.Filter?.Prefix, days: r.AbortIncompleteMultipartUpload?.DaysAfterInitiation }));
  } catch (err) {
    return (err as { name?: string }).name;
  } finally {
    s3.destroy();
  }
}

(embedded ? test : test.skip)('the host-made bucket aborts incomplete uploads after MULTIPART_EXPIRE_DAYS; 0 sets no rule; a rule of its own is kept', async () => {
  const env = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', S3_PORT: '0', PORT: '0' };
  const dataDir = tempDir();
  const first = await startHost({ dataDir, env });
  hosts.push(first);
  expect(await ruleOf(first)).toEqual([{ status: 'Enabled', prefix: '', days: 7 }]);
  await first.stop();
  // started again with another number: the bucket's rule, now its own, stays
  const again = await startHost({ dataDir, env: { ...env, MULTIPART_EXPIRE_DAYS: '3' } });
  hosts.push(again);
  expect(await ruleOf(again)).toEqual([{ status: 'Enabled', prefix: '', days: 7 }]);

  const three = await startHost({ dataDir: tempDir(), env: { ...env, MULTIPART_EXPIRE_DAYS: '3' } });
  hosts.push(three);
  expect(await ruleOf(three)).toEqual([{ status: 'Enabled', prefix: '', days: 3 }]);
  const none = await startHost({ dataDir: tempDir(), env: { ...env, MULTIPART_EXPIRE_DAYS: '0' } });
  hosts.push(none);
  expect(await ruleOf(none)).toBe('NoSuchLifecycleConfiguration');
});
