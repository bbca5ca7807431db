/**
 * The host's JSON body parse takes long escape-free strings (a base64 file) from the body as they are
 * instead of through JSON.parse (scripts/host/request.ts). Whatever the body and however it is cut
 * into chunks, the arguments must be exactly JSON.parse's, and a body JSON.parse refuses is refused.
 */
import fc from 'fast-check';
import { BodyShape, HttpError, parseBody } from '../../scripts/host/request';

const LONG = 64 * 1024;

function parseInChunks(body: Buffer, cuts: number[]) {
  const shape = new BodyShape(64, 10_000, false);
  let at = 0;
  for (const cut of [...cuts.map((c) => Math.floor(c * body.length)).sort((a, b) => a - b), body.length]) {
    if (cut <= at) continue;
    expect(shape.feed(body.subarray(at, cut))).toBeUndefined();
    at = cut;
  }
  return { args: () => parseBody(body, 'application/json', shape.longStrings), spans: shape.longStrings.length };
}

const longString = fc.oneof(
  fc.constantFrom('A', 'ab+/', 'é', '😀', 'x\\"y', '\\n', '\\u0000', 'plain words ').map((unit) => unit.repeat(Math.ceil(LONG / unit.length) + 3)),
  fc.string({ minLength: 1, maxLength: 8 }).map((s) => JSON.stringify(s).slice(1, -1).repeat(Math.ceil(LONG / Math.max(1, s.length)) + 1)),
);
const small = fc.oneof(fc.string({ maxLength: 20 }).map((s) => JSON.stringify(s)), fc.integer().map(String), fc.constantFrom('true', 'null', '[1,2]', '{"a":"b"}'));

test('the arguments equal JSON.parse\'s for any object with long strings, in any chunking', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom('file', 'name', 'contentType', 'x', 'file'), fc.oneof(small, longString.map((s) => `"${s}"`), longString.map((s) => `["${s}"]`))), { minLength: 1, maxLength: 5 }),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
      fc.boolean(),
      (entries, cuts, longKey) => {
        const members = entries.map(([k, v]) => `${JSON.stringify(k)}: ${v}`);
        if (longKey) members.push(`"${'k'.repeat(LONG + 1)}": 1`);
        const text = `{${members.join(', ')}}`;
        const body = Buffer.from(text);
        const { args } = parseInChunks(body, cuts);
        expect(args()).toEqual(JSON.parse(text));
      },
    ),
    { numRuns: 60 },
  );
});

test('a long string is taken as it is (spans found), and a body JSON.parse refuses is still 400', () => {
  const file = 'QUJD'.repeat(LONG);
  const ok = parseInChunks(Buffer.from(JSON.stringify({ name: 'a', file })), [0.3, 0.5]);
  expect(ok.spans).toBe(1);
  expect(ok.args()).toEqual({ name: 'a', file });
  for (const bad of [`{"file": "${file}\n${file}"}`, `{"file": "${file}\r"}`, `{"name": "${file}\u0001"}`, `{"x": "\u001f${file}"}`, `{"file": "${file}\u0000"}`, `{"file": "${file}"`, `{"file": "${file}", }`, `["${file}"]`, `"${file}"`]) {
    const { args } = parseInChunks(Buffer.from(bad), [0.5]);
    let status = 0;
    try {
      args();
    } catch (err) {
      status = (err as HttpError).status;
    }
    expect([bad.slice(-12), status]).toEqual([bad.slice(-12), 400]);
  }
});

test('a caller that sends what looks like the placeholder gets its own string back', () => {
  const file = 'QUJD'.repeat(LONG);
  const text = JSON.stringify({ file, other: '\u0000AAAAAAAAAAAA:0', more: '\u0000' });
  expect(parseInChunks(Buffer.from(text), []).args()).toEqual(JSON.parse(text));
});
