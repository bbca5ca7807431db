// The found-users cache's one rule: nothing read before a known change is ever served after it.
import fc from 'fast-check';
import { FoundCache } from '../../scripts/host/users/cache';

test('a row read at an older counter than one already seen is not cached (the read raced a change)', () => {
  const cache = new FoundCache<string>(10);
  cache.put('k', 'before', 1);
  expect(cache.get('k')).toBe('before');
  cache.observe(2); // a change announced (NOTIFY) or read (counter check)
  expect(cache.get('k')).toBeUndefined();
  cache.put('k', 'stale', 1); // a lookup that started before the change answers late
  expect(cache.get('k')).toBeUndefined();
  cache.put('k', 'fresh', 2);
  expect(cache.get('k')).toBe('fresh');
  cache.observe(2); // the same counter again drops nothing
  expect(cache.get('k')).toBe('fresh');
  cache.observe(1); // nor does an older one
  expect(cache.get('k')).toBe('fresh');
});

test('whatever the order of reads and changes, a cached value was read at the newest counter seen', () => {
  type Step = { kind: 'observe'; counter: number } | { kind: 'put'; key: number; counter: number };
  const step = fc.oneof(
    fc.record({ kind: fc.constant('observe' as const), counter: fc.nat(20) }),
    fc.record({ kind: fc.constant('put' as const), key: fc.nat(5), counter: fc.nat(20) }),
  );
  fc.assert(
    fc.property(fc.array(step, { maxLength: 60 }), (steps: Step[]) => {
      const cache = new FoundCache<number>(4);
      let newest = -1;
      for (const s of steps) {
        if (s.kind === 'observe') cache.observe(s.counter);
        else cache.put(String(s.key), s.counter, s.counter);
        newest = Math.max(newest, s.counter);
        for (let k = 0; k <= 5; k++) {
          const v = cache.get(String(k));
          if (v !== undefined && v !== newest) return false;
        }
        if (cache.size > 4) return false;
      }
      return true;
    }),
  );
});
