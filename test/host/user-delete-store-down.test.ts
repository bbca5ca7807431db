/**
 * DELETE /users/<id>/?remove_files=true while the S3 store is down: the answer is the store's 503 with
 * what was removed so far and "deleted": false; the user stays, disabled (its key refused), so that
 * deleting it again once the store is back finishes the job.
 */
import { startHost, type StartedHost } from '../support/host';
import { external, useStore, type TestStore } from '../support/store';
import { admin, upload, uploadLink } from './admin-support';

jest.setTimeout(120_000);

let store: TestStore;
let host: StartedHost;

beforeAll(async () => {
  store = await useStore();
  host = await startHost({ env: { ...store.config, AWS_S3_TIMEOUT_MS: '1500' } });
});

afterAll(async () => {
  if (host) expect(await host.stop()).toBe(0);
  if (!external) return; // the embedded store was closed by the test
  await store.close();
});

(external ? test.skip : test)('the store down midway: 503 storage_unavailable, the user kept and disabled', async () => {
  const user = await host.addUser('files-unreachable');
  await upload(host, user.user_key, 'a.txt', 'a');
  expect((await uploadLink(host, user.user_key)).status).toBe(200);
  await store.close();

  const a = await admin(host, 'DELETE', `users/${user.id}/?remove_files=true`);
  expect(a.status).toBe(503);
  expect(a.body).toMatchObject({
    code: 'storage_unavailable',
    message: expect.stringMatching(/listing the files failed after 0 files were removed: .*the user is kept, disabled/),
    deleted: false,
    files: { kept: false, removed: 0, names: [], errors: [] },
  });
  expect((await admin(host, 'GET', `users/${user.id}/`)).body).toMatchObject({ id: user.id, disabled: true });
  expect((await uploadLink(host, user.user_key)).status).toBe(401);
  // without remove_files the user can still go (its files stay where they are)
  expect((await admin(host, 'DELETE', `users/${user.id}/`)).body).toMatchObject({ deleted: true, files: { kept: true } });
});
