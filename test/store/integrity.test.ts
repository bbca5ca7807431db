/**
 * The store keeps what a request's digests and signatures promise, as S3 documents it:
 * Content-MD5 (BadDigest / InvalidDigest), x-amz-content-sha256 (XAmzContentSHA256Mismatch),
 * x-amz-checksum-* (BadDigest / InvalidRequest), aws-chunked chunk signatures (SignatureDoesNotMatch);
 * a presigned link takes no x-amz-* header it did not sign and no added sub-resource (AccessDenied /
 * SignatureDoesNotMatch); a signed request for what the store does not implement is 501 NotImplemented,
 * never silently ignored. A refused write stores nothing and leaves the previous version whole.
 * Also: Range and conditional GET/HEAD as S3 answers them.
 */
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { startEmbeddedStore, type EmbeddedStore } from '../../scripts/s3/embedded-store';
import { clientFor, getText } from './helpers';
import {
  awsChunkedPut,
  codeOf,
  crc32b64,
  encodeKey,
  md5b64,
  md5hex,
  presignUrl,
  request,
  sendRaw,
  rawHead,
  sha256b64,
  sha256hex,
  signHeaders,
  type Answer,
} from './raw';

const BUCKET = 'integrity-bucket';
let store: EmbeddedStore;
let s3: S3Client;

beforeAll(async () => {
  store = await startEmbeddedStore();
  s3 = clientFor(store);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

afterAll(async () => {
  s3?.destroy();
  await store?.close();
});

const objPath = (key: string) => `/${BUCKET}/${encodeKey(key)}`;

/** A header-signed request; every header given is signed. */
async function signed(
  method: string,
  key: string | null,
  o: { body?: Buffer; headers?: Record<string, string>; payloadHash?: string; query?: Record<string, string> } = {},
): Promise<Answer> {
  const path = key === null ? `/${BUCKET}` : objPath(key);
  const body = o.body ?? Buffer.alloc(0);
  const headers = await signHeaders(store, {
    method,
    path,
    query: o.query,
    body,
    payloadHash: o.payloadHash,
    headers: { ...(method === 'PUT' || method === 'POST' ? { 'content-length': String(body.length) } : {}), ...(o.headers ?? {}) },
  });
  const qs = o.query ? '?' + new URLSearchParams(o.query).toString().replace(/\+/g, '%20') : '';
  return request(`${store.endpoint}${path}${qs}`, { method, headers, body: method === 'GET' || method === 'HEAD' ? undefined : body });
}

/** What GET answers for key now: its bytes, ETag and Content-Type, or 404. */
async function current(key: string): Promise<{ status: number; body?: string; etag?: string; type?: string; meta?: string }> {
  const res = await signed('GET', key);
  if (res.status !== 200) return { status: res.status };
  return {
    status: 200,
    body: res.text,
    etag: res.headers.etag,
    type: res.headers['content-type'],
    meta: res.headers['x-amz-meta-foo'] as string | undefined,
  };
}

async function putV1(key: string, body = `v1 of ${key}`): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, ContentType: 'text/plain' }));
}

const expectIntact = async (key: string, body = `v1 of ${key}`) => {
  expect(await current(key)).toEqual({ status: 200, body, etag: `"${md5hex(body)}"`, type: 'text/plain', meta: undefined });
};
const expectAbsent = async (key: string) => expect((await current(key)).status).toBe(404);

describe('Content-MD5', () => {
  test('a Content-MD5 that does not match the body: 400 BadDigest, nothing stored, the previous version intact', async () => {
    await putV1('md5/existing');
    const body = Buffer.from('v2 bytes that are not what the digest says');
    const wrong = md5b64('something else');
    // header-signed
    const a = await signed('PUT', 'md5/existing', { body, headers: { 'content-md5': wrong } });
    expect({ status: a.status, code: codeOf(a.text) }).toEqual({ status: 400, code: 'BadDigest' });
    await expectIntact('md5/existing');
    const b = await signed('PUT', 'md5/new', { body, headers: { 'content-md5': wrong } });
    expect({ status: b.status, code: codeOf(b.text) }).toEqual({ status: 400, code: 'BadDigest' });
    await expectAbsent('md5/new');
    // presigned (Content-MD5 is not an x-amz-* header: S3 takes it unsigned, and checks it)
    const url = await presignUrl(store, { method: 'PUT', path: objPath('md5/existing') });
    const c = await request(url, { method: 'PUT', headers: { 'content-md5': wrong }, body });
    expect({ status: c.status, code: codeOf(c.text) }).toEqual({ status: 400, code: 'BadDigest' });
    await expectIntact('md5/existing');
  });

  test.each([
    ['not base64', '!!!not-base64!!!'],
    ['base64 of 10 bytes', Buffer.alloc(10, 7).toString('base64')],
    ['the MD5 in hex', md5hex('payload')],
  ])('a malformed Content-MD5 (%s): 400 InvalidDigest, nothing stored', async (_name, value) => {
    await putV1('md5/malformed');
    const res = await signed('PUT', 'md5/malformed', { body: Buffer.from('payload'), headers: { 'content-md5': value } });
    expect({ status: res.status, code: codeOf(res.text) }).toEqual({ status: 400, code: 'InvalidDigest' });
    await expectIntact('md5/malformed');
  });

  test('a matching Content-MD5 is stored, ETag = the MD5', async () => {
    const body = Buffer.from('md5 checked body');
    const res = await signed('PUT', 'md5/ok', { body, headers: { 'content-md5': md5b64(body), 'content-type': 'text/plain' } });
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe(`"${md5hex(body)}"`);
    expect(await current('md5/ok')).toMatchObject({ status: 200, body: body.toString(), etag: `"${md5hex(body)}"` });
  });
});

describe('x-amz-content-sha256', () => {
  test('a header-signed PUT whose body does not match its signed SHA-256: 400 XAmzContentSHA256Mismatch, nothing stored', async () => {
    await putV1('sha/existing');
    const body = Buffer.from('these bytes were not signed');
    const declared = sha256hex('the bytes that were signed');
    const a = await signed('PUT', 'sha/existing', { body, payloadHash: declared });
    expect({ status: a.status, code: codeOf(a.text) }).toEqual({ status: 400, code: 'XAmzContentSHA256Mismatch' });
    await expectIntact('sha/existing');
    const b = await signed('PUT', 'sha/new', { body, payloadHash: declared });
    expect({ status: b.status, code: codeOf(b.text) }).toEqual({ status: 400, code: 'XAmzContentSHA256Mismatch' });
    await expectAbsent('sha/new');
  });

  test('a body one byte longer than the signed one is refused as well', async () => {
    const signedBody = Buffer.from('exact');
    const res = await signed('PUT', 'sha/longer', { body: Buffer.from('exact!'), payloadHash: sha256hex(signedBody) });
    expect({ status: res.status, code: codeOf(res.text) }).toEqual({ status: 400, code: 'XAmzContentSHA256Mismatch' });
    await expectAbsent('sha/longer');
  });

  test('a matching SHA-256, and UNSIGNED-PAYLOAD, are stored', async () => {
    const body = Buffer.from('sha checked body');
    const a = await signed('PUT', 'sha/ok', { body, headers: { 'content-type': 'text/plain' } });
    expect(a.status).toBe(200);
    expect(await current('sha/ok')).toMatchObject({ status: 200, body: body.toString() });
    const b = await signed('PUT', 'sha/unsigned-payload', { body, payloadHash: 'UNSIGNED-PAYLOAD' });
    expect(b.status).toBe(200);
    expect(await current('sha/unsigned-payload')).toMatchObject({ status: 200, body: body.toString() });
  });

  test('a value that is neither a SHA-256 nor a known keyword is refused (400), nothing stored', async () => {
    const res = await signed('PUT', 'sha/garbage', { body: Buffer.from('x'), payloadHash: 'not-a-hash' });
    expect(res.status).toBe(400);
    await expectAbsent('sha/garbage');
  });
});

describe('x-amz-checksum-*', () => {
  const body = Buffer.from('checksummed body '.repeat(100));
  const other = Buffer.from('another body');
  test.each([
    ['x-amz-checksum-sha256', sha256b64(other)],
    ['x-amz-checksum-crc32', crc32b64(other)],
  ])('a wrong %s: 400 (BadDigest or InvalidRequest), nothing stored, the previous version intact', async (header, value) => {
    const key = `checksum/${header}`;
    await putV1(key);
    const res = await signed('PUT', key, { body, headers: { [header]: value } });
    expect(res.status).toBe(400);
    expect(['BadDigest', 'InvalidRequest']).toContain(codeOf(res.text));
    await expectIntact(key);
    const fresh = await signed('PUT', `${key}/new`, { body, headers: { [header]: value } });
    expect(fresh.status).toBe(400);
    await expectAbsent(`${key}/new`);
  });

  test.each([
    ['x-amz-checksum-sha256', 'not base64 at all'],
    ['x-amz-checksum-crc32', Buffer.alloc(9).toString('base64')],
  ])('a malformed %s: 400, nothing stored', async (header, value) => {
    const key = `checksum/malformed/${header}`;
    const res = await signed('PUT', key, { body, headers: { [header]: value } });
    expect(res.status).toBe(400);
    await expectAbsent(key);
  });

  test.each([
    ['x-amz-checksum-sha256', sha256b64(body)],
    ['x-amz-checksum-crc32', crc32b64(body)],
  ])('a right %s: 200, stored exactly', async (header, value) => {
    const key = `checksum/ok/${header}`;
    const res = await signed('PUT', key, { body, headers: { [header]: value } });
    expect(res.status).toBe(200);
    expect(await current(key)).toMatchObject({ status: 200, body: body.toString(), etag: `"${md5hex(body)}"` });
  });
});

describe('aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)', () => {
  // S3: every chunk but the last at least 8 KiB
  const chunks = [Buffer.alloc(64 * 1024, 'a'), Buffer.from(Array.from({ length: 16 * 1024 }, (_, i) => (i * 7) % 256)), Buffer.from('tail')];
  const decoded = Buffer.concat(chunks);

  const send = async (key: string, tamper?: (i: number, sig: string) => string, mangle?: (b: Buffer) => Buffer) => {
    const { headers, body } = await awsChunkedPut(store, objPath(key), chunks, { tamper, headers: { 'content-type': 'application/x-chunked' } });
    return request(`${store.endpoint}${objPath(key)}`, { method: 'PUT', headers, body: mangle ? mangle(body) : body });
  };

  test('valid chunk signatures: stored exactly the decoded bytes', async () => {
    const res = await send('chunked/ok');
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe(`"${md5hex(decoded)}"`);
    const got = await signed('GET', 'chunked/ok');
    expect(got.status).toBe(200);
    expect(got.body.length).toBe(decoded.length);
    expect(sha256hex(got.body)).toBe(sha256hex(decoded));
    expect(got.headers['content-type']).toBe('application/x-chunked');
    expect(String(got.headers['content-encoding'] ?? '')).not.toContain('aws-chunked');
  });

  test.each([
    ['the first chunk', 0],
    ['a middle chunk', 1],
    ['the final empty chunk', 3],
  ])('a tampered signature on %s: 403 SignatureDoesNotMatch, nothing stored', async (_n, which) => {
    const key = `chunked/tampered-${which}`;
    await putV1(key);
    const res = await send(key, (i, sig) => (i === which ? sig.slice(0, -1) + (sig.endsWith('0') ? '1' : '0') : sig));
    expect({ status: res.status, code: codeOf(res.text) }).toEqual({ status: 403, code: 'SignatureDoesNotMatch' });
    await expectIntact(key);
  });

  test('a chunk whose bytes changed after signing: 403 SignatureDoesNotMatch, nothing stored', async () => {
    const key = 'chunked/altered';
    await putV1(key);
    const res = await send(key, undefined, (b) => {
      const c = Buffer.from(b);
      const at = c.indexOf('\r\n') + 2 + 100; // inside the first chunk's data
      c[at] = c[at] ^ 0xff;
      return c;
    });
    expect({ status: res.status, code: codeOf(res.text) }).toEqual({ status: 403, code: 'SignatureDoesNotMatch' });
    await expectIntact(key);
  });
});

describe('a presigned link takes nothing it did not sign', () => {
  const UNSIGNED: Array<[string, string]> = [
    ['x-amz-copy-source', `/${BUCKET}/links/secret`],
    ['x-amz-acl', 'public-read'],
    ['x-amz-tagging', 'a=b'],
    ['x-amz-meta-foo', 'bar'],
    ['x-amz-grant-read', 'uri="http://acs.amazonaws.com/groups/global/AllUsers"'],
    ['x-amz-website-redirect-location', '/elsewhere'],
    ['x-amz-metadata-directive', 'REPLACE'],
  ];
  beforeAll(async () => {
    await putV1('links/secret', 'the secret');
    await putV1('links/existing');
  });

  test.each(UNSIGNED)('presigned PUT + unsigned %s: 403 AccessDenied, nothing written or copied', async (header, value) => {
    for (const key of ['links/existing', 'links/fresh']) {
      const url = await presignUrl(store, { method: 'PUT', path: objPath(key) });
      const body = header === 'x-amz-copy-source' ? Buffer.alloc(0) : Buffer.from('widened');
      const res = await request(url, { method: 'PUT', headers: { [header]: value, 'content-length': String(body.length) }, body });
      expect({ key, status: res.status, code: codeOf(res.text) }).toEqual({ key, status: 403, code: 'AccessDenied' });
    }
    await expectIntact('links/existing');
    await expectAbsent('links/fresh');
    await expectIntact('links/secret', 'the secret');
  });

  test.each(UNSIGNED.slice(0, 4))('presigned GET + unsigned %s: 403 AccessDenied, no bytes', async (header, value) => {
    const url = await presignUrl(store, { method: 'GET', path: objPath('links/secret') });
    const res = await request(url, { headers: { [header]: value } });
    expect({ status: res.status, code: codeOf(res.text) }).toEqual({ status: 403, code: 'AccessDenied' });
    expect(res.text).not.toContain('the secret');
  });

  test('the same presigned PUT and GET without the extra header work (the links above were good)', async () => {
    const put = await presignUrl(store, { method: 'PUT', path: objPath('links/plain') });
    const res = await request(put, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'plain' });
    expect(res.status).toBe(200);
    const get = await presignUrl(store, { method: 'GET', path: objPath('links/plain') });
    const got = await request(get);
    expect({ status: got.status, body: got.text }).toEqual({ status: 200, body: 'plain' });
  });

  test.each(['acl', 'tagging', 'uploads', 'uploadId=abc&partNumber=1', 'retention', 'legal-hold', 'versionId=null', 'torrent'])(
    'a presigned PUT with ?%s added: refused (403 SignatureDoesNotMatch), nothing changed',
    async (extra) => {
      const url = await presignUrl(store, { method: 'PUT', path: objPath('links/existing') });
      for (const method of ['PUT', 'POST']) {
        const res = await request(`${url}&${extra}`, { method, headers: { 'content-type': 'text/plain' }, body: 'widened' });
        expect({ method, status: res.status, code: codeOf(res.text) }).toEqual({ method, status: 403, code: 'SignatureDoesNotMatch' });
      }
      await expectIntact('links/existing');
    },
  );

  test.each(['acl', 'tagging', 'attributes', 'torrent', 'uploads', 'list-type=2'])('a presigned GET with ?%s added: 403, no bytes', async (extra) => {
    const url = await presignUrl(store, { method: 'GET', path: objPath('links/secret') });
    const res = await request(`${url}&${extra}`);
    expect({ status: res.status, code: codeOf(res.text) }).toEqual({ status: 403, code: 'SignatureDoesNotMatch' });
    expect(res.text).not.toContain('the secret');
  });
});

describe('signed, but not implemented: 501 NotImplemented, never ignored', () => {
  beforeAll(async () => {
    await putV1('ni/source', 'copy me');
    await putV1('ni/existing');
  });

  test('a header-signed PUT with a signed x-amz-copy-source: 501, nothing copied', async () => {
    const res = await signed('PUT', 'ni/copy-target', { headers: { 'x-amz-copy-source': `/${BUCKET}/ni/source` } });
    expect({ status: res.status, code: codeOf(res.text) }).toEqual({ status: 501, code: 'NotImplemented' });
    await expectAbsent('ni/copy-target');
    // and over an existing object
    const over = await signed('PUT', 'ni/existing', { headers: { 'x-amz-copy-source': `/${BUCKET}/ni/source` } });
    expect({ status: over.status, code: codeOf(over.text) }).toEqual({ status: 501, code: 'NotImplemented' });
    await expectIntact('ni/existing');
  });

  test('a presigned PUT that signed x-amz-copy-source: 501, nothing copied', async () => {
    const url = await presignUrl(store, { method: 'PUT', path: objPath('ni/copy-by-link'), headers: { 'x-amz-copy-source': `/${BUCKET}/ni/source` } });
    const res = await request(url, { method: 'PUT', headers: { 'x-amz-copy-source': `/${BUCKET}/ni/source`, 'content-length': '0' } });
    expect({ status: res.status, code: codeOf(res.text) }).toEqual({ status: 501, code: 'NotImplemented' });
    await expectAbsent('ni/copy-by-link');
  });

  test.each(['tagging', 'acl', 'retention', 'legal-hold'])('a signed PUT ?%s on an object: 501, object unchanged', async (sub) => {
    const xml = Buffer.from('<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>');
    const res = await signed('PUT', 'ni/existing', { query: { [sub]: '' }, body: xml, headers: { 'content-md5': md5b64(xml) } });
    expect({ status: res.status, code: codeOf(res.text) }).toEqual({ status: 501, code: 'NotImplemented' });
    await expectIntact('ni/existing');
  });
});

describe('body length limits', () => {
  test('a PUT declaring more than 5 GiB: 400 EntityTooLarge, answered before any body', async () => {
    const headers = await signHeaders(store, {
      method: 'PUT',
      path: objPath('limits/huge'),
      payloadHash: 'UNSIGNED-PAYLOAD',
      headers: { 'content-length': String(5 * 1024 ** 3 + 1) },
    });
    const out = await sendRaw(store.port, [rawHead('PUT', objPath('limits/huge'), [...Object.entries(headers), ['connection', 'close']])], { timeoutMs: 5_000, endAfterMs: 5_000 });
    expect(out).toMatchObject({ kind: 'answer', status: 400 });
    await expectAbsent('limits/huge');
  });

  test('a PUT with neither Content-Length nor Transfer-Encoding: 411 MissingContentLength', async () => {
    const headers = await signHeaders(store, { method: 'PUT', path: objPath('limits/nolength') });
    const out = await sendRaw(store.port, [rawHead('PUT', objPath('limits/nolength'), [...Object.entries(headers), ['connection', 'close']])], { timeoutMs: 5_000, endAfterMs: 5_000 });
    expect(out).toMatchObject({ kind: 'answer', status: 411 });
  });
});

describe('Range', () => {
  const body = Buffer.from(Array.from({ length: 100 }, (_, i) => 33 + (i % 90)));
  beforeAll(async () => {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'range/obj', Body: body }));
  });
  test.each([
    ['bytes=0-9', 0, 9],
    ['bytes=-5', 95, 99],
    ['bytes=5-', 5, 99],
    ['bytes=90-200', 90, 99],
    ['bytes=99-99', 99, 99],
  ])('%s: 206 with those bytes and Content-Range', async (range, from, to) => {
    const res = await signed('GET', 'range/obj', { headers: { range } });
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes ${from}-${to}/100`);
    expect(res.headers['content-length']).toBe(String(to - from + 1));
    expect(res.body.equals(body.subarray(from, to + 1))).toBe(true);
  });

  test.each(['bytes=999999-', 'bytes=100-'])('%s (past the end): 416 InvalidRange', async (range) => {
    const res = await signed('GET', 'range/obj', { headers: { range } });
    expect({ status: res.status, code: codeOf(res.text) }).toEqual({ status: 416, code: 'InvalidRange' });
  });

  test.each(['bytes=-5', 'bytes=0-', 'bytes=0-0'])('%s of an empty object: 416 InvalidRange (a suffix once answered 206 "bytes 0--1/0")', async (range) => {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'range/empty', Body: Buffer.alloc(0) }));
    const res = await signed('GET', 'range/empty', { headers: { range } });
    expect({ status: res.status, code: codeOf(res.text), range: res.headers['content-range'] }).toEqual({ status: 416, code: 'InvalidRange', range: 'bytes */0' });
  });

  test('a Range that is not a byte range is ignored: 200, the whole object', async () => {
    const res = await signed('GET', 'range/obj', { headers: { range: 'lines=1-2' } });
    expect(res.status).toBe(200);
    expect(res.body.equals(body)).toBe(true);
  });
});

describe('conditional writes (If-None-Match: *, If-Match), as S3 has them', () => {
  const put = (Key: string, Body: string, cond: { IfNoneMatch?: string; IfMatch?: string } = {}): Promise<{ status?: number; etag?: string; code?: string }> =>
    s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body, ...cond })).then(
      (r) => ({ status: 200, etag: r.ETag }),
      (e: { $metadata?: { httpStatusCode?: number }; name?: string }) => ({ status: e.$metadata?.httpStatusCode, code: e.name }),
    );

  test('If-None-Match: * writes a new key once; the second is 412 and the first stays', async () => {
    expect(await put('cond/new', 'first', { IfNoneMatch: '*' })).toMatchObject({ status: 200 });
    expect(await put('cond/new', 'second', { IfNoneMatch: '*' })).toEqual({ status: 412, code: 'PreconditionFailed' });
    expect(await getText(s3, BUCKET, 'cond/new')).toBe('first');
  });

  test('If-Match writes over that version only; over another 412, over no object 404', async () => {
    const v1 = await put('cond/match', 'v1');
    const v2 = await put('cond/match', 'v2', { IfMatch: v1.etag });
    expect(v2).toMatchObject({ status: 200 });
    expect(await put('cond/match', 'v3', { IfMatch: v1.etag })).toEqual({ status: 412, code: 'PreconditionFailed' });
    expect(await getText(s3, BUCKET, 'cond/match')).toBe('v2');
    expect(await put('cond/absent', 'x', { IfMatch: v1.etag })).toEqual({ status: 404, code: 'NoSuchKey' });
    expect(await put('cond/absent', 'x', { IfMatch: '*' })).toEqual({ status: 404, code: 'NoSuchKey' });
  });

  test('If-None-Match with an ETag is 501 NotImplemented, never ignored', async () => {
    expect(await put('cond/etag', 'x', { IfNoneMatch: '"abc"' })).toEqual({ status: 501, code: 'NotImplemented' });
    await expect(getText(s3, BUCKET, 'cond/etag')).rejects.toThrow();
  });

  test('12 writers with If-None-Match: * on one new key at once: one 200, eleven 412, the winner stored', async () => {
    const body = (i: number) => `writer ${i} `.repeat(20_000);
    const out = await Promise.all(Array.from({ length: 12 }, (_, i) => put('cond/race', body(i), { IfNoneMatch: '*' }).then((r) => ({ ...r, i }))));
    const won = out.filter((r) => r.status === 200);
    expect(won).toHaveLength(1);
    expect(out.filter((r) => r.status === 412)).toHaveLength(11);
    expect(await getText(s3, BUCKET, 'cond/race')).toBe(body(won[0].i));
  });

  test('CompleteMultipartUpload with If-None-Match: * over an existing key: 412, the object and the upload kept', async () => {
    await put('cond/mp', 'existing');
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'cond/mp' }));
    const part = await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: 'cond/mp', UploadId, PartNumber: 1, Body: 'parted' }));
    const done = await s3
      .send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: 'cond/mp', UploadId, IfNoneMatch: '*', MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }))
      .then(() => 200, (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode);
    expect(done).toBe(412);
    expect(await getText(s3, BUCKET, 'cond/mp')).toBe('existing');
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'cond/mp' }));
    expect((uploads.Uploads ?? []).map((u) => u.UploadId)).toEqual([UploadId]);
  });
});

describe('conditional GET and HEAD', () => {
  const body = 'conditional body';
  let etag = '';
  let lastModified = '';
  beforeAll(async () => {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'cond/obj', Body: body }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'cond/obj' }));
    etag = head.ETag!;
    lastModified = head.LastModified!.toUTCString();
  });

  test('If-None-Match with the ETag: 304, no body (GET and HEAD)', async () => {
    for (const method of ['GET', 'HEAD']) {
      const res = await signed(method, 'cond/obj', { headers: { 'if-none-match': etag } });
      expect({ method, status: res.status, len: res.body.length }).toEqual({ method, status: 304, len: 0 });
    }
  });

  test('If-Match with another ETag: 412 PreconditionFailed (GET and HEAD)', async () => {
    const get = await signed('GET', 'cond/obj', { headers: { 'if-match': '"0123456789abcdef0123456789abcdef"' } });
    expect({ status: get.status, code: codeOf(get.text) }).toEqual({ status: 412, code: 'PreconditionFailed' });
    expect(get.text).not.toContain(body);
    const head = await signed('HEAD', 'cond/obj', { headers: { 'if-match': '"0123456789abcdef0123456789abcdef"' } });
    expect(head.status).toBe(412);
  });

  test('If-Match with the ETag and If-None-Match with another: 200 with the body', async () => {
    const a = await signed('GET', 'cond/obj', { headers: { 'if-match': etag } });
    expect({ status: a.status, body: a.text }).toEqual({ status: 200, body });
    const b = await signed('GET', 'cond/obj', { headers: { 'if-none-match': '"0123456789abcdef0123456789abcdef"' } });
    expect({ status: b.status, body: b.text }).toEqual({ status: 200, body });
  });

  test('If-Modified-Since at Last-Modified: 304; If-Unmodified-Since a day before: 412', async () => {
    const a = await signed('GET', 'cond/obj', { headers: { 'if-modified-since': lastModified } });
    expect(a.status).toBe(304);
    const before = new Date(Date.parse(lastModified) - 86_400_000).toUTCString();
    const b = await signed('GET', 'cond/obj', { headers: { 'if-unmodified-since': before } });
    expect({ status: b.status, code: codeOf(b.text) }).toEqual({ status: 412, code: 'PreconditionFailed' });
  });

  test('an If-Modified-Since that is not a date is ignored: 200', async () => {
    const res = await signed('GET', 'cond/obj', { headers: { 'if-modified-since': 'yesterday-ish' } });
    expect({ status: res.status, body: res.text }).toEqual({ status: 200, body });
  });
});
