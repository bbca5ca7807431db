/**
 * A raw upload's body streamed to S3 (the standalone host hands it over as a stream), under one rule:
 * an object appears only when every byte arrived. With a Content-Length it is one PutObject of that
 * length: S3 stores nothing of a request that ends short, so any failure aborts the request mid-body.
 * A chunked body has no length to declare: up to one part it is buffered and put whole, above that it
 * goes up as a multipart upload (parts in memory, one uploading while the next arrives) that is
 * completed only after the last byte, and aborted on any failure.
 */
import { Readable } from 'node:stream';
import type { FileStream } from './args';
import { invalidArgument, StorageError } from './errors';
import {
  abortMultipartUpload,
  completeMultipartUpload,
  createMultipartUpload,
  type ObjectInfo,
  putObject,
  putObjectStream,
  type Store,
  uploadPart,
} from './storage';

/** A chunked body's part size (S3's minimum is 5 MiB); at most two are held at once. */
export const STREAM_PART_SIZE = 8 * 1024 * 1024;

/** Where the stream is: waiting for the store to take a chunk since, or all read since. */
interface Progress {
  waitingForStoreSince?: number;
  endedAt?: number;
}

export async function storeStream(store: Store, key: string, file: FileStream, contentType: string): Promise<ObjectInfo> {
  const { maxFileSize, timeoutMs } = store.config;
  const controller = new AbortController();
  const progress: Progress = {};
  const source = checkedChunks(file, maxFileSize, progress, file.contentLength);
  // The store must keep taking bytes, and answer within timeoutMs of the last one; the client's own
  // pace is bounded by the host's body timeouts.
  const watchdog = setInterval(() => {
    const now = performance.now();
    const since = progress.endedAt ?? progress.waitingForStoreSince;
    if (since !== undefined && now - since > timeoutMs) {
      controller.abort(new StorageError('storage_unavailable', 'storage is unavailable or failing (TimeoutError)'));
    }
  }, Math.max(50, Math.min(1_000, Math.floor(timeoutMs / 4))));
  try {
    if (file.contentLength !== undefined) {
      const body = Readable.from(source, { objectMode: false });
      body.once('error', (err) => controller.abort(err));
      return await putObjectStream(store, key, body, file.contentLength, contentType, controller.signal);
    }
    return await putInParts(store, key, source, contentType, controller.signal);
  } catch (err) {
    const reason: unknown = controller.signal.reason;
    throw reason instanceof StorageError ? reason : err;
  } finally {
    clearInterval(watchdog);
    file.destroy();
  }
}

/**
 * The body's chunks, counted against MAX_FILE_SIZE and the declared length; a body that fails or
 * does not match its length is a StorageError, never a half file.
 */
async function* checkedChunks(file: FileStream, maxFileSize: number, progress: Progress, declared: number | undefined): AsyncGenerator<Buffer> {
  const short = () => invalidArgument('file: the request body ended before all of it arrived; nothing was stored');
  let size = 0;
  try {
    for await (const chunk of file as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxFileSize) throw new StorageError('payload_too_large', `file is over the limit of ${maxFileSize} bytes`);
      if (declared !== undefined && size > declared) throw invalidArgument('file: the request body is longer than its Content-Length');
      progress.waitingForStoreSince = performance.now();
      yield chunk;
      progress.waitingForStoreSince = undefined;
    }
  } catch (err) {
    throw err instanceof StorageError ? err : short();
  }
  if (declared !== undefined && size !== declared) throw short();
  progress.endedAt = performance.now();
}

/** Reads `size` bytes at a time from the chunks (fewer at the end). */
function partReader(source: AsyncGenerator<Buffer>) {
  let rest: Buffer | undefined;
  let ended = false;
  return async (size: number): Promise<{ bytes: Buffer; ended: boolean }> => {
    const chunks: Buffer[] = rest ? [rest] : [];
    let have = rest?.length ?? 0;
    rest = undefined;
    while (have < size && !ended) {
      const next = await source.next();
      if (next.done) ended = true;
      else {
        chunks.push(next.value);
        have += next.value.length;
      }
    }
    const all = Buffer.concat(chunks, have);
    if (all.length > size) rest = all.subarray(size);
    return { bytes: all.subarray(0, size), ended: ended && rest === undefined };
  };
}

async function putInParts(store: Store, key: string, source: AsyncGenerator<Buffer>, contentType: string, signal: AbortSignal): Promise<ObjectInfo> {
  const take = partReader(source);
  let current = await take(STREAM_PART_SIZE);
  if (current.ended) return putObject(store, key, current.bytes, contentType);
  const uploadId = await createMultipartUpload(store, key, contentType);
  try {
    const parts: Array<{ partNumber: number; etag: string }> = [];
    let size = 0;
    for (let partNumber = 1; partNumber <= 10_000; partNumber++) {
      // the next part arrives while this one goes up
      const next = current.ended ? undefined : take(STREAM_PART_SIZE);
      next?.catch(() => {}); // its failure is seen where it is awaited, below
      parts.push({ partNumber, etag: await uploadPart(store, key, uploadId, partNumber, current.bytes, signal) });
      size += current.bytes.length;
      if (!next) break;
      current = await next;
      if (current.bytes.length === 0) break;
    }
    const etag = await completeMultipartUpload(store, key, uploadId, parts);
    return { size, etag, contentType };
  } catch (err) {
    // Nothing was written: the parts go with the upload (the bucket's lifecycle rule takes what an abort could not).
    await abortMultipartUpload(store, key, uploadId).catch(() => {});
    throw err;
  }
}
