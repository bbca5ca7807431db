/**
 * The socket's own PutObject (storage.ts sendPut: SigV4 by hand over node:http), attacked from
 * outside, on whichever store the environment names (the embedded one, or Ceph RGW): hostile names
 * land at exactly `<user.id>/<name>` or are refused, buffered and streamed; a body changed on its way
 * is refused and nothing is stored; size edges; a failing, slow or babbling store; no secret in any
 * answer. A loopback proxy between the socket and the store does the mischief.
 */
import { createHash, randomBytes } from 'node:crypto';
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import userUpload from '../../src/user-upload';
import { invoke } from '../support/ctx';
import { expectedNameRuling, hostileNames } from '../support/hostile-names';
import { useStore, type TestStore } from '../support/store';

jest.setTimeout(120_000);

let store: TestStore;
let proxy: http.Server;
let proxyUrl: string;
/**
 * The same proxy by its IPv4-mapped IPv6 address: loopback still, but not a store the socket takes for
 * one (it trusts only 127.x, [::1] and localhost), so its streams are signed as for a store across a
 * network: chunk by chunk.
 */
let remoteProxyUrl: string;
const sockets = new Set<net.Socket>();
/** what the proxy does to the next PUT whose path contains a mark */
type Mischief = { kind: 'flip' } | { kind: 'status'; status: number; times: number; body: string } | { kind: 'hang' } | { kind: 'strip-echo' };
const mischief = new Map<string, Mischief>();
/** every PUT path the proxy saw, and how many times */
const seen = new Map<string, number>();
/** the payload hash and CRC32 header of the last PUT to each path */
const heard = new Map<string, { sha: unknown; crc: unknown }>();

beforeAll(async () => {
  store = await useStore();
  const upstream = new URL(store.endpoint);
  proxy = http.createServer((req, res) => {
    const path = req.url ?? '/';
    if (req.method === 'PUT') seen.set(path, (seen.get(path) ?? 0) + 1);
    if (req.method === 'PUT') heard.set(path, { sha: req.headers['x-amz-content-sha256'], crc: req.headers['x-amz-checksum-crc32'] });
    const mark = req.method === 'PUT' ? [...mischief.keys()].find((m) => path.includes(m)) : undefined;
    const m = mark ? mischief.get(mark) : undefined;
    if (m?.kind === 'hang') return void req.resume();
    if (m?.kind === 'status' && m.times > 0) {
      m.times--;
      req.resume();
      req.on('end', () => res.writeHead(m.status, { 'content-type': 'text/plain' }).end(m.body));
      return;
    }
    // Forwarded as it came (the Host header the socket signed included).
    const headers: Record<string, string> = {};
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers[req.rawHeaders[i]] = req.rawHeaders[i + 1];
    const up = http.request({ hostname: upstream.hostname, port: upstream.port, method: req.method, path, headers }, (r) => {
      if (m?.kind === 'strip-echo') delete r.headers['x-amz-checksum-crc32'];
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    let left = Number(req.headers['content-length'] ?? 0);
    let flipAt = m?.kind === 'flip' ? Math.floor(left / 2) : -1;
    req.on('data', (chunk: Buffer) => {
      if (flipAt >= 0 && flipAt < chunk.length) {
        chunk = Buffer.from(chunk);
        chunk[flipAt] ^= 0x01;
      }
      flipAt -= chunk.length;
      left -= chunk.length;
      up.write(chunk);
    });
    req.on('end', () => up.end());
  });
  proxy.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  remoteProxyUrl = `http://[::ffff:127.0.0.1]:${(proxy.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => proxy?.close(resolve));
  await store?.close();
});

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const SECRETS = () => [store.secretAccessKey, store.config.AWS_SECRET_ACCESS_KEY];

/** A FileStream as the host hands a raw body over. */
function fileStream(bytes: Buffer, o: { contentType?: string; contentLength?: number; chunk?: number } = {}) {
  const n = o.chunk ?? 64 * 1024;
  const chunks = Array.from({ length: Math.ceil(bytes.length / n) }, (_, i) => bytes.subarray(i * n, (i + 1) * n));
  return Object.assign(Readable.from(chunks), { contentType: o.contentType, contentLength: o.contentLength });
}

function upload(userId: number, name: unknown, file: string | Readable, extra: Record<string, string> = {}, via = proxyUrl) {
  return invoke(userUpload, { user: { id: userId, username: `u${userId}` }, args: { name, file }, config: { ...store.config, AWS_S3_ENDPOINT: via, ...extra } });
}

/** A user's answers and the store's keys carry no secret and no signature. */
function expectClean(text: string) {
  for (const s of SECRETS()) expect(text).not.toContain(s);
  expect(text).not.toMatch(/Signature=|AWS4-HMAC-SHA256|Credential=/);
}

describe('names', () => {
  test('every hostile name, buffered and streamed, lands at exactly <id>/<nfc name> or is refused 400; the bucket holds nothing else', async () => {
    const names = hostileNames({ otherUserId: 52, otherFile: 'secret.txt' });
    const want = new Set<string>();
    const problems: string[] = [];
    // bob's own file, which alice's names aim at
    const bobs = Buffer.from("bob's secret");
    expect((await upload(52, 'secret.txt', bobs.toString('base64'), {}, store.endpoint)).status).toBe(200);
    want.add('52/secret.txt');
    for (const hn of names) {
      const ruling = expectedNameRuling(hn.name, '51/');
      for (const mode of ['buffered', 'streamed'] as const) {
        const bytes = Buffer.from(`${mode} ${hn.label}`);
        const file = mode === 'buffered' ? bytes.toString('base64') : fileStream(bytes, { contentLength: bytes.length });
        const a = await upload(51, hn.name, file, {}, store.endpoint);
        if (a.status !== 200) expectClean(JSON.stringify(a.body)); // a 200 carries a signed read link
        if (!ruling.ok) {
          if (a.status !== 400) problems.push(`${mode} "${hn.label}": ${a.status} ${JSON.stringify(a.body)}, expected 400`);
          continue;
        }
        // a store may refuse a key it cannot hold (400), never answer 5xx or store it elsewhere
        if (a.status === 400) continue;
        const key = `51/${ruling.nfc}`;
        if (a.status !== 200 || a.body.key !== key) {
          problems.push(`${mode} "${hn.label}": ${a.status} ${JSON.stringify(a.body).slice(0, 200)}`);
          continue;
        }
        want.add(key);
        const stored = await store.read(key).catch(() => undefined);
        if (!stored?.equals(bytes)) problems.push(`${mode} "${hn.label}": ${key} does not hold what was sent`);
      }
    }
    expect(problems).toEqual([]);
    expect((await store.keys()).sort()).toEqual([...want].sort());
    expect((await store.read('52/secret.txt')).equals(bobs)).toBe(true);
  });

  test('a content type with CR LF, or any value that is not a media type, is refused 400 before any put (buffered and raw)', async () => {
    for (const ct of ['text/plain\r\nx-amz-acl: public-read', 'text/plain\nX-Injected: 1', 'text/pl\u00e4in', 'text/plain; a="\r\n"', '../x']) {
      const a = await invoke(userUpload, { user: { id: 53 }, args: { name: 'ct.txt', file: 'aGk=', contentType: ct }, config: store.config });
      expect([a.status, ct]).toEqual([400, ct]);
      const b = await upload(53, 'ct-raw.txt', fileStream(Buffer.from('hi'), { contentType: ct, contentLength: 2 }), {}, store.endpoint);
      expect([b.status, ct]).toEqual([400, ct]);
    }
    expect((await store.keys()).filter((k) => k.startsWith('53/'))).toEqual([]);
  });
});

describe('integrity', () => {
  test.each(['buffered', 'streamed', 'streamed without a length'] as const)('a %s body changed on its way is refused, and nothing is stored', async (mode) => {
    // a first put through the proxy, so a store that shows it checks CRC32 gets UNSIGNED-PAYLOAD next
    expect((await upload(61, `x/first-${mode}.txt`, Buffer.from('first').toString('base64'))).status).toBe(200);
    const mark = `flip-${mode.replace(/ /g, '-')}`;
    mischief.set(mark, { kind: 'flip' });
    const bytes = randomBytes(300 * 1024);
    const file =
      mode === 'buffered' ? bytes.toString('base64') : fileStream(bytes, mode === 'streamed' ? { contentLength: bytes.length } : {});
    // a stream over loopback or TLS is trusted to the connection (UNSIGNED-PAYLOAD): through the proxy as
    // a store across a network, where it is signed chunk by chunk
    const a = await upload(61, `${mark}.bin`, file, {}, mode === 'buffered' ? proxyUrl : remoteProxyUrl);
    mischief.delete(mark);
    expect(a.status).toBe(503);
    expect(a.body.code).toBe('storage_unavailable');
    expect(await store.keys()).not.toContain(`61/${mark}.bin`);
  });

  test('UNSIGNED-PAYLOAD only after this store answered a put with its CRC32; SHA-256 before, and for a store that does not echo it; streams UNSIGNED-PAYLOAD over loopback, signed chunk by chunk across a network', async () => {
    // a Store of its own (a config no other test uses), so nothing it learnt before counts
    const own = { AWS_S3_TIMEOUT_MS: '4321' };
    const path = (name: string) => `/${store.bucket}/67/${name}`;
    const put = (name: string, file: string | Readable) => upload(67, name, file, own);
    mischief.set('strip-echo', { kind: 'strip-echo' });
    expect((await put('strip-echo-1.txt', 'aGVsbG8=')).status).toBe(200);
    expect((await put('strip-echo-2.txt', 'aGVsbG8=')).status).toBe(200);
    mischief.delete('strip-echo');
    const sha = /^[0-9a-f]{64}$/;
    // answers without the echo: still SHA-256, with the CRC32 beside it
    expect(heard.get(path('strip-echo-2.txt'))).toEqual({ sha: expect.stringMatching(sha), crc: 'NhCmhg==' });
    expect((await put('echo-1.txt', 'aGVsbG8=')).status).toBe(200);
    expect(heard.get(path('echo-1.txt'))).toEqual({ sha: expect.stringMatching(sha), crc: 'NhCmhg==' });
    expect((await put('echo-2.txt', 'aGVsbG8=')).status).toBe(200);
    // the embedded store echoes the CRC32 it checked; RGW 16 does not, so it never gets UNSIGNED-PAYLOAD
    const probe = new PutObjectCommand({ Bucket: store.bucket, Key: 'x-probe', Body: Buffer.from('hello'), ChecksumCRC32: 'NhCmhg==' });
    const echoes = (await store.client.send(probe)).ChecksumCRC32 === 'NhCmhg==';
    await store.client.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: 'x-probe' }));
    expect(heard.get(path('echo-2.txt'))).toEqual({ sha: echoes ? 'UNSIGNED-PAYLOAD' : expect.stringMatching(sha), crc: 'NhCmhg==' });
    // an empty body: its SHA-256 and no CRC32 (some stores refuse the CRC of an empty body)
    expect((await put('empty.txt', '')).status).toBe(200);
    expect(heard.get(path('empty.txt'))).toEqual({ sha: createHash('sha256').digest('hex'), crc: undefined });
    expect((await put('stream.bin', fileStream(Buffer.from('hello'), { contentLength: 5 }))).status).toBe(200);
    expect(heard.get(path('stream.bin'))).toEqual({ sha: 'UNSIGNED-PAYLOAD', crc: undefined });
    expect((await store.read('67/stream.bin')).toString()).toBe('hello');
    const remote = await upload(67, 'stream-remote.bin', fileStream(Buffer.from('hello'), { contentLength: 5 }), own, remoteProxyUrl);
    expect(remote.status).toBe(200);
    expect(heard.get(path('stream-remote.bin'))).toEqual({ sha: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', crc: undefined });
    expect((await store.read('67/stream-remote.bin')).toString()).toBe('hello');
  });

  test.each(['buffered', 'streamed'] as const)('%s: an empty body, one of exactly MAX_FILE_SIZE, and one byte over', async (mode) => {
    const limit = 256 * 1024;
    const extra = { MAX_FILE_SIZE: String(limit) };
    const put = (name: string, bytes: Buffer) =>
      upload(62, name, mode === 'buffered' ? bytes.toString('base64') : fileStream(bytes, { contentLength: bytes.length }), extra);
    const empty = await put(`${mode}-empty.bin`, Buffer.alloc(0));
    expect(empty).toMatchObject({ status: 200, body: { size: 0, etag: md5(Buffer.alloc(0)) } });
    expect((await store.read(`62/${mode}-empty.bin`)).length).toBe(0);
    const full = randomBytes(limit);
    expect(await put(`${mode}-full.bin`, full)).toMatchObject({ status: 200, body: { size: limit, etag: md5(full) } });
    expect((await store.read(`62/${mode}-full.bin`)).equals(full)).toBe(true);
    // the framing of a signed-chunk body is not part of what is stored
    const head = await store.client.send(new HeadObjectCommand({ Bucket: store.bucket, Key: `62/${mode}-full.bin` }));
    expect([head.ContentLength, head.ContentEncoding ?? '']).toEqual([limit, '']);
    const over = await put(`${mode}-over.bin`, randomBytes(limit + 1));
    expect(over).toMatchObject({ status: 413, body: { code: 'payload_too_large' } });
    // and a raw body that claims no length but runs one byte over
    if (mode === 'streamed') expect((await upload(62, 'chunked-over.bin', fileStream(randomBytes(limit + 1)), extra)).status).toBe(413);
    expect((await store.keys()).filter((k) => k.includes('over'))).toEqual([]);
  });
});

describe('a failing store', () => {
  test('500 then 200: the buffered put is sent twice and stored once, whole; a stream is sent once and answers 503', async () => {
    mischief.set('retry-buffered', { kind: 'status', status: 500, times: 1, body: '<Error><Code>InternalError</Code></Error>' });
    const bytes = randomBytes(100 * 1024);
    const a = await upload(63, 'retry-buffered.bin', bytes.toString('base64'));
    expect(a).toMatchObject({ status: 200, body: { etag: md5(bytes) } });
    expect((await store.read('63/retry-buffered.bin')).equals(bytes)).toBe(true);
    expect(seen.get('/' + store.bucket + '/63/retry-buffered.bin')).toBe(2);

    mischief.set('retry-streamed', { kind: 'status', status: 500, times: 1, body: '<Error><Code>InternalError</Code></Error>' });
    const b = await upload(63, 'retry-streamed.bin', fileStream(bytes, { contentLength: bytes.length }));
    expect(b).toMatchObject({ status: 503, body: { code: 'storage_unavailable' } });
    expect(seen.get('/' + store.bucket + '/63/retry-streamed.bin')).toBe(1);
    expect(await store.keys()).not.toContain('63/retry-streamed.bin');
  });

  test('an error answer that is huge, not XML, or quotes the secret and the request is answered 503 with nothing of it', async () => {
    const secret = store.secretAccessKey;
    const bodies = [
      'x'.repeat(8 * 1024 * 1024),
      `<html>${secret} Authorization: AWS4-HMAC-SHA256 Credential=... Signature=abc</html>`,
      `<Error><Code>SignatureDoesNotMatch</Code><Message>${secret}</Message><StringToSign>AWS4-HMAC-SHA256 Signature=</StringToSign></Error>`,
      `<Error><Code>${'A'.repeat(5000)}</Code></Error>`,
      '<Error><Code>Bad Code"\r\nX: 1</Code></Error>',
    ];
    for (const [i, body] of bodies.entries()) {
      for (const mode of ['buffered', 'streamed'] as const) {
        const mark = `babble-${i}-${mode}`;
        mischief.set(mark, { kind: 'status', status: 500, times: 2, body });
        const bytes = Buffer.from('hello');
        const a = await upload(64, `${mark}.txt`, mode === 'buffered' ? bytes.toString('base64') : fileStream(bytes, { contentLength: 5 }));
        mischief.delete(mark);
        expect(a.status).toBe(503);
        expectClean(JSON.stringify(a.body));
        expect(JSON.stringify(a.body).length).toBeLessThan(300);
      }
    }
    // a 403 answer (the store refusing the signature) is 503 too, and as clean
    mischief.set('denied', { kind: 'status', status: 403, times: 2, body: `<Error><Code>SignatureDoesNotMatch</Code><Message>${secret}</Message></Error>` });
    const d = await upload(64, 'denied.txt', Buffer.from('x').toString('base64'));
    expect(d).toMatchObject({ status: 503, body: { message: 'storage is unavailable or failing (SignatureDoesNotMatch)' } });
    expect((await store.keys()).filter((k) => k.startsWith('64/'))).toEqual([]);
  });

  test('a store slower than AWS_S3_TIMEOUT_MS: 503 within about the timeout, nothing stored', async () => {
    for (const mode of ['buffered', 'streamed'] as const) {
      mischief.set(`slow-${mode}`, { kind: 'hang' });
      const bytes = randomBytes(10 * 1024);
      const a = await upload(65, `slow-${mode}.bin`, mode === 'buffered' ? bytes.toString('base64') : fileStream(bytes, { contentLength: bytes.length }), {
        AWS_S3_TIMEOUT_MS: '500',
      });
      mischief.delete(`slow-${mode}`);
      expect(a).toMatchObject({ status: 503, body: { code: 'storage_unavailable' } });
      expect(a.body.message).toMatch(/Timeout|Abort/);
    }
    expect((await store.keys()).filter((k) => k.startsWith('65/'))).toEqual([]);
  });

  test('a store that is down: 503, clean', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    for (const file of ['aGk=', fileStream(Buffer.from('hi'), { contentLength: 2 })]) {
      const a = await upload(66, 'down.txt', file, { AWS_BUCKET: store.bucket }, `http://127.0.0.1:${port}`);
      expect(a).toMatchObject({ status: 503, body: { code: 'storage_unavailable' } });
      expectClean(JSON.stringify(a.body));
    }
  });
});
