/** What user and admin endpoints share: upload links, uploads (base64 or streamed) and read links for a key. */
import { DEFAULT_LINK_EXPIRE, type StorageConfig } from './config';
import { invalidArgument, StorageError, toStorageError } from './errors';
import { attachmentDisposition, baseName } from './names';
import { contentType as contentTypeArg, type FileStream } from './args';
import { ensureBucket, headObject, listKeyRange, mapLimit, type ObjectInfo, putObject, readLink, uploadLink, type Store } from './storage';
import { storeStream } from './upload-stream';
import { decodedBytes, decodeFile, type DecodedFile, isDecodedFile } from './base64';

export function linkExpiry(config: StorageConfig, asked: number | undefined, fallback = DEFAULT_LINK_EXPIRE): number {
  return asked ?? config.expire ?? fallback;
}

/** ALLOWED_CONTENT_TYPES (415): with a list set, an upload must name one of its types. */
export function allowContentType(config: StorageConfig, contentType: string | undefined): void {
  const allowed = config.allowedContentTypes;
  if (!allowed) return;
  const type = contentType?.split(';')[0].trim().toLowerCase();
  const ok = type !== undefined && allowed.some((p) => (p.endsWith('/*') ? type.startsWith(p.slice(0, -1)) : p === type));
  if (!ok) {
    throw new StorageError(
      'unsupported_media_type',
      `${contentType ? `content type ${type}` : 'an upload without contentType'} is not allowed; allowed: ${allowed.join(', ')}`,
    );
  }
}

export async function createUploadLink(
  store: Store,
  key: string,
  args: { method: 'PUT' | 'POST'; contentType?: string; expiresIn?: number; size?: number },
) {
  const { config } = store;
  allowContentType(config, args.contentType);
  if (args.size !== undefined && args.method !== 'POST') throw invalidArgument('size: only POST links enforce a size');
  if (args.size !== undefined && args.size > config.maxFileSize) {
    throw new StorageError('payload_too_large', `size is over the limit of ${config.maxFileSize} bytes`);
  }
  return uploadLink(store, {
    key,
    method: args.method,
    contentType: args.contentType,
    expiresIn: linkExpiry(config, args.expiresIn),
    maxSize: args.size ?? config.maxFileSize,
  });
}

/** user-upload and admin-upload: `file` as base64 (the platform, JSON callers; decoded already by the host) or the raw body the host streams. */
export async function uploadFile(
  store: Store,
  target: { key: string; name: string },
  args: { file: string | DecodedFile | FileStream; contentType?: string },
) {
  const { config } = store;
  let info: ObjectInfo;
  let contentType: string;
  if (typeof args.file === 'string' || isDecodedFile(args.file)) {
    const { bytes, dataUrlType } = typeof args.file === 'string' ? decodeFile(args.file, config.maxFileSize) : decodedBytes(args.file, config.maxFileSize);
    contentType = args.contentType ?? dataUrlType ?? 'application/octet-stream';
    allowContentType(config, args.contentType ?? dataUrlType);
    info = await putObject(store, target.key, bytes, contentType);
  } else {
    const file = args.file;
    try {
      // Every check that needs no byte of the body comes before the first is read.
      const sent = contentTypeArg.safeParse(file.contentType);
      if (!sent.success) throw invalidArgument('the request Content-Type must be a media type like image/png');
      contentType = args.contentType ?? sent.data ?? 'application/octet-stream';
      allowContentType(config, args.contentType ?? sent.data);
      if (file.contentLength !== undefined && file.contentLength > config.maxFileSize) {
        throw new StorageError('payload_too_large', `file is over the limit of ${config.maxFileSize} bytes`);
      }
      await ensureBucket(store);
    } catch (err) {
      file.destroy(); // never read: the caller stops receiving it
      throw err;
    }
    info = await storeStream(store, target.key, file, contentType);
  }
  const { link } = readLink(store, target.key, linkExpiry(config, undefined));
  return { key: target.key, name: target.name, size: info.size, etag: info.etag, contentType, link };
}

/** `download`: true uses the file's own name; a string is the name to save it as. */
export function downloadDisposition(name: string, download: boolean | string | undefined): string | undefined {
  if (!download) return undefined;
  return attachmentDisposition(download === true ? baseName(name) : download);
}

export async function readFileLink(
  store: Store,
  target: { key: string; name: string },
  args: { expiresIn?: number; download?: boolean | string },
) {
  await headObject(store, target.key, target.name);
  const expiresIn = linkExpiry(store.config, args.expiresIn);
  return { key: target.key, ...readLink(store, target.key, expiresIn, downloadDisposition(target.name, args.download)) };
}

/** A folder with at least this many of the keys asked for is listed; other keys are looked up one by one. */
const LIST_FROM = 3;
const HEAD_CONCURRENCY = 16;
const LIST_CONCURRENCY = 8;

/** Characters an XML listing cannot carry (outside XML 1.0's Char): such keys are looked up by HEAD. */
const NOT_IN_XML = /[\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A key just before `key` in S3's order (a proper prefix of it), if it is still inside `folder`. */
function justBefore(key: string, folder: string): string | undefined {
  const cut = key.slice(0, /[\uDC00-\uDFFF]$/.test(key) ? -2 : -1);
  return cut.length > folder.length ? cut : undefined;
}

/**
 * Which of `keys` exist, exactly: a key is found only if that exact key is in the bucket. Keys that
 * share a folder are found with one ListObjectsV2 (paged, from just before the first to the last, a
 * bounded number of pages); scattered keys, and those the pages did not reach, with a HEAD each.
 * A failing store fails the whole answer; a missing key is `false`.
 */
export async function findKeys(store: Store, keys: readonly string[]): Promise<boolean[]> {
  const found = new Map<string, boolean>();
  const folders = new Map<string, string[]>();
  const lookUp: string[] = [];
  for (const key of new Set(keys)) {
    if (NOT_IN_XML.test(key)) {
      lookUp.push(key);
      continue;
    }
    const folder = key.slice(0, key.lastIndexOf('/') + 1);
    const group = folders.get(folder);
    if (group) group.push(key);
    else folders.set(folder, [key]);
  }
  const listed = [...folders].filter(([, group]) => group.length >= LIST_FROM);
  for (const [, group] of folders) if (group.length < LIST_FROM) lookUp.push(...group);
  const head = (key: string) =>
    headObject(store, key).then(
      () => found.set(key, true),
      (err) => {
        if (toStorageError(err).code !== 'not_found') throw err;
        found.set(key, false);
      },
    );
  const unreached: string[] = [];
  await Promise.all([
    mapLimit(listed, LIST_CONCURRENCY, async ([folder, group]) => {
      const sorted = group.map((key) => ({ key, bytes: Buffer.from(key) })).sort((a, b) => Buffer.compare(a.bytes, b.bytes));
      const first = sorted[0].key;
      const last = sorted[sorted.length - 1].key;
      const maxPages = Math.ceil(group.length / 1000) + 1;
      const page = await listKeyRange(store, { prefix: folder, startAfter: justBefore(first, folder), until: last, maxPages });
      const reached = page.listedUpTo === undefined ? undefined : Buffer.from(page.listedUpTo);
      for (const { key, bytes } of sorted) {
        if (page.complete || (reached && Buffer.compare(bytes, reached) <= 0)) found.set(key, page.keys.has(key));
        else unreached.push(key);
      }
    }),
    mapLimit(lookUp, HEAD_CONCURRENCY, head),
  ]);
  await mapLimit(unreached, HEAD_CONCURRENCY, head);
  return keys.map((key) => found.get(key) === true);
}
