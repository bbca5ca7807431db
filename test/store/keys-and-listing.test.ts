/**
 * Keys with characters that need encoding round-trip through put, get, presigned get and
 * listing; listings page past 1000 keys with continuation tokens.
 */
import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  ListObjectsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { startEmbeddedStore, type EmbeddedStore } from '../../scripts/s3/embedded-store';
import { clientFor, getText, mapLimit } from './helpers';

let store: EmbeddedStore;
let s3: S3Client;

beforeAll(async () => {
  store = await startEmbeddedStore();
  s3 = clientFor(store);
});

afterAll(async () => {
  s3?.destroy();
  await store?.close();
});

const SPECIAL_KEYS = [
  "bang!quote'paren(s)star*.txt",
  'with space/and  two  spaces.txt',
  'unicodé/日本語/файл 📄.txt',
  'plus+equals=amp&percent%hash#question?.txt',
  'xml <tag> & "quotes" and \'apos\'.txt',
  'tilde~comma,semi;colon:at@dollar$.txt',
  'brackets[]{}^|`.txt',
];

describe('keys that need encoding', () => {
  const BUCKET = 'keys-bucket';
  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    for (const [i, Key] of SPECIAL_KEYS.entries()) {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: `body ${i}`, ContentType: 'text/plain' }));
    }
  });

  test.each(SPECIAL_KEYS.map((k, i) => [k, i] as const))('get %j', async (key, i) => {
    expect(await getText(s3, BUCKET, key)).toBe(`body ${i}`);
  });

  test.each(SPECIAL_KEYS.map((k, i) => [k, i] as const))('presigned get %j', async (key, i) => {
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: 60 });
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(`body ${i}`);
  });

  test('ListObjectsV2 returns every key exactly once, unescaped', async () => {
    const { Contents, IsTruncated } = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    expect(IsTruncated).toBe(false);
    expect(Contents?.map((c) => c.Key).sort()).toEqual([...SPECIAL_KEYS].sort());
  });

  test('ListObjectsV2 with a prefix and a delimiter that need encoding', async () => {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'unicodé/', Delimiter: '/' }));
    expect(res.Contents ?? []).toEqual([]);
    expect(res.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['unicodé/日本語/']);
    const inner = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'unicodé/日本語/' }));
    expect(inner.Contents?.map((c) => c.Key)).toEqual(['unicodé/日本語/файл 📄.txt']);
  });

  test('EncodingType=url: keys come back URL-encoded once and decode to the original', async () => {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, EncodingType: 'url' }));
    expect(res.EncodingType).toBe('url');
    const raw = res.Contents!.map((c) => c.Key!);
    expect(raw.map((k) => decodeURIComponent(k)).sort()).toEqual([...SPECIAL_KEYS].sort());
    // encoded means: no space, no raw non-ASCII, and no double escaping (%25 only for a real %)
    for (const k of raw) expect(k).toMatch(/^[A-Za-z0-9\-._~%/]+$/);
    expect(raw.filter((k) => k.includes('%25'))).toEqual([encodeKeyOnce('plus+equals=amp&percent%hash#question?.txt')]);
  });

  test('ListObjects (v1) returns the keys unescaped too', async () => {
    const res = await s3.send(new ListObjectsCommand({ Bucket: BUCKET }));
    expect(res.Contents?.map((c) => c.Key).sort()).toEqual([...SPECIAL_KEYS].sort());
  });
});

function encodeKeyOnce(key: string): string {
  return key
    .split('/')
    .map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase()))
    .join('/');
}

test('DeleteObjects takes each key as sent: "a " and " a" are not "a"', async () => {
  const Bucket = 'trimmed-keys';
  await s3.send(new CreateBucketCommand({ Bucket }));
  const keys = ['trim/report', 'trim/report ', ' trim/report', 'trim/\treport'];
  for (const Key of keys) await s3.send(new PutObjectCommand({ Bucket, Key, Body: JSON.stringify(Key) }));
  const out = await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: 'trim/report ' }, { Key: ' trim/report' }] } }));
  expect((out.Deleted ?? []).map((d) => d.Key).sort()).toEqual([' trim/report', 'trim/report ']);
  const left = await s3.send(new ListObjectsV2Command({ Bucket }));
  expect((left.Contents ?? []).map((c) => c.Key)).toEqual(['trim/\treport', 'trim/report']);
  expect(await getText(s3, Bucket, 'trim/report')).toBe(JSON.stringify('trim/report'));
});

describe('listing order and paging follow S3 (UTF-8 byte order of keys)', () => {
  const BUCKET = 'order-bucket';
  // on disk these sort differently ("a._S3rver_object" vs "a-b._S3rver_object", directory "a" vs file "a-b")
  const keys = ['a/b', 'a-b', 'a', 'a.txt', 'a b', 'a/c/d', 'b', 'é', '\uFFFD', '😀', 'Z', 'q/r/s'];
  const s3Order = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));

  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    for (const Key of keys) await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: Key }));
  });

  test('one listing returns the keys in byte order', async () => {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    expect(res.Contents?.map((c) => c.Key)).toEqual(s3Order);
  });

  test('paging one key at a time loses and repeats nothing', async () => {
    const seen: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < 50; page++) {
      const res = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, MaxKeys: 1, ContinuationToken: token }));
      seen.push(...(res.Contents ?? []).map((c) => c.Key!));
      if (!res.IsTruncated) break;
      token = res.NextContinuationToken;
    }
    expect(seen).toEqual(s3Order);
  });

  test('StartAfter and a delimiter', async () => {
    const after = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, StartAfter: 'a-b' }));
    expect(after.Contents?.map((c) => c.Key)).toEqual(s3Order.slice(s3Order.indexOf('a-b') + 1));
    const top = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Delimiter: '/' }));
    expect(top.Contents?.map((c) => c.Key)).toEqual(s3Order.filter((k) => !k.includes('/')));
    // 'q/' holds only a sub-directory on disk, and still is a common prefix
    expect(top.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['a/', 'q/']);
  });

  test('with a delimiter, paging counts common prefixes and repeats none', async () => {
    const items: string[] = [];
    let token: string | undefined;
    for (let page = 0; page < 50; page++) {
      const res = await s3.send(
        new ListObjectsV2Command({ Bucket: BUCKET, Delimiter: '/', MaxKeys: 2, ContinuationToken: token }),
      );
      const pageItems = [...(res.Contents ?? []).map((c) => c.Key!), ...(res.CommonPrefixes ?? []).map((p) => p.Prefix!)];
      expect(pageItems.length).toBeLessThanOrEqual(2);
      items.push(...pageItems);
      if (!res.IsTruncated) break;
      token = res.NextContinuationToken;
    }
    const expected = [...s3Order.filter((k) => !k.includes('/')), 'a/', 'q/'];
    expect([...items].sort()).toEqual([...expected].sort());
    expect(new Set(items).size).toBe(items.length);
  });
});

describe('listing past 1000 keys', () => {
  const BUCKET = 'many-keys';
  const keys = Array.from({ length: 1500 }, (_, i) => `item/${String(i).padStart(4, '0')}${i % 7 === 0 ? ' spaced é' : ''}`);

  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await mapLimit(keys, 25, (Key) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: Key })));
  }, 120_000);

  async function listAll(maxKeys?: number): Promise<{ keys: string[]; pages: number[] }> {
    const seen: string[] = [];
    const pages: number[] = [];
    let token: string | undefined;
    for (let page = 0; page < 100; page++) {
      const res = await s3.send(
        new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken: token, MaxKeys: maxKeys }),
      );
      pages.push(res.KeyCount ?? 0);
      seen.push(...(res.Contents ?? []).map((c) => c.Key!));
      if (!res.IsTruncated) return { keys: seen, pages };
      expect(res.NextContinuationToken).toBeTruthy();
      token = res.NextContinuationToken;
    }
    throw new Error('listing did not end within 100 pages');
  }

  test('default page size: 1000 then 500, every key once, in order', async () => {
    const { keys: listed, pages } = await listAll();
    expect(pages).toEqual([1000, 500]);
    expect(listed).toEqual([...keys].sort());
  });

  test('MaxKeys 100: 15 pages', async () => {
    const { keys: listed, pages } = await listAll(100);
    expect(pages).toEqual(Array(15).fill(100));
    expect(new Set(listed).size).toBe(1500);
    expect(listed).toEqual([...keys].sort());
  });

  test('a continuation token of another bucket or garbage is refused', async () => {
    const first = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, MaxKeys: 10 }));
    expect(first.IsTruncated).toBe(true);
    await s3.send(new CreateBucketCommand({ Bucket: 'other-bucket' }));
    await expect(
      s3.send(new ListObjectsV2Command({ Bucket: 'other-bucket', ContinuationToken: first.NextContinuationToken })),
    ).rejects.toMatchObject({ name: 'InvalidArgument' });
    await expect(
      s3.send(new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken: 'garbage' })),
    ).rejects.toMatchObject({ name: 'InvalidArgument' });
  });
});
