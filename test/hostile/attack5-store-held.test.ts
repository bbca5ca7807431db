/**
 * Attack pass 6, what held, on surfaces no other test covers:
 * - the embedded store's keys and its files: keys a filesystem would fold, normalise, cut or resolve
 *   (NFC/NFD, case, a trailing slash, "." and ".." segments sent percent-encoded, a 1024-byte key, a
 *   600-byte segment, control bytes, the names of the store's own files) are each their own object,
 *   across a restart, and none reaches another key or the store's own files (bucket.json, the
 *   multipart index);
 * - presigned parameters: a signature parameter given twice (even with the same value), a lower-case
 *   twin of one, and a link dated past the clock's allowance are refused.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { CreateMultipartUploadCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { storeClient } from '../../scripts/s3/client';
import { startEmbeddedStore, type EmbeddedStore } from '../../scripts/s3/embedded-store';
import { createPresigner } from '../../src/lib/presign';
import { tempDir } from '../support/host';

jest.setTimeout(60_000);

const BUCKET = 'held-bucket';
const KEYS = [
  '7/caf\u00e9', // NFC
  '7/cafe\u0301', // NFD of the same text
  '7/CAFE',
  '7/cafe',
  '7/dir',
  '7/dir/',
  '7/./x',
  '7/x',
  '7/../8/x',
  '8/x',
  '7/bucket.json',
  '../bucket.json',
  'bucket.json',
  'uploads/index',
  'tmp/x',
  'objects/00/x',
  `7/${'s'.repeat(600)}`,
  `7/${'k'.repeat(1022)}`.slice(0, 1024),
  '7/a\u0001b\u001fc\u007f',
  '7/\u00e9'.normalize('NFD').toUpperCase(),
];

let store: EmbeddedStore;
let s3: S3Client;
let dataDir: string;

async function read(key: string): Promise<string | undefined> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return await out.Body!.transformToString();
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
    throw err;
  }
}

async function startOn(dir: string, creds?: { accessKeyId: string; secretAccessKey: string }) {
  store = await startEmbeddedStore({ dataDir: dir, buckets: [BUCKET], ...creds });
  s3 = storeClient(store);
}

beforeAll(async () => {
  dataDir = tempDir('attack6-held-');
  await startOn(dataDir);
});

afterAll(async () => {
  s3?.destroy();
  await store?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('keys a filesystem would fold or resolve are each their own object, before and after a restart; the store\'s own files are untouched', async () => {
  const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: '7/big' }));
  for (const [i, key] of KEYS.entries()) await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: `body ${i}` }));
  const check = async () => {
    for (const [i, key] of KEYS.entries()) expect([key, await read(key)]).toEqual([key, `body ${i}`]);
    const listed: string[] = [];
    let ContinuationToken: string | undefined;
    for (let page = 0; page < 10; page++) {
      const out = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken, MaxKeys: 7 }));
      listed.push(...(out.Contents ?? []).map((c) => c.Key!));
      ContinuationToken = out.NextContinuationToken;
      if (!ContinuationToken) break;
    }
    expect(listed.sort()).toEqual([...KEYS].sort());
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
    expect((uploads.Uploads ?? []).map((u) => [u.Key, u.UploadId])).toEqual([['7/big', upload.UploadId]]);
    const settings = JSON.parse(fs.readFileSync(path.join(dataDir, BUCKET, 'bucket.json'), 'utf8')) as { created?: number };
    expect(typeof settings.created).toBe('number');
    // nothing but the store's own layout in the bucket's folder
    expect(fs.readdirSync(path.join(dataDir, BUCKET)).sort()).toEqual(['bucket.json', 'objects', 'tmp', 'uploads']);
  };
  await check();
  const creds = { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey };
  s3.destroy();
  await store.close();
  await startOn(dataDir, creds);
  await check();
});

/** GET on a raw path + query: status and body */
function get(target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: store.port, path: target, agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

test('presigned: a signature parameter twice, a lower-case twin, or a date past the allowed skew is refused; the link as signed works', async () => {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: '7/link', Body: 'linked' }));
  const presign = createPresigner({
    accessKeyId: store.accessKeyId,
    secretAccessKey: store.secretAccessKey,
    region: store.region,
    endpoint: store.endpoint,
    forcePathStyle: true,
    bucket: BUCKET,
  });
  const link = new URL(presign({ method: 'GET', key: '7/link', expiresIn: 600 }));
  const target = link.pathname + link.search;
  expect(await get(target)).toEqual({ status: 200, body: 'linked' });
  const param = (name: string) => `${name}=${encodeURIComponent(link.searchParams.get(name)!)}`;
  for (const name of ['X-Amz-Signature', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-Credential', 'X-Amz-SignedHeaders', 'X-Amz-Algorithm']) {
    const r = await get(`${target}&${param(name)}`);
    expect([name, r.status]).toEqual([name, 400]);
  }
  for (const name of ['x-amz-signature', 'x-amz-expires', 'X-AMZ-DATE']) {
    const r = await get(`${target}&${name}=${encodeURIComponent(link.searchParams.get('X-Amz-Date')!)}`);
    expect([name, r.status >= 400 && r.status < 500, /linked/.test(r.body)]).toEqual([name, true, false]);
  }
  // signed right, but dated more than 15 minutes ahead of the store's clock: not valid yet
  const ahead = new URL(presign({ method: 'GET', key: '7/link', expiresIn: 600, now: new Date(Date.now() + 16 * 60_000) }));
  expect((await get(ahead.pathname + ahead.search)).status).toBe(403);
  const slightly = new URL(presign({ method: 'GET', key: '7/link', expiresIn: 600, now: new Date(Date.now() + 60_000) }));
  expect(await get(slightly.pathname + slightly.search)).toEqual({ status: 200, body: 'linked' });
});
