/**
 * The Node entry (the package's "node" export): everything of ./index.ts, plus uploads from a file
 * path read a part at a time (fs.open + read at an offset, never the whole file) and resume state in
 * a directory of JSON files (default os.tmpdir()/aws-storage-uploads).
 */
import { createHash } from 'node:crypto';
import fs, { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { storeFactory } from './client.js';
import { platform, type Source } from './source.js';
import { parseSaved, type ResumeStore, type SavedUpload } from './state.js';

export * from './index.js';

export const DEFAULT_STATE_DIR = path.join(os.tmpdir(), 'aws-storage-uploads');

/** Resume state as one JSON file per upload in `dir`, written whole (temporary file, then rename). */
export function fileStore(dir: string = DEFAULT_STATE_DIR): ResumeStore {
  const fileOf = (key: string) => path.join(dir, `${createHash('sha256').update(key).digest('hex').slice(0, 32)}.json`);
  let seq = 0;
  return {
    async get(key) {
      try {
        const saved = parseSaved(await fsp.readFile(fileOf(key), 'utf8'));
        return saved;
      } catch {
        return undefined;
      }
    },
    async set(key, value: SavedUpload) {
      await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
      const file = fileOf(key);
      const tmp = `${file}.${process.pid}.${++seq}.tmp`;
      await fsp.writeFile(tmp, JSON.stringify(value), { mode: 0o600 });
      await fsp.rename(tmp, file);
    },
    async remove(key) {
      await fsp.rm(fileOf(key), { force: true });
    },
  };
}

/**
 * A file by its path. Where Node has fs.openAsBlob (20.x: ≥ 19.8), a part is a slice of a file-backed
 * Blob, which fetch streams from the disk as it sends (no part is ever held whole; a file changed
 * meanwhile fails the read); else a part is read whole at its offset when its PUT starts.
 */
export async function openPath(file: string): Promise<Source> {
  const openAsBlob = (fs as { openAsBlob?: (p: string) => Promise<Blob> }).openAsBlob;
  if (typeof openAsBlob === 'function') {
    const st = await fsp.stat(file);
    if (!st.isFile()) throw new TypeError(`not a file: ${file}`);
    const blob = await openAsBlob(file);
    return {
      size: blob.size,
      lastModified: Math.floor(st.mtimeMs),
      read: async (start, end) => blob.slice(start, end),
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
    return {
      size: st.size,
      lastModified: Math.floor(st.mtimeMs),
      async read(start, end) {
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

platform.openPath = openPath;
storeFactory.fileStore = fileStore;
