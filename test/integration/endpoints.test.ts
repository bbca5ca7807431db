/**
 * Every endpoint against a real S3-compatible store over HTTP: real presigned URLs, real signatures,
 * real uploads. Handlers are called with a ctx shaped as the platform built it.
 */
import { createHash } from 'node:crypto';
import adminUpload from '../../src/admin-upload';
import adminUploadLink from '../../src/admin-upload-link';
import makeLinks from '../../src/make-links';
import userDelete from '../../src/user-delete';
import userList from '../../src/user-list';
import userRead from '../../src/user-read';
import userUpload from '../../src/user-upload';
import userUploadLink from '../../src/user-upload-link';
import { invoke, type Caller } from '../support/ctx';
import { external, useStore, type TestStore } from '../support/store';

let store: TestStore;
const alice = { user: { id: 101, username: 'alice' } };
const bob = { user: { id: 202, username: 'bob' } };
const admin = { admin: true };

beforeAll(async () => {
  store = await useStore();
});
afterAll(() => store.close());

const call = (handler: any, caller: Caller, args: Record<string, unknown>, config: Record<string, unknown> = store.config) =>
  invoke(handler, { ...caller, args, config });

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

describe('user-upload-link (PUT) and user-read', () => {
  test('a PUT to the upload link stores the bytes; the read link returns them', async () => {
    const bytes = Buffer.from('hello from a presigned PUT ✓');
    const up = await call(userUploadLink, alice, { name: 'docs/hello.txt', contentType: 'text/plain' });
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({ method: 'PUT', key: '101/docs/hello.txt', headers: { 'Content-Type': 'text/plain' } });
    expect(Date.parse(up.body.expiresAt)).toBeGreaterThan(Date.now() + 800_000);
    const put = await fetch(up.body.link, { method: 'PUT', headers: up.body.headers, body: bytes });
    expect(put.status).toBe(200);
    expect(await store.read('101/docs/hello.txt')).toEqual(bytes);

    const read = await call(userRead, alice, { name: 'docs/hello.txt', expiresIn: 60 });
    expect(read.status).toBe(200);
    expect(read.body.key).toBe('101/docs/hello.txt');
    const got = await fetch(read.body.link);
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer())).toEqual(bytes);
  });

  test('the store refuses a tampered signature, a tampered key and an expired link', async () => {
    await call(userUpload, alice, { name: 'secret.txt', file: b64('top secret') });
    const read = await call(userRead, alice, { name: 'secret.txt', expiresIn: 60 });
    const link = new URL(read.body.link);
    const sig = link.searchParams.get('X-Amz-Signature')!;
    const tampered = new URL(link);
    tampered.searchParams.set('X-Amz-Signature', (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1));
    expect((await fetch(tampered)).status).toBe(403);
    const otherKey = new URL(link.toString().replace('/101/secret.txt', '/202/secret.txt'));
    expect(otherKey.toString()).not.toBe(link.toString());
    expect((await fetch(otherKey)).status).toBe(403);
    expect((await fetch(link)).status).toBe(200);
    // X-Amz-Date has whole seconds, so a 1-second link may already be past due when it arrives: it is
    // only checked after it has surely expired.
    const shortLived = new URL((await call(userRead, alice, { name: 'secret.txt', expiresIn: 1 })).body.link);
    await new Promise((r) => setTimeout(r, 2100));
    expect((await fetch(shortLived)).status).toBe(403);
    expect((await fetch(link)).status).toBe(200);
  });

  test('with contentType signed, an upload of another type is refused and writes nothing', async () => {
    const up = await call(userUploadLink, alice, { name: 'img/a.png', contentType: 'image/png' });
    const put = await fetch(up.body.link, { method: 'PUT', headers: { 'Content-Type': 'text/html' }, body: '<script>' });
    expect(put.status).toBe(403);
    expect(await store.keys()).not.toContain('101/img/a.png');
  });

  test('redirect answers 302 to the link; download sets Content-Disposition with the Unicode name', async () => {
    await call(userUpload, alice, { name: 'reports/€ report.txt', file: b64('euro') });
    const redirected = await call(userRead, alice, { name: 'reports/€ report.txt', redirect: 'true' });
    expect(redirected.status).toBe(302);
    expect(redirected.headers.Location).toBe(redirected.body.link);
    const own = await call(userRead, alice, { name: 'reports/€ report.txt', download: true });
    const ownGet = await fetch(own.body.link);
    expect(ownGet.status).toBe(200);
    expect(ownGet.headers.get('content-disposition')).toBe(
      `attachment; filename="_ report.txt"; filename*=UTF-8''%E2%82%AC%20report.txt`,
    );
    const named = await call(userRead, alice, { name: 'reports/€ report.txt', download: 'März.txt' });
    expect((await fetch(named.body.link)).headers.get('content-disposition')).toContain(`filename*=UTF-8''M%C3%A4rz.txt`);
  });

  test('user-read of a missing file is 404; user B cannot read user A\'s file', async () => {
    await call(userUpload, alice, { name: 'private/diary.txt', file: b64('dear diary') });
    const missing = await call(userRead, alice, { name: 'nope.txt' });
    expect(missing).toMatchObject({ status: 404, body: { code: 'not_found' } });
    const theft = await call(userRead, bob, { name: 'private/diary.txt' });
    expect(theft).toMatchObject({ status: 404, body: { code: 'not_found' } });
    for (const name of ['../101/private/diary.txt', '/101/private/diary.txt', '..\\101\\private\\diary.txt']) {
      const attempt = await call(userRead, bob, { name });
      expect(attempt.status).toBe(400);
      expect(attempt.body.code).toBe('invalid_argument');
    }
  });
});

describe('user-upload (base64)', () => {
  test('base64 and data: URL uploads round-trip with their content type', async () => {
    const bytes = Buffer.from([0, 1, 2, 250, 251, 252, 255]);
    const plain = await call(userUpload, alice, { name: 'bin/raw.bin', file: b64(bytes) });
    expect(plain.status).toBe(200);
    expect(plain.body).toMatchObject({ key: '101/bin/raw.bin', name: 'bin/raw.bin', size: 7, contentType: 'application/octet-stream', etag: md5(bytes) });
    expect(Buffer.from(await (await fetch(plain.body.link)).arrayBuffer())).toEqual(bytes);

    const dataUrl = await call(userUpload, alice, { name: 'pic.svg', file: `data:image/svg+xml;base64,${b64('<svg/>')}` });
    expect(dataUrl.body).toMatchObject({ size: 6, contentType: 'image/svg+xml' });
    const got = await fetch(dataUrl.body.link);
    expect(got.headers.get('content-type')).toBe('image/svg+xml');
    expect(await got.text()).toBe('<svg/>');
  });

  test('bad base64 is 400 and writes nothing', async () => {
    for (const file of ['not base64!', 'abcde', 'YQ=x', 'data:text/plain,hello', '====']) {
      const res = await call(userUpload, alice, { name: `bad/${file.length}.txt`, file });
      expect(res).toMatchObject({ status: 400, body: { code: 'invalid_argument' } });
    }
    expect((await store.keys()).filter((k) => k.startsWith('101/bad/'))).toEqual([]);
  });

  test('a file over MAX_FILE_SIZE is 413 and writes nothing', async () => {
    const config = { ...store.config, MAX_FILE_SIZE: '16' };
    const over = await call(userUpload, alice, { name: 'big.bin', file: b64(Buffer.alloc(17)) }, config);
    expect(over).toMatchObject({ status: 413, body: { code: 'payload_too_large' } });
    const atLimit = await call(userUpload, alice, { name: 'exact.bin', file: b64(Buffer.alloc(16)) }, config);
    expect(atLimit.status).toBe(200);
    const keys = await store.keys();
    expect(keys).not.toContain('101/big.bin');
    expect(keys).toContain('101/exact.bin');
  });

  test('ALLOWED_CONTENT_TYPES: other types are 415 on every upload path', async () => {
    const config = { ...store.config, ALLOWED_CONTENT_TYPES: 'image/*, application/pdf' };
    const ok = await call(userUpload, alice, { name: 'ok.png', file: `data:image/png;base64,${b64('png')}` }, config);
    expect(ok.status).toBe(200);
    const bad = await call(userUpload, alice, { name: 'x.html', file: b64('<b>'), contentType: 'text/html' }, config);
    expect(bad).toMatchObject({ status: 415, body: { code: 'unsupported_media_type' } });
    const untyped = await call(userUpload, alice, { name: 'x.bin', file: b64('x') }, config);
    expect(untyped.status).toBe(415);
    const link = await call(userUploadLink, alice, { name: 'x.html', contentType: 'text/html' }, config);
    expect(link.status).toBe(415);
    const adminLink = await call(adminUploadLink, admin, { name: 'x.html', contentType: 'text/html', method: 'POST' }, config);
    expect(adminLink.status).toBe(415);
    expect(await store.keys()).not.toContain('101/x.html');
  });
});

describe('POST upload links', () => {
  test('a POST policy upload works within its size; larger is refused by the store', async () => {
    const up = await call(userUploadLink, alice, { name: 'form/up.txt', method: 'POST', contentType: 'text/plain', size: 10 });
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({ method: 'POST', key: '101/form/up.txt' });
    const post = (content: string) => {
      const form = new FormData();
      for (const [k, v] of Object.entries(up.body.fields as Record<string, string>)) form.append(k, v);
      form.append('file', new Blob([content], { type: 'text/plain' }), 'up.txt');
      return fetch(up.body.link, { method: 'POST', body: form });
    };
    const tooBig = await post('01234567890');
    expect(tooBig.status).toBeGreaterThanOrEqual(400);
    expect(await store.keys()).not.toContain('101/form/up.txt');
    const ok = await post('0123456789');
    expect(ok.status).toBeLessThan(300);
    expect((await store.read('101/form/up.txt')).toString()).toBe('0123456789');
  });

  test('size over MAX_FILE_SIZE is 413; size with PUT is 400', async () => {
    const config = { ...store.config, MAX_FILE_SIZE: '100' };
    expect((await call(userUploadLink, alice, { name: 'a', method: 'POST', size: 101 }, config)).status).toBe(413);
    expect((await call(userUploadLink, alice, { name: 'a', method: 'PUT', size: 10 }, config)).status).toBe(400);
  });
});

describe('user-list and user-delete', () => {
  test('lists only the caller\'s own files, in pages, with a prefix', async () => {
    for (let i = 0; i < 5; i++) await call(userUpload, bob, { name: `list/f${i}.txt`, file: b64(`file ${i}`) });
    await call(userUpload, bob, { name: 'other/x.txt', file: b64('x') });
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const res = await call(userList, bob, { prefix: 'list/', limit: 2, cursor });
      expect(res.status).toBe(200);
      expect(res.body.files.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.files.map((f: { name: string }) => f.name));
      cursor = res.body.cursor ?? undefined;
      if (!cursor) break;
    }
    expect(seen).toEqual(['list/f0.txt', 'list/f1.txt', 'list/f2.txt', 'list/f3.txt', 'list/f4.txt']);
    const all = await call(userList, bob, {});
    const names = all.body.files.map((f: { name: string }) => f.name);
    expect(names).toContain('other/x.txt');
    expect(names.every((n: string) => !n.startsWith('101/') && !n.includes('diary'))).toBe(true);
    expect(all.body.files[0]).toEqual({ name: expect.any(String), size: expect.any(Number), lastModified: expect.any(String), etag: expect.any(String) });
    const forged = await call(userList, bob, { cursor: Buffer.from('../101/').toString('base64url') });
    expect(forged.status).toBe(400);
  });

  test('deletes own files; missing ones are reported; a bad name fails the call and deletes nothing', async () => {
    await call(userUpload, alice, { name: 'del/a.txt', file: b64('a') });
    await call(userUpload, bob, { name: 'del/a.txt', file: b64('b') });
    await call(userUpload, bob, { name: 'del/b.txt', file: b64('b') });
    const hostile = await call(userDelete, bob, { names: ['del/b.txt', '../101/del/a.txt'] });
    expect(hostile).toMatchObject({ status: 400, body: { code: 'invalid_argument' } });
    expect(hostile.body.message).toContain('names.1');
    expect(await store.keys()).toEqual(expect.arrayContaining(['101/del/a.txt', '202/del/a.txt', '202/del/b.txt']));

    const res = await call(userDelete, bob, { names: ['del/a.txt', 'del/missing.txt'] });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ deleted: ['del/a.txt'], errors: [{ name: 'del/missing.txt', message: 'file not found: del/missing.txt' }] });
    const single = await call(userDelete, bob, { name: 'del/b.txt' });
    expect(single.body).toEqual({ deleted: ['del/b.txt'], errors: [] });
    const keys = await store.keys();
    expect(keys).toContain('101/del/a.txt');
    expect(keys).not.toContain('202/del/a.txt');
    expect(keys).not.toContain('202/del/b.txt');
    expect((await call(userDelete, bob, {})).status).toBe(400);
    expect((await call(userDelete, bob, { name: 'x', names: ['y'] })).status).toBe(400);
  });
});

describe('make-links', () => {
  test('returns working links for many keys and puts bad keys in errors', async () => {
    const names = Array.from({ length: 30 }, (_, i) => `shared/${i}.txt`);
    for (const name of names.slice(0, 3)) await call(adminUpload, admin, { name, file: b64(name) });
    const res = await call(makeLinks, admin, { fileNames: [...names, '../etc/passwd', '', 42] });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body.files).sort()).toEqual([...names].sort());
    expect(res.body.errors).toHaveLength(3);
    expect(res.body.errors.map((e: { name: unknown }) => e.name)).toEqual(['../etc/passwd', '', 42]);
    for (const name of names.slice(0, 3)) {
      const got = await fetch(res.body.files[name]);
      expect(await got.text()).toBe(name);
    }
    const expiry = Number(new URL(res.body.files[names[0]]).searchParams.get('X-Amz-Expires'));
    expect(expiry).toBe(3600);
  });

  test('check: missing keys go to errors; a single string works; 1001 keys is 400', async () => {
    await call(adminUpload, admin, { name: 'checked/yes.txt', file: b64('yes') });
    const res = await call(makeLinks, admin, { fileNames: ['checked/yes.txt', 'checked/no.txt'], check: true });
    expect(Object.keys(res.body.files)).toEqual(['checked/yes.txt']);
    expect(res.body.errors).toEqual([{ name: 'checked/no.txt', message: expect.stringContaining('not found') }]);
    const single = await call(makeLinks, admin, { fileNames: 'checked/yes.txt' });
    expect(Object.keys(single.body.files)).toEqual(['checked/yes.txt']);
    const tooMany = await call(makeLinks, admin, { fileNames: Array.from({ length: 1001 }, (_, i) => `k${i}`) });
    expect(tooMany).toMatchObject({ status: 400, body: { code: 'invalid_argument' } });
    const huge = await call(makeLinks, admin, { fileNames: ['../' + 'x'.repeat(5000)] });
    expect(huge.body.errors[0].name).toBe('../' + 'x'.repeat(1021) + '…');
    const download = await call(makeLinks, admin, { fileNames: ['checked/yes.txt'], download: true });
    expect((await fetch(download.body.files['checked/yes.txt'])).headers.get('content-disposition')).toContain('filename="yes.txt"');
  });

  test('an admin file placed under a user prefix is found by that user', async () => {
    await call(adminUpload, admin, { name: '202/from-admin.txt', file: b64('gift') });
    const read = await call(userRead, bob, { name: 'from-admin.txt' });
    expect(await (await fetch(read.body.link)).text()).toBe('gift');
  });
});

describe('who may call', () => {
  test('admin endpoints refuse a user and an anonymous caller with 403, writing nothing', async () => {
    const before = await store.keys();
    for (const caller of [alice, {}]) {
      for (const [handler, args] of [
        [adminUpload, { name: 'pwned.txt', file: b64('x') }],
        [adminUploadLink, { name: 'pwned.txt' }],
        [makeLinks, { fileNames: ['101/private/diary.txt'] }],
      ] as const) {
        const res = await call(handler, caller, args);
        expect(res).toMatchObject({ status: 403, body: { code: 'forbidden' } });
      }
    }
    expect(await store.keys()).toEqual(before);
  });

  test('user endpoints without a user are 401, before args or config are looked at', async () => {
    for (const handler of [userUploadLink, userRead, userUpload, userList, userDelete]) {
      const res = await call(handler, {}, { name: 'x' }, { AWS_BUCKET: 'NOT A BUCKET' });
      expect(res).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
    }
  });

  test('bad arguments are 400 with a message naming the argument', async () => {
    const res = await call(userUploadLink, alice, { name: 'a.txt', expiresIn: 0 });
    expect(res).toMatchObject({ status: 400, body: { code: 'invalid_argument' } });
    expect(res.body.message).toContain('expiresIn');
    expect((await call(userUploadLink, alice, { name: 'a.txt', expiresIn: 604801 })).status).toBe(400);
    expect((await call(userUploadLink, alice, { name: 'a.txt', method: 'DELETE' })).status).toBe(400);
    expect((await call(userUploadLink, alice, {})).status).toBe(400);
    expect((await call(userRead, alice, { name: ['a'] })).status).toBe(400);
  });
});

describe('configuration and a store that is down', () => {
  test('an invalid option is 500 not_configured naming the option, not its value', async () => {
    const res = await call(userRead, alice, { name: 'a' }, { ...store.config, AWS_S3_ENDPOINT: 'ftp://secret-host' });
    expect(res).toMatchObject({ status: 500, body: { code: 'not_configured' } });
    expect(res.body.message).toContain('AWS_S3_ENDPOINT');
    expect(res.body.message).not.toContain('secret-host');
    const noBucket = await invoke(userRead, { ...alice, args: { name: 'a' }, config: { AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'S' }, instance: undefined });
    expect(noBucket).toMatchObject({ status: 500, body: { code: 'not_configured' } });
    expect(noBucket.body.message).toContain('AWS_BUCKET');
    const noKeys = await invoke(userRead, { ...alice, args: { name: 'a' }, config: {}, instance: 'inst' });
    expect(noKeys).toMatchObject({ status: 500, body: { code: 'not_configured' } });
    expect(noKeys.body.message).toContain('AWS_ACCESS_KEY_ID');
    expect(noBucket).toMatchObject({ status: 500, body: { code: 'not_configured' } });
    expect(noBucket.body.message).toContain('AWS_BUCKET');
  });

  test('the store down gives 503 storage_unavailable with a message that names no secret', async () => {
    const secret = 'sEcReT-value-that-must-not-leak';
    const down = { ...store.config, AWS_S3_ENDPOINT: 'http://127.0.0.1:9', AWS_SECRET_ACCESS_KEY: secret, AWS_S3_TIMEOUT_MS: '2000', AWS_BUCKET: 'down-bucket' };
    for (const [handler, caller, args] of [
      [userRead, alice, { name: 'a.txt' }],
      [userUpload, alice, { name: 'a.txt', file: b64('a') }],
      [userUploadLink, alice, { name: 'a.txt' }],
      [makeLinks, admin, { fileNames: ['a'] }],
      [userList, alice, {}],
    ] as const) {
      const started = Date.now();
      const res = await call(handler, caller, args, down);
      expect(res).toMatchObject({ status: 503, body: { code: 'storage_unavailable' } });
      expect(JSON.stringify(res.body)).not.toContain(secret);
      expect(JSON.stringify(res.body)).not.toContain('S3RVER');
      expect(Date.now() - started).toBeLessThan(5000);
    }
  });
});

describe('names the file system could not hold', () => {
  const long = 'x'.repeat(300); // a valid S3 key; one path segment longer than a file name on disk

  test('a segment longer than a file name works on every store (the embedded store names files by a hash of the key)', async () => {
    const up = await call(userUpload, alice, { name: `long/${long}`, file: b64('long') });
    const read = await call(userRead, alice, { name: `long/${long}` });
    expect(up.status).toBe(200);
    expect(read.status).toBe(200);
    const got = await fetch(read.body.link);
    expect(await got.text()).toBe('long');
  });
});
