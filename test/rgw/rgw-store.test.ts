/**
 * What only a real S3-compatible store shows, against a one-node Ceph RADOS Gateway.
 * Runs under `npm run test:rgw` (scripts/rgw/run.ts sets TEST_STORE=rgw and the AWS_* variables);
 * skipped otherwise.
 */
import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetBucketCorsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutBucketCorsCommand,
  PutObjectCommand,
  S3Client,
  type BucketLocationConstraint,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createPresignedPost, type PresignedPost } from '@aws-sdk/s3-presigned-post';

const onRgw = process.env.TEST_STORE === 'rgw';
const describeRgw = onRgw ? describe : describe.skip;

const endpoint = process.env.AWS_S3_ENDPOINT ?? 'http://127.0.0.1:1';
const region = process.env.AWS_REGION ?? 'us-east-1';
const ORIGIN = 'http://app.example.test';

function client(r = region): S3Client {
  return new S3Client({
    endpoint,
    region: r,
    forcePathStyle: true,
    credentials: {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'x',
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'x',
    },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A plain HTTP request (node:http, so Origin and friends go out exactly as given). */
function raw(method: string, url: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timeout`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Sends a browser-style multipart form: the policy's fields first, then `file`. */
async function postForm(post: PresignedPost, file: Buffer, override: Record<string, string> = {}, fileType = 'text/plain'): Promise<RawResponse> {
  const form = new FormData();
  for (const [k, v] of Object.entries({ ...post.fields, ...override })) form.append(k, v);
  form.append('file', new Blob([new Uint8Array(file)], { type: fileType }), 'upload.bin');
  const res = await fetch(post.url, { method: 'POST', body: form, headers: { Origin: ORIGIN } });
  const headers: Record<string, string> = {};
  res.headers.forEach((v, k) => (headers[k] = v));
  return { status: res.status, headers, body: await res.text() };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describeRgw('Ceph RGW as the store', () => {
  const s3 = client();
  const bucket = `aws-storage-rgw-${randomBytes(4).toString('hex')}`;

  async function exists(key: string): Promise<boolean> {
    try {
      await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return true;
    } catch (e) {
      if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
      throw e;
    }
  }

  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  });

  afterAll(async () => {
    const list = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    for (const o of list.Contents ?? []) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key! }));
    await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
    s3.destroy();
  });

  test('the environment points at RGW', () => {
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(process.env.AWS_S3_FORCE_PATH_STYLE).toBe('true');
  });

  describe('CORS', () => {
    const preflight = (method = 'PUT') =>
      raw('OPTIONS', `${endpoint}/${bucket}/some/file.txt`, {
        Origin: ORIGIN,
        'Access-Control-Request-Method': method,
        'Access-Control-Request-Headers': 'content-type',
      });

    test('a new bucket has no CORS rules: a preflight is refused (the app must set them)', async () => {
      const res = await preflight();
      expect(res.status).toBe(403);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
    });

    test('after PutBucketCors, a preflight gets Access-Control-Allow-Origin', async () => {
      await s3.send(
        new PutBucketCorsCommand({
          Bucket: bucket,
          CORSConfiguration: {
            CORSRules: [
              {
                AllowedOrigins: ['*'],
                AllowedMethods: ['GET', 'PUT', 'POST', 'HEAD'],
                AllowedHeaders: ['*'],
                ExposeHeaders: ['ETag'],
                MaxAgeSeconds: 3000,
              },
            ],
          },
        }),
      );
      const cors = await s3.send(new GetBucketCorsCommand({ Bucket: bucket }));
      expect(cors.CORSRules?.[0]?.AllowedMethods?.sort()).toEqual(['GET', 'HEAD', 'POST', 'PUT']);

      for (const method of ['PUT', 'POST', 'GET']) {
        const res = await preflight(method);
        expect(res.status).toBe(200);
        expect(['*', ORIGIN]).toContain(res.headers['access-control-allow-origin']);
        expect(String(res.headers['access-control-allow-methods'])).toContain(method);
      }
      // DELETE was not allowed
      expect((await preflight('DELETE')).status).toBe(403);
    });
  });

  describe('presigned PUT and GET', () => {
    test('a presigned PUT uploads and a presigned GET reads it back (with CORS headers)', async () => {
      const key = 'user-1/hello.txt';
      const put = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: key, ContentType: 'text/plain' }), { expiresIn: 60 });
      const up = await raw('PUT', put, { 'Content-Type': 'text/plain', Origin: ORIGIN }, 'hello rgw');
      expect(up.status).toBe(200);
      expect(up.headers.etag).toBeTruthy();

      const get = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 60 });
      const down = await raw('GET', get, { Origin: ORIGIN });
      expect(down.status).toBe(200);
      expect(down.body).toBe('hello rgw');
      expect(down.headers['content-type']).toBe('text/plain');
      expect(['*', ORIGIN]).toContain(down.headers['access-control-allow-origin']);
    });

    test('Content-Type is enforced only when it is a signed header (signableHeaders)', async () => {
      const key = 'user-1/typed.txt';
      const cmd = () => new PutObjectCommand({ Bucket: bucket, Key: key, ContentType: 'text/plain' });
      // By default the presigner signs only `host`: any content type goes through.
      const loose = await getSignedUrl(s3, cmd(), { expiresIn: 60 });
      expect(new URL(loose).searchParams.get('X-Amz-SignedHeaders')).toBe('host');
      expect((await raw('PUT', loose, { 'Content-Type': 'image/png' }, 'x')).status).toBe(200);
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));

      const strict = await getSignedUrl(s3, cmd(), { expiresIn: 60, signableHeaders: new Set(['content-type']) });
      expect(new URL(strict).searchParams.get('X-Amz-SignedHeaders')).toBe('content-type;host');
      expect((await raw('PUT', strict, { 'Content-Type': 'image/png' }, 'x')).status).toBe(403);
      expect(await exists(key)).toBe(false);
      expect((await raw('PUT', strict, { 'Content-Type': 'text/plain' }, 'x')).status).toBe(200);
      expect(await exists(key)).toBe(true);
    });

    test('a tampered or expired presigned URL is refused', async () => {
      const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: 'user-1/a.txt' }), { expiresIn: 1 });
      expect((await raw('PUT', url.replace('user-1/a.txt', 'user-2/a.txt'), {}, 'x')).status).toBe(403);
      expect(await exists('user-2/a.txt')).toBe(false);
      await sleep(2100);
      expect((await raw('PUT', url, {}, 'x')).status).toBe(403);
      expect(await exists('user-1/a.txt')).toBe(false);
    });
  });

  describe('presigned POST policy', () => {
    const key = 'user-1/form.txt';
    const policy = (expires = 60) =>
      createPresignedPost(s3, {
        Bucket: bucket,
        Key: key,
        Conditions: [
          ['content-length-range', 0, 1024],
          ['eq', '$Content-Type', 'text/plain'],
        ],
        Fields: { 'Content-Type': 'text/plain' },
        Expires: expires,
      });

    test('a good upload is accepted', async () => {
      const post = await policy();
      expect(post.url).toBe(`${endpoint}/${bucket}`);
      const res = await postForm(post, Buffer.from('hello form'));
      expect(res.status).toBe(204);
      expect(['*', ORIGIN]).toContain(res.headers['access-control-allow-origin']);
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(head.ContentLength).toBe(10);
      expect(head.ContentType).toBe('text/plain');
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    });

    test('an oversized file is refused (EntityTooLarge), nothing written', async () => {
      const res = await postForm(await policy(), randomBytes(1025));
      expect(res.status).toBe(400);
      expect(res.body).toContain('EntityTooLarge');
      expect(await exists(key)).toBe(false);
    });

    test('another key is refused, nothing written', async () => {
      const res = await postForm(await policy(), Buffer.from('x'), { key: 'user-2/form.txt' });
      expect(res.status).toBe(403);
      expect(await exists('user-2/form.txt')).toBe(false);
      expect(await exists(key)).toBe(false);
    });

    test('another content type is refused, nothing written', async () => {
      const res = await postForm(await policy(), Buffer.from('x'), { 'Content-Type': 'image/png' }, 'image/png');
      expect(res.status).toBe(403);
      expect(await exists(key)).toBe(false);
    });

    test('an expired policy is refused, nothing written', async () => {
      const post = await policy(1);
      await sleep(2100);
      const res = await postForm(post, Buffer.from('x'));
      expect(res.status).toBe(403);
      expect(await exists(key)).toBe(false);
    });
  });

  describe('regions', () => {
    test(`${region} (the region run.ts sets) signs, creates buckets without a LocationConstraint`, async () => {
      const out = await s3.send(new ListBucketsCommand({}));
      expect(out.Buckets?.map((b) => b.Name)).toContain(bucket);
    });

    test('eu-central-1 signs fine, but CreateBucket needs LocationConstraint = the zonegroup api name', async () => {
      const eu = client('eu-central-1');
      try {
        await expect(eu.send(new ListBucketsCommand({}))).resolves.toBeDefined();
        const b = `${bucket}-eu`;
        // The SDK sends LocationConstraint=eu-central-1 for a non-us-east-1 client; RGW's zonegroup is "default".
        await expect(eu.send(new CreateBucketCommand({ Bucket: b }))).rejects.toMatchObject({ name: 'InvalidLocationConstraint' });
        await eu.send(
          new CreateBucketCommand({ Bucket: b, CreateBucketConfiguration: { LocationConstraint: 'default' as BucketLocationConstraint } }),
        );
        await eu.send(new PutObjectCommand({ Bucket: b, Key: 'k', Body: 'v' }));
        const url = await getSignedUrl(eu, new GetObjectCommand({ Bucket: b, Key: 'k' }), { expiresIn: 60 });
        expect((await raw('GET', url)).body).toBe('v');
        await eu.send(new DeleteObjectCommand({ Bucket: b, Key: 'k' }));
        await eu.send(new DeleteBucketCommand({ Bucket: b }));
      } finally {
        eu.destroy();
      }
    });
  });
});

if (!onRgw) {
  test.skip('Ceph RGW tests run only under `npm run test:rgw` (TEST_STORE=rgw)', () => undefined);
}
