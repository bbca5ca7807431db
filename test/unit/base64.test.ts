import { decodeFile } from '../../src/lib/operations';
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
