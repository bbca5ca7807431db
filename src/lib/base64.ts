/**
 * A base64 `file` (plain, or a base64 `data:` URL), decoded strictly: the one home of that rule. A
 * string goes through decodeFile; the standalone host decodes the text where it sits in the request
 * body (decodeInPlace) and hands the handler a DecodedFile, checked by the same functions.
 */
import { invalidArgument, StorageError } from './errors';
import { isMediaType } from './media-type';

const DATA_URL = /^data:([^,;]*)((?:;[^,;]+)*?);base64,/i;

/** A `data:` URL's prefix: its media type and length; 'not-base64' for one that is not base64; undefined for plain text. */
export function dataUrlPrefix(text: string): { type?: string; length: number } | 'not-base64' | undefined {
  const match = DATA_URL.exec(text);
  if (match) return { type: match[1] || undefined, length: match[0].length };
  return /^data:/i.test(text) ? 'not-base64' : undefined;
}

/**
 * How many bytes `text` decodes to if its length and padding are base64's, else undefined. `last`:
 * the text's end, where up to two `=` may pad it; any other piece is whole groups of four, unpadded.
 */
export function base64Size(text: string, last = true): number | undefined {
  const padding = last ? (text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0) : 0;
  const rest = text.length % 4;
  if (last ? rest === 1 || (padding > 0 && rest !== 0) : rest !== 0) return undefined;
  const firstPad = text.indexOf('=');
  if (firstPad !== -1 && firstPad < text.length - padding) return undefined;
  return Math.floor((text.length * 3) / 4) - padding;
}

/**
 * Decodes `text` (of base64Size `size`) into `out` at `at`; false if it is not strict base64. Node's
 * decoder takes the URL-safe alphabet too (refused here: a string search, no regex pass) and skips
 * other characters, so any of those makes the result shorter than the text promises.
 */
export function decodeInto(out: Buffer, at: number, text: string, size: number): boolean {
  if (text.includes('-') || text.includes('_') || at + size > out.length) return false;
  return out.write(text, at, 'base64') === size;
}

const tooLarge = (maxFileSize: number) => new StorageError('payload_too_large', `file is over the limit of ${maxFileSize} bytes`);

/** Decodes `file` strictly, checking the size before decoding. */
export function decodeFile(file: string, maxFileSize: number): { bytes: Buffer; dataUrlType?: string } {
  const prefix = dataUrlPrefix(file);
  if (prefix === 'not-base64') throw invalidArgument('file: a data: URL must be base64 (data:<type>;base64,...)');
  // the type becomes the object's Content-Type header: a type no header can carry is refused here, not by the store
  if (prefix?.type !== undefined && !isMediaType(prefix.type)) throw invalidArgument("file: the data: URL's type must be a media type like image/png");
  let payload = prefix ? file.slice(prefix.length) : file;
  if (payload.includes('\n') || payload.includes('\r')) payload = payload.replace(/\r?\n/g, ''); // MIME line breaks
  const size = base64Size(payload);
  if (size === undefined) throw invalidArgument('file: not valid base64');
  if (size > maxFileSize) throw tooLarge(maxFileSize);
  const bytes = Buffer.allocUnsafe(size);
  if (!decodeInto(bytes, 0, payload, size)) throw invalidArgument('file: not valid base64');
  return { bytes, dataUrlType: prefix?.type };
}

/**
 * A `file` the standalone host decoded as its JSON body arrived. A JSON or form caller cannot make
 * one: the brand is a registered symbol (the host and the socket are separate bundles, so a class
 * would not be the same class in both).
 */
const DECODED = Symbol.for('aws-storage.decoded-file');
export interface DecodedFile {
  readonly [DECODED]: true;
  readonly bytes: Buffer;
  readonly dataUrlType?: string;
}
export const isDecodedFile = (v: unknown): v is DecodedFile => typeof v === 'object' && v !== null && (v as DecodedFile)[DECODED] === true;

/** The decoded file's bytes under the same size rule as decodeFile's. */
export function decodedBytes(file: DecodedFile, maxFileSize: number): { bytes: Buffer; dataUrlType?: string } {
  if (file.bytes.length > maxFileSize) throw tooLarge(maxFileSize);
  return { bytes: file.bytes, dataUrlType: file.dataUrlType };
}

/** Pieces of 48 KiB of text (whole groups of four): a string each, so no copy of the whole text is made. */
const PIECE = 48 * 1024;

/**
 * Decodes the base64 text body[start, end) (plain or a base64 data: URL) by decodeFile's rules into
 * the same buffer, from where its base64 starts: each piece is copied out as a string before its bytes
 * (three for every four characters) are written over text already read, so no new memory is touched.
 * On anything decodeFile would refuse or rewrite, the text is put back as it was (every piece decoded
 * so far is whole groups of four, which encode back to the same characters) and the answer is
 * undefined: the caller hands the text to decodeFile, which says why.
 */
export function decodeInPlace(body: Buffer, start: number, end: number): DecodedFile | undefined {
  const prefix = dataUrlPrefix(body.toString('latin1', start, Math.min(end, start + 1024)));
  // A type that is not a media type (among them any non-ASCII one: the body is UTF-8, read here as
  // latin1) goes the string way, where decodeFile refuses it.
  if (prefix === 'not-base64' || (prefix?.type !== undefined && !isMediaType(prefix.type))) return undefined;
  const from = start + (prefix?.length ?? 0);
  let read = from;
  let written = from;
  while (read < end) {
    const to = Math.min(end, read + PIECE);
    const text = body.toString('latin1', read, to);
    const size = base64Size(text, to === end);
    if (size === undefined || !decodeInto(body, written, text, size)) {
      body.write(body.toString('base64', from, written), from, 'latin1');
      body.write(text, read, 'latin1');
      return undefined;
    }
    written += size;
    read = to;
  }
  return { [DECODED]: true, bytes: body.subarray(from, written), dataUrlType: prefix?.type };
}
