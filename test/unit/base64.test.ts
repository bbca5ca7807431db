import { decodedBytes, decodeFile, decodeInPlace, isDecodedFile } from '../../src/lib/base64';
import { StorageError } from '../../src/lib/errors';

const code = (fn: () => unknown) => {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof StorageError ? err.code : String(err);
  }
};

describe('decodeFile', () => {
  test('decodes base64 with and without padding, line breaks, and data: URLs', () => {
    expect(decodeFile('aGVsbG8=', 100).bytes.toString()).toBe('hello');
    expect(decodeFile('aGVsbG8', 100).bytes.toString()).toBe('hello');
    expect(decodeFile('aGVs\r\nbG8=', 100).bytes.toString()).toBe('hello');
    expect(decodeFile('data:text/plain;charset=utf-8;base64,aGk=', 100)).toEqual({ bytes: Buffer.from('hi'), dataUrlType: 'text/plain' });
    expect(decodeFile('', 100).bytes.length).toBe(0);
  });

  test.each(['ab-_', 'YW_j', 'a', 'abcde', '*abc', 'ab=c', 'a===', 'aGVsbG8=aGk=', 'data:text/plain,hi', 'data:;base64,@@@@', ' aGk='])('%j is invalid_argument', (file) => {
    expect(code(() => decodeFile(file, 100))).toBe('invalid_argument');
  });

  test('the size is checked before decoding: one byte over is payload_too_large', () => {
    expect(code(() => decodeFile(Buffer.alloc(10).toString('base64'), 10))).toBe('ok');
    expect(code(() => decodeFile(Buffer.alloc(11).toString('base64'), 10))).toBe('payload_too_large');
    expect(code(() => decodeFile(Buffer.alloc(11).toString('base64').replace(/=+$/, ''), 10))).toBe('payload_too_large');
  });
});

describe('decodeInPlace (the host decodes a long `file` inside the request body)', () => {
  // Texts around the piece size (48 KiB) and its group boundaries, valid or broken anywhere.
  const sizes = [0, 1, 2, 3, 36 * 1024, 36 * 1024 + 1, 36 * 1024 + 2, 100_000, 150_001];
  const prefixes = ['', 'data:image/png;base64,', 'DATA:;base64,', 'data:text/plain;charset=utf-8;base64,'];
  const breakers: Array<(t: string, at: number) => string> = [
    (t) => t,
    (t, at) => t.slice(0, at) + '-' + t.slice(at + 1),
    (t, at) => t.slice(0, at) + '_' + t.slice(at + 1),
    (t, at) => t.slice(0, at) + '=' + t.slice(at + 1),
    (t, at) => t.slice(0, at) + '*' + t.slice(at + 1),
    (t, at) => t.slice(0, at) + t.slice(at + 1), // one character short
    (t) => t + 'A',
    (t) => t + '===',
    (t) => t.replace(/=+$/, ''),
  ];

  test('gives decodeFile\'s bytes where decodeFile takes the text, and otherwise leaves the body exactly as it was', () => {
    let decodedCount = 0;
    let refusedCount = 0;
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (const size of sizes) {
      const bytes = Buffer.from(Array.from({ length: size }, () => Math.floor(random() * 256)));
      for (const prefix of prefixes) {
        for (const breaker of breakers) {
          const payload = bytes.toString('base64');
          const text = prefix + breaker(payload, Math.floor(random() * payload.length));
          const body = Buffer.from(`{"file":"${text}"}`, 'latin1');
          const original = Buffer.from(body);
          const expected = code(() => decodeFile(text, 1e9));
          const got = decodeInPlace(body, 9, 9 + text.length);
          if (expected === 'ok') {
            const want = decodeFile(text, 1e9);
            expect(got).toBeDefined();
            expect(got!.bytes.equals(want.bytes)).toBe(true);
            expect(got!.dataUrlType).toBe(want.dataUrlType);
            expect(decodedBytes(got!, 1e9).bytes.equals(want.bytes)).toBe(true);
            decodedCount++;
          } else {
            expect([text.length, got]).toEqual([text.length, undefined]);
            expect(body.equals(original)).toBe(true);
            refusedCount++;
          }
        }
      }
    }
    expect(decodedCount).toBeGreaterThan(60);
    expect(refusedCount).toBeGreaterThan(100);
  });

  test('a decoded file is held to MAX_FILE_SIZE like a string, and a JSON object is never taken for one', () => {
    const body = Buffer.from(`"${Buffer.alloc(11).toString('base64')}"`);
    const file = decodeInPlace(body, 1, body.length - 1)!;
    expect(code(() => decodedBytes(file, 11))).toBe('ok');
    expect(code(() => decodedBytes(file, 10))).toBe('payload_too_large');
    expect(isDecodedFile(file)).toBe(true);
    expect(isDecodedFile(JSON.parse('{"bytes":"AAAA"}'))).toBe(false);
    expect(isDecodedFile({ [Symbol('aws-storage.decoded-file')]: true })).toBe(false);
  });
});

test('a data: URL whose type is not ASCII gets decodeFile\'s answer in place too (the body is UTF-8, not latin1)', () => {
  const b64 = Buffer.alloc(60_000, 7).toString('base64');
  for (const type of ['text/\u00e9', 'text/\u20ac']) {
    const file = `data:${type};base64,${b64}`;
    const body = Buffer.from(JSON.stringify({ file }), 'utf8');
    const start = body.indexOf('data:');
    const decoded = decodeInPlace(body, start, body.length - 2);
    // the string path (undefined: the text left as it was), where decodeFile refuses the type
    expect(decoded).toBeUndefined();
    expect(body.toString('utf8', start, body.length - 2)).toBe(file);
    expect(() => decodeFile(file, 1e6)).toThrow("file: the data: URL's type must be a media type like image/png");
  }
});

test('decodeFile refuses a data: URL type no Content-Type header could carry, and keeps a media type with parameters', () => {
  for (const type of ['text/\u20ac', ' text/plain', 'text', 'text/plain\u0000', 'a/b/c', 'x'.repeat(250) + '/' + 'y'.repeat(10)]) {
    expect(() => decodeFile(`data:${type};base64,aGk=`, 10)).toThrow(/media type/);
  }
  expect(decodeFile('data:image/svg+xml;base64,aGk=', 10).dataUrlType).toBe('image/svg+xml');
  expect(decodeFile('data:;base64,aGk=', 10).dataUrlType).toBeUndefined();
});
