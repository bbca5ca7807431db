/**
 * Receiving an object's bytes: streamed to a temp file while its MD5 (the ETag) and any digest the
 * request carries are computed, then checked before anything is committed. A body that is too
 * large, too short, or does not match a digest leaves no trace: the temp file is removed.
 */
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import zlib from 'node:zlib';
import type { IncomingMessage } from 'node:http';
import { ChunkedDecoder, header, type Payload, type RequestParts } from './auth';
import { S3Error, fail } from './errors';
import { trailerOf, type Bucket, type ObjectMeta } from './disk';

/** S3's single-request limit. */
export const MAX_PUT_SIZE = 5 * 1024 ** 3;

type ChecksumName = 'crc32' | 'sha1' | 'sha256';
const CHECKSUM_HEADERS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const;
const crc32 = (zlib as unknown as { crc32?: (data: Buffer, value?: number) => number }).crc32;

export interface Expected {
  /** the Content-MD5 header, base64 */
  md5?: Buffer;
  /** x-amz-content-sha256 as hex, when the payload is signed */
  sha256?: string;
  checksum?: { name: ChecksumName; value: string };
  /** exact length the body must have (Content-Length, or x-amz-decoded-content-length) */
  length?: number;
  /** most bytes accepted */
  max: number;
  /** fewest bytes accepted */
  min?: number;
}

export interface Received {
  /** the finished temp file: bytes and trailer; the caller commits or discards it */
  tmp: string;
  meta: ObjectMeta;
  checksum?: { name: ChecksumName; value: string };
}

/** Bodies up to this size are gathered in memory and written in one call; larger ones stream to the file. */
const SMALL_BODY = 1024 * 1024;

/** The digests a request's headers say its body has; malformed ones are refused up front. */
export function digestsOf(parts: RequestParts, payload: Payload, max: number): Expected {
  const exp: Expected = { max };
  const md5 = header(parts, 'content-md5');
  if (md5 !== undefined) {
    const raw = Buffer.from(md5, 'base64');
    if (raw.length !== 16 || raw.toString('base64') !== md5.trim()) fail('InvalidDigest', 'The Content-MD5 you specified was invalid.');
    exp.md5 = raw;
  }
  if (payload.kind === 'sha256') exp.sha256 = payload.hex;
  for (const name of CHECKSUM_HEADERS) {
    const value = header(parts, `x-amz-checksum-${name}`);
    if (value === undefined) continue;
    if (exp.checksum) fail('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.');
    if (name === 'crc32c' || name === 'crc64nvme' || (name === 'crc32' && !crc32)) {
      fail('NotImplemented', `x-amz-checksum-${name} is not implemented by this store`);
    }
    exp.checksum = { name: name as ChecksumName, value: value.trim() };
  }
  const algorithm = header(parts, 'x-amz-sdk-checksum-algorithm');
  if (algorithm !== undefined && (!exp.checksum || exp.checksum.name !== algorithm.toLowerCase())) {
    fail('InvalidRequest', 'x-amz-sdk-checksum-algorithm needs its x-amz-checksum- header (trailing checksums are not implemented)');
  }
  if (header(parts, 'x-amz-trailer') !== undefined) fail('NotImplemented', 'Trailing checksums are not implemented by this store');
  return exp;
}

/** What the request's headers say its body must be: digests, and its exact length. */
export function expectationsOf(parts: RequestParts, payload: Payload, max: number): Expected {
  const exp = digestsOf(parts, payload, max);
  const contentLength = header(parts, 'content-length');
  if (header(parts, 'transfer-encoding') !== undefined) {
    fail('NotImplemented', 'A header you provided implies functionality that is not implemented: Transfer-Encoding');
  }
  if (contentLength === undefined || !/^\d{1,15}$/.test(contentLength)) fail('MissingContentLength', 'You must provide the Content-Length HTTP header.');
  if (payload.kind === 'chunked') {
    const decoded = header(parts, 'x-amz-decoded-content-length');
    if (decoded === undefined || !/^\d{1,15}$/.test(decoded)) {
      fail('MissingContentLength', 'You must provide the x-amz-decoded-content-length header with an aws-chunked body.');
    }
    exp.length = +decoded!;
  } else {
    exp.length = +contentLength!;
  }
  if (exp.length > max) fail('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
  return exp;
}

class Digests {
  readonly md5 = createHash('md5');
  readonly sha256?: Hash;
  private readonly other?: Hash;
  private crc = 0;
  constructor(private readonly exp: Expected) {
    if (exp.sha256 || exp.checksum?.name === 'sha256') this.sha256 = createHash('sha256');
    if (exp.checksum?.name === 'sha1') this.other = createHash('sha1');
  }
  update(b: Buffer): void {
    this.md5.update(b);
    this.sha256?.update(b);
    this.other?.update(b);
    if (this.exp.checksum?.name === 'crc32') this.crc = crc32!(b, this.crc);
  }
  /** Checks every digest the request carries; returns the MD5. */
  check(): { md5: Buffer; checksum?: { name: ChecksumName; value: string } } {
    const md5 = this.md5.digest();
    const sha = this.sha256?.digest();
    if (this.exp.sha256 && sha!.toString('hex') !== this.exp.sha256) {
      fail('XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
    if (this.exp.md5 && !md5.equals(this.exp.md5)) fail('BadDigest', 'The Content-MD5 you specified did not match what we received.');
    const c = this.exp.checksum;
    if (c) {
      let actual: string;
      if (c.name === 'sha256') actual = sha!.toString('base64');
      else if (c.name === 'sha1') actual = this.other!.digest('base64');
      else {
        const b = Buffer.alloc(4);
        b.writeUInt32BE(this.crc >>> 0, 0);
        actual = b.toString('base64');
      }
      if (actual !== c.value) fail('BadDigest', `The ${c.name.toUpperCase()} you specified did not match the calculated checksum.`);
    }
    return { md5, checksum: c };
  }
}

/** Checks a body read whole (a small XML document) against every digest its request carries. */
export function checkWhole(exp: Expected, body: Buffer): void {
  const d = new Digests(exp);
  d.update(body);
  d.check();
}

/**
 * Streams `source` to a new temp file of `bucket`, checked against `exp`, and appends the metadata
 * `metaOf` gives for it. On any failure the temp file is removed and nothing else changed.
 */
export async function receive(
  source: AsyncIterable<Buffer>,
  bucket: Bucket,
  exp: Expected,
  metaOf: (size: number, md5: Buffer) => ObjectMeta,
): Promise<Received> {
  const tmp = bucket.tmpPath();
  const digests = new Digests(exp);
  let size = 0;
  let fh: fs.promises.FileHandle | undefined;
  let held: Buffer[] = [];
  let heldBytes = 0;
  try {
    for await (const chunk of source) {
      size += chunk.length;
      if (size > exp.max) fail('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
      if (exp.length !== undefined && size > exp.length) fail('InvalidRequest', 'The body is longer than its declared length');
      digests.update(chunk);
      // bytes go to the file a megabyte at a time: fewer trips to the thread pool, memory still bounded
      held.push(chunk);
      heldBytes += chunk.length;
      if (heldBytes > SMALL_BODY) {
        fh ??= await fs.promises.open(tmp, 'wx');
        await fh.write(held.length === 1 ? held[0] : Buffer.concat(held));
        held = [];
        heldBytes = 0;
      }
    }
    if (exp.length !== undefined && size !== exp.length) {
      fail('IncompleteBody', 'You did not provide the number of bytes specified by the Content-Length HTTP header');
    }
    if (exp.min !== undefined && size < exp.min) fail('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed size');
    const { md5, checksum } = digests.check();
    const meta = metaOf(size, md5);
    if (fh) {
      await fh.write(Buffer.concat([...held, trailerOf(meta)]));
      await fh.close();
    } else {
      // a small body: one synchronous write on the store's own thread beats four trips to the thread pool
      fs.writeFileSync(tmp, Buffer.concat([...held, trailerOf(meta)]), { flag: 'wx' });
    }
    return { tmp, meta, checksum };
  } catch (err) {
    await fh?.close().catch(() => undefined);
    fs.rmSync(tmp, { force: true });
    throw err instanceof S3Error ? err : new S3Error('IncompleteBody', 'The request body ended before it was complete');
  }
}

/** Drops a received temp file that will not be committed. */
export function discard(r: Received): void {
  fs.rmSync(r.tmp, { force: true });
}

/** Set by the server on a request whose client waits for `100 Continue`: sends it. */
export const ASK_FOR_BODY = Symbol('ask for the body');

/**
 * The request's body, decoded when it is aws-chunked. A client that sent `Expect: 100-continue` is
 * asked for it only now: every check that needs no body (the signature, the key, the declared size, a
 * write condition) came first, so a refusal costs the client no upload.
 */
export function bodyOf(req: IncomingMessage, payload: Payload): AsyncIterable<Buffer> {
  (req as IncomingMessage & { [ASK_FOR_BODY]?: () => void })[ASK_FOR_BODY]?.();
  if (payload.kind !== 'chunked') return req;
  const decoder = new ChunkedDecoder(payload);
  decoder.on('error', () => {}); // the reader sees the error; an 'error' with no listener would end the thread
  req.on('error', (err) => decoder.destroy(err));
  req.on('aborted', () => decoder.destroy(new S3Error('IncompleteBody', 'The request was aborted')));
  return req.pipe(decoder);
}
