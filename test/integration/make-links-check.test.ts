/**
 * make-links with `check: true` finds keys by listing their folder (and by HEAD where that is
 * cheaper or the listing did not reach): the answer must be exactly what a HEAD per key would say,
 * for keys across pages, keys that are prefixes of others, keys that need escaping, keys in the
 * bucket's root, and missing ones. Against the real store (embedded, or RGW under scripts/rgw/run.ts).
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import makeLinks from '../../src/make-links';
import { mapLimit } from '../../src/lib/storage';
import { invoke } from '../support/ctx';
import { useStore, type TestStore } from '../support/store';

jest.setTimeout(180_000);

let store: TestStore;
const existing = new Set<string>();

const special = ['odd/b ', 'odd/ b', 'odd/b&c<d>', 'odd/é', 'odd/x\u00a0', 'odd/%41', 'odd/+plus', 'odd/q"\'', 'odd/\u{1F600}', 'odd/\uFFFD', 'odd/日本'];
beforeAll(async () => {
  store = await useStore();
  const keys = [
    ...Array.from({ length: 1100 }, (_, i) => `big/f${String(i).padStart(5, '0')}.txt`), // more than one page
    'big/sub/inner.txt',
    'pre/ab', 'pre/abc', 'pre/abcd',
    'root-a.txt', 'root-b.txt', 'root-c.txt',
    ...special,
  ];
  await invoke(makeLinks, { admin: true, config: store.config, args: { fileNames: ['warm'] } }); // creates the bucket
  await mapLimit(keys, 16, async (Key) => {
    await store.client.send(new PutObjectCommand({ Bucket: store.config.AWS_BUCKET, Key, Body: 'x' }));
    existing.add(Key);
  });
});
afterAll(() => store.close());

const check = (fileNames: string[]) => invoke(makeLinks, { admin: true, config: store.config, args: { fileNames, check: true } });

function expectExact(asked: string[], answer: { status: number; body: any }) {
  expect(answer.status).toBe(200);
  const want = asked.filter((k) => existing.has(k));
  expect(Object.keys(answer.body.files).sort()).toEqual([...new Set(want)].sort());
  const missing = [...new Set(asked.filter((k) => !existing.has(k)))].sort();
  expect(answer.body.errors.map((e: { name: string }) => e.name).sort()).toEqual(missing);
  for (const e of answer.body.errors) expect(e.message).toBe(`file not found: ${e.name}`);
}

test('keys across several pages of one folder, with missing ones between them', async () => {
  const asked: string[] = [];
  for (let i = 0; i < 1100; i += 3) asked.push(`big/f${String(i).padStart(5, '0')}.txt`);
  asked.push('big/f00001.tx', 'big/f00001.txtx', 'big/f99999.txt', 'big/a-before-all', 'big/sub/inner.txt', 'big/sub/missing.txt');
  expectExact(asked, await check(asked));
});

test('the first and the last of a large folder (the pages do not reach: HEAD for the rest)', async () => {
  const asked = ['big/f00000.txt', 'big/f00001.txt', 'big/f00002.txt', 'big/f01099.txt', 'big/f01098.txt', 'big/nope'];
  expectExact(asked, await check(asked));
});

test('prefixes of existing keys are not found; escaping and Unicode keys are found exactly', async () => {
  const asked = ['pre/a', 'pre/ab', 'pre/abc', 'pre/abcd', 'pre/abcde', 'pre/abd', ...special, 'odd/b', 'odd/e\u00e9', 'odd/x', 'odd/A', 'odd/ plus', 'odd/q'];
  expectExact(asked, await check(asked));
});

test('keys in the bucket\'s root, scattered keys, repeated keys', async () => {
  const asked = ['root-a.txt', 'root-b.txt', 'root-c.txt', 'root-d.txt', 'root', 'big/f00010.txt', 'pre/ab', 'pre/ab', 'lonely/none.txt'];
  expectExact(asked, await check(asked));
});

test('1000 keys of one folder: the answer equals a HEAD per key', async () => {
  const asked = Array.from({ length: 1000 }, (_, i) => `big/f${String(i * 2).padStart(5, '0')}.txt`);
  expectExact(asked, await check(asked));
});

test('a store that refuses or does not answer the listing fails the call (503), naming no secret', async () => {
  const asked = ['big/f00000.txt', 'big/f00001.txt', 'big/f00002.txt'];
  const wrongSecret = { ...store.config, AWS_SECRET_ACCESS_KEY: `${store.config.AWS_SECRET_ACCESS_KEY}x` };
  const refused = await invoke(makeLinks, { admin: true, config: wrongSecret, args: { fileNames: asked, check: true } });
  expect(refused).toMatchObject({ status: 503, body: { code: 'storage_unavailable' } });
  expect(JSON.stringify(refused.body)).not.toContain(store.config.AWS_SECRET_ACCESS_KEY);
  const down = { ...store.config, AWS_S3_ENDPOINT: 'http://127.0.0.1:9', AWS_S3_TIMEOUT_MS: '1000' };
  expect(await invoke(makeLinks, { admin: true, config: down, args: { fileNames: asked, check: true } })).toMatchObject({ status: 503, body: { code: 'storage_unavailable' } });
});
