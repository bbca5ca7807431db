/**
 * Browser form uploads (POST policy from @aws-sdk/s3-presigned-post) are enforced as S3 does:
 * signature, expiration and every condition; a refused POST writes nothing.
 */
import net from 'node:net';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createPresignedPost, type PresignedPostOptions } from '@aws-sdk/s3-presigned-post';
import { startEmbeddedStore, type EmbeddedStore } from '../../scripts/s3/embedded-store';
import { clientFor, errorCode, exists, getText } from './helpers';

const BUCKET = 'post-bucket';
const MAX = 1024;
let store: EmbeddedStore;
let s3: S3Client;

beforeAll(async () => {
  store = await startEmbeddedStore();
  s3 = clientFor(store);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'existing.txt', Body: 'original' }));
});

afterAll(async () => {
  s3?.destroy();
  await store?.close();
});

/** The app's kind of policy: fixed key, content-length-range and Content-Type. */
async function policyFor(
  key: string,
  over: Partial<PresignedPostOptions> = {},
  client: S3Client = s3,
): Promise<{ url: string; fields: Record<string, string> }> {
  return createPresignedPost(client, {
    Bucket: BUCKET,
    Key: key,
    Conditions: [['content-length-range', 0, MAX], ['eq', '$Content-Type', 'text/plain']],
    Fields: { 'Content-Type': 'text/plain' },
    Expires: 300,
    ...over,
  });
}

async function post(
  url: string,
  fields: Record<string, string>,
  file: Blob,
  filename = 'upload.txt',
): Promise<{ status: number; body: string; headers: Headers }> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('file', file, filename);
  const res = await fetch(url, { method: 'POST', body: form });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

const text = (s: string, type = 'text/plain') => new Blob([s], { type });

describe('accepted uploads', () => {
  test('a policy from createPresignedPost uploads the file', async () => {
    const { url, fields } = await policyFor('form/ok.txt');
    expect(fields.Policy).toBeTruthy();
    const res = await post(url, fields, text('hello from a form'));
    expect(res.status).toBe(204);
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]{32}"$/);
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'form/ok.txt' }));
    expect(got.ContentType).toBe('text/plain');
    expect(await got.Body!.transformToString()).toBe('hello from a form');
  });

  test('a file of exactly the maximum size is accepted', async () => {
    const { url, fields } = await policyFor('form/max.txt');
    const res = await post(url, fields, text('m'.repeat(MAX)));
    expect(res.status).toBe(204);
    expect((await getText(s3, BUCKET, 'form/max.txt')).length).toBe(MAX);
  });

  test('success_action_status 201 answers XML with the key', async () => {
    const { url, fields } = await policyFor('form/created.txt', {
      Fields: { 'Content-Type': 'text/plain', success_action_status: '201' },
    });
    const res = await post(url, fields, text('created'));
    expect(res.status).toBe(201);
    expect(res.body).toContain('<Key>form/created.txt</Key>');
  });

  test('a ${filename} key takes the uploaded file name, within its starts-with prefix', async () => {
    const { url, fields } = await policyFor('form/named/${filename}');
    const res = await post(url, fields, text('named'), 'report 1.txt');
    expect(res.status).toBe(204);
    expect(await getText(s3, BUCKET, 'form/named/report 1.txt')).toBe('named');
  });

  test('a key with unicode and special characters', async () => {
    const key = "form/é 日本 !'()*&+.txt";
    const { url, fields } = await policyFor(key);
    const res = await post(url, fields, text('special'));
    expect(res.status).toBe(204);
    expect(await getText(s3, BUCKET, key)).toBe('special');
  });
});

describe('refused uploads write nothing', () => {
  test('a file over content-length-range: 400 EntityTooLarge', async () => {
    const { url, fields } = await policyFor('form/too-big.txt');
    const res = await post(url, fields, text('x'.repeat(MAX + 1)));
    expect(res.status).toBe(400);
    expect(errorCode(res.body)).toBe('EntityTooLarge');
    expect(await exists(s3, BUCKET, 'form/too-big.txt')).toBe(false);
  });

  test('a much larger file (several MB) is refused too, and the store keeps answering', async () => {
    const { url, fields } = await policyFor('form/huge.txt');
    const res = await post(url, fields, new Blob([new Uint8Array(5 * 1024 * 1024)], { type: 'text/plain' }));
    expect(res.status).toBe(400);
    expect(errorCode(res.body)).toBe('EntityTooLarge');
    expect(await exists(s3, BUCKET, 'form/huge.txt')).toBe(false);
  });

  test('a file under the minimum: 400 EntityTooSmall', async () => {
    const { url, fields } = await policyFor('form/too-small.txt', {
      Conditions: [['content-length-range', 10, MAX], ['eq', '$Content-Type', 'text/plain']],
    });
    const res = await post(url, fields, text('tiny'));
    expect(res.status).toBe(400);
    expect(errorCode(res.body)).toBe('EntityTooSmall');
    expect(await exists(s3, BUCKET, 'form/too-small.txt')).toBe(false);
  });

  test('another key (an existing object) is refused and not overwritten', async () => {
    const { url, fields } = await policyFor('form/mine.txt');
    const res = await post(url, { ...fields, key: 'existing.txt' }, text('overwrite'));
    expect(res.status).toBe(403);
    expect(errorCode(res.body)).toBe('AccessDenied');
    expect(await getText(s3, BUCKET, 'existing.txt')).toBe('original');
    expect(await exists(s3, BUCKET, 'form/mine.txt')).toBe(false);
  });

  test('a ${filename} key cannot leave its prefix', async () => {
    const { url, fields } = await policyFor('form/named/${filename}');
    const res = await post(url, { ...fields, key: 'elsewhere/${filename}' }, text('x'), 'a.txt');
    expect(res.status).toBe(403);
    expect(await exists(s3, BUCKET, 'elsewhere/a.txt')).toBe(false);
  });

  test('another content type is refused', async () => {
    const { url, fields } = await policyFor('form/typed.txt');
    const res = await post(url, { ...fields, 'Content-Type': 'text/html' }, text('<script>', 'text/html'));
    expect(res.status).toBe(403);
    expect(errorCode(res.body)).toBe('AccessDenied');
    expect(await exists(s3, BUCKET, 'form/typed.txt')).toBe(false);
  });

  test('an expired policy is refused', async () => {
    // a client whose clock is an hour behind signs a policy that expired 55 minutes ago
    const late = clientFor(store, { systemClockOffset: -3600_000 });
    try {
      const { url, fields } = await policyFor('form/expired.txt', { Expires: 300 }, late);
      const res = await post(url, fields, text('late'));
      expect(res.status).toBe(403);
      expect(errorCode(res.body)).toBe('AccessDenied');
      expect(res.body).toContain('expired');
    } finally {
      late.destroy();
    }
    expect(await exists(s3, BUCKET, 'form/expired.txt')).toBe(false);
  });

  test('a forged signature is refused', async () => {
    const { url, fields } = await policyFor('form/forged.txt');
    const sig = fields['X-Amz-Signature'];
    const res = await post(url, { ...fields, 'X-Amz-Signature': sig.slice(0, -1) + (sig.endsWith('0') ? '1' : '0') }, text('x'));
    expect(res.status).toBe(403);
    expect(errorCode(res.body)).toBe('SignatureDoesNotMatch');
    expect(await exists(s3, BUCKET, 'form/forged.txt')).toBe(false);
  });

  test('a policy signed with another secret, or rewritten, is refused', async () => {
    const other = clientFor(store, { secretAccessKey: 'someone-else' });
    try {
      const { url, fields } = await policyFor('form/other-secret.txt', {}, other);
      const res = await post(url, fields, text('x'));
      expect(res.status).toBe(403);
      expect(errorCode(res.body)).toBe('SignatureDoesNotMatch');
    } finally {
      other.destroy();
    }
    // a policy with a wider range, keeping the old signature
    const { url, fields } = await policyFor('form/rewritten.txt');
    const doc = JSON.parse(Buffer.from(fields.Policy, 'base64').toString());
    doc.conditions = doc.conditions.map((c: unknown) =>
      Array.isArray(c) && c[0] === 'content-length-range' ? ['content-length-range', 0, 10 * MAX] : c,
    );
    const res = await post(url, { ...fields, Policy: Buffer.from(JSON.stringify(doc)).toString('base64') }, text('y'.repeat(2 * MAX)));
    expect(res.status).toBe(403);
    expect(await exists(s3, BUCKET, 'form/other-secret.txt')).toBe(false);
    expect(await exists(s3, BUCKET, 'form/rewritten.txt')).toBe(false);
  });

  test('a form field no condition covers is refused; x-ignore-* fields are allowed', async () => {
    const { url, fields } = await policyFor('form/extra.txt');
    const extra = await post(url, { ...fields, 'x-amz-meta-evil': 'yes' }, text('x'));
    expect(extra.status).toBe(403);
    expect(extra.body).toContain('Extra input fields');
    const acl = await post(url, { ...fields, acl: 'public-read' }, text('x'));
    expect(acl.status).toBe(403);
    expect(await exists(s3, BUCKET, 'form/extra.txt')).toBe(false);

    const ignored = await post(url, { ...fields, 'x-ignore-tracking': '1' }, text('fine'));
    expect(ignored.status).toBe(204);
    expect(await getText(s3, BUCKET, 'form/extra.txt')).toBe('fine');
  });

  test('a form without a policy, or without a signature, is refused', async () => {
    const { url, fields } = await policyFor('form/unsigned.txt');
    const { Policy, 'X-Amz-Signature': _sig, ...rest } = fields;
    expect(Policy).toBeTruthy();
    const noPolicy = await post(url, { ...rest, 'X-Amz-Signature': _sig }, text('x'));
    expect(noPolicy.status).toBe(403);
    const noSignature = await post(url, { ...rest, Policy }, text('x'));
    expect(noSignature.status).toBe(403);
    const bare = await post(url, { key: 'form/unsigned.txt' }, text('x'));
    expect(bare.status).toBe(403);
    expect(errorCode(bare.body)).toBe('AccessDenied');
    expect(await exists(s3, BUCKET, 'form/unsigned.txt')).toBe(false);
  });

  test('a policy for another bucket is refused', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'post-other' }));
    const { fields } = await policyFor('form/cross.txt');
    const res = await post(`${store.endpoint}/post-other`, fields, text('x'));
    expect(res.status).toBe(403);
    expect(await exists(s3, 'post-other', 'form/cross.txt')).toBe(false);
  });
});

describe('a form whose fields trickle in', () => {
  test('is answered 400 RequestTimeout once its fields took longer than the limit, and closed; a prompt form on that store uploads', async () => {
    const slow = await startEmbeddedStore({ buckets: [BUCKET], formFieldsTimeoutMs: 400 });
    const client = clientFor(slow);
    const socket = net.connect(Number(new URL(slow.endpoint).port), '127.0.0.1');
    // a byte every 100 ms, as a connection holder would, far longer than the limit allows
    const drip = setInterval(() => socket.writable && socket.write('x'), 100);
    try {
      const started = Date.now();
      let answer = '';
      socket.on('data', (d) => (answer += d.toString('latin1')));
      socket.on('error', () => {});
      const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now() - started)));
      socket.write(
        `POST /${BUCKET} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name="key"\r\n\r\nform/`,
      );
      const ms = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(Infinity), 8_000))]);
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer).toContain('<Code>RequestTimeout</Code>');
      expect(ms).toBeLessThan(4_000); // the limit, then at most the linger that lets the client read the answer
      expect(await exists(client, BUCKET, 'form/')).toBe(false);

      const { url, fields } = await policyFor('form/prompt.txt', {}, client);
      const res = await post(url, fields, text('in time'));
      expect(res.status).toBe(204);
      expect(await getText(client, BUCKET, 'form/prompt.txt')).toBe('in time');
    } finally {
      clearInterval(drip);
      socket.destroy();
      client.destroy();
      await slow.close();
    }
  });
});
