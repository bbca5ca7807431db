/**
 * S3 lists keys in UTF-8 byte order. JavaScript compares strings by UTF-16 code units, which differs
 * from code point (= UTF-8 byte) order only where a surrogate pair meets a character in U+E000..U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      // surrogates (D800..DFFF) sort after E000..FFFF in code point order
      x = x <= 0xdfff ? x + 0x2000 : x - 0x800;
      y = y <= 0xdfff ? y + 0x2000 : y - 0x800;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** A sorted set of keys: insert and delete by binary search, pages from any point. */
export class KeyIndex {
  private keys: string[] = [];

  get size(): number {
    return this.keys.length;
  }

  /** Index of the first key >= k (after = true: > k). */
  lowerBound(k: string, after = false): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareKeys(this.keys[mid], k);
      if (c < 0 || (after && c === 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** First index >= from whose key does not start with prefix (keys with a prefix are contiguous). */
  endOfPrefix(prefix: string, from: number): number {
    let lo = from;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.keys[mid].startsWith(prefix)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  at(i: number): string | undefined {
    return this.keys[i];
  }

  add(k: string): void {
    const i = this.lowerBound(k);
    if (this.keys[i] !== k) this.keys.splice(i, 0, k);
  }

  delete(k: string): void {
    const i = this.lowerBound(k);
    if (this.keys[i] === k) this.keys.splice(i, 1);
  }

  /** Replaces the whole set (at start), sorting once. */
  reset(all: string[]): void {
    this.keys = all.sort(compareKeys);
  }
}
