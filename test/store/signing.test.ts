/**
 * The embedded store through the real AWS SDK v3 and real HTTP: bucket creation,
 * round trips, and that every request must carry a valid signature.
 */
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { startEmbeddedStore, type EmbeddedStore } from '../../scripts/s3/embedded-store';
import { clientFor, errorCode, exists, getText } from './helpers';

const BUCKET = 'signing-bucket';
let store: EmbeddedStore;
let s3: S3Client;

beforeAll(async () => {
  store = await startEmbeddedStore();
  s3 = clientFor(store);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'secret.txt', Body: 'top secret', ContentType: 'text/plain' }));
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'other.txt', Body: 'other content' }));
});

afterAll(async () => {
  s3?.destroy();
  await store?.close();
});

describe('bucket and objects through the SDK', () => {
  test('CreateBucket (PUT /bucket/ from SDK v3) creates a bucket that is listed and found', async () => {
    const res = await s3.send(new CreateBucketCommand({ Bucket: 'created-by-sdk' }));
    expect(res.$metadata.httpStatusCode).toBe(200);
    await expect(s3.send(new HeadBucketCommand({ Bucket: 'created-by-sdk' }))).resolves.toBeDefined();
    const { Buckets } = await s3.send(new ListBucketsCommand({}));
    expect(Buckets?.map((b) => b.Name)).toEqual(expect.arrayContaining([BUCKET, 'created-by-sdk']));
    // a second create of the same name is refused (S3: 409 BucketAlreadyOwnedByYou for the owner's own bucket)
    await expect(s3.send(new CreateBucketCommand({ Bucket: 'created-by-sdk' }))).rejects.toMatchObject({
      name: 'BucketAlreadyOwnedByYou',
    });
  });

  test('put then get round-trips body and content type', async () => {
    const body = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    const put = await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'dir/bin.dat', Body: body, ContentType: 'application/x-test' }),
    );
    expect(put.ETag).toMatch(/^"[0-9a-f]{32}"$/);
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'dir/bin.dat' }));
    expect(got.ContentType).toBe('application/x-test');
    expect(got.ETag).toBe(put.ETag);
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
  });

  test('signatures are verified whatever region the client signs for', async () => {
    for (const region of ['eu-central-1', 'us-east-1', 'ap-southeast-2']) {
      const client = clientFor(store, { region });
      try {
        expect(await getText(client, BUCKET, 'secret.txt')).toBe('top secret');
      } finally {
        client.destroy();
      }
    }
  });
});

describe('unsigned and wrongly signed requests are refused', () => {
  test('unsigned GET of an object, of a listing and of the service: 403 AccessDenied', async () => {
    for (const path of [`/${BUCKET}/secret.txt`, `/${BUCKET}`, `/${BUCKET}/?list-type=2`, '/']) {
      const res = await fetch(store.endpoint + path);
      const body = await res.text();
      expect({ path, status: res.status, code: errorCode(body) }).toEqual({ path, status: 403, code: 'AccessDenied' });
      expect(body).not.toContain('top secret');
    }
  });

  test('unsigned PUT, DELETE and CreateBucket write nothing', async () => {
    const put = await fetch(`${store.endpoint}/${BUCKET}/secret.txt`, { method: 'PUT', body: 'overwritten' });
    expect(put.status).toBe(403);
    expect(errorCode(await put.text())).toBe('AccessDenied');
    const putNew = await fetch(`${store.endpoint}/${BUCKET}/new-unsigned.txt`, { method: 'PUT', body: 'x' });
    expect(putNew.status).toBe(403);
    await putNew.text();
    const del = await fetch(`${store.endpoint}/${BUCKET}/secret.txt`, { method: 'DELETE' });
    expect(del.status).toBe(403);
    await del.text();
    const mk = await fetch(`${store.endpoint}/unsigned-bucket`, { method: 'PUT' });
    expect(mk.status).toBe(403);
    await mk.text();

    expect(await getText(s3, BUCKET, 'secret.txt')).toBe('top secret');
    expect(await exists(s3, BUCKET, 'new-unsigned.txt')).toBe(false);
    const { Buckets } = await s3.send(new ListBucketsCommand({}));
    expect(Buckets?.map((b) => b.Name)).not.toContain('unsigned-bucket');
  });

  test('a wrong secret or an unknown access key is refused', async () => {
    const wrongSecret = clientFor(store, { secretAccessKey: 'not-the-secret' });
    const unknownKey = clientFor(store, { accessKeyId: 'NOBODY' });
    try {
      await expect(getText(wrongSecret, BUCKET, 'secret.txt')).rejects.toMatchObject({
        name: 'SignatureDoesNotMatch',
        $metadata: { httpStatusCode: 403 },
      });
      await expect(
        wrongSecret.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'secret.txt', Body: 'overwritten' })),
      ).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
      await expect(getText(unknownKey, BUCKET, 'secret.txt')).rejects.toMatchObject({
        name: 'InvalidAccessKeyId',
        $metadata: { httpStatusCode: 403 },
      });
    } finally {
      wrongSecret.destroy();
      unknownKey.destroy();
    }
    expect(await getText(s3, BUCKET, 'secret.txt')).toBe('top secret');
  });

  test('a header-signed request replayed with another method or path is refused', async () => {
    // sign a GET for other.txt, then send the same headers to secret.txt
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: 'other.txt' }), { expiresIn: 60 });
    const ok = await fetch(url);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('other content');
    const asDelete = await fetch(url, { method: 'DELETE' });
    expect(asDelete.status).toBe(403);
    await asDelete.text();
    expect(await exists(s3, BUCKET, 'other.txt')).toBe(true);
  });
});

describe('presigned GET', () => {
  let url: URL;
  beforeAll(async () => {
    url = new URL(await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: 'secret.txt' }), { expiresIn: 300 }));
  });

  test('works as signed', async () => {
    expect(url.searchParams.get('X-Amz-Credential')).toContain(`/${store.region}/s3/aws4_request`);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('top secret');
  });

  test('a tampered signature is refused', async () => {
    const bad = new URL(url);
    const sig = bad.searchParams.get('X-Amz-Signature')!;
    bad.searchParams.set('X-Amz-Signature', sig.slice(0, -1) + (sig.endsWith('0') ? '1' : '0'));
    const res = await fetch(bad);
    expect(res.status).toBe(403);
    const body = await res.text();
    expect(errorCode(body)).toBe('SignatureDoesNotMatch');
    expect(body).not.toContain('top secret');
  });

  test('the same signature on another key is refused', async () => {
    const bad = new URL(url);
    bad.pathname = `/${BUCKET}/other.txt`;
    const res = await fetch(bad);
    expect(res.status).toBe(403);
    expect(await res.text()).not.toContain('other content');
  });

  test('a lengthened X-Amz-Expires or an added parameter is refused', async () => {
    const longer = new URL(url);
    longer.searchParams.set('X-Amz-Expires', '604800');
    const r1 = await fetch(longer);
    expect(r1.status).toBe(403);
    await r1.text();
    const extra = new URL(url);
    extra.searchParams.set('response-content-type', 'text/html');
    const r2 = await fetch(extra);
    expect(r2.status).toBe(403);
    await r2.text();
  });

  test('an expired link is refused', async () => {
    const expired = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: 'secret.txt' }), {
      expiresIn: 60,
      signingDate: new Date(Date.now() - 10 * 60_000),
    });
    const res = await fetch(expired);
    expect(res.status).toBe(403);
    const body = await res.text();
    expect(errorCode(body)).toBe('AccessDenied');
    expect(body).toContain('expired');
  });

  test('a link that expires while in use stops working', async () => {
    // X-Amz-Date has whole seconds: a 3-second link is valid for at least two more seconds from now
    // (one second was too little on a busy machine); it is tried again once surely past its end.
    const short = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: 'other.txt' }), { expiresIn: 3 });
    const first = await fetch(short);
    expect(first.status).toBe(200);
    await first.text();
    const signedAt = Date.parse(new URL(short).searchParams.get('X-Amz-Date')!.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));
    expect(signedAt).toBeGreaterThan(Date.now() - 60_000);
    await new Promise((r) => setTimeout(r, Math.max(0, signedAt + 3_000 + 1_100 - Date.now())));
    const later = await fetch(short);
    expect(later.status).toBe(403);
    await later.text();
  });
});

describe('presigned PUT', () => {
  test('with a signed Content-Type: that type is accepted, another is refused and writes nothing', async () => {
    const key = 'uploads/picture.png';
    const url = await getSignedUrl(
      s3,
      new PutObjectCommand({ Bucket: BUCKET, Key: key, ContentType: 'image/png' }),
      // the presigner only signs Content-Type when asked to
      { expiresIn: 300, signableHeaders: new Set(['content-type']) },
    );
    expect(new URL(url).searchParams.get('X-Amz-SignedHeaders')).toContain('content-type');

    const wrong = await fetch(url, { method: 'PUT', body: 'not a png', headers: { 'Content-Type': 'text/html' } });
    expect(wrong.status).toBe(403);
    await wrong.text();
    expect(await exists(s3, BUCKET, key)).toBe(false);

    const ok = await fetch(url, { method: 'PUT', body: 'png bytes', headers: { 'Content-Type': 'image/png' } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('etag')).toMatch(/^"[0-9a-f]{32}"$/);
    await ok.text();
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(got.ContentType).toBe('image/png');
    expect(await got.Body!.transformToString()).toBe('png bytes');

    // and the link cannot be pointed at another key
    const moved = new URL(url);
    moved.pathname = `/${BUCKET}/secret.txt`;
    const hijack = await fetch(moved, { method: 'PUT', body: 'hijacked', headers: { 'Content-Type': 'image/png' } });
    expect(hijack.status).toBe(403);
    await hijack.text();
    expect(await getText(s3, BUCKET, 'secret.txt')).toBe('top secret');
  });

  test('an expired presigned PUT writes nothing', async () => {
    const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: BUCKET, Key: 'late.txt' }), {
      expiresIn: 60,
      signingDate: new Date(Date.now() - 5 * 60_000),
    });
    const res = await fetch(url, { method: 'PUT', body: 'late' });
    expect(res.status).toBe(403);
    await res.text();
    expect(await exists(s3, BUCKET, 'late.txt')).toBe(false);
  });
});

describe('listing', () => {
  test('ListObjectsV2 returns keys of a fresh bucket exactly', async () => {
    const { Contents, KeyCount } = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'dir/' }));
    expect(KeyCount).toBe(1);
    expect(Contents?.map((c) => [c.Key, c.Size])).toEqual([['dir/bin.dat', 70_000]]);
  });
});
