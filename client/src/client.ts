import { StorageApiError } from './errors.js';
import { makeTransport, type FetchLike, type Transport } from './http.js';
import type { UploadData } from './source.js';
import { localStorageStore, type ResumeStore } from './state.js';
import { startUpload, type UploadOptions, type UploadTask } from './upload.js';

export type Credentials = { url: string; userKey: string; adminKey?: never } | { url: string; adminKey: string; userKey?: never };

export interface ClientOptions {
  /** a fetch of your own (a proxy, a test's); default globalThis.fetch */
  fetch?: FetchLike;
  /**
   * Where resume state is kept: a ResumeStore, `{dir}` in Node (a JSON file per upload in that
   * directory), or false for none. Default: localStorage in a browser, in Node
   * `os.tmpdir()/aws-storage-uploads-<uid>` (a directory of this account's own, checked).
   */
  storage?: ResumeStore | { dir: string } | false;
  /** the socket's name in the URL; default `aws-storage` */
  socket?: string;
}

export interface GetUrlOptions {
  /** true: save under the file's own name; a string: save under that name */
  download?: boolean | string;
  expiresIn?: number;
}

export interface SignedUrl {
  url: string;
  key: string;
  expiresAt?: string;
}

export interface ListOptions {
  prefix?: string;
  limit?: number;
  cursor?: string;
}

export interface FileInfo {
  name: string;
  size: number;
  lastModified: string;
  etag: string;
}

export interface ListResult {
  files: FileInfo[];
  cursor: string | null;
}

export interface RemoveResult {
  deleted: string[];
  errors: Array<{ name: string; message: string }>;
}

export interface MakeLinksOptions {
  expiresIn?: number;
  download?: boolean | string;
  /** look each key up: missing ones go to errors */
  check?: boolean;
}

export interface MakeLinksResult {
  files: Record<string, string>;
  errors: Array<{ name: string; message: string }>;
}

export interface StorageClient {
  /** 'user' (X-USER-KEY, the user-* endpoints) or 'admin' (X-API-KEY, admin-* and make-links) */
  readonly role: 'user' | 'admin';
  upload(name: string, data: UploadData, options?: UploadOptions): UploadTask;
  /** a read link: user-read for a user, make-links for the admin */
  getUrl(name: string, options?: GetUrlOptions): Promise<SignedUrl>;
  list(options?: ListOptions): Promise<ListResult>;
  remove(names: string | string[]): Promise<RemoveResult>;
  makeLinks(fileNames: string | string[], options?: MakeLinksOptions): Promise<MakeLinksResult>;
  /** POSTs any endpoint of the socket with this client's key (admin-multipart-uploads, …) */
  call<T = unknown>(endpoint: string, args?: Record<string, unknown>): Promise<T>;
}

/** Made by the platform entry: a store for `{dir}` and the default one. */
export interface StoreFactory {
  fileStore?: (dir?: string) => ResumeStore;
}

export const storeFactory: StoreFactory = {};

function defaultStore(): ResumeStore | undefined {
  if (storeFactory.fileStore) return storeFactory.fileStore();
  try {
    if (typeof globalThis.localStorage !== 'undefined' && globalThis.localStorage) return localStorageStore(globalThis.localStorage);
  } catch {
    /* localStorage refused (a sandboxed frame): no resume across reloads */
  }
  return undefined;
}

function resolveStore(option: ClientOptions['storage']): ResumeStore | undefined {
  if (option === false) return undefined;
  if (option === undefined) return defaultStore();
  if ('dir' in option && typeof option.dir === 'string') {
    if (!storeFactory.fileStore) throw new TypeError('storage {dir} needs Node (import the package from Node, its "node" export)');
    return storeFactory.fileStore(option.dir);
  }
  return option as ResumeStore;
}

export function createClient(credentials: Credentials, options: ClientOptions = {}): StorageClient {
  if (!credentials || typeof credentials.url !== 'string' || !credentials.url) throw new TypeError('createClient: url is required');
  const admin = typeof credentials.adminKey === 'string' && credentials.adminKey !== '';
  if (!admin && !(typeof credentials.userKey === 'string' && credentials.userKey !== '')) throw new TypeError('createClient: userKey or adminKey is required');
  const role: 'user' | 'admin' = admin ? 'admin' : 'user';
  const transport: Transport = makeTransport(
    credentials.url,
    options.socket ?? 'aws-storage',
    admin ? ['X-API-KEY', credentials.adminKey!] : ['X-USER-KEY', credentials.userKey!],
    options.fetch,
  );
  const store = resolveStore(options.storage);
  const owner = `${role}\n${credentials.url}\n${admin ? credentials.adminKey : credentials.userKey}`;

  const makeLinks = (fileNames: string | string[], o: MakeLinksOptions = {}) =>
    transport.call<MakeLinksResult>('make-links', { fileNames, ...defined(o) });

  return {
    role,
    upload: (name, data, o) => startUpload({ transport, family: role, store, owner }, name, data, o),
    async getUrl(name, o = {}) {
      if (admin) {
        const links = await makeLinks([name], { ...o, check: true });
        const url = links.files[name] ?? links.files[name.normalize('NFC')];
        if (!url) {
          const why = links.errors[0]?.message ?? 'file not found';
          throw new StorageApiError(`make-links: ${why}`, /not found/i.test(why) ? 404 : 400, /not found/i.test(why) ? 'not_found' : 'invalid_argument', 'make-links');
        }
        return { url, key: name };
      }
      const a = await transport.call<{ link: string; key: string; expiresAt?: string }>('user-read', { name, ...defined(o) });
      return { url: a.link, key: a.key, expiresAt: a.expiresAt };
    },
    list: (o = {}) => transport.call<ListResult>('user-list', defined(o)),
    remove: (names) => transport.call<RemoveResult>('user-delete', Array.isArray(names) ? { names } : { name: names }),
    makeLinks,
    call: <T>(endpoint: string, args: Record<string, unknown> = {}) => transport.call<T>(endpoint, args),
  };
}

function defined(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
