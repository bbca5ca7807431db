// Signing in against the real user stores: SQLite always, PostgreSQL when DATABASE_URL is set
// (npm run test:postgres). Passwords are hashed with the real scrypt parameters.
import { keyDigest } from '../../scripts/host/admin-key';
import { hashPassword } from '../../scripts/host/passwords';
import { signIn, SignInThrottled, WrongCredentials, type SignInLimits } from '../../scripts/host/sign-in';
import { openUserStore } from '../../scripts/host/users';
import { MAX_SIGN_IN_KEYS, type UserStore } from '../../scripts/host/users/types';
import { tempDir } from '../support/host';

jest.setTimeout(120_000);

const FAST: SignInLimits = { freePerUsername: 5, freePerUsernameTotal: 1000, freePerAddress: 1000, delayMs: 4_000, maxDelayMs: 30_000, forgetAfterMs: 60_000 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const unique = (p: string) => `${p}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

const kinds: Array<[string, () => Promise<UserStore>]> = [['sqlite', () => openUserStore({ dataDir: tempDir() })]];
if (process.env.DATABASE_URL) kinds.push(['postgres', () => openUserStore({ dataDir: tempDir(), databaseUrl: process.env.DATABASE_URL })]);
else test.skip('PostgreSQL: set DATABASE_URL (npm run test:postgres does) to run these on it too', () => undefined);

describe.each(kinds)('sign-in on %s', (_kind, open) => {
  let store: UserStore;
  let hash: string;
  beforeAll(async () => {
    store = await open();
    hash = await hashPassword('the right password');
  });
  afterAll(() => store.close());

  const make = async (name: string) => store.createUser(unique(name), { passwordHash: hash });
  const attempt = (username: string, password: string, address = '192.0.2.1', limits = FAST) =>
    signIn(store, { username, password, address }, limits).then(
      (user) => ({ ok: user }) as const,
      (err: unknown) => {
        if (err instanceof WrongCredentials) return { wrong: true } as const;
        if (err instanceof SignInThrottled) return { throttled: err.retryAfterSeconds } as const;
        throw err;
      },
    );

  test('the right password signs in; an unknown name, a wrong password, no password and a disabled user are all one refusal', async () => {
    const alice = await make('alice');
    const res = await attempt(alice.username, 'the right password');
    expect(res).toEqual({ ok: expect.objectContaining({ id: alice.id, username: alice.username }) });
    expect(await attempt(alice.username, 'the wrong password')).toEqual({ wrong: true });
    expect(await attempt(unique('nobody'), 'the right password')).toEqual({ wrong: true });
    const keyOnly = await store.createUser(unique('key-only'));
    expect(await attempt(keyOnly.username, '')).toEqual({ wrong: true });
    const off = await make('disabled');
    await store.setDisabled({ id: off.id }, true);
    expect(await attempt(off.username, 'the right password')).toEqual({ wrong: true });
  });

  test('each sign-in issues a key of its own; the user key keeps working; reset ends them all; old ones drop past the bound', async () => {
    const bob = await make('bob');
    const a = await store.issueSignInKey({ id: bob.id });
    const b = await store.issueSignInKey({ id: bob.id });
    expect(new Set([bob.user_key, a.user_key, b.user_key]).size).toBe(3);
    for (const k of [bob.user_key, a.user_key, b.user_key]) expect((await store.findByKeyDigest(keyDigest(k)))?.id).toBe(bob.id);

    const rotated = await store.rotateKey({ id: bob.id });
    for (const k of [bob.user_key, a.user_key, b.user_key]) expect(await store.findByKeyDigest(keyDigest(k))).toBeUndefined();
    expect((await store.findByKeyDigest(keyDigest(rotated.user_key)))?.id).toBe(bob.id);

    const issued = [];
    for (let i = 0; i < MAX_SIGN_IN_KEYS + 3; i++) issued.push((await store.issueSignInKey({ id: bob.id })).user_key);
    const working = [];
    for (const k of issued) working.push((await store.findByKeyDigest(keyDigest(k)))?.id === bob.id);
    expect(working).toEqual(issued.map((_, i) => i >= 3)); // the three oldest are gone
    expect((await store.findByKeyDigest(keyDigest(rotated.user_key)))?.id).toBe(bob.id);

    await store.setDisabled({ id: bob.id }, true);
    expect(await store.findByKeyDigest(keyDigest(issued[issued.length - 1]))).toBeUndefined();
    await store.setDisabled({ id: bob.id }, false);
    await store.deleteUser({ id: bob.id });
    expect(await store.findByKeyDigest(keyDigest(issued[issued.length - 1]))).toBeUndefined();
  });

  test('50 wrong passwords in a row: 5 are checked, the rest wait a doubling delay; the right one works once it has passed', async () => {
    const carol = await make('carol');
    const results = [];
    for (let i = 0; i < 50; i++) results.push(await attempt(carol.username, `wrong guess ${i}`));
    expect(results.slice(0, 5)).toEqual(Array(5).fill({ wrong: true }));
    expect(results.slice(5).every((r) => 'throttled' in r)).toBe(true);
    // within the delay even the right password is not checked
    expect(await attempt(carol.username, 'the right password')).toEqual({ throttled: expect.any(Number) });

    await sleep(FAST.delayMs + 100);
    expect(await attempt(carol.username, 'still wrong')).toEqual({ wrong: true }); // one more try, then a longer wait
    expect(await attempt(carol.username, 'the right password')).toEqual({ throttled: expect.any(Number) });
    await sleep(FAST.delayMs + 100);
    expect(await attempt(carol.username, 'the right password')).toEqual({ throttled: expect.any(Number) }); // the delay doubled
    await sleep(FAST.delayMs + 100);
    expect(await attempt(carol.username, 'the right password')).toEqual({ ok: expect.objectContaining({ id: carol.id }) });
    // a success resets the count: five wrong ones are free again
    for (let i = 0; i < 5; i++) expect(await attempt(carol.username, 'wrong again')).toEqual({ wrong: true });
    expect(await attempt(carol.username, 'wrong again')).toEqual({ throttled: expect.any(Number) });
  });

  test('every way of typing a name is one count: composed, decomposed and fullwidth guesses share it; either form signs in', async () => {
    const name = unique('Ren\u00e9e');
    const made = await store.createUser(name, { passwordHash: hash });
    const forms = [name, name.normalize('NFD'), name.replace('R', '\uff32')]; // Ｒ
    expect(await attempt(forms[1], 'the right password')).toEqual({ ok: expect.objectContaining({ id: made.id, username: name }) });
    expect(await attempt(forms[2], 'the right password')).toEqual({ ok: expect.objectContaining({ id: made.id }) });
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await attempt(forms[i % 3], `wrong guess ${i}`));
    expect(results.slice(0, 5)).toEqual(Array(5).fill({ wrong: true }));
    expect(results[5]).toEqual({ throttled: expect.any(Number) });
  });

  test('guesses sent at once get no more checks than guesses sent one by one', async () => {
    const dave = await make('dave');
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => attempt(dave.username, `parallel guess ${i}`)));
    const checked = results.filter((r) => 'wrong' in r).length;
    expect(checked).toBeLessThanOrEqual(FAST.freePerUsername + 1);
    expect(checked).toBeGreaterThanOrEqual(1);
    expect(results.filter((r) => 'throttled' in r).length).toBe(30 - checked);
  });

  test('wrong passwords from one address hold the name there only: its owner signs in from another', async () => {
    const erin = await make('erin');
    for (let i = 0; i < 5; i++) expect(await attempt(erin.username, `guess ${i}`, '203.0.113.9')).toEqual({ wrong: true });
    for (let i = 0; i < 10; i++) expect(await attempt(erin.username, `guess ${i}`, '203.0.113.9')).toEqual({ throttled: expect.any(Number) });
    // the right password from the guessing address waits too
    expect(await attempt(erin.username, 'the right password', '203.0.113.9')).toEqual({ throttled: expect.any(Number) });
    expect(await attempt(erin.username, 'the right password', '192.0.2.44')).toEqual({ ok: expect.objectContaining({ id: erin.id }) });
    // an IPv6 neighbour in the same /64 is the same client
    const v6 = await make('erin6');
    for (let i = 0; i < 5; i++) expect(await attempt(v6.username, `guess ${i}`, '2001:db8:1:2::1')).toEqual({ wrong: true });
    expect(await attempt(v6.username, 'the right password', '2001:db8:1:2::ffff')).toEqual({ throttled: expect.any(Number) });
    expect(await attempt(v6.username, 'the right password', '2001:db8:1:3::1')).toEqual({ ok: expect.objectContaining({ id: v6.id }) });
  });

  test('guesses at one name from many addresses: past the looser total every address waits', async () => {
    const limits = { ...FAST, freePerUsernameTotal: 6 };
    const frank = await make('frank');
    const results = [];
    for (let i = 0; i < 9; i++) results.push(await attempt(frank.username, `guess ${i}`, `198.51.100.${20 + (i % 3)}`, limits));
    expect(results.slice(0, 6)).toEqual(Array(6).fill({ wrong: true }));
    expect(results.slice(6).every((r) => 'throttled' in r)).toBe(true);
    expect(await attempt(frank.username, 'the right password', '192.0.2.77', limits)).toEqual({ throttled: expect.any(Number) });
    await sleep(FAST.delayMs + 100);
    expect(await attempt(frank.username, 'the right password', '192.0.2.77', limits)).toEqual({ ok: expect.objectContaining({ id: frank.id }) });
    // the success cleared the name's counts: six wrong ones are free again
    for (let i = 0; i < 5; i++) expect(await attempt(frank.username, `again ${i}`, `198.51.100.${30 + i}`, limits)).toEqual({ wrong: true });
  });

  test('one address guessing many usernames is slowed too', async () => {
    const limits = { ...FAST, freePerAddress: 8 };
    const names = await Promise.all(Array.from({ length: 12 }, (_, i) => make(`spray${i}`)));
    const results = [];
    for (const n of names) results.push(await attempt(n.username, 'Summer2026!', '198.51.100.7', limits));
    expect(results.slice(0, 8)).toEqual(Array(8).fill({ wrong: true }));
    expect(results.slice(8).every((r) => 'throttled' in r)).toBe(true);
    // another address is not held up
    expect(await attempt(names[11].username, 'the right password', '198.51.100.8', limits)).toEqual({ ok: expect.objectContaining({ id: names[11].id }) });
  });
});
