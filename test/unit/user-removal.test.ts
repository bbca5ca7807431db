// A unit test of an error path: DELETE /users/<id>/?remove_files=true whose abort of the user's
// unfinished uploads fails after its files are gone. The user store is the real SQLite one; the
// socket's two answers are stood in (the host-level test, user-routes, runs them for real).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jsonAnswer, type HandlerAnswer } from '../../scripts/host/invoke';
import { handleAdminRoute } from '../../scripts/host/user-routes';
import { SqliteUserStore } from '../../scripts/host/users/sqlite';

let dir: string;
let users: SqliteUserStore;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-storage-removal-'));
  users = new SqliteUserStore(dir);
});

afterEach(async () => {
  await users.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the uploads abort failing: its status and code, what was removed, the user kept and disabled', async () => {
  const alice = await users.createUser('alice');
  const calls: string[] = [];
  const listed = ['a.txt', 'b.txt'];
  const callAsUser = async (endpoint: string, _user: unknown, args: Record<string, unknown>): Promise<HandlerAnswer> => {
    calls.push(endpoint);
    if (endpoint === 'user-list') return jsonAnswer(200, { files: listed.splice(0).map((name) => ({ name })), cursor: null });
    return jsonAnswer(200, { deleted: args.names, errors: [] });
  };
  const callAsAdmin = async (endpoint: string, args: Record<string, unknown>): Promise<HandlerAnswer> => {
    calls.push(`${endpoint} ${JSON.stringify(args)}`);
    return jsonAnswer(503, { message: 'the storage service did not answer', code: 'storage_unavailable' });
  };
  const a = await handleAdminRoute({ kind: 'user', id: String(alice.id) }, 'DELETE', { remove_files: 'true' }, { instance: 'local', users, callAsUser, callAsAdmin });
  expect(calls).toEqual(['user-list', 'user-delete', `admin-multipart-uploads {"prefix":"${alice.id}/","abort":true}`]);
  expect(a.status).toBe(503);
  expect(JSON.parse(a.body.toString())).toEqual({
    message: 'aborting the unfinished uploads failed after 2 files were removed: the storage service did not answer; the user is kept, disabled, with the files not yet removed: delete it again to finish',
    code: 'storage_unavailable',
    id: alice.id,
    username: 'alice',
    deleted: false,
    files: { kept: false, removed: 2, names: ['a.txt', 'b.txt'], names_truncated: false, errors: [], uploads_aborted: 0 },
    // no swept_until: the sweeps pass a user by while it is there, so the answer promises none
  });
  expect(await users.getUser({ id: alice.id })).toMatchObject({ id: alice.id, disabled: true });
  // recorded for the sweeps, which pass it by while the user is there; deleted with its files kept, forgotten
  expect((await users.removals()).map((r) => r.id)).toEqual([alice.id]);
  expect(JSON.parse((await handleAdminRoute({ kind: 'user', id: String(alice.id) }, 'DELETE', {}, { instance: 'local', users, callAsUser, callAsAdmin })).body.toString())).toMatchObject({ deleted: true, files: { kept: true } });
  expect(await users.removals()).toEqual([]);
});

test('a 4xx from the abort is the host\'s trouble: 409, with the endpoint\'s code', async () => {
  const bob = await users.createUser('bob');
  const callAsUser = async (): Promise<HandlerAnswer> => jsonAnswer(200, { files: [], cursor: null });
  const callAsAdmin = async (): Promise<HandlerAnswer> => jsonAnswer(400, { message: 'prefix is too long', code: 'invalid_argument' });
  const a = await handleAdminRoute({ kind: 'user', id: String(bob.id) }, 'DELETE', { remove_files: 'true' }, { instance: 'local', users, callAsUser, callAsAdmin });
  expect(a.status).toBe(409);
  expect(JSON.parse(a.body.toString())).toMatchObject({ code: 'invalid_argument', deleted: false, message: expect.stringMatching(/^aborting the unfinished uploads failed after 0 files were removed: prefix is too long;/) });
  expect(await users.getUser({ id: bob.id })).toMatchObject({ disabled: true });
});
