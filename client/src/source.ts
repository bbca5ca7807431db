/** What an upload reads its bytes from: one interface over a Blob, a buffer, or (in Node) a file. */
export interface Source {
  size: number;
  lastModified?: number;
  type?: string;
  /** the bytes [start, end), as a fetch body; a file is read only now, only this range */
  read(start: number, end: number): Promise<Blob | Uint8Array>;
  /** throws `file_changed` if the file is not the one the upload started with (a file path only) */
  unchanged?(): Promise<void>;
  close(): Promise<void>;
}

/** A file in Node, by its path (read a part at a time, never whole). */
export interface PathData {
  path: string;
}

export type UploadData = Blob | ArrayBuffer | ArrayBufferView | PathData;

export interface Platform {
  openPath?: (path: string) => Promise<Source>;
  /**
   * A PUT of a part the platform can send better than fetch (Node: a file range streamed from the
   * disk over node:http, memory flat); undefined: not such a body, fetch sends it.
   */
  put?: (url: string, body: Blob | Uint8Array, headers: Record<string, string>, signal: AbortSignal) => Promise<Response> | undefined;
}

/** Set by ./node.ts, the package's Node entry; the browser entry has no file paths. */
export const platform: Platform = {};

export async function openSource(data: UploadData): Promise<Source> {
  if (typeof Blob !== 'undefined' && data instanceof Blob) {
    const blob = data;
    const lastModified = typeof (blob as File).lastModified === 'number' ? (blob as File).lastModified : undefined;
    return {
      size: blob.size,
      lastModified,
      type: blob.type || undefined,
      // a slice with no type, so fetch sends no Content-Type the link did not sign
      read: async (start, end) => blob.slice(start, end),
      close: async () => {},
    };
  }
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return { size: bytes.byteLength, read: async (start, end) => bytes.subarray(start, end), close: async () => {} };
  }
  if (data && typeof (data as PathData).path === 'string') {
    if (!platform.openPath) throw new TypeError('upload from a file path needs Node (import the package from Node, its "node" export)');
    return platform.openPath((data as PathData).path);
  }
  throw new TypeError('upload data must be a Blob, File, ArrayBuffer, typed array or (in Node) {path}');
}
