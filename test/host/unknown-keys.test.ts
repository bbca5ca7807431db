/**
 * The unknown-key budget (HOST_UNKNOWN_KEYS_PER_MINUTE): every key no user or admin has costs a user-store
 * lookup (a PostgreSQL query: misses are never cached), so one address may bring only so many in a
 * minute. Past it that address's keys are 429 without a lookup, except keys this host has found before;
 * other addresses keep their own budget.
 */
import fs from 'node:fs';
import http from 'node:http';
import { startHost, type StartedHost } from '../support/host';

let host: StartedHost;
beforeAll(async () => {
  host = await startHost({ env: { HOST_UNKNOWN_KEYS_PER_MINUTE: '5' } });
});
afterAll(async () => {
  await host.stop();
  fs.rmSync(host.dataDir, { recursive: true, force: true });
});

/** user-list with this key from this loopback address: status, JSON body, Retry-After */
function call(key: string, localAddress = '127.0.0.1'): Promise<{ status: number; body: any; retryAfter?: string }> {
  const { port } = new URL(host.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, localAddress, method: 'POST', path: '/aws-storage/user-list/', agent: false, headers: { 'content-type': 'application/json', 'x-user-key': key } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), retryAfter: res.headers['retry-after'] as string | undefined }));
    });
    req.on('error', reject);
    req.end('{}');
  });
}

test('past 5 unknown keys in a minute an address gets 429 (no lookup); keys found before still work; another address has its own budget', async () => {
  const alice = await host.addUser('alice-known');
  const bob = await host.addUser('bob-new');
  // One window for the whole test (nine calls): not in the last 10 s of a minute (bounded wait; 3 s
  // left too little on a busy machine).
  while (Date.now() % 60_000 > 50_000) await new Promise((r) => setTimeout(r, 250));
  expect((await call(alice.user_key)).status).toBe(200);

  const misses = [];
  for (let i = 0; i < 5; i++) misses.push((await call(`unknown-key-${i}-${'x'.repeat(30)}`)).status);
  expect(misses).toEqual([401, 401, 401, 401, 401]);
  const over = await call(`unknown-key-6-${'x'.repeat(30)}`);
  expect(over.status).toBe(429);
  expect(over.body).toMatchObject({ code: 'too_many_unknown_keys' });
  expect(Number(over.retryAfter)).toBeGreaterThanOrEqual(1);
  expect(Number(over.retryAfter)).toBeLessThanOrEqual(60);

  // alice's key was found on this host before the flood: it is looked up as ever
  expect((await call(alice.user_key)).status).toBe(200);
  // bob's key this host has never seen: from the spent address it waits for the next minute
  expect((await call(bob.user_key)).status).toBe(429);
  // another address: its own budget
  expect((await call(`unknown-key-7-${'x'.repeat(30)}`, '127.0.0.2')).status).toBe(401);
  expect((await call(bob.user_key, '127.0.0.2')).status).toBe(200);
  // and once found, bob's key works from the spent address too (it is still checked by the store)
  expect((await call(bob.user_key)).status).toBe(200);
});
