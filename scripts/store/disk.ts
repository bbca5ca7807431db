/**
 * The store's files. Each object is one file: its bytes, then its metadata as JSON, then the JSON's
 * length and a magic number. A write goes to a temp file and is renamed into place, so bytes and
 * metadata change together; a reader holding the file open keeps reading the version it opened.
 *
 *   <root>/<bucket>/bucket.json          the bucket's settings (CORS, lifecycle)
 *   <root>/<bucket>/objects/<h2>/<h64>   one file per key, named by the SHA-256 of the key
 *   <root>/<bucket>/uploads/<id>/        multipart uploads in progress (scripts/store/multipart.ts)
 *   <root>/<bucket>/tmp/                 writes in progress (emptied at start)
 *
 * Folders under objects/ are made once and never removed, so no write can lose its folder. The key
 * index lives in memory and is rebuilt from the files at start; a damaged file is skipped (and
 * reported), never a reason for a listing to fail.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { S3Error } from './errors';
import { KeyIndex } from './keyorder';

/** Headers an object keeps from its upload and answers with (besides Content-Type and x-amz-meta-*). */
export const STORED_HEADERS: readonly string[] = ['cache-control', 'content-disposition', 'content-encoding', 'content-language', 'expires'];

/**
 * What an object keeps of its upload's name/value pairs (lower-case names: request headers, form
 * fields, the former store's metadata): its type, STORED_HEADERS and x-amz-meta-* (without the prefix).
 */
export function storedOf(pairs: Iterable<[string, string]>): Pick<ObjectMeta, 'contentType' | 'headers' | 'metadata'> {
  let contentType = 'binary/octet-stream';
  const headers: Record<string, string> = {};
  const metadata: Record<string, string> = {};
  for (const [name, value] of pairs) {
    if (name === 'content-type') contentType = value;
    else if (name.startsWith('x-amz-meta-')) metadata[name.slice(11)] = value;
    else if (STORED_HEADERS.includes(name)) headers[name] = value;
  }
  return {
    contentType,
    headers: Object.keys(headers).length ? headers : undefined,
    metadata: Object.keys(metadata).length ? metadata : undefined,
  };
}

export interface ObjectMeta {
  key: string;
  size: number;
  /** hex MD5 (or MD5 of part MD5s plus "-N") without quotes */
  etag: string;
  /** ms since the epoch */
  lastModified: number;
  contentType: string;
  /** content-disposition, content-encoding, cache-control, content-language, expires */
  headers?: Record<string, string>;
  /** x-amz-meta-* (names without the prefix) */
  metadata?: Record<string, string>;
}

export interface BucketSettings {
  created: number;
  cors?: string;
  lifecycle?: string;
}

const MAGIC = 0x53334f31; // "S3O1"
const TRAILER_READ = 8192;

export class Bucket {
  readonly index = new KeyIndex();
  readonly metas = new Map<string, ObjectMeta>();
  constructor(
    readonly name: string,
    readonly dir: string,
    public settings: BucketSettings,
  ) {}

  objectPath(key: string): string {
    const h = createHash('sha256').update(key, 'utf8').digest('hex');
    return path.join(this.dir, 'objects', h.slice(0, 2), h);
  }

  tmpPath(): string {
    return path.join(this.dir, 'tmp', randomBytes(12).toString('hex'));
  }

  saveSettings(): void {
    const file = path.join(this.dir, 'bucket.json');
    const tmp = this.tmpPath();
    fs.writeFileSync(tmp, JSON.stringify(this.settings));
    fs.renameSync(tmp, file);
  }

  /**
   * Puts a finished temp file in place and the index in step, in one turn of the event loop: the
   * store's one thread makes this the per-key write lock, and the last commit wins whole.
   */
  commit(tmp: string, meta: ObjectMeta): void {
    const final = this.objectPath(meta.key);
    try {
      fs.renameSync(tmp, final);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      fs.mkdirSync(path.dirname(final), { recursive: true });
      fs.renameSync(tmp, final);
    }
    if (!this.metas.has(meta.key)) this.index.add(meta.key);
    this.metas.set(meta.key, meta);
  }

  remove(key: string): void {
    if (!this.metas.has(key)) return;
    fs.rmSync(this.objectPath(key), { force: true });
    this.metas.delete(key);
    this.index.delete(key);
  }
}

/** The trailer that follows an object's bytes. */
export function trailerOf(meta: ObjectMeta): Buffer {
  const json = Buffer.from(JSON.stringify(meta), 'utf8');
  const tail = Buffer.alloc(8);
  tail.writeUInt32BE(json.length, 0);
  tail.writeUInt32BE(MAGIC, 4);
  return Buffer.concat([json, tail]);
}

/**
 * Reads the metadata of an open object file; undefined when the file is damaged. Synchronous: a
 * trailer is one small read from the page cache, cheaper on the store's own thread than a trip to the
 * thread pool.
 */
export function readTrailer(fd: number): ObjectMeta | undefined {
  const { size } = fs.fstatSync(fd);
  if (size < 8) return undefined;
  const want = Math.min(size, TRAILER_READ);
  let buf = Buffer.alloc(want);
  fs.readSync(fd, buf, 0, want, size - want);
  if (buf.readUInt32BE(want - 4) !== MAGIC) return undefined;
  const jsonLength = buf.readUInt32BE(want - 8);
  if (jsonLength + 8 > size) return undefined;
  if (jsonLength + 8 > want) {
    buf = Buffer.alloc(jsonLength + 8);
    fs.readSync(fd, buf, 0, jsonLength + 8, size - jsonLength - 8);
  }
  const jsonEnd = buf.length - 8;
  try {
    const meta = JSON.parse(buf.toString('utf8', jsonEnd - jsonLength, jsonEnd)) as ObjectMeta;
    if (typeof meta.key !== 'string' || meta.size !== size - jsonLength - 8) return undefined;
    return meta;
  } catch {
    return undefined;
  }
}

/** The metadata of an object file by path; undefined when it is missing or damaged. */
export function readMetaOf(file: string): ObjectMeta | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    return readTrailer(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export interface OpenObject {
  /** an open file descriptor: the caller closes it */
  fd: number;
  meta: ObjectMeta;
}

/** Opens the current version of a key, or undefined when there is none. */
export function openObject(bucket: Bucket, key: string): OpenObject | undefined {
  if (!bucket.metas.has(key)) return undefined; // the index is committed with the file: it decides
  let fd: number;
  try {
    fd = fs.openSync(bucket.objectPath(key), 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let meta: ObjectMeta | undefined;
  try {
    meta = readTrailer(fd);
  } catch {
    meta = undefined;
  }
  if (!meta || meta.key !== key) {
    fs.closeSync(fd);
    if (!meta) throw new S3Error('InternalError', 'the stored object is damaged');
    return undefined;
  }
  return { fd, meta };
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
export function checkBucketName(name: string): void {
  if (!BUCKET_NAME.test(name) || name.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(name)) {
    throw new S3Error('InvalidBucketName', 'The specified bucket is not valid.');
  }
}

export class Disk {
  readonly buckets = new Map<string, Bucket>();
  /** files found damaged at start (skipped) */
  damaged = 0;

  constructor(readonly root: string) {}

  /** files imported from the former embedded store (s3rver) at this start */
  imported = 0;

  /** Loads every bucket and rebuilds its index from the files; buckets the former store (s3rver) left are imported first. */
  async load(): Promise<void> {
    fs.mkdirSync(this.root, { recursive: true });
    await this.importLegacy();
    for (const name of fs.readdirSync(this.root)) {
      const dir = path.join(this.root, name);
      let settings: BucketSettings;
      try {
        settings = JSON.parse(fs.readFileSync(path.join(dir, 'bucket.json'), 'utf8')) as BucketSettings;
      } catch {
        continue; // not a bucket of ours
      }
      const bucket = new Bucket(name, dir, settings);
      fs.rmSync(path.join(dir, 'tmp'), { recursive: true, force: true });
      fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
      await this.rebuild(bucket);
      this.buckets.set(name, bucket);
    }
  }

  private async rebuild(bucket: Bucket): Promise<void> {
    const objects = path.join(bucket.dir, 'objects');
    const keys: string[] = [];
    for (const shard of fs.existsSync(objects) ? fs.readdirSync(objects) : []) {
      for (const file of fs.readdirSync(path.join(objects, shard))) {
        let meta: ObjectMeta | undefined;
        try {
          meta = readMetaOf(path.join(objects, shard, file));
        } catch {
          meta = undefined;
        }
        if (!meta || bucket.objectPath(meta.key) !== path.join(objects, shard, file)) {
          this.damaged++;
          continue;
        }
        bucket.metas.set(meta.key, meta);
        keys.push(meta.key);
      }
    }
    bucket.index.reset(keys);
  }

  /**
   * A DATA_DIR written by the former store (s3rver: `<bucket>/<key>._S3rver_object` beside
   * `._S3rver_metadata.json`) keeps its files: each bucket folder without a bucket.json is moved to
   * `.legacy-<bucket>`, its objects are copied in, and the old folder goes only once all are in (a
   * start interrupted meanwhile imports again).
   */
  private async importLegacy(): Promise<void> {
    for (const name of fs.readdirSync(this.root)) {
      const dir = path.join(this.root, name);
      if (name.startsWith('.') || !fs.statSync(dir).isDirectory()) continue;
      if (fs.existsSync(path.join(dir, 'bucket.json')) || fs.existsSync(path.join(dir, 'objects'))) continue; // ours
      fs.renameSync(dir, path.join(this.root, `.legacy-${name}`));
    }
    for (const entry of fs.readdirSync(this.root)) {
      if (!entry.startsWith('.legacy-')) continue;
      const name = entry.slice('.legacy-'.length);
      const legacy = path.join(this.root, entry);
      try {
        checkBucketName(name);
      } catch {
        continue; // not a bucket: left alone
      }
      if (!fs.existsSync(path.join(this.root, name, 'bucket.json'))) this.createFolders(name);
      const bucket = new Bucket(name, path.join(this.root, name), { created: fs.statSync(legacy).mtimeMs });
      const cors = path.join(legacy, '._S3rver_cors.xml');
      if (fs.existsSync(cors)) bucket.settings.cors = fs.readFileSync(cors, 'utf8');
      const SUFFIX = '._S3rver_object';
      const walk = (rel: string): string[] =>
        fs.readdirSync(path.join(legacy, rel), { withFileTypes: true }).flatMap((d) => {
          const r = rel ? `${rel}/${d.name}` : d.name;
          if (d.isDirectory()) return walk(r);
          return d.name.endsWith(SUFFIX) ? [r.slice(0, -SUFFIX.length)] : [];
        });
      for (const key of walk('')) {
        const file = path.join(legacy, `${key}${SUFFIX}`);
        let stored: Record<string, string> = {};
        try {
          stored = JSON.parse(fs.readFileSync(path.join(legacy, `${key}._S3rver_metadata.json`), 'utf8')) as Record<string, string>;
        } catch {
          // no metadata: the defaults below
        }
        const bytes = fs.readFileSync(file);
        const meta: ObjectMeta = {
          key,
          size: bytes.length,
          etag: createHash('md5').update(bytes).digest('hex'),
          lastModified: fs.statSync(file).mtimeMs,
          ...storedOf(Object.entries(stored).map(([k, v]) => [k, String(v)])),
        };
        const tmp = bucket.tmpPath();
        fs.writeFileSync(tmp, Buffer.concat([bytes, trailerOf(meta)]));
        bucket.commit(tmp, meta);
        this.imported++;
      }
      bucket.saveSettings();
      fs.rmSync(legacy, { recursive: true, force: true });
    }
  }

  private createFolders(name: string): void {
    const dir = path.join(this.root, name);
    fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'objects'), { recursive: true });
  }

  get(name: string): Bucket {
    const b = this.buckets.get(name);
    if (!b) throw new S3Error('NoSuchBucket', 'The specified bucket does not exist');
    return b;
  }

  /** Creates a bucket; false when it already existed. */
  create(name: string): boolean {
    checkBucketName(name);
    if (this.buckets.has(name)) return false;
    const dir = path.join(this.root, name);
    this.createFolders(name);
    const bucket = new Bucket(name, dir, { created: Date.now() });
    bucket.saveSettings();
    this.buckets.set(name, bucket);
    return true;
  }

  /** Deletes an empty bucket. */
  drop(name: string): void {
    const b = this.get(name);
    if (b.metas.size > 0) throw new S3Error('BucketNotEmpty', 'The bucket you tried to delete is not empty');
    fs.rmSync(b.dir, { recursive: true, force: true });
    this.buckets.delete(name);
  }
}
