/** The store's key index sorts as S3 lists: by the UTF-8 bytes of the keys. */
import fc from 'fast-check';
import { compareKeys, KeyIndex } from '../../scripts/store/keyorder';

const utf8Order = (a: string, b: string) => Math.sign(Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
// well-formed strings mixing ASCII, the BMP above the surrogates and astral characters: where UTF-16 order differs
const key = fc.array(fc.oneof(fc.constantFrom('a', '/', 'z', '\uE000', '\uFFFD', '\u{1F600}', '\u{10000}', 'é'), fc.string({ unit: 'grapheme' })), { maxLength: 6 }).map((p) => p.join(''));

test('compareKeys orders as the UTF-8 bytes do (where plain string order does not)', () => {
  fc.assert(fc.property(key, key, (a, b) => Math.sign(compareKeys(a, b)) === utf8Order(a, b)), { numRuns: 5000 });
  expect('\u{1F600}' < '\uE000').toBe(true); // UTF-16 order
  expect(compareKeys('\u{1F600}', '\uE000')).toBeGreaterThan(0); // UTF-8 order
});

test('the index keeps one sorted copy of each key through adds and deletes; prefix ends are found by search', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), key), { maxLength: 200 }), (ops) => {
      const index = new KeyIndex();
      const model = new Set<string>();
      for (const [add, k] of ops) {
        if (add) {
          index.add(k);
          model.add(k);
        } else {
          index.delete(k);
          model.delete(k);
        }
      }
      const want = [...model].sort(utf8Order);
      const got = Array.from({ length: index.size }, (_, i) => index.at(i));
      expect(got).toEqual(want);
      for (const p of ['a', 'a/', '\uE000', '']) {
        const start = index.lowerBound(p);
        const end = index.endOfPrefix(p, start);
        expect(got.slice(start, end)).toEqual(want.filter((k) => k.startsWith(p)));
      }
    }),
    { numRuns: 300 },
  );
});
