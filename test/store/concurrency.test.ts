/**
 * Writes are whole (SPEC §7): 50 writers × 20 rounds PUT one key with their own bytes and Content-Type
 * while readers GET and HEAD it; every reader sees one writer's version whole — bytes whose MD5 is the
 * ETag, and the Content-Type that writer sent with exactly those bytes. The listing then shows the key
 * once with the final ETag, and DELETE removes it. Deleting the last object of a "folder" never breaks
 * a PUT in flight into that folder.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startEmbeddedStore, type EmbeddedStore } from '../../scripts/s3/embedded-store';
import { storeClient } from '../../scripts/s3/client';
import { encodeKey, md5hex, presignUrl, request } from './raw';

const BUCKET = 'concurrency-bucket';
const WRITERS = 50;
const ROUNDS = 20;
const READERS = 10;
const KEY = 'shared/one-key.bin';

let store: EmbeddedStore;
let s3: S3Client;
let agent: http.Agent;

beforeAll(async () => {
  store = await startEmbeddedStore();
  agent = new http.Agent({ keepAlive: true, maxSockets: WRITERS + 2 * READERS + 4 });
  s3 = storeClient(store, { maxAttempts: 1, requestHandler: new NodeHttpHandler({ httpAgent: agent, requestTimeout: 20_000 }) });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

afterAll(async () => {
  s3?.destroy();
  agent?.destroy();
  await store?.close();
});

/** Writer w's body in round r: its own bytes and size (1 B .. 96 KiB), so no two versions share an MD5. */
function bodyOf(w: number, r: number): Buffer {
  const size = 1 + (((w + 1) * 7919 + r * 104_729) % (96 * 1024));
  const seed = crypto.createHash('sha256').update(`${w}/${r}`).digest();
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i += 32) seed.copy(out, i, 0, Math.min(32, size - i));
  out.write(`w${w}r${r}`, 0, 'latin1');
  return out;
}
const typeOf = (w: number, r: number) => `application/x-writer-${w}; round=${r}`;

describe('50 writers × 20 rounds on one key, with readers', () => {
  /** Content-Type → the MD5 of the bytes sent with it */
  const sent = new Map<string, string>();
  const problems: string[] = [];
  let reads = 0;
  let heads = 0;
  let finalEtag = '';
  let finalSize = -1;

  test('every PUT succeeds; every GET and HEAD shows one whole version', async () => {
    // a first version, so readers never see a 404
    const first = bodyOf(-1, 0);
    sent.set(typeOf(-1, 0), md5hex(first));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: first, ContentType: typeOf(-1, 0) }));
    for (let w = 0; w < WRITERS; w++) for (let r = 0; r < ROUNDS; r++) sent.set(typeOf(w, r), md5hex(bodyOf(w, r)));

    let writing = true;
    const writers = Array.from({ length: WRITERS }, async (_, w) => {
      for (let r = 0; r < ROUNDS; r++) {
        const body = bodyOf(w, r);
        try {
          const res = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: body, ContentType: typeOf(w, r) }));
          if (res.ETag !== `"${md5hex(body)}"`) problems.push(`PUT w${w} r${r}: ETag ${res.ETag}, sent MD5 ${md5hex(body)}`);
        } catch (err) {
          problems.push(`PUT w${w} r${r}: ${(err as Error).name} ${(err as Error).message}`);
        }
      }
    });
    const readers = Array.from({ length: READERS }, async (_, k) => {
      for (let n = 0; writing && n < 5_000; n++) {
        try {
          if ((n + k) % 3 === 0) {
            const h = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: KEY }));
            heads++;
            const want = sent.get(h.ContentType ?? '');
            if (!want) problems.push(`HEAD: unknown Content-Type ${h.ContentType}`);
            else if (h.ETag !== `"${want}"`) problems.push(`HEAD: ${h.ContentType} with ETag ${h.ETag}, its bytes have MD5 ${want}`);
          } else {
            const g = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY }));
            const bytes = Buffer.from(await g.Body!.transformToByteArray());
            reads++;
            const got = md5hex(bytes);
            const want = sent.get(g.ContentType ?? '');
            if (g.ETag !== `"${got}"`) problems.push(`GET: body MD5 ${got} but ETag ${g.ETag} (${g.ContentType}, ${bytes.length} B)`);
            if (!want) problems.push(`GET: unknown Content-Type ${g.ContentType}`);
            else if (want !== got) problems.push(`GET: ${g.ContentType} came with bytes of MD5 ${got}, that writer sent ${want}`);
            if (g.ContentLength !== bytes.length) problems.push(`GET: Content-Length ${g.ContentLength}, ${bytes.length} B came`);
          }
        } catch (err) {
          problems.push(`read: ${(err as Error).name} ${(err as Error).message}`);
        }
        if (problems.length > 50) break;
      }
    });
    await Promise.all(writers);
    writing = false;
    await Promise.all(readers);

    const g = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY }));
    const bytes = Buffer.from(await g.Body!.transformToByteArray());
    finalEtag = g.ETag ?? '';
    finalSize = bytes.length;
    expect(finalEtag).toBe(`"${md5hex(bytes)}"`);
    expect(sent.get(g.ContentType ?? '')).toBe(md5hex(bytes));

    expect(problems.slice(0, 20)).toEqual([]);
    expect(reads + heads).toBeGreaterThan(100);
  }, 55_000);

  test('ListObjectsV2 shows the key once, with the ETag and size of the final GET', async () => {
    expect(finalEtag).not.toBe('');
    const { Contents, KeyCount } = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'shared/' }));
    expect(KeyCount).toBe(1);
    expect(Contents?.map((c) => [c.Key, c.ETag, c.Size])).toEqual([[KEY, finalEtag, finalSize]]);
    const all = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    expect(all.Contents?.filter((c) => c.Key === KEY).length).toBe(1);
  });

  test('DELETE removes it: then 404 and an empty listing', async () => {
    const del = await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: KEY }));
    expect(del.$metadata.httpStatusCode).toBe(204);
    await expect(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: KEY }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
    const { KeyCount } = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'shared/' }));
    expect(KeyCount).toBe(0);
  });
});

describe('deleting the last object of a folder while a PUT goes into it', () => {
  /**
   * A presigned PUT whose body comes in two halves with a pause; `during` runs in the pause ('mid'),
   * or right after the last byte is written, while the store commits the object ('end').
   */
  async function slowPut(key: string, body: Buffer, during: () => Promise<void>, when: 'mid' | 'end'): Promise<{ status: number; text: string }> {
    const url = await presignUrl(store, { method: 'PUT', path: `/${BUCKET}/${encodeKey(key)}` });
    const half = body.length >> 1;
    let hook: Promise<void> = Promise.resolve();
    async function* gen() {
      yield body.subarray(0, half);
      await new Promise((r) => setTimeout(r, 100));
      if (when === 'mid') {
        await during();
        await new Promise((r) => setTimeout(r, 100));
      }
      yield body.subarray(half);
      if (when === 'end') hook = during();
    }
    const res = await request(url, { method: 'PUT', headers: { 'content-length': String(body.length), 'content-type': 'application/octet-stream' }, body: gen() });
    await hook;
    return { status: res.status, text: res.text };
  }

  const deleteOne = async (keys: string[]) => void (await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: keys[0] })));
  const deleteMany = async (keys: string[]) => void (await s3.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys.map((Key) => ({ Key })) } })));
  const variants: Array<[string, (keys: string[]) => Promise<void>, 'mid' | 'end', number]> = [
    ['DeleteObject mid-body', deleteOne, 'mid', 512 * 1024],
    ['DeleteObject just after the last byte (16 MiB body)', deleteOne, 'end', 16 * 1024 * 1024],
    ['DeleteObject just after the last byte (1 KiB body)', deleteOne, 'end', 1024],
    ['DeleteObjects mid-body', deleteMany, 'mid', 512 * 1024],
  ];

  test.each(variants)('%s of a/b/only while a PUT to a/b/new is in flight: the PUT lands whole, the only key left', async (name, del, when, size) => {
    for (let round = 0; round < 3; round++) {
      const base = `folder-${name.replace(/\W+/g, '-')}-${round}/a/b`;
      const only = `${base}/only.txt`;
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: only, Body: 'the last file of the folder' }));
      const body = crypto.randomBytes(size + round);
      let deleted = false;
      const a = await slowPut(
        `${base}/new`,
        body,
        async () => {
          await del([only]);
          deleted = true;
        },
        when,
      );
      expect({ round, status: a.status, text: a.text.slice(0, 300) }).toEqual({ round, status: 200, text: '' });
      expect(deleted).toBe(true);
      const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${base}/new` }));
      expect(md5hex(Buffer.from(await got.Body!.transformToByteArray()))).toBe(md5hex(body));
      const { Contents } = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${base}/` }));
      expect(Contents?.map((c) => c.Key)).toEqual([`${base}/new`]);
    }
  }, 30_000);

  test('a PUT into a folder whose last object is deleted again and again while it streams', async () => {
    const base = 'churn/a/b';
    const body = crypto.randomBytes(8 * 1024 * 1024);
    let stop = false;
    let deletes = 0;
    const churn = (async () => {
      for (let n = 0; !stop && n < 500; n++) {
        await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${base}/tmp`, Body: 'x' }));
        await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `${base}/tmp` }));
        deletes++;
      }
    })();
    const url = await presignUrl(store, { method: 'PUT', path: `/${BUCKET}/${encodeKey(`${base}/streamed`)}` });
    async function* gen() {
      for (let i = 0; i < 16; i++) {
        yield body.subarray(i * 512 * 1024, (i + 1) * 512 * 1024);
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    const res = await request(url, { method: 'PUT', headers: { 'content-length': String(body.length) }, body: gen() });
    stop = true;
    await churn;
    expect({ status: res.status, text: res.text.slice(0, 300) }).toEqual({ status: 200, text: '' });
    expect(deletes).toBeGreaterThan(2);
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `${base}/streamed` }));
    expect(md5hex(Buffer.from(await got.Body!.transformToByteArray()))).toBe(md5hex(body));
  }, 30_000);
});
