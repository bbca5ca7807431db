import fc from 'fast-check';
import { adminKey, attachmentDisposition, checkName, MAX_KEY_BYTES, userKey } from '../../src/lib/names';
import { StorageError } from '../../src/lib/errors';

const refused = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err instanceof StorageError && err.code === 'invalid_argument';
  }
  return false;
};

describe('name rules (SPEC §3)', () => {
  test.each([
    ['plain', 'a.txt'],
    ['folders', 'photos/2026/cat.png'],
    ['dots inside names', '..hidden/a..b/.c'],
    ['percent signs stay literal', '%2e%2e/%2f'],
    ['fullwidth dots are not dots', '．．/x'],
    ['emoji', '🐱/😀.png'],
    ['RTL mark', 'a\u200fb.txt'],
  ])('accepts %s', (_label, name) => {
    expect(userKey(7, name)).toEqual({ key: `7/${name.normalize('NFC')}`, name: name.normalize('NFC') });
  });

  test.each([
    ['..', '..'],
    ['../ traversal', '../1/a'],
    ['inner ..', 'a/../../b'],
    ['.', './a'],
    ['//', 'a//b'],
    ['leading /', '/a'],
    ['trailing /', 'a/'],
    ['backslash', '..\\a'],
    ['NUL', 'a\u0000b'],
    ['newline', 'a\nb'],
    ['DEL', 'a\u007fb'],
    ['unit separator', 'a\u001fb'],
    ['empty', ''],
    ['lone surrogate', 'a\ud800b'],
    ['a number', 42],
    ['null', null],
    ['an array', ['a']],
    ['an object', { name: 'a' }],
  ])('refuses %s', (_label, name) => {
    expect(refused(() => userKey(7, name))).toBe(true);
    expect(refused(() => adminKey(name))).toBe(true);
  });

  test('NFD input is stored under its NFC form, so twins share one key', () => {
    const nfd = 'Cafe\u0301.txt';
    const nfc = 'Caf\u00e9.txt';
    expect(userKey(1, nfd).key).toBe(userKey(1, nfc).key);
    expect(userKey(1, nfd).key).toBe('1/Caf\u00e9.txt');
  });

  test('the byte limit is on the whole key: 1024 bytes pass, 1025 do not', () => {
    expect(adminKey('a'.repeat(MAX_KEY_BYTES)).key).toHaveLength(1024);
    expect(refused(() => adminKey('a'.repeat(MAX_KEY_BYTES + 1)))).toBe(true);
    expect(userKey(12, 'a'.repeat(1021)).key).toHaveLength(1024); // "12/" + 1021
    expect(refused(() => userKey(12, 'a'.repeat(1022)))).toBe(true);
    expect(refused(() => adminKey('€'.repeat(342)))).toBe(true); // 1026 bytes in 342 characters
    expect(adminKey('€'.repeat(341)).key).toHaveLength(341);
  });

  test('property: no accepted name yields a key outside <user.id>/ or with a . or .. segment', () => {
    const piece = fc.oneof(
      fc.constantFrom('.', '..', '/', '\\', '%2e', '%2f', '\u0000', '\u200f', '．', 'e\u0301', '~', ' ', '🐱'),
      fc.string({ maxLength: 4 }),
      fc.string({ unit: 'grapheme', maxLength: 3 }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e9 }), fc.array(piece, { maxLength: 12 }), (id, parts) => {
        const name = parts.join('');
        let key: string;
        try {
          key = userKey(id, name).key;
        } catch (err) {
          expect(err).toBeInstanceOf(StorageError);
          return;
        }
        expect(key.startsWith(`${id}/`)).toBe(true);
        const segments = key.slice(`${id}/`.length).split('/');
        expect(segments.every((s) => s !== '' && s !== '.' && s !== '..')).toBe(true);
        expect(/[\u0000-\u001f\u007f\\]/.test(key)).toBe(false);
        expect(Buffer.byteLength(key)).toBeLessThanOrEqual(MAX_KEY_BYTES);
        expect(key).toBe(key.normalize('NFC'));
      }),
      { numRuns: 5000 },
    );
  });

  test('checkName names the field in its message', () => {
    expect(() => checkName('../x', '', 'fileName')).toThrow(/fileName/);
  });
});

describe('attachmentDisposition (RFC 6266)', () => {
  test('ASCII fallback and exact UTF-8 name', () => {
    expect(attachmentDisposition('report.pdf')).toBe(`attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`);
    expect(attachmentDisposition('Łódź "x".txt')).toBe(
      `attachment; filename="__d_ _x_.txt"; filename*=UTF-8''%C5%81%C3%B3d%C5%BA%20%22x%22.txt`,
    );
    expect(attachmentDisposition("it's (1).txt")).toContain(`filename*=UTF-8''it%27s%20%281%29.txt`);
  });
});
