/**
 * user-upload and admin-upload handed the file as a stream (as the standalone host hands a raw body
 * over), against a real store: stored exactly, or nothing stored when the stream fails, ends short,
 * runs long or passes MAX_FILE_SIZE.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import adminUpload from '../../src/admin-upload';
import userUpload from '../../src/user-upload';
import { invoke } from '../support/ctx';
import { useStore, type TestStore } from '../support/store';

jest.setTimeout(60_000);

let store: TestStore;
beforeAll(async () => {
  store = await useStore();
});
afterAll(() => store.close());

const alice = { user: { id: 7, username: 'alice' } };
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** A FileStream: `chunks`, then (optionally) an error instead of the end. */
function fileStream(chunks: Buffer[], o: { contentType?: string; contentLength?: number; failAfter?: number } = {}) {
  let i = 0;
  const stream = new Readable({
    read() {
      reads.count++;
      if (o.failAfter !== undefined && i === o.failAfter) return void setImmediate(() => this.destroy(new Error('client gone')));
      this.push(i < chunks.length ? chunks[i++] : null);
    },
  });
  const reads = { count: 0 };
  return Object.assign(stream, { contentType: o.contentType, contentLength: o.contentLength, reads });
}
const split = (b: Buffer, n: number) => Array.from({ length: Math.ceil(b.length / n) }, (_, i) => b.subarray(i * n, (i + 1) * n));
const pending = async () => (await store.client.send(new ListMultipartUploadsCommand({ Bucket: store.config.AWS_BUCKET }))).Uploads ?? [];

test('a stream with a length and one without are stored exactly; the answer is the base64 path\'s', async () => {
  const bytes = randomBytes(3 * 1024 * 1024 + 5);
  const withLength = await invoke(userUpload, { ...alice, config: store.config, args: { name: 'a.bin', file: fileStream(split(bytes, 65536), { contentType: 'image/png', contentLength: bytes.length }) } });
  expect(withLength).toMatchObject({ status: 200, body: { key: '7/a.bin', name: 'a.bin', size: bytes.length, etag: md5(bytes), contentType: 'image/png' } });
  const chunked = await invoke(userUpload, { ...alice, config: store.config, args: { name: 'b.bin', file: fileStream(split(bytes, 65536)) } });
  expect(chunked).toMatchObject({ status: 200, body: { size: bytes.length, etag: md5(bytes), contentType: 'application/octet-stream' } });
  expect((await store.read('7/a.bin')).equals(bytes)).toBe(true);
  expect((await store.read('7/b.bin')).equals(bytes)).toBe(true);
  const admin = await invoke(adminUpload, { admin: true, config: store.config, args: { name: 'pub/c.bin', file: fileStream([bytes], { contentLength: bytes.length }) } });
  expect(admin).toMatchObject({ status: 200, body: { key: 'pub/c.bin', size: bytes.length } });
});

test('nothing stored when the stream fails, ends short, runs long or passes MAX_FILE_SIZE', async () => {
  const bytes = randomBytes(10 * 1024 * 1024);
  const parts = split(bytes, 256 * 1024);
  const config = { ...store.config, MAX_FILE_SIZE: String(9 * 1024 * 1024) };
  const cases: Array<[string, ReturnType<typeof fileStream>, number]> = [
    ['fails.bin', fileStream(parts.slice(0, 20), { contentLength: 20 * 256 * 1024, failAfter: 10 }), 400],
    ['fails-chunked.bin', fileStream(parts, { failAfter: 36 }), 400],
    ['short.bin', fileStream(parts.slice(0, 4), { contentLength: 5 * 256 * 1024 }), 400],
    ['long.bin', fileStream(parts.slice(0, 5), { contentLength: 4 * 256 * 1024 }), 400],
    ['over-chunked.bin', fileStream(parts), 413],
    ['over-declared.bin', fileStream(parts, { contentLength: bytes.length }), 413],
  ];
  for (const [name, file, status] of cases) {
    const r = await invoke(userUpload, { ...alice, config, args: { name: `bad/${name}`, file } });
    expect([name, r.status]).toEqual([name, status]);
    expect(file.destroyed).toBe(true);
  }
  expect((await store.keys()).filter((k) => k.startsWith('7/bad/'))).toEqual([]);
  expect(await pending()).toEqual([]);
});

test('a request Content-Type that is not a media type is 400; a type outside ALLOWED_CONTENT_TYPES 415, before a byte is read', async () => {
  const config = { ...store.config, ALLOWED_CONTENT_TYPES: 'image/*' };
  const bad = fileStream([Buffer.from('x')], { contentType: 'not a type' });
  expect((await invoke(userUpload, { ...alice, config, args: { name: 't.bin', file: bad } })).status).toBe(400);
  const html = fileStream([Buffer.from('<b>')], { contentType: 'text/html' });
  expect((await invoke(userUpload, { ...alice, config, args: { name: 't.html', file: html } })).status).toBe(415);
  expect([bad.reads.count, html.reads.count]).toEqual([0, 0]); // never read from
  expect((await store.keys()).filter((k) => k.startsWith('7/t.'))).toEqual([]);
});
