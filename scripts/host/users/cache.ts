// Found users and admin-key digests, remembered between lookups, dropped whenever the store's change
// counter moves. Both stores keep a counter in the database that every change (rotate, disable, enable,
// delete, password, revoke) bumps in the change's own transaction; a lookup reads the counter in the same
// statement as the row, so a row read before a change can never be cached after the change is known.
// Misses are never cached: a user another host made is found at once.

export class FoundCache<V> {
  private readonly entries = new Map<string, V>();
  /** the highest change counter seen; -1 before the first */
  private seen = -1;

  constructor(private readonly limit: number) {}

  get(key: string): V | undefined {
    return this.entries.get(key);
  }

  /**
   * A change counter read from the database (or announced by it). Only ever goes up: a counter older than
   * one already seen comes from a read that started before that change, and must not revive anything.
   */
  observe(counter: number): void {
    if (counter > this.seen) {
      this.seen = counter;
      this.entries.clear();
    }
  }

  /** Remembers a value read at `counter`, unless a later change is already known. */
  put(key: string, value: V, counter: number): void {
    if (counter < this.seen) return;
    this.observe(counter);
    if (this.entries.size >= this.limit) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, value);
  }

  /** Forgets everything (e.g. when change announcements may have been missed). */
  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}

export const MAX_CACHED = 10_000;
export const userKey = (digest: Buffer): string => 'u' + digest.toString('latin1');
export const adminKey = (digest: Buffer): string => 'a' + digest.toString('latin1');
