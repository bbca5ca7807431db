/**
 * Attack pass 4, the client's owner tag (client/src/state.ts ownerTag), the "who uploads" part of a
 * saved upload's resume key. A page served over plain http from a host other than localhost has no
 * crypto.subtle; the tag was '' there, one tag for every user, so one user's saved resumable uploads
 * were found (refused, and removed) by another again. It is now FNV-1a 64 of the same bytes there.
 */
import { ownerTag } from '../../client/src/state';

const owner = (key: string) => `user\nhttp://files.example.com:8080\n${key}`;

/** fn with globalThis.crypto replaced by one without subtle (getRandomValues kept), restored after. */
async function withoutSubtle<T>(fn: () => Promise<T>): Promise<T> {
  const original = Object.getOwnPropertyDescriptor(globalThis, 'crypto')!;
  const real = globalThis.crypto;
  Object.defineProperty(globalThis, 'crypto', { value: { getRandomValues: real.getRandomValues.bind(real) }, configurable: true, writable: true });
  try {
    expect(globalThis.crypto.subtle).toBeUndefined();
    return await fn();
  } finally {
    Object.defineProperty(globalThis, 'crypto', original);
  }
}

test('without crypto.subtle, two users get two different non-empty tags, and one user always the same', async () => {
  const [alice, bob, aliceAgain] = await withoutSubtle(() => Promise.all([ownerTag(owner('a'.repeat(40))), ownerTag(owner('b'.repeat(40))), ownerTag(owner('a'.repeat(40)))]));
  expect(alice).toMatch(/^[0-9a-f]{16}$/); // was ''
  expect(bob).toMatch(/^[0-9a-f]{16}$/);
  expect(bob).not.toBe(alice);
  expect(aliceAgain).toBe(alice);
  // keys that differ in one character, and the role, tell users apart too
  const near = await withoutSubtle(() => Promise.all([ownerTag(owner('a'.repeat(39) + 'c')), ownerTag(`admin${owner('a'.repeat(40)).slice(4)}`)]));
  expect(new Set([alice, ...near]).size).toBe(3);
});

test("the fallback is FNV-1a 64 (the published test vectors); with crypto.subtle it is still SHA-256's first 8 bytes", async () => {
  expect(await withoutSubtle(() => Promise.all([ownerTag(''), ownerTag('a'), ownerTag('foobar')]))).toEqual(['cbf29ce484222325', 'af63dc4c8601ec8c', '85944171f73967e8']);
  expect(await ownerTag('a')).toBe('ca978112ca1bbdca'); // SHA-256("a") = ca978112ca1bbdca…
});
