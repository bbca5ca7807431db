/**
 * The sweeper's rules, over a real SQLite user store with the socket's endpoints replaced by a record
 * of the calls (the sweep itself against a real host and store: test/hostile/user-removal-attack).
 * A removed user is swept while its record lives, and forgotten after its time; a user that still
 * exists (a removal that stopped partway, kept disabled) is never swept; a failing sweep is logged once.
 */
import fs from 'node:fs';
import { startRemovalSweeper } from '../../scripts/host/removal-sweeper';
import { openUserStore, type UserStore } from '../../scripts/host/users/index';
import type { HandlerAnswer } from '../../scripts/host/invoke';
import { jsonAnswer } from '../../scripts/host/invoke';
import { tempDir } from '../users/backends';

let dir: string;
let users: UserStore;
beforeEach(async () => {
  dir = tempDir('removal-sweeper-');
  users = await openUserStore({ dataDir: dir });
});
afterEach(async () => {
  await users.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const until = async (check: () => boolean | Promise<boolean>) => {
  for (let i = 0; i < 200 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10));
};

test('swept: removed ids only, each file once; an existing user never; a record past its time forgotten after its last sweep; failures logged once', async () => {
  const kept = await users.createUser('kept-disabled');
  await users.setDisabled({ id: kept.id }, true);
  const now = Date.now();
  await users.recordRemoval(kept.id, now + 60_000); // its removal stopped partway: the user stays
  await users.recordRemoval(901, now + 60_000); // removed, still swept
  await users.recordRemoval(902, now - 1); // removed, its time is past: one last sweep, then forgotten
  await users.recordRemoval(903, now + 60_000); // removed, but its sweep fails

  const files = new Map<number, string[]>([[901, ['late.txt']], [902, ['a.txt', 'b.txt']]]);
  const listed: number[] = [];
  const deleted: string[] = [];
  const aborted: string[] = [];
  const log: string[] = [];
  const sweeper = startRemovalSweeper({
    users,
    log: (l) => log.push(l),
    intervalMs: 20,
    callAsUser: async (endpoint, user, args): Promise<HandlerAnswer> => {
      if (user.id === 903) return jsonAnswer(503, { code: 'storage_unavailable', message: 'the store is down' });
      if (endpoint === 'user-list') {
        listed.push(user.id);
        return jsonAnswer(200, { files: (files.get(user.id) ?? []).map((name) => ({ name })), cursor: null });
      }
      const names = args.names as string[];
      deleted.push(...names.map((n) => `${user.id}/${n}`));
      files.set(user.id, []);
      return jsonAnswer(200, { deleted: names, errors: [] });
    },
    callAsAdmin: async (_endpoint, args) => {
      aborted.push(String(args.prefix));
      return jsonAnswer(200, { aborted: [] });
    },
  });
  try {
    await until(async () => (await users.removals()).every((r) => r.id !== 902) && listed.filter((id) => id === 901).length >= 3);
  } finally {
    sweeper.stop();
  }
  expect(listed).not.toContain(kept.id);
  expect(aborted).not.toContain(`${kept.id}/`);
  expect(aborted).toEqual(expect.arrayContaining(['901/', '902/']));
  expect(deleted.sort()).toEqual(['901/late.txt', '902/a.txt', '902/b.txt']);
  expect((await users.removals()).map((r) => r.id)).toEqual([kept.id, 901, 903]);
  expect(log.filter((l) => l.includes('swept'))).toEqual([
    'removed user 901: swept 1 file(s) and 0 unfinished upload(s) written after its removal',
    'removed user 902: swept 2 file(s) and 0 unfinished upload(s) written after its removal',
  ]);
  expect(log.filter((l) => l.startsWith('removed user 903'))).toEqual([expect.stringMatching(/^removed user 903: sweeping its files failed, tried again later: .*the store is down/)]);
  expect(await users.getUser({ id: kept.id })).toMatchObject({ disabled: true });
});
