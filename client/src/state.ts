/**
 * Where an upload's small resume state is kept between a page reload or a process restart: the
 * upload id, the part size and the parts done with their ETags. In a browser, localStorage; in Node, a
 * JSON file per upload in a directory (see ./node.ts); anything with get/set/remove works.
 */
export interface SavedUpload {
  v: 1;
  uploadId: string;
  key: string;
  name: string;
  size: number;
  partSize: number;
  partCount: number;
  /** part number → ETag of the parts this client saw the store take */
  parts: Record<string, string>;
  updatedAt: string;
}

export interface ResumeStore {
  get(key: string): SavedUpload | undefined | Promise<SavedUpload | undefined>;
  set(key: string, value: SavedUpload): void | Promise<void>;
  remove(key: string): void | Promise<void>;
}

/** A state kept only in this process (what `storage: false` does not even keep). */
export function memoryStore(): ResumeStore {
  const map = new Map<string, string>();
  return {
    get: (key) => {
      const s = map.get(key);
      return s === undefined ? undefined : (JSON.parse(s) as SavedUpload);
    },
    set: (key, value) => void map.set(key, JSON.stringify(value)),
    remove: (key) => void map.delete(key),
  };
}

/** localStorage (or any Storage), one item per upload under `prefix`. */
export function localStorageStore(storage: Storage = globalThis.localStorage, prefix = 'aws-storage-upload:'): ResumeStore {
  return {
    get: (key) => parseSaved(storage.getItem(prefix + key)),
    set: (key, value) => storage.setItem(prefix + key, JSON.stringify(value)),
    remove: (key) => storage.removeItem(prefix + key),
  };
}

export function parseSaved(text: string | null | undefined): SavedUpload | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as SavedUpload;
    if (v && v.v === 1 && typeof v.uploadId === 'string' && typeof v.size === 'number' && typeof v.partSize === 'number' && v.parts && typeof v.parts === 'object') return v;
  } catch {
    /* a state that does not parse is no state */
  }
  return undefined;
}

/**
 * The resume key of an upload when none is given: who uploads it (`owner`, a tag of the client's URL
 * and key: ownerTag), its name, size and last modification time. Without the owner, two users of one
 * browser or process shared each other's saved uploads: the second found the first's, was refused it
 * (404), and removed it, so the first lost its resume.
 */
export function defaultResumeKey(owner: string, name: string, size: number, lastModified: number | undefined): string {
  return `${owner}\n${name}\n${size}\n${lastModified ?? ''}`;
}

/**
 * 16 hex digits of the SHA-256 of who calls (the key never kept in clear). Without Web Crypto (a page
 * served over plain http from a host other than localhost has no crypto.subtle) 16 hex digits of the
 * FNV-1a 64-bit hash of the same bytes: '' there gave every user one tag, so one user's saved uploads
 * were found (and removed) by another again.
 */
export async function ownerTag(who: string): Promise<string> {
  const bytes = new TextEncoder().encode(who);
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return fnv1a64(bytes);
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
  return [...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** FNV-1a, 64 bits (offset basis 0xcbf29ce484222325, prime 0x100000001b3), as 16 hex digits. */
function fnv1a64(bytes: Uint8Array): string {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, '0');
}
