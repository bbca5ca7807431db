/**
 * Store attack, finding: one user poisons an object whose answer headers the store cannot write.
 *
 * A POST upload link (user-upload-link method POST) signs `["starts-with", "$Content-Type", ""]` when
 * no contentType is asked for, and `["eq", "$Content-Type", <contentType>]` when one is; the
 * contentType argument admits any character but `"`, `\` and U+0000-U+001F inside a quoted parameter
 * (so U+007F and anything above U+00FF pass). The store takes the form field byte for byte as UTF-8
 * and keeps it as the object's Content-Type. On every later GET or HEAD, node's `res.writeHead`
 * throws ERR_INVALID_CHAR inside the `.then` of scripts/store/server.ts `createStoreServer` — an
 * unhandled rejection on the store's thread, which kills the thread (every in-flight request of every
 * user is dropped; /healthz 503 until it is restarted). `user-read`, `user-delete` (which HEADs first)
 * and `make-links` with `check` all HEAD the object, so the file can never be read or deleted through
 * the socket, and each attempt stops the store again. SPEC §7: "no request can stop it".
 *
 * Runs against the host's own embedded store (its thread), so that the crash takes only the thread.
 */
import { startHost, type StartedHost, callEndpoint } from '../support/host';
import { request } from '../store/raw';

jest.setTimeout(90_000);

interface User {
  id: number;
  username: string;
  user_key: string;
}

let host: StartedHost;
let bob: User;

const call = (endpointName: string, args: Record<string, unknown>, user?: User) => callEndpoint(host, endpointName, args, user);

const stops = () => (host.logs().match(/store thread stopped/g) ?? []).length;

/** Waits (bounded) until /healthz says 200 again after a crash. */
async function healthy(): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`${host.url}/healthz`).catch(() => undefined);
    await r?.arrayBuffer();
    if (r?.status === 200) return true;
    await new Promise((res) => setTimeout(res, 100));
  }
  return false;
}

const B = 'poisonBoundary7d1';
function form(fields: Record<string, string>, file: string): string {
  const part = (name: string, value: string, extra = '') => `--${B}\r\nContent-Disposition: form-data; name="${name}"${extra}\r\n\r\n${value}\r\n`;
  return Object.entries(fields).map(([k, v]) => part(k, v)).join('') + part('file', file, '; filename="f.txt"') + `--${B}--\r\n`;
}

/**
 * Uploads through `link` (a POST link's answer) with `contentTypeField` as the form's Content-Type
 * (undefined: the link's own fields only); then what the socket's calls on the file did to the store.
 */
async function poisonAttempt(name: string, link: any, contentTypeField: string | undefined) {
  const before = stops();
  const fields: Record<string, string> = { ...link.fields };
  if (contentTypeField !== undefined) {
    delete fields['Content-Type'];
    fields['Content-Type'] = contentTypeField;
  }
  const body = form(fields, 'poison');
  const post = await request(link.link, {
    method: 'POST',
    headers: { 'content-type': `multipart/form-data; boundary=${B}`, 'content-length': String(Buffer.byteLength(body)) },
    body,
  });
  const read = await call('user-read', { name }, bob);
  await new Promise((r) => setTimeout(r, 300)); // the thread's exit is logged a moment later
  const back1 = await healthy();
  // once the store is back, the owner tries to get rid of the file
  const del = await call('user-delete', { name }, bob);
  await new Promise((r) => setTimeout(r, 300));
  const back = (await healthy()) && back1;
  return { post: post.status, read: read.status, del: del.status, deleted: del.body?.deleted, storeStopped: stops() - before, back };
}

beforeAll(async () => {
  host = await startHost(); // embedded store on the host's own thread
  bob = await host.addUser('bob');
});

afterAll(async () => {
  await host?.stop().catch(() => undefined);
});

test('FINDING: a POST link without contentType lets a Content-Type form field (U+20AC, CRLF, U+007F) stop the store on every HEAD/GET of the file', async () => {
  const results: Record<string, unknown> = {};
  for (const [i, [label, value]] of ([
    ['euro sign', 'text/plain\u20ac'],
    ['CRLF', 'text/plain\r\nSet-Cookie: a=b'],
    ['DEL', 'text/plain\u007f'],
  ] as const).entries()) {
    const name = `poison-free-${i}.txt`;
    const link = await call('user-upload-link', { name, method: 'POST', size: 1000 }, bob);
    expect(link.status).toBe(200);
    results[label] = await poisonAttempt(name, link.body, value);
  }
  // Safe: the upload is refused (4xx), or the file reads and deletes like any other; the store never stops.
  const verdict = Object.fromEntries(
    (Object.entries(results) as Array<[string, any]>).map(([label, r]) => {
      const safe = r.storeStopped === 0 && r.back && ((r.post >= 400 && r.post < 500) || (r.read === 200 && r.del === 200 && r.deleted?.length === 1));
      return [label, safe ? 'safe' : r];
    }),
  );
  expect(verdict).toEqual(Object.fromEntries(Object.keys(results).map((k) => [k, 'safe'])));
});

test('FINDING: a contentType argument with U+20AC or U+007F in a quoted parameter is signed into a POST policy and stops the store the same way', async () => {
  const results: Record<string, unknown> = {};
  for (const [i, [label, contentType]] of ([
    ['euro sign', 'text/plain; x="\u20ac"'],
    ['DEL', 'text/plain; x="\u007f"'],
  ] as const).entries()) {
    const name = `poison-arg-${i}.txt`;
    const link = await call('user-upload-link', { name, method: 'POST', size: 1000, contentType }, bob);
    if (link.status === 400) {
      results[label] = 'refused by the socket';
      continue;
    }
    expect(link.status).toBe(200);
    results[label] = await poisonAttempt(name, link.body, undefined);
  }
  const verdict = Object.fromEntries(
    (Object.entries(results) as Array<[string, any]>).map(([label, r]) => {
      const safe =
        r === 'refused by the socket' ||
        (r.storeStopped === 0 && r.back && ((r.post >= 400 && r.post < 500) || (r.read === 200 && r.del === 200 && r.deleted?.length === 1)));
      return [label, safe ? 'safe' : r];
    }),
  );
  expect(verdict).toEqual(Object.fromEntries(Object.keys(results).map((k) => [k, 'safe'])));
});

test('FINDING (socket side, same root): a contentType that cannot be an HTTP header value is 400 invalid_argument, not 503 storage_unavailable or a link', async () => {
  const outcomes: Record<string, number> = {};
  for (const [label, contentType] of [
    ['euro sign', 'text/plain; x="\u20ac"'],
    ['DEL', 'text/plain; x="\u007f"'],
  ] as const) {
    outcomes[`user-upload ${label}`] = (await call('user-upload', { name: `u-${label}.txt`, file: 'aGk=', contentType }, bob)).status;
    outcomes[`user-upload-link PUT ${label}`] = (await call('user-upload-link', { name: `l-${label}.txt`, contentType }, bob)).status;
    outcomes[`user-upload-link POST ${label}`] = (await call('user-upload-link', { name: `p-${label}.txt`, method: 'POST', contentType }, bob)).status;
  }
  expect(outcomes).toEqual(Object.fromEntries(Object.keys(outcomes).map((k) => [k, 400])));
  expect(await healthy()).toBe(true);
});
