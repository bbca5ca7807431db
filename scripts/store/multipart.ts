/**
 * Multipart uploads: initiate, upload part, list parts, complete, abort, list uploads; and the
 * lifecycle rule that aborts incomplete uploads. An upload belongs to one key: any call naming its
 * id with another key is NoSuchUpload, as S3 answers.
 *
 *   <bucket>/uploads/<id>/upload.json   key, initiated, the headers the object will have
 *   <bucket>/uploads/<id>/<n>           part n: bytes + trailer (as objects are stored)
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import type { RequestParts, Verified } from './auth';
import { bodyOf, discard, expectationsOf, MAX_PUT_SIZE, receive } from './body';
import { parseLifecycle, readSmallBody } from './buckets';
import { readMetaOf, trailerOf, type Bucket, type ObjectMeta } from './disk';
import { S3Error, fail } from './errors';
import { checkKey, refuseUnknownAmzHeaders, storedHeadersOf, writeCondition } from './objects';
import { compareKeys } from './keyorder';
import { emptyReply, isoDate, xmlReply, type Reply } from './reply';
import { childrenNamed, childText, parseXml, S3_NS, xmlEscape } from './xml';

const MIN_PART = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;
/** 12 hex digits of the initiation time (ms), then 32 random ones; a bare 32 is an id of an older store */
const UPLOAD_ID = /^(?:[0-9a-f]{12})?[0-9a-f]{32}$/;
const PART_AMZ_HEADERS = new Set([
  'x-amz-content-sha256', 'x-amz-date', 'x-amz-decoded-content-length', 'x-amz-checksum-crc32', 'x-amz-checksum-crc32c',
  'x-amz-checksum-crc64nvme', 'x-amz-checksum-sha1', 'x-amz-checksum-sha256', 'x-amz-sdk-checksum-algorithm', 'x-amz-trailer',
  'x-amz-user-agent', 'x-amz-security-token',
]);
const INITIATE_AMZ_HEADERS = new Set(['x-amz-content-sha256', 'x-amz-date', 'x-amz-user-agent', 'x-amz-security-token']);

interface Upload {
  id: string;
  key: string;
  initiated: number;
  object: Pick<ObjectMeta, 'contentType' | 'headers' | 'metadata'>;
}

const uploadsDir = (bucket: Bucket) => path.join(bucket.dir, 'uploads');
const uploadDir = (bucket: Bucket, id: string) => path.join(uploadsDir(bucket), id);
/** uploads being completed: a second complete or a part upload meanwhile is refused */
const completing = new Set<string>();

/**
 * Each bucket's uploads in progress, read from disk once (the first call that needs them) and kept in
 * step by initiate and dropUpload: the store is one thread, the only writer of its folders. Reading
 * every upload.json for each listing page blocked the store for 220–310 ms at 20,000 uploads, whatever
 * the prefix (the third attack pass), and a user can start that many.
 */
const indexes = new WeakMap<Bucket, Map<string, Upload>>();
function uploadsOf(bucket: Bucket): Map<string, Upload> {
  let index = indexes.get(bucket);
  if (index) return index;
  index = new Map();
  let ids: string[] = [];
  try {
    ids = fs.readdirSync(uploadsDir(bucket));
  } catch {
    /* no uploads folder yet: none */
  }
  for (const id of ids) {
    if (!UPLOAD_ID.test(id)) continue;
    try {
      index.set(id, JSON.parse(fs.readFileSync(path.join(uploadDir(bucket, id), 'upload.json'), 'utf8')) as Upload);
    } catch {
      /* a folder without a readable upload.json is no upload */
    }
  }
  indexes.set(bucket, index);
  return index;
}

function readUpload(bucket: Bucket, id: string): Upload | undefined {
  return UPLOAD_ID.test(id) ? uploadsOf(bucket).get(id) : undefined;
}

/** Ends an upload (completed, aborted, swept): its parts and its entry go. */
function dropUpload(bucket: Bucket, id: string): void {
  uploadsOf(bucket).delete(id);
  fs.rmSync(uploadDir(bucket, id), { recursive: true, force: true });
}

function uploadOf(bucket: Bucket, id: string, key: string): Upload {
  const up = readUpload(bucket, id);
  if (!up || up.key !== key) {
    throw new S3Error('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.');
  }
  return up;
}

export function route(req: IncomingMessage, parts: RequestParts, v: Verified, bucket: Bucket, key: string, query: Map<string, string>): Promise<Reply> | Reply {
  checkKey(key);
  const id = query.get('uploadId');
  for (const name of query.keys()) {
    if (!['uploads', 'uploadId', 'partNumber', 'max-parts', 'part-number-marker', 'x-id', 'encoding-type'].includes(name) && !/^x-amz-/i.test(name)) {
      fail('NotImplemented', `The ${name} parameter is not implemented by this store`);
    }
  }
  if (query.has('uploads') && id === undefined && parts.method === 'POST') return initiate(parts, bucket, key);
  if (id === undefined) return fail('InvalidRequest', 'This operation needs an uploadId');
  switch (parts.method) {
    case 'PUT':
      return uploadPart(req, parts, v, bucket, key, id, query.get('partNumber'));
    case 'GET':
      return listParts(bucket, key, id, query);
    case 'POST':
      return complete(req, parts, v, bucket, key, id);
    case 'DELETE':
      return abort(bucket, key, id);
    default:
      return fail('MethodNotAllowed', 'The specified method is not allowed against this resource.');
  }
}

let lastInitiated = 0;

/**
 * A new upload's id and initiation time. S3 lists one key's uploads in ascending initiation time and
 * pages them with upload-id-marker, "upload ids lexicographically greater": the id begins with the time
 * (12 hex digits of ms, never going back within this store), so the two orders agree; the 16 random
 * bytes after it keep ids unguessable.
 */
function newUpload(): { id: string; initiated: number } {
  const initiated = (lastInitiated = Math.max(lastInitiated, Date.now()));
  return { id: initiated.toString(16).padStart(12, '0') + randomBytes(16).toString('hex'), initiated };
}

function initiate(parts: RequestParts, bucket: Bucket, key: string): Reply {
  refuseUnknownAmzHeaders(parts, INITIATE_AMZ_HEADERS);
  const object = storedHeadersOf(parts);
  const { id, initiated } = newUpload();
  const dir = uploadDir(bucket, id);
  fs.mkdirSync(dir, { recursive: true });
  const upload: Upload = { id, key, initiated, object };
  const tmp = bucket.tmpPath();
  fs.writeFileSync(tmp, JSON.stringify(upload));
  fs.renameSync(tmp, path.join(dir, 'upload.json'));
  uploadsOf(bucket).set(id, upload);
  return xmlReply(
    200,
    `<InitiateMultipartUploadResult xmlns="${S3_NS}"><Bucket>${xmlEscape(bucket.name)}</Bucket><Key>${xmlEscape(key)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
  );
}

function partNumberOf(raw: string | undefined): number {
  if (raw === undefined || !/^\d{1,5}$/.test(raw) || +raw < 1 || +raw > MAX_PARTS) {
    fail('InvalidArgument', `Part number must be an integer between 1 and ${MAX_PARTS}, inclusive`);
  }
  return Number(raw);
}

async function uploadPart(req: IncomingMessage, parts: RequestParts, v: Verified, bucket: Bucket, key: string, id: string, rawPart: string | undefined): Promise<Reply> {
  const n = partNumberOf(rawPart);
  refuseUnknownAmzHeaders(parts, PART_AMZ_HEADERS);
  uploadOf(bucket, id, key);
  const exp = expectationsOf(parts, v.payload, MAX_PUT_SIZE);
  const got = await receive(bodyOf(req, v.payload), bucket, exp, (size, md5) => ({
    key: `${id}/${n}`,
    size,
    etag: md5.toString('hex'),
    lastModified: Date.now(),
    contentType: '',
  }));
  const etag = got.meta.etag;
  if (completing.has(id) || !readUpload(bucket, id)) {
    discard(got);
    return fail('NoSuchUpload', 'The specified upload does not exist. It may have been aborted or completed.');
  }
  try {
    fs.renameSync(got.tmp, path.join(uploadDir(bucket, id), String(n)));
  } catch {
    discard(got);
    return fail('NoSuchUpload', 'The specified upload does not exist. It may have been aborted or completed.');
  }
  const headers: Record<string, string> = { ETag: `"${etag}"` };
  if (got.checksum) headers[`x-amz-checksum-${got.checksum.name}`] = got.checksum.value;
  return emptyReply(200, headers);
}

interface StoredPart {
  n: number;
  meta: ObjectMeta;
  file: string;
}

async function partsOf(bucket: Bucket, id: string): Promise<StoredPart[]> {
  const dir = uploadDir(bucket, id);
  const names = fs.readdirSync(dir).filter((f) => /^\d{1,5}$/.test(f)).map(Number).sort((a, b) => a - b);
  const out: StoredPart[] = [];
  for (const n of names) {
    const file = path.join(dir, String(n));
    const meta = readMetaOf(file);
    if (meta) out.push({ n, meta, file });
  }
  return out;
}

async function listParts(bucket: Bucket, key: string, id: string, query: Map<string, string>): Promise<Reply> {
  const up = uploadOf(bucket, id, key);
  const max = Math.min(1000, Number(/^\d{1,5}$/.test(query.get('max-parts') ?? '') ? query.get('max-parts') : 1000));
  const marker = Number(/^\d{1,5}$/.test(query.get('part-number-marker') ?? '') ? query.get('part-number-marker') : 0);
  const all = (await partsOf(bucket, id)).filter((p) => p.n > marker);
  const page = all.slice(0, max);
  const truncated = all.length > page.length;
  const xml =
    `<ListPartsResult xmlns="${S3_NS}"><Bucket>${xmlEscape(bucket.name)}</Bucket><Key>${xmlEscape(up.key)}</Key><UploadId>${id}</UploadId>` +
    `<PartNumberMarker>${marker}</PartNumberMarker>` +
    (truncated ? `<NextPartNumberMarker>${page[page.length - 1].n}</NextPartNumberMarker>` : '') +
    `<MaxParts>${max}</MaxParts><IsTruncated>${truncated}</IsTruncated><StorageClass>STANDARD</StorageClass>` +
    page
      .map((p) => `<Part><PartNumber>${p.n}</PartNumber><LastModified>${isoDate(p.meta.lastModified)}</LastModified><ETag>"${p.meta.etag}"</ETag><Size>${p.meta.size}</Size></Part>`)
      .join('') +
    '</ListPartsResult>';
  return xmlReply(200, xml);
}

async function complete(req: IncomingMessage, parts: RequestParts, v: Verified, bucket: Bucket, key: string, id: string): Promise<Reply> {
  refuseUnknownAmzHeaders(parts, INITIATE_AMZ_HEADERS);
  uploadOf(bucket, id, key);
  const condition = writeCondition(parts);
  condition?.(bucket.metas.get(key));
  const body = await readSmallBody(req, parts, v);
  const root = parseXml(body);
  if (root.name !== 'CompleteMultipartUpload') fail('MalformedXML', 'Expected a CompleteMultipartUpload');
  const wanted = childrenNamed(root, 'Part').map((p) => ({ n: partNumberOf(childText(p, 'PartNumber')), etag: (childText(p, 'ETag') ?? '').replace(/^"|"$/g, '') }));
  if (wanted.length === 0) fail('MalformedXML', 'You must specify at least one part');
  if (wanted.some((p, i) => i > 0 && p.n <= wanted[i - 1].n)) fail('InvalidPartOrder', 'The list of parts was not in ascending order. Parts must be ordered by part number.');
  // again now that the body is in: an abort (or the lifecycle sweep) while it came has removed the upload
  const up = uploadOf(bucket, id, key);
  if (completing.has(id)) fail('NoSuchUpload', 'The specified upload is being completed');
  completing.add(id);
  try {
    const stored = new Map((await partsOf(bucket, id)).map((p) => [p.n, p]));
    const chosen = wanted.map((w) => {
      const p = stored.get(w.n);
      if (!p || p.meta.etag !== w.etag) fail('InvalidPart', 'One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not have matched the part\'s entity tag.');
      return p!;
    });
    chosen.forEach((p, i) => {
      if (i < chosen.length - 1 && p.meta.size < MIN_PART) fail('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.');
    });
    // the object: every part's bytes in order, then the trailer; ETag is MD5 of the part MD5s, "-N"
    const tmp = bucket.tmpPath();
    const out = await fs.promises.open(tmp, 'wx');
    let size = 0;
    const md5s = createHash('md5');
    try {
      for (const p of chosen) {
        const fh = await fs.promises.open(p.file, 'r');
        try {
          const buf = Buffer.alloc(1024 * 1024);
          let pos = 0;
          while (pos < p.meta.size) {
            const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, p.meta.size - pos), pos);
            if (bytesRead === 0) throw new S3Error('InternalError', 'A stored part is shorter than recorded');
            await out.write(buf.subarray(0, bytesRead));
            pos += bytesRead;
          }
        } finally {
          await fh.close();
        }
        size += p.meta.size;
        md5s.update(Buffer.from(p.meta.etag, 'hex'));
      }
      const meta: ObjectMeta = { key, size, etag: `${md5s.digest('hex')}-${chosen.length}`, lastModified: Date.now(), ...up.object };
      await out.write(trailerOf(meta));
      await out.close();
      condition?.(bucket.metas.get(key)); // the upload is kept on a 412, as on S3
      bucket.commit(tmp, meta);
      dropUpload(bucket, id);
      const location = `/${bucket.name}/${key}`;
      return xmlReply(
        200,
        `<CompleteMultipartUploadResult xmlns="${S3_NS}"><Location>${xmlEscape(location)}</Location><Bucket>${xmlEscape(bucket.name)}</Bucket>` +
          `<Key>${xmlEscape(key)}</Key><ETag>"${meta.etag}"</ETag></CompleteMultipartUploadResult>`,
      );
    } catch (err) {
      await out.close().catch(() => undefined);
      fs.rmSync(tmp, { force: true });
      throw err;
    }
  } finally {
    completing.delete(id);
  }
}

function abort(bucket: Bucket, key: string, id: string): Reply {
  uploadOf(bucket, id, key);
  if (completing.has(id)) fail('NoSuchUpload', 'The specified upload is being completed');
  dropUpload(bucket, id);
  return emptyReply(204);
}


export function listUploads(query: Map<string, string>, bucket: Bucket): Reply {
  const prefix = query.get('prefix') ?? '';
  const keyMarker = query.get('key-marker') ?? '';
  const idMarker = query.get('upload-id-marker') ?? '';
  const max = Math.min(1000, Number(/^\d{1,4}$/.test(query.get('max-uploads') ?? '') ? query.get('max-uploads') : 1000));
  const all = [...uploadsOf(bucket).values()]
    .filter((u) => u.key.startsWith(prefix))
    // keys in UTF-8 byte order, as object listings; one key's uploads by id: its time first, so
    // initiation order, and the order upload-id-marker pages
    .sort((a, b) => compareKeys(a.key, b.key) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .filter((u) => !keyMarker || compareKeys(u.key, keyMarker) > 0 || (u.key === keyMarker && idMarker !== '' && u.id > idMarker));
  const page = all.slice(0, max);
  const truncated = all.length > page.length;
  const last = page[page.length - 1];
  const xml =
    `<ListMultipartUploadsResult xmlns="${S3_NS}"><Bucket>${xmlEscape(bucket.name)}</Bucket><KeyMarker>${xmlEscape(keyMarker)}</KeyMarker>` +
    `<UploadIdMarker>${xmlEscape(idMarker)}</UploadIdMarker><Prefix>${xmlEscape(prefix)}</Prefix><MaxUploads>${max}</MaxUploads>` +
    (truncated ? `<NextKeyMarker>${xmlEscape(last.key)}</NextKeyMarker><NextUploadIdMarker>${last.id}</NextUploadIdMarker>` : '') +
    `<IsTruncated>${truncated}</IsTruncated>` +
    page.map((u) => `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${u.id}</UploadId><Initiated>${isoDate(u.initiated)}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`).join('') +
    '</ListMultipartUploadsResult>';
  return xmlReply(200, xml);
}

/** Applies the bucket's AbortIncompleteMultipartUpload rules; returns the ids aborted. */
export function sweepUploads(bucket: Bucket, now = Date.now()): string[] {
  if (!bucket.settings.lifecycle) return [];
  let rules;
  try {
    rules = parseLifecycle(bucket.settings.lifecycle);
  } catch {
    return [];
  }
  const aborted: string[] = [];
  for (const u of [...uploadsOf(bucket).values()]) {
    const rule = rules.find((r) => r.abortAfterDays !== undefined && u.key.startsWith(r.prefix) && now - u.initiated >= r.abortAfterDays * 86_400_000);
    if (rule && !completing.has(u.id)) {
      dropUpload(bucket, u.id);
      aborted.push(u.id);
    }
  }
  return aborted;
}
