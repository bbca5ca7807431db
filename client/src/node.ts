/**
 * The Node entry (the package's "node" export): everything of ./index.ts, plus uploads from a file
 * path read a part at a time (fs.open + read at an offset, never the whole file) and resume state in
 * a directory of JSON files (default os.tmpdir()/aws-storage-uploads-<uid>).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs, { promises as fsp } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { storeFactory } from './client.js';
import { StorageApiError } from './errors.js';
import { platform, type Source } from './source.js';
import { parseSaved, type ResumeStore, type SavedUpload } from './state.js';

export * from './index.js';

/** this account's uid where the platform has one (POSIX); undefined on Windows */
const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;

/**
 * Per account: os.tmpdir() is shared by every account of a machine, and a directory another account
 * made first would be theirs (see privateDir).
 */
export const DEFAULT_STATE_DIR = path.join(os.tmpdir(), uid === undefined ? 'aws-storage-uploads' : `aws-storage-uploads-${uid}`);

/**
 * True when `dir` is this account's alone: a directory (not a link to one), owned by this account,
 * that no other account may write. Anywhere else another account could plant, replace or remove
 * state files, so no state is kept there (a resume is best-effort; an upload still runs).
 */
async function privateDir(dir: string, create: boolean): Promise<boolean> {
  if (create) await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await fsp.lstat(dir);
  if (!st.isDirectory()) return false;
  if (uid === undefined) return true; // Windows: no POSIX owner or mode bits to check
  return st.uid === uid && (st.mode & 0o022) === 0;
}

const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

/**
 * Resume state as one JSON file per upload in `dir`, written whole (a temporary file of a random name,
 * made exclusively, then renamed), only in a directory of this account's own and never through a link.
 */
export function fileStore(dir: string = DEFAULT_STATE_DIR): ResumeStore {
  const fileOf = (key: string) => path.join(dir, `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.json`);
  return {
    async get(key) {
      try {
        if (!(await privateDir(dir, false))) return undefined;
        const fh = await fsp.open(fileOf(key), fs.constants.O_RDONLY | O_NOFOLLOW);
        try {
          const st = await fh.stat();
          if (!st.isFile() || (uid !== undefined && st.uid !== uid)) return undefined;
          return parseSaved(await fh.readFile('utf8'));
        } finally {
          await fh.close();
        }
      } catch {
        return undefined;
      }
    },
    async set(key, value: SavedUpload) {
      if (!(await privateDir(dir, true))) throw new Error(`${dir}: not a directory of this account's own; resume state is not kept there`);
      const file = fileOf(key);
      const tmp = `${file}.${randomBytes(8).toString('hex')}.tmp`;
      // 'wx': O_CREAT | O_EXCL, which never opens an existing file or follows a link
      await fsp.writeFile(tmp, JSON.stringify(value), { mode: 0o600, flag: 'wx' });
      try {
        await fsp.rename(tmp, file);
      } catch (err) {
        await fsp.rm(tmp, { force: true }).catch(() => {});
        throw err;
      }
    },
    async remove(key) {
      if (!(await privateDir(dir, false).catch(() => false))) return;
      await fsp.rm(fileOf(key), { force: true });
    },
  };
}

/**
 * Throws `file_changed` unless `file` still has the size and modification time it had when the
 * upload opened it: a part read from a file rewritten meanwhile would put old and new bytes together.
 */
function unchangedSince(file: string, st: fs.Stats): () => Promise<void> {
  return async () => {
    const now = await fsp.stat(file).catch(() => undefined);
    if (!now || now.size !== st.size || now.mtimeMs !== st.mtimeMs) {
      throw new StorageApiError(`${file} changed since the upload started (${now ? 'its size or modification time' : 'it is gone'}); upload it again`, 0, 'file_changed');
    }
  };
}

/**
 * A file by its path. Where Node has fs.openAsBlob (20.x: ≥ 19.8), a part is a slice of a file-backed
 * Blob, which is streamed from the disk as it is sent (no part is ever held whole); else a part is
 * read whole at its offset when its PUT starts. Before each part is read, and once more before the
 * upload is completed, the file must be unchanged (`file_changed`).
 */
export async function openPath(file: string): Promise<Source> {
  const openAsBlob = (fs as { openAsBlob?: (p: string) => Promise<Blob> }).openAsBlob;
  if (typeof openAsBlob === 'function') {
    const st = await fsp.stat(file);
    if (!st.isFile()) throw new TypeError(`not a file: ${file}`);
    const blob = await openAsBlob(file);
    const unchanged = unchangedSince(file, st);
    return {
      size: blob.size,
      lastModified: Math.floor(st.mtimeMs),
      read: async (start, end) => {
        await unchanged();
        const part = blob.slice(start, end);
        fileRanges.set(part, { file, start, end });
        return part;
      },
      unchanged,
      close: async () => {},
    };
  }
  return openPathByOffset(file);
}

/** A file read a part at a time: fs.open, then each part read at its offset into its own buffer. */
export async function openPathByOffset(file: string): Promise<Source> {
  const handle = await fsp.open(file, 'r');
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new TypeError(`not a file: ${file}`);
    const unchanged = unchangedSince(file, st);
    return {
      size: st.size,
      lastModified: Math.floor(st.mtimeMs),
      unchanged,
      async read(start, end) {
        await unchanged();
        const buf = new Uint8Array(end - start);
        let off = 0;
        while (off < buf.byteLength) {
          const { bytesRead } = await handle.read(buf, off, buf.byteLength - off, start + off);
          if (bytesRead === 0) throw new Error(`${file} is shorter than it was (${st.size} bytes) at byte ${start + off}`);
          off += bytesRead;
        }
        return buf;
      },
      close: () => handle.close(),
    };
  } catch (err) {
    await handle.close().catch(() => {});
    throw err;
  }
}

/** Which file range a part Blob of openPath is, so putFileRange can stream it from the disk. */
const fileRanges = new WeakMap<object, { file: string; start: number; end: number }>();

/**
 * A part that is a file range goes up over node:http(s) from a read stream of that range: at most a
 * stream buffer of it is in memory (fetch keeps buffers of each body it sends for a while, about
 * 100 MiB of RSS over a 256 MiB upload). Other bodies: undefined, fetch sends them.
 */
function putFileRange(url: string, body: Blob | Uint8Array, headers: Record<string, string>, signal: AbortSignal): Promise<Response> | undefined {
  const range = fileRanges.get(body);
  if (!range) return undefined;
  const target = new URL(url);
  const request = target.protocol === 'https:' ? https.request : target.protocol === 'http:' ? http.request : undefined;
  if (!request) return undefined;
  return new Promise<Response>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const length = range.end - range.start;
    const req = request(target, { method: 'PUT', headers: { ...headers, 'Content-Length': String(length) }, agent: target.protocol === 'https:' ? httpsAgent : httpAgent });
    const onAbort = () => req.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    const done = () => signal.removeEventListener('abort', onAbort);
    req.on('error', (err) => {
      done();
      reject(signal.aborted ? signal.reason : err);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => {
        done();
        reject(err);
      });
      res.on('end', () => {
        done();
        const out = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(', ') : v);
        resolve(new Response(res.statusCode === 204 || res.statusCode === 304 ? null : Buffer.concat(chunks), { status: res.statusCode ?? 0, headers: out }));
      });
    });
    if (length === 0) return void req.end();
    const stream = fs.createReadStream(range.file, { start: range.start, end: range.end - 1 });
    stream.on('error', (err) => req.destroy(err));
    stream.pipe(req);
  });
}
const httpAgent = new http.Agent({ keepAlive: true });
const httpsAgent = new https.Agent({ keepAlive: true });

platform.openPath = openPath;
platform.put = putFileRange;
storeFactory.fileStore = fileStore;
