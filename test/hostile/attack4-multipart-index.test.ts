/**
 * Attack pass 4, the embedded store's multipart uploads, over HTTP with the AWS SDK (and one raw signed
 * request):
 * - ListMultipartUploads paged with key-marker + upload-id-marker lists every upload of one key once,
 *   in initiation order (S3: one key's uploads in ascending initiation time; upload-id-marker: "upload
 *   ids lexicographically greater"). With random ids sorted by time, the marker skipped some.
 * - A CompleteMultipartUpload whose body is still coming when an AbortMultipartUpload lands is 404
 *   NoSuchUpload and stores nothing (it was a 500: the parts' folder had gone, ENOENT).
 */
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { exists, storeForFile } from '../store/helpers';
import { codeOf, encodeKey, request, signHeaders } from '../store/raw';

jest.setTimeout(60_000);

const BUCKET = 'attack4-mp';
const ctx = storeForFile([BUCKET]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const start = async (Key: string) => (await ctx.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key }))).UploadId!;

test("one key's uploads, paged two at a time with key-marker + upload-id-marker: each listed once, in initiation order", async () => {
  const KEY = 'index/same.bin';
  const created: Array<{ key: string; id: string }> = [];
  // seven of one key, with uploads of a key before it and one after it in between; each in its own ms
  for (let i = 0; i < 7; i++) {
    created.push({ key: KEY, id: await start(KEY) });
    await sleep(3);
    const other = i === 0 ? 'index/a-before.bin' : 'index/z-after.bin';
    if (i % 3 === 0) created.push({ key: other, id: await start(other) });
    await sleep(3);
  }

  const listed: Array<{ key: string; id: string; initiated: number }> = [];
  let KeyMarker: string | undefined;
  let UploadIdMarker: string | undefined;
  for (let page = 0; page < 20; page++) {
    const res = await ctx.s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'index/', MaxUploads: 2, KeyMarker, UploadIdMarker }));
    for (const u of res.Uploads ?? []) listed.push({ key: u.Key!, id: u.UploadId!, initiated: u.Initiated!.getTime() });
    if (!res.IsTruncated) break;
    KeyMarker = res.NextKeyMarker;
    UploadIdMarker = res.NextUploadIdMarker;
  }

  const byKey = (k: string, list: Array<{ key: string; id: string }>) => list.filter((u) => u.key === k).map((u) => u.id);
  // every upload exactly once (the old store missed some of index/same.bin's), keys in order
  expect(listed.map((u) => u.key)).toEqual([...created.map((u) => u.key)].sort());
  for (const k of ['index/a-before.bin', KEY, 'index/z-after.bin']) expect(byKey(k, listed)).toEqual(byKey(k, created));
  const same = listed.filter((u) => u.key === KEY);
  expect(same.every((u, i) => i === 0 || u.initiated > same[i - 1].initiated)).toBe(true);
  // still unguessable: 16 random bytes after the 12 hex digits of time
  expect(new Set(same.map((u) => u.id.slice(12))).size).toBe(7);
  expect(same.every((u) => /^[0-9a-f]{44}$/.test(u.id) && parseInt(u.id.slice(0, 12), 16) === u.initiated)).toBe(true);
});

test('keys in UTF-8 byte order, as S3 lists them, also across pages (U+FFFD before an emoji; UTF-16 puts it after)', async () => {
  const keys = ['order/\u{1F600}.bin', 'order/\uFFFD.bin', 'order/a.bin'];
  for (const k of keys) await start(k);
  const listed: string[] = [];
  let KeyMarker: string | undefined;
  let UploadIdMarker: string | undefined;
  for (let page = 0; page < 10; page++) {
    const res = await ctx.s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: 'order/', MaxUploads: 1, KeyMarker, UploadIdMarker }));
    listed.push(...(res.Uploads ?? []).map((u) => u.Key!));
    if (!res.IsTruncated) break;
    KeyMarker = res.NextKeyMarker;
    UploadIdMarker = res.NextUploadIdMarker;
  }
  const utf8Order = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  expect(utf8Order).toEqual(['order/a.bin', 'order/\uFFFD.bin', 'order/\u{1F600}.bin']);
  expect(listed).toEqual(utf8Order);
});

test('an abort while the complete request is still sending its XML: 404 NoSuchUpload, and no object', async () => {
  const KEY = 'race/complete-abort.bin';
  const UploadId = await start(KEY);
  const part = await ctx.s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: KEY, UploadId, PartNumber: 1, Body: 'the only part' }));
  const xml = Buffer.from(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${part.ETag}</ETag></Part></CompleteMultipartUpload>`);
  const path = `/${BUCKET}/${encodeKey(KEY)}`;
  const headers = await signHeaders(ctx.store, { method: 'POST', path, query: { uploadId: UploadId }, body: xml, headers: { 'content-length': String(xml.length), 'content-type': 'application/xml' } });

  let aborted!: () => void;
  const abortDone = new Promise<void>((r) => (aborted = r));
  async function* trickle() {
    yield xml.subarray(0, 20);
    await abortDone; // the store has taken the head and is reading the body
    yield xml.subarray(20);
  }
  const answer = request(`${ctx.store.endpoint}${path}?uploadId=${UploadId}`, { method: 'POST', headers, body: trickle() });
  await sleep(300);
  await ctx.s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: KEY, UploadId }));
  aborted();

  const res = await answer;
  expect([res.status, codeOf(res.text)]).toEqual([404, 'NoSuchUpload']); // was [500, 'InternalError']
  expect(await exists(ctx.s3, BUCKET, KEY)).toBe(false);
});
