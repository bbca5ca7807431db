import { invalidArgument } from './errors';
import { userPrefix } from './user-prefix';

export { userPrefix };

/** S3's limit on a whole object key, in bytes of UTF-8. */
export const MAX_KEY_BYTES = 1024;

// U+0000–U+001F and U+007F (SPEC §3), and the backslash some stores and clients treat as a separator.
const FORBIDDEN_CHARACTER = /[\u0000-\u001f\u007f\\]/;
const PLAIN_ASCII = /^[\u0020-\u005b\u005d-\u007e]*$/;

/**
 * The one place for the name rules of SPEC §3. Returns the NFC form of a valid name, or throws a
 * 400. `prefix` is what the key will start with (`<user.id>/` for user files), so that the byte limit
 * applies to the whole key.
 */
export function checkName(value: unknown, prefix = '', field = 'name'): string {
  if (typeof value !== 'string') throw invalidArgument(`${field} must be a string`);
  if (value.length === 0) throw invalidArgument(`${field} must not be empty`);
  if (value.length > MAX_KEY_BYTES) throw invalidArgument(`${field} is longer than ${MAX_KEY_BYTES} bytes`);
  // Printable ASCII but the backslash (most names): already NFC, well formed, one byte a character.
  const plain = PLAIN_ASCII.test(value);
  // A lone surrogate would be written as U+FFFD, so two different names could share one key.
  if (!plain && !value.isWellFormed()) throw invalidArgument(`${field} is not well-formed Unicode`);
  const name = plain ? value : value.normalize('NFC');
  if (!plain && FORBIDDEN_CHARACTER.test(name)) {
    throw invalidArgument(`${field} must not contain control characters or a backslash`);
  }
  for (const segment of name.split('/')) {
    if (segment === '') throw invalidArgument(`${field} must not start or end with "/" or contain "//"`);
    if (segment === '.' || segment === '..') throw invalidArgument(`${field} must not contain "." or ".." segments`);
  }
  const bytes = plain ? Buffer.byteLength(prefix, 'utf8') + name.length : Buffer.byteLength(prefix + name, 'utf8');
  if (bytes > MAX_KEY_BYTES) {
    throw invalidArgument(`${field} makes a key longer than ${MAX_KEY_BYTES} bytes`);
  }
  return name;
}

/** A user's file: the key is `<user.id>/<name>`. */
export function userKey(userId: string | number, name: unknown, field = 'name'): { key: string; name: string } {
  const prefix = userPrefix(userId);
  const checked = checkName(name, prefix, field);
  return { key: prefix + checked, name: checked };
}

/** An admin's or make-links file: the key is the name as given (after the same rules). */
export function adminKey(name: unknown, field = 'name'): { key: string; name: string } {
  const checked = checkName(name, '', field);
  return { key: checked, name: checked };
}

/** The last segment of a name: what a download is called unless the caller names it. */
export function baseName(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

/**
 * Content-Disposition for a download (RFC 6266): an ASCII `filename` fallback for old clients and
 * the exact name in `filename*` (RFC 5987 percent-encoding of UTF-8).
 */
export function attachmentDisposition(fileName: string): string {
  const fallback = fileName.replace(/[^\x20-\x7e]|["\\%;]/g, '_');
  const exact = encodeURIComponent(fileName).replace(/['()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  return `attachment; filename="${fallback}"; filename*=UTF-8''${exact}`;
}
