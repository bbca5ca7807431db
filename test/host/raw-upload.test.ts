/**
 * Raw-body uploads (`curl --data-binary @photo.png -H 'Content-Type: image/png' ".../user-upload/?name=..."`)
 * through the host to a real store (the embedded one, or RGW under scripts/rgw/run.ts): stored exactly,
 * every refusal before the body is read where it can be, and nothing written on any failure.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { freePort } from '../faults/helpers';
import { startHost, type StartedHost } from '../support/host';
import { useStore, type TestStore } from '../support/store';

jest.setTimeout(120_000);

const MAX_FILE_SIZE = 20 * 1024 * 1024;
let store: TestStore;
let host: StartedHost;
let alice: { id: number; user_key: string };

beforeAll(async () => {
  store = await useStore();
  host = await startHost({
    env: {
      ...store.config,
      MAX_FILE_SIZE: String(MAX_FILE_SIZE),
      ALLOWED_CONTENT_TYPES: 'image/*, text/*, application/octet-stream',
      HOST_BODY_IDLE_TIMEOUT_MS: '1000',
    },
  });
  alice = await host.addUser('alice');
});
afterAll(async () => {
  await host?.stop();
  await store?.close();
});

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

interface Sent {
  status: number;
  body: any;
  headers: http.IncomingHttpHeaders;
  /** body bytes written before the answer came */
  written: number;
}

/**
 * POSTs to the host with full control of the body: `chunks` are written one by one (`pauseMs` apart);
 * `stopAfter` chunks the connection is cut (a client gone mid-body; resolves with status 0).
 */
function post(
  path: string,
  headers: Record<string, string | number>,
  chunks: Buffer[],
  o: { pauseMs?: number; stopAfter?: number; hold?: boolean; url?: string } = {},
): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${o.url ?? host.url}${path}`, { method: 'POST', headers, agent: false });
    req.flushHeaders(); // the headers go now, before any body byte
    let written = 0;
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString();
        let body: any = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* shown by the expectation */
        }
        resolve({ status: res.statusCode ?? 0, body, headers: res.headers, written });
        req.destroy();
      });
    });
    req.on('error', (err) => (answered ? undefined : o.stopAfter !== undefined ? resolve({ status: 0, body: undefined, headers: {}, written }) : reject(err)));
    (async () => {
      for (let i = 0; i < chunks.length && !answered; i++) {
        if (o.stopAfter !== undefined && i === o.stopAfter) {
          await new Promise((r) => setTimeout(r, 200));
          req.destroy();
          setTimeout(() => resolve({ status: 0, body: undefined, headers: {}, written }), 100);
          return;
        }
        await new Promise<void>((r) => (req.write(chunks[i]) ? r() : req.once('drain', () => r())));
        written += chunks[i].length;
        if (o.pauseMs) await new Promise((r) => setTimeout(r, o.pauseMs));
      }
      if (!o.hold && !answered) req.end();
    })().catch(reject);
  });
}

const split = (bytes: Buffer, size: number) => Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size));
const userHeaders = (type: string, extra: Record<string, string | number> = {}) => ({ 'content-type': type, 'x-user-key': alice.user_key, ...extra });
const pendingUploads = async () =>
  ((await store.client.send(new ListMultipartUploadsCommand({ Bucket: store.config.AWS_BUCKET }))).Uploads ?? []).map((u) => u.Key);

describe('stored exactly', () => {
  test('with Content-Length: the answer is the base64 path\'s; the object has the bytes and the request type', async () => {
    const bytes = randomBytes(300_000);
    const r = await post('/aws-storage/user-upload/?name=photos/raw.png', userHeaders('image/png', { 'content-length': bytes.length }), split(bytes, 64 * 1024));
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      key: `${alice.id}/photos/raw.png`,
      name: 'photos/raw.png',
      size: bytes.length,
      etag: md5(bytes),
      contentType: 'image/png',
      link: expect.stringContaining(`/${alice.id}/photos/raw.png?`),
    });
    const got = await fetch(r.body.link);
    expect(got.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
  });

  test('chunked, below one part (one put) and above it (parts), and empty', async () => {
    for (const size of [100_000, 8 * 1024 * 1024, 8 * 1024 * 1024 + 1, 19 * 1024 * 1024]) {
      const bytes = randomBytes(size);
      const r = await post(`/aws-storage/user-upload/?name=chunked/${size}.bin`, userHeaders('application/octet-stream', { 'transfer-encoding': 'chunked' }), split(bytes, 1024 * 1024));
      expect([size, r.status, r.body.size]).toEqual([size, 200, size]);
      expect((await store.read(`${alice.id}/chunked/${size}.bin`)).equals(bytes)).toBe(true);
    }
    const empty = await post('/aws-storage/user-upload/?name=chunked/empty.txt', userHeaders('text/plain', { 'content-length': 0 }), []);
    expect(empty.status).toBe(200);
    expect(empty.body).toMatchObject({ size: 0, contentType: 'text/plain', etag: md5(Buffer.alloc(0)) });
    expect(await pendingUploads()).toEqual([]);
  });

  test('contentType in the query wins over the request\'s; the key in the query works; a `file` in the query is not the file', async () => {
    const bytes = Buffer.from('plain words');
    const r = await post(
      `/aws-storage/user-upload/?name=q.txt&contentType=text/markdown&file=aGk%3D&user_key=${alice.user_key}`,
      { 'content-type': 'text/plain', 'content-length': bytes.length },
      [bytes],
    );
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ contentType: 'text/markdown', size: bytes.length });
    expect((await store.read(`${alice.id}/q.txt`)).toString()).toBe('plain words');
  });

  test('admin-upload takes a raw body under its name as the key; a user key is 403', async () => {
    const bytes = randomBytes(1000);
    const byUser = await post('/aws-storage/admin-upload/?name=shared/a.bin', userHeaders('application/octet-stream', { 'content-length': bytes.length }), [bytes]);
    expect(byUser.status).toBe(403);
    const r = await post('/aws-storage/admin-upload/?name=shared/a.bin', { 'content-type': 'application/octet-stream', 'x-api-key': host.adminKey, 'content-length': bytes.length }, [bytes]);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ key: 'shared/a.bin', etag: md5(bytes) });
  });

  test('JSON and form bodies are still read as arguments', async () => {
    const json = await post('/aws-storage/user-upload/', userHeaders('application/json'), [Buffer.from(JSON.stringify({ name: 'j.txt', file: 'aGk=', contentType: 'text/plain' }))]);
    expect(json.body).toMatchObject({ key: `${alice.id}/j.txt`, size: 2 });
    const form = await post('/aws-storage/user-upload/?name=f.txt', userHeaders('application/x-www-form-urlencoded'), [Buffer.from('file=aGk%3D&contentType=text/plain')]);
    expect(form.body).toMatchObject({ key: `${alice.id}/f.txt`, size: 2 });
    // a multipart form is not the file: refused as before, nothing stored
    const multipart = await post('/aws-storage/user-upload/?name=m.txt', userHeaders('multipart/form-data; boundary=x'), [Buffer.from('--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nhi\r\n--x--\r\n')]);
    expect(multipart.status).toBe(400);
    expect(await store.keys()).not.toContain(`${alice.id}/m.txt`);
  });
});

describe('refused before the body is read', () => {
  // Only the headers go; the body is held back, so an answer proves the host did not wait for it.
  const refusedUnread = (path: string, headers: Record<string, string | number>) => post(path, headers, [], { hold: true });

  test('no key in a header or the query: 401 (403 for admin-upload), unread', async () => {
    const big = { 'content-type': 'image/png', 'content-length': 5_000_000 };
    const user = await refusedUnread('/aws-storage/user-upload/?name=a.png', big);
    expect([user.status, user.written]).toEqual([401, 0]);
    expect(user.body.message).toMatch(/X-USER-KEY/);
    const admin = await refusedUnread('/aws-storage/admin-upload/?name=a.png', big);
    expect([admin.status, admin.written]).toEqual([403, 0]);
    expect(admin.body.message).toMatch(/X-API-KEY/);
    const small = await post('/aws-storage/user-upload/?name=a.png', { 'content-type': 'image/png', 'content-length': 10 }, [Buffer.alloc(10)]);
    expect(small.status).toBe(401);
  });

  test('bad name 400, type not allowed 415, Content-Length over MAX_FILE_SIZE 413, no name 400', async () => {
    const cases: Array<[string, string, number, number]> = [
      ['/aws-storage/user-upload/?name=../x.png', 'image/png', 1000, 400],
      ['/aws-storage/user-upload/?name=a%5Cb.png', 'image/png', 1000, 400],
      ['/aws-storage/user-upload/', 'image/png', 1000, 400],
      ['/aws-storage/user-upload/?name=a.pdf', 'application/pdf', 1000, 415],
      ['/aws-storage/user-upload/?name=a.png&contentType=application/pdf', 'image/png', 1000, 415],
      ['/aws-storage/user-upload/?name=big.png', 'image/png', MAX_FILE_SIZE + 1, 413],
    ];
    for (const [path, type, length, status] of cases) {
      const r = await refusedUnread(path, userHeaders(type, { 'content-length': length }));
      expect([path, r.status, r.written]).toEqual([path, status, 0]);
      expect(r.headers.connection).toBe('close');
    }
    expect((await store.keys()).filter((k) => /a\.pdf|big\.png|x\.png/.test(k))).toEqual([]);
  });

  test('Expect: 100-continue: a refused call never gets its 100', async () => {
    const r = await refusedUnread('/aws-storage/user-upload/?name=a.pdf', userHeaders('application/pdf', { 'content-length': 1000, expect: '100-continue' }));
    expect(r.status).toBe(415);
  });
});

describe('nothing written on any failure', () => {
  test('the client leaves mid-body (with Content-Length, and chunked past one part)', async () => {
    const bytes = randomBytes(4 * 1024 * 1024);
    await post('/aws-storage/user-upload/?name=gone/cl.bin', userHeaders('image/png', { 'content-length': bytes.length }), split(bytes, 256 * 1024), { stopAfter: 8 });
    const big = randomBytes(12 * 1024 * 1024);
    await post('/aws-storage/user-upload/?name=gone/chunked.bin', userHeaders('image/png', { 'transfer-encoding': 'chunked' }), split(big, 512 * 1024), { stopAfter: 20 });
    // the host aborts the upload it had started once the part in flight is answered: waited for (bounded),
    // not for a fixed second, which a busy machine can outlast
    for (let i = 0; i < 100 && (await pendingUploads()).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await store.keys()).filter((k) => k.includes('gone/'))).toEqual([]);
    expect(await pendingUploads()).toEqual([]);
    expect(host.logs()).not.toMatch(/error in/);
  });

  test('a chunked body that passes MAX_FILE_SIZE is 413 mid-stream; an upload begun is aborted', async () => {
    const bytes = randomBytes(MAX_FILE_SIZE + 1024 * 1024);
    const r = await post('/aws-storage/user-upload/?name=over/chunked.bin', userHeaders('image/png', { 'transfer-encoding': 'chunked' }), split(bytes, 1024 * 1024));
    expect(r.status).toBe(413);
    expect(r.body.code).toBe('payload_too_large');
    expect((await store.keys()).filter((k) => k.includes('over/'))).toEqual([]);
    expect(await pendingUploads()).toEqual([]);
  });

  test('a body that stalls is 408 (the host\'s idle timeout holds for streamed bodies)', async () => {
    const bytes = randomBytes(64 * 1024);
    const started = Date.now();
    const r = await post('/aws-storage/user-upload/?name=slow/a.bin', userHeaders('image/png', { 'content-length': bytes.length * 2 }), [bytes], { hold: true });
    expect(r.status).toBe(408);
    expect(Date.now() - started).toBeLessThan(5_000);
    const chunked = await post('/aws-storage/user-upload/?name=slow/b.bin', userHeaders('image/png', { 'transfer-encoding': 'chunked' }), [bytes], { hold: true });
    expect(chunked.status).toBe(408);
    expect((await store.keys()).filter((k) => k.includes('slow/'))).toEqual([]);
  });

  test('the handler timeout counts from the end of a streamed body: a slow but steady upload is stored', async () => {
    const quick = await startHost({ env: { ...store.config, HANDLER_TIMEOUT_MS: '500' } });
    try {
      const carol = await quick.addUser('carol');
      const bytes = randomBytes(2 * 1024 * 1024);
      const started = Date.now();
      const r = await post('/aws-storage/user-upload/?name=steady.bin', { 'content-type': 'image/png', 'x-user-key': carol.user_key, 'content-length': bytes.length }, split(bytes, 256 * 1024), { pauseMs: 250, url: quick.url });
      expect(Date.now() - started).toBeGreaterThan(1_500); // three times the handler timeout
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ size: bytes.length, etag: md5(bytes) });
    } finally {
      await quick.stop();
    }
  });

  test('the store down: 503 storage_unavailable, nothing kept', async () => {
    const port = await freePort();
    const dead = await startHost({ env: { ...store.config, AWS_S3_ENDPOINT: `http://127.0.0.1:${port}`, AWS_S3_TIMEOUT_MS: '1000' } });
    try {
      const bob = await dead.addUser('bob');
      const bytes = randomBytes(2 * 1024 * 1024);
      const framings: Array<Record<string, string | number>> = [{ 'content-length': bytes.length }, { 'transfer-encoding': 'chunked' }];
      for (const framing of framings) {
        const r = await post('/aws-storage/user-upload/?name=down.bin', { 'content-type': 'image/png', 'x-user-key': bob.user_key, ...framing }, split(bytes, 256 * 1024), { url: dead.url });
        expect(r.status).toBe(503);
        expect(r.body.code).toBe('storage_unavailable');
      }
    } finally {
      await dead.stop();
    }
  });
});

describe('base64 in JSON, decoded where it sits in the body', () => {
  const upload = (endpoint: string, body: string, headers: Record<string, string | number>) =>
    post(`/aws-storage/${endpoint}/`, { 'content-type': 'application/json', ...headers }, split(Buffer.from(body), 64 * 1024));

  test('stored exactly, plain or as a data: URL, by user-upload and admin-upload; the answer is the string path\'s', async () => {
    const bytes = randomBytes(3 * 1024 * 1024 + 1);
    const b64 = bytes.toString('base64');
    const plain = await upload('user-upload', JSON.stringify({ name: 'b64/plain.bin', file: b64, contentType: 'application/octet-stream' }), userHeaders('application/json'));
    expect(plain.status).toBe(200);
    expect(plain.body).toMatchObject({ key: `${alice.id}/b64/plain.bin`, size: bytes.length, etag: md5(bytes), contentType: 'application/octet-stream' });
    expect((await store.read(`${alice.id}/b64/plain.bin`)).equals(bytes)).toBe(true);
    const dataUrl = await upload('user-upload', JSON.stringify({ name: 'b64/photo.png', file: `data:image/png;base64,${b64}` }), userHeaders('application/json'));
    expect(dataUrl.body).toMatchObject({ size: bytes.length, etag: md5(bytes), contentType: 'image/png' });
    const admin = await upload('admin-upload', JSON.stringify({ file: b64, name: 'shared/b64.bin', contentType: 'text/plain' }), { 'x-api-key': host.adminKey });
    expect(admin.body).toMatchObject({ key: 'shared/b64.bin', etag: md5(bytes) });
    expect((await store.read('shared/b64.bin')).equals(bytes)).toBe(true);
  });

  test('bad base64 is 400, too large 413, a type not allowed 415: nothing stored', async () => {
    const b64 = randomBytes(200_000).toString('base64');
    const cases: Array<[string, string, number]> = [
      ['bad-char', `${b64.slice(0, 150_000)}*${b64.slice(150_001)}`, 400],
      ['url-safe', `${b64.slice(0, 100_000)}-${b64.slice(100_001)}`, 400],
      ['inner-padding', `${b64.slice(0, 99_999)}=${b64.slice(100_000)}`, 400],
      ['one-over', `${b64}A`, 400],
      ['too-large', randomBytes(MAX_FILE_SIZE + 1).toString('base64'), 413],
      ['not-allowed', `data:application/pdf;base64,${b64}`, 415],
      // the data: URL's type is the object's Content-Type: one no header can carry is refused on both paths
      ['type-not-ascii', `data:text/\u00e9;base64,${b64}`, 400],
      ['type-not-header', `data:text/\u20ac;base64,${b64}`, 400],
      ['type-spaced', `data: text/plain;base64,${b64}`, 400],
    ];
    for (const [name, file, status] of cases) {
      const contentType = name === 'not-allowed' ? undefined : 'application/octet-stream';
      const r = await upload('user-upload', JSON.stringify({ name: `b64/${name}.bin`, file, contentType }), userHeaders('application/json'));
      expect([name, r.status]).toEqual([name, status]);
      const message = name.startsWith('type-') ? "file: the data: URL's type must be a media type like image/png" : 'file: not valid base64';
      if (status === 400) expect(r.body).toMatchObject({ code: 'invalid_argument', message });
    }
    expect((await store.keys()).filter((k) => k.includes('/b64/') && !/plain|photo/.test(k))).toEqual([]);
  });
});
