// Calls of the host's admin routes (/v2/instances/<instance>/users/…, /api_keys/…) and of one user
// endpoint, for the admin-route suites on SQLite (test/host) and PostgreSQL (test/postgres).
import { readAnswer, type StartedHost } from '../support/host';

export type Answer = Awaited<ReturnType<typeof readAnswer>>;

/** An admin route, with the host's admin key unless `key` says otherwise (null: no key; {userKey}: a user's key). */
export async function admin(
  host: StartedHost,
  method: string,
  route: string,
  body?: unknown,
  key: string | null | { userKey: string } = host.adminKey,
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (typeof key === 'string') headers['x-api-key'] = key;
  else if (key !== null) headers['x-user-key'] = key.userKey;
  if (body !== undefined) headers['content-type'] = 'application/json';
  return readAnswer(
    await fetch(`${host.url}/v2/instances/local/${route}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }),
  );
}

/** user-upload-link as this user key: 200 for a working key, 401 for one refused. */
export async function uploadLink(host: StartedHost, userKey: string, name = 'probe.txt'): Promise<Answer> {
  return readAnswer(
    await fetch(`${host.url}/aws-storage/user-upload-link/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-key': userKey },
      body: JSON.stringify({ name }),
    }),
  );
}

/** Uploads `text` as `name` through user-upload (base64), expecting 200. */
export async function upload(host: StartedHost, userKey: string, name: string, text: string): Promise<void> {
  const a = await readAnswer(
    await fetch(`${host.url}/aws-storage/user-upload/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-key': userKey },
      body: JSON.stringify({ name, file: Buffer.from(text).toString('base64') }),
    }),
  );
  if (a.status !== 200) throw new Error(`upload ${name}: ${a.status} ${a.text}`);
}

/**
 * Polls `probe` (bounded by `limitMs` + one probe) until it gives `want`; resolves with the ms it took,
 * or with null when it never did.
 */
export async function msUntil(probe: () => Promise<number>, want: number, limitMs = 3_000): Promise<number | null> {
  const start = performance.now();
  for (let i = 0; i < 10_000; i++) {
    if ((await probe()) === want) return performance.now() - start;
    if (performance.now() - start > limitMs) return null;
    await new Promise((r) => setTimeout(r, 20));
  }
  return null;
}
