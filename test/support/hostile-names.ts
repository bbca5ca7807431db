/**
 * Hostile file names: traversal in every encoding the host (JSON, query string) or a store (URL path
 * decoding) could decode, Unicode twins and lookalikes, control characters, key-length edges.
 *
 * Every name is sent as given; what each one must produce is decided by the test from the name the host
 * actually received (a 400, or a key confined to the caller's own prefix).
 */

export interface HostileName {
  label: string;
  name: string;
}

export interface HostileContext {
  /** the id of another user, whose prefix the names try to reach */
  otherUserId: number | string;
  /** a file name that other user owns (NFC), for traversal + twin attacks */
  otherFile: string;
}

/** `café/naïve.txt`, NFC (precomposed) and NFD (decomposed): one name to S3 after NFC, two byte strings. */
export const TWIN_NFC = 'caf\u00e9/na\u00efve.txt';
export const TWIN_NFD = 'cafe\u0301/nai\u0308ve.txt';
/** a second pair, used only after the matrix */
export const TWIN2_NFC = 'r\u00e9sum\u00e9/\u00f1\u00e5.txt';
export const TWIN2_NFD = 're\u0301sume\u0301/n\u0303a\u030a.txt';

/**
 * A name of exactly `bytes` bytes of UTF-8 made of `unit` (1, 2, 3 or 4 bytes; "e\u0301" counts 3), in
 * segments of at most 200 bytes joined by "/".
 */
export function segmented(bytes: number, unit = 'a'): string {
  const u = Buffer.byteLength(unit);
  const perSegment = Math.floor(200 / u);
  let out = '';
  let left = bytes;
  while (left > 0) {
    if (out) {
      out += '/';
      left -= 1;
    }
    const n = Math.min(perSegment, Math.floor(left / u));
    out += unit.repeat(n);
    left -= n * u;
    if (n === 0 || (left > 0 && left < u + 1)) {
      out += 'a'.repeat(left);
      left = 0;
    }
  }
  return out;
}

/** Valid names (for a short user prefix) with one segment longer than a file name may be on disk. */
export const LONG_SEGMENT_NAMES = ['a'.repeat(300), 'b'.repeat(1000), '\u00e9'.repeat(400)];

export function hostileNames(ctx: HostileContext): HostileName[] {
  const v = String(ctx.otherUserId);
  const f = ctx.otherFile;
  const list: Array<[string, string]> = [
    // plain traversal
    ['dotdot-slash', '../x'],
    ['double-dotdot', '../../x'],
    ['dotdot alone', '..'],
    ['dot alone', '.'],
    ['dot-slash', './x'],
    ['inner dotdot', 'a/../x'],
    ['inner dot', 'a/./x'],
    ['trailing dotdot', 'a/..'],
    ['leading slash dotdot', '/../x'],
    ['other user via dotdot', `../${v}/${f}`],
    ['other user via deep dotdot', `a/b/../../../${v}/${f}`],
    // backslash forms
    ['dotdot-backslash', '..\\x'],
    ['windows traversal', 'a\\..\\..\\x'],
    ['windows drive', 'C:\\x'],
    ['UNC', '\\\\server\\share'],
    // percent-encoded (decoded once by a query string or a store's path)
    ['%2e%2e%2f', '%2e%2e%2fx'],
    ['%2e%2e/', '%2e%2e/x'],
    ['..%2f', '..%2fx'],
    ['%2e%2e%5c', '%2e%2e%5cx'],
    ['upper-case %2E%2E%2F', '%2E%2E%2Fx'],
    ['other user via %2f', `..%2f${v}%2f${encodeURIComponent(f)}`],
    ['double encoding %252e', '%252e%252e%252fx'],
    ['triple encoding %25252e', '%25252e%25252e%25252fx'],
    ['mixed double encoding', '..%252f..%252fx'],
    ['overlong UTF-8 %c0%ae', '%c0%ae%c0%ae/x'],
    ['overlong UTF-8 slash %c0%af', '%c0%ae%c0%ae%c0%afx'],
    ['overlong 3-byte %e0%80%ae', '%e0%80%ae%e0%80%ae/x'],
    ['overlong slash after dots', '..%c0%afx'],
    ['IIS %u002e', '%u002e%u002e/x'],
    ['encoded fullwidth slash', '..%ef%bc%8fx'],
    ['overlong bytes as Latin-1', '\u00c0\u00ae\u00c0\u00ae/x'],
    // Unicode lookalikes (NFC keeps them; NFKC would not)
    ['fullwidth dots and slash', '\uff0e\uff0e\uff0fx'],
    ['fullwidth dots', '\uff0e\uff0e/x'],
    ['fullwidth backslash', '\uff0e\uff0e\uff3cx'],
    ['one dot leader', '\u2024\u2024/x'],
    ['division slash', '..\u2215x'],
    ['fraction slash', '..\u2044x'],
    ['dot + combining acute', '.\u0301./x'],
    ['dotdot + combining solidus', '..\u0338/x'],
    // other users' ids as prefixes
    ['other id as folder', `${v}/${f}`],
    ['other id with leading slash', `/${v}/${f}`],
    ['other id alone', v],
    ['other id, encoded slash', `%2f${v}%2f${encodeURIComponent(f)}`],
    ['NFD twin of the other file', TWIN_NFD],
    ['NFD twin via dotdot', `../${v}/${TWIN_NFD}`],
    // slashes
    ['leading slash', '/x'],
    ['trailing slash', 'x/'],
    ['double slash', 'a//x'],
    ['leading double slash', '//x'],
    ['only a slash', '/'],
    ['empty', ''],
    // control characters
    ['NUL', 'x\u0000.txt'],
    ['encoded NUL', 'x%00.txt'],
    ['NUL dotdot', '..\u0000/x'],
    ['BEL', 'x\u0007y'],
    ['TAB', 'x\ty'],
    ['LF', 'x\ny'],
    ['CR LF header injection', 'x\r\nX-Injected: 1'],
    ['encoded CR LF', 'x%0d%0aSet-Cookie:%20a=b'],
    ['US (0x1f)', 'x\u001fy'],
    ['DEL', 'x\u007fy'],
    ['NEL (C1)', 'x\u0085y'],
    ['line separator', 'x\u2028y'],
    // bidi and invisible
    ['RTL override', '\u202etxt.exe'],
    ['RTL mark before dotdot', '\u200f../x'],
    ['LTR mark inside dotdot', '.\u200e./x'],
    ['zero-width joiner', '.\u200d./x'],
    ['BOM before dotdot', '\ufeff../x'],
    ['lone surrogate', 'x\ud800y'],
    // query and fragment characters
    ['question mark', 'a?b=c'],
    ['leading question mark', '?x=1'],
    ['hash', 'a#b'],
    ['only hash', '#'],
    ['encoded ? and #', 'a%3Fb%23c'],
    ['duplicate name parameter', 'x&name=../y'],
    ['injected key parameter', 'x&_user_key=0000000000000000000000000000000000000000'],
    ['plus and space', 'a+b c'],
    // odd but valid names
    ['three dots', '...'],
    ['four dots', '..../x'],
    ['dotdot with space', '.. /x'],
    ['space then dotdot', ' ../x'],
    ['tomcat ..;', 'x/..;/y'],
    ['tilde', '~/x'],
    ['emoji', '\u{1f4c1}/\u{1f600}.txt'],
    ['emoji ZWJ sequence', '\u{1f468}\u200d\u{1f469}\u200d\u{1f467}.bin'],
    // length edges (bytes of UTF-8; a user key adds "<id>/"). Segments stay under 255 bytes so that a
    // store keeping one file per key segment can hold them; longNames() has the single-segment forms.
    ['1022 bytes', segmented(1022)],
    ['1023 bytes', segmented(1023)],
    ['1024 bytes', segmented(1024)],
    ['1025 bytes', segmented(1025)],
    ['1024 bytes of 2-byte chars', segmented(1024, '\u00e9')],
    ['1025 bytes of 2-byte chars', segmented(1024, '\u00e9') + 'a'],
    ['1024 bytes of emoji', segmented(1024, '\u{1f600}')],
    ['2000 bytes', segmented(2000)],
    ['1024 bytes in NFD, 683 in NFC', segmented(1023, 'e\u0301') + 'a'],
    ['1025 bytes in one segment', 'a'.repeat(1025)],
  ];
  return list.map(([label, name]) => ({ label, name }));
}

/** What the name rules (SPEC §3) make of a name: the NFC form, or why it must be refused. */
export function expectedNameRuling(name: unknown, prefix: string): { ok: true; nfc: string } | { ok: false; why: string } {
  if (typeof name !== 'string') return { ok: false, why: 'not a string' };
  if (name === '') return { ok: false, why: 'empty' };
  if (!name.isWellFormed()) return { ok: false, why: 'lone surrogate' };
  const nfc = name.normalize('NFC');
  if (/[\u0000-\u001f\u007f\\]/.test(nfc)) return { ok: false, why: 'control character or backslash' };
  if (nfc.split('/').some((s) => s === '' || s === '.' || s === '..')) return { ok: false, why: 'bad segment' };
  if (Buffer.byteLength(prefix + nfc, 'utf8') > 1024) return { ok: false, why: 'over 1024 bytes' };
  return { ok: true, nfc };
}
