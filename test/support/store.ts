/**
 * The S3 store a test runs against: the embedded store (scripts/store/) by default, or the store the
 * environment names (AWS_S3_ENDPOINT etc., as `npm run test:rgw` sets them), so the same tests prove
 * both. Each caller gets its own bucket.
 */
import { randomBytes } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { storeClient } from '../../scripts/s3/client';
import { startEmbeddedStore } from '../../scripts/s3/embedded-store';

export interface TestStore {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  bucket: string;
  /** ctx.config for the socket, pointing at this store and bucket. */
  config: Record<string, string>;
  client: S3Client;
  /** Every key in the bucket (all pages). */
  keys(): Promise<string[]>;
  read(key: string): Promise<Buffer>;
  close(): Promise<void>;
}

export const external = Boolean(process.env.AWS_S3_ENDPOINT);

export async function useStore(extraConfig: Record<string, string> = {}): Promise<TestStore> {
  const bucket = `test-${randomBytes(6).toString('hex')}`;
  let endpoint: string;
  let accessKeyId: string;
  let secretAccessKey: string;
  let region: string;
  let stop = async () => {};
  if (external) {
    endpoint = process.env.AWS_S3_ENDPOINT!;
    accessKeyId = process.env.AWS_ACCESS_KEY_ID!;
    secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY!;
    region = process.env.AWS_REGION ?? 'us-east-1';
  } else {
    const store = await startEmbeddedStore();
    ({ endpoint, accessKeyId, secretAccessKey, region } = store);
    stop = () => store.close();
  }
  const client = storeClient({ endpoint, region, accessKeyId, secretAccessKey });
  const config = {
    AWS_S3_ENDPOINT: endpoint,
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    AWS_REGION: region,
    AWS_BUCKET: bucket,
    ...extraConfig,
  };
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    region,
    bucket,
    config,
    client,
    async keys() {
      const keys: string[] = [];
      let ContinuationToken: string | undefined;
      for (let page = 0; page < 1000; page++) {
        const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken })).catch((err) => {
          if (err?.name === 'NoSuchBucket') return { Contents: [], NextContinuationToken: undefined };
          throw err;
        });
        keys.push(...(out.Contents ?? []).map((o) => o.Key!));
        ContinuationToken = out.NextContinuationToken;
        if (!ContinuationToken) break;
      }
      return keys.sort();
    },
    async read(key) {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return Buffer.from(await out.Body!.transformToByteArray());
    },
    async close() {
      client.destroy();
      await stop();
    },
  };
}
