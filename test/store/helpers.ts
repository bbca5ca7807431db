import { CreateBucketCommand, S3Client, GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { storeClient } from '../../scripts/s3/client';
import { startEmbeddedStore, type EmbeddedStore, type EmbeddedStoreOptions } from '../../scripts/s3/embedded-store';

export function clientFor(
  store: EmbeddedStore,
  over: { accessKeyId?: string; secretAccessKey?: string; region?: string; systemClockOffset?: number } = {},
): S3Client {
  return storeClient(
    {
      endpoint: store.endpoint,
      region: over.region ?? store.region,
      accessKeyId: over.accessKeyId ?? store.accessKeyId,
      secretAccessKey: over.secretAccessKey ?? store.secretAccessKey,
    },
    { maxAttempts: 1, ...(over.systemClockOffset !== undefined ? { systemClockOffset: over.systemClockOffset } : {}) },
  );
}

/** An embedded store with these buckets for one test file: started before its tests, closed after. */
export function storeForFile(buckets: string[], options: EmbeddedStoreOptions = {}): { readonly store: EmbeddedStore; readonly s3: S3Client } {
  let store: EmbeddedStore | undefined;
  let s3: S3Client | undefined;
  beforeAll(async () => {
    store = await startEmbeddedStore(options);
    s3 = clientFor(store);
    for (const Bucket of buckets) await s3.send(new CreateBucketCommand({ Bucket }));
  });
  afterAll(async () => {
    s3?.destroy();
    await store?.close();
  });
  return {
    get store() {
      return store!;
    },
    get s3() {
      return s3!;
    },
  };
}

export async function getText(client: S3Client, Bucket: string, Key: string): Promise<string> {
  const res = await client.send(new GetObjectCommand({ Bucket, Key }));
  return res.Body!.transformToString();
}

/** true when the object exists, false on 404; any other failure throws. */
export async function exists(client: S3Client, Bucket: string, Key: string): Promise<boolean> {
  try {
    await client.send(new HeadObjectCommand({ Bucket, Key }));
    return true;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw err;
  }
}

/** The S3 error code of an XML error body. */
export function errorCode(body: string): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
}

/** Runs fn over items, at most `limit` at a time (the socket's own helper). */
export { mapLimit } from '../../src/lib/storage';
