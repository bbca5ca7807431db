// A unit test of an error path: guardUserStore over a stand-in store that fails as a driver would.
import { guardUserStore } from '../../scripts/host/user-store-guard';
import { NoSuchUserError, UsernameTakenError, UserStoreUnavailableError, type UserStore } from '../../scripts/host/users/types';

function failingStore(failure: () => Error): { store: UserStore; calls: string[]; heal(): void } {
  let healthy = false;
  const calls: string[] = [];
  const store = {
    kind: 'stand-in',
    async findByKeyDigest() {
      calls.push('findByKeyDigest');
      if (!healthy) throw failure();
      return undefined;
    },
    async createUser(username: string) {
      throw new UsernameTakenError(username);
    },
    async rotateKey() {
      throw new NoSuchUserError('no such user');
    },
    async listUsers() {
      throw new RangeError('limit is 1..1000');
    },
    async close() {
      calls.push('close');
    },
  } as unknown as UserStore;
  return { store, calls, heal: () => (healthy = true) };
}

test('any failure inside the store is UserStoreUnavailableError, logged once each way, without its details leaking into the error', async () => {
  const lines: string[] = [];
  const { store, heal } = failingStore(() => Object.assign(new Error('Connection terminated unexpectedly'), { code: '57P01' }));
  const users = guardUserStore(store, (l) => lines.push(l));
  for (let i = 0; i < 5; i++) {
    const err = await users.findByKeyDigest(Buffer.alloc(32)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserStoreUnavailableError);
    expect((err as Error).message).toBe('the user store failed (findByKeyDigest)');
  }
  heal();
  await expect(users.findByKeyDigest(Buffer.alloc(32))).resolves.toBeUndefined();
  await expect(users.findByKeyDigest(Buffer.alloc(32))).resolves.toBeUndefined();
  expect(lines).toEqual([
    'user store (stand-in) failing: findByKeyDigest: Connection terminated unexpectedly',
    'user store (stand-in) answering again',
  ]);
});

test("the store's own refusals and the host's own mistakes pass as they are; close is not wrapped", async () => {
  const { store, calls } = failingStore(() => new Error('x'));
  const lines: string[] = [];
  const users = guardUserStore(store, (l) => lines.push(l));
  await expect(users.createUser('taken')).rejects.toBeInstanceOf(UsernameTakenError);
  await expect(users.rotateKey({ id: 1 })).rejects.toBeInstanceOf(NoSuchUserError);
  await expect(users.listUsers({ limit: 5000 })).rejects.toBeInstanceOf(RangeError);
  await users.close();
  expect(calls).toEqual(['close']);
  expect(users.kind).toBe('stand-in');
  expect(lines).toEqual([]);
});

test('a UserStoreUnavailableError from the store keeps its own message', async () => {
  const { store } = failingStore(() => new UserStoreUnavailableError('PostgreSQL did not answer within 5000 ms'));
  const err = await guardUserStore(store, () => {}).findByKeyDigest(Buffer.alloc(32)).catch((e: unknown) => e);
  expect((err as Error).message).toBe('PostgreSQL did not answer within 5000 ms');
});
