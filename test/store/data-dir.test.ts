/**
 * The store's files across starts: the key index rebuilt from the objects, a damaged object file
 * skipped without breaking a listing, and a DATA_DIR of the former store (s3rver) imported whole.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { startEmbeddedStore } from '../../scripts/s3/embedded-store';
import { clientFor, getText } from './helpers';

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'store-data-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const creds = { accessKeyId: 'DATADIRTESTKEY000001', secretAccessKey: 'data-dir-test-secret-0000000000000000001' };

test('after a restart the index holds every key; a damaged object file is skipped and the listing still answers', async () => {
  const dataDir = tmp();
  let store = await startEmbeddedStore({ dataDir, ...creds, buckets: ['idx'] });
  let s3 = clientFor(store);
  for (const k of ['a', 'b/c', 'b/d', 'e']) await s3.send(new PutObjectCommand({ Bucket: 'idx', Key: k, Body: `body of ${k}` }));
  s3.destroy();
  await store.close();

  // damage the file of b/c: cut off its trailer
  const objects = path.join(dataDir, 'idx', 'objects');
  const files = fs.readdirSync(objects).flatMap((s) => fs.readdirSync(path.join(objects, s)).map((f) => path.join(objects, s, f)));
  expect(files).toHaveLength(4);
  const victim = files.find((f) => fs.readFileSync(f).includes('"key":"b/c"'))!;
  fs.truncateSync(victim, fs.statSync(victim).size - 3);

  store = await startEmbeddedStore({ dataDir, ...creds });
  s3 = clientFor(store);
  try {
    const list = await s3.send(new ListObjectsV2Command({ Bucket: 'idx' }));
    expect(list.Contents?.map((c) => c.Key)).toEqual(['a', 'b/d', 'e']);
    expect(await getText(s3, 'idx', 'b/d')).toBe('body of b/d');
    // the damaged key can be written again
    await s3.send(new PutObjectCommand({ Bucket: 'idx', Key: 'b/c', Body: 'again' }));
    expect(await getText(s3, 'idx', 'b/c')).toBe('again');
  } finally {
    s3.destroy();
    await store.close();
  }
});

test('uploads in progress are kept across a restart, and only they: listed by prefix, then completed; aborted and completed ones gone', async () => {
  const dataDir = tmp();
  let store = await startEmbeddedStore({ dataDir, ...creds, buckets: ['mpu'] });
  let s3 = clientFor(store);
  const start = async (Key: string) => (await s3.send(new CreateMultipartUploadCommand({ Bucket: 'mpu', Key }))).UploadId!;
  const listed = async (Prefix?: string) =>
    ((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'mpu', Prefix }))).Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
  const completeOne = async (Key: string, UploadId: string) => {
    const part = await s3.send(new UploadPartCommand({ Bucket: 'mpu', Key, UploadId, PartNumber: 1, Body: `bytes of ${Key}` }));
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'mpu', Key, UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] } }));
  };
  const kept = await start('1/kept.bin');
  const other = await start('2/other.bin');
  const aborted = await start('1/aborted.bin');
  const done = await start('1/done.bin');
  await s3.send(new AbortMultipartUploadCommand({ Bucket: 'mpu', Key: '1/aborted.bin', UploadId: aborted }));
  await completeOne('1/done.bin', done);
  expect(await listed('1/')).toEqual([`1/kept.bin ${kept}`]);
  s3.destroy();
  await store.close();

  store = await startEmbeddedStore({ dataDir, ...creds });
  s3 = clientFor(store);
  try {
    expect(await listed()).toEqual([`1/kept.bin ${kept}`, `2/other.bin ${other}`]);
    expect(await listed('2/')).toEqual([`2/other.bin ${other}`]);
    await completeOne('1/kept.bin', kept);
    expect(await getText(s3, 'mpu', '1/kept.bin')).toBe('bytes of 1/kept.bin');
    expect(await listed()).toEqual([`2/other.bin ${other}`]);
    // a new one after the restart is listed beside the one from before
    const fresh = await start('2/fresh.bin');
    expect(await listed('2/')).toEqual([`2/fresh.bin ${fresh}`, `2/other.bin ${other}`]);
  } finally {
    s3.destroy();
    await store.close();
  }
});

test("a DATA_DIR of the former store (s3rver's files) is imported: bytes, content type and metadata kept", async () => {
  const dataDir = tmp();
  const legacy = path.join(dataDir, 'old-bucket');
  fs.mkdirSync(path.join(legacy, '7', 'photos'), { recursive: true });
  fs.writeFileSync(path.join(legacy, '7', 'photos', 'cat.png._S3rver_object'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]));
  fs.writeFileSync(
    path.join(legacy, '7', 'photos', 'cat.png._S3rver_metadata.json'),
    JSON.stringify({ 'content-type': 'image/png', 'content-disposition': 'inline', 'x-amz-meta-owner': '7' }),
  );
  fs.writeFileSync(path.join(legacy, 'readme.txt._S3rver_object'), 'hello');
  fs.writeFileSync(path.join(legacy, 'readme.txt._S3rver_object.md5'), 'x');

  const store = await startEmbeddedStore({ dataDir, ...creds });
  const s3 = clientFor(store);
  try {
    const list = await s3.send(new ListObjectsV2Command({ Bucket: 'old-bucket' }));
    expect(list.Contents?.map((c) => c.Key)).toEqual(['7/photos/cat.png', 'readme.txt']);
    const cat = await s3.send(new GetObjectCommand({ Bucket: 'old-bucket', Key: '7/photos/cat.png' }));
    expect(Buffer.from(await cat.Body!.transformToByteArray())).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]));
    expect(cat.ContentType).toBe('image/png');
    expect(cat.ContentDisposition).toBe('inline');
    expect(cat.Metadata).toEqual({ owner: '7' });
    expect(await getText(s3, 'old-bucket', 'readme.txt')).toBe('hello');
    expect(fs.readdirSync(dataDir).filter((d) => d.startsWith('.legacy-'))).toEqual([]);
  } finally {
    s3.destroy();
    await store.close();
  }
});
