/**
 * Presigned links handed out by the host: the store refuses a tampered signature, a tampered key, a
 * changed method, an expired link, another content type where one was signed, and a tampered POST
 * policy; none of them writes or reveals anything.
 */
import { b64, expectNoSecrets, md5, startHarness, type Harness, type User } from './harness';

jest.setTimeout(60_000);

let h: Harness;
let alice: User;
let bob: User;
let refused = 0;

beforeAll(async () => {
  h = await startHarness({ users: ['alice', 'bob'] });
  [alice, bob] = h.users;
  for (const u of h.users) {
    const r = await h.call('user-upload', { userKey: u.user_key, args: { name: 'secret.txt', file: b64(`${u.username}'s secret`), contentType: 'text/plain' } });
    expect(r.status).toBe(200);
  }
});
afterAll(async () => {
  await h?.close();
});

function flip(s: string): string {
  const last = s.at(-1)!;
  return s.slice(0, -1) + (last === '0' ? '1' : '0');
}
function withParam(link: string, name: string, value: string): string {
  const u = new URL(link);
  u.searchParams.set(name, value);
  return u.toString();
}
/** Refused: 403 (signature) or 400 (a malformed presigned query, as S3 answers); `also` for e.g. a 404 bucket. */
async function expectRefused(what: string, url: string, init: RequestInit = {}, also: number[] = []) {
  const r = await h.fetchLink(url, init);
  refused++;
  expect([what, [400, 403, ...also].includes(r.status) ? 'refused' : r.status]).toEqual([what, 'refused']);
  expect(r.text).not.toContain('secret');
}

test('read links: tampered signature, key, expiry, date, credential, or no signature at all: refused', async () => {
  const read = await h.call('user-read', { userKey: alice.user_key, args: { name: 'secret.txt', expiresIn: 600 } });
  expect(read.status).toBe(200);
  const link: string = read.body.link;
  expect((await h.fetchLink(link)).text).toBe("alice's secret"); // the untampered link works
  const sig = new URL(link).searchParams.get('X-Amz-Signature')!;

  await expectRefused('signature flipped', withParam(link, 'X-Amz-Signature', flip(sig)));
  await expectRefused('signature removed', (() => { const u = new URL(link); u.searchParams.delete('X-Amz-Signature'); return u.toString(); })());
  await expectRefused('signature of another link', withParam(link, 'X-Amz-Signature', 'a'.repeat(64)));
  await expectRefused("key changed to bob's file", link.replace(`/${alice.id}/secret.txt`, `/${bob.id}/secret.txt`));
  await expectRefused('key with a traversal', link.replace(`/${alice.id}/secret.txt`, `/${alice.id}/../${bob.id}/secret.txt`));
  await expectRefused('key with an encoded traversal', link.replace(`/${alice.id}/secret.txt`, `/${alice.id}/%2e%2e/${bob.id}/secret.txt`));
  await expectRefused('bucket changed', link.replace(`/${h.bucket}/`, `/${h.bucket}x/`), {}, [404]);
  await expectRefused('expiry lengthened', withParam(link, 'X-Amz-Expires', '604800'));
  await expectRefused('date moved', withParam(link, 'X-Amz-Date', '20990101T000000Z'));
  await expectRefused('credential changed', withParam(link, 'X-Amz-Credential', new URL(link).searchParams.get('X-Amz-Credential')!.replace(/^[^/]+/, 'OTHERKEY')));
  await expectRefused('a signed header added', withParam(link, 'X-Amz-SignedHeaders', 'host;x-amz-date'));
  await expectRefused('response header overridden', withParam(link, 'response-content-type', 'text/html'));
  await expectRefused('no query at all', link.split('?')[0]);
});

test('changed method: PUT, DELETE or POST on a read link, GET on an upload link: 403, nothing changed', async () => {
  const read = await h.call('user-read', { userKey: alice.user_key, args: { name: 'secret.txt' } });
  await expectRefused('PUT on a read link', read.body.link, { method: 'PUT', body: 'overwritten' });
  await expectRefused('DELETE on a read link', read.body.link, { method: 'DELETE' });
  await expectRefused('POST on a read link', read.body.link, { method: 'POST', body: 'x' });
  const up = await h.call('user-upload-link', { userKey: alice.user_key, args: { name: 'fresh.txt' } });
  expect(up.status).toBe(200);
  await expectRefused('GET on an upload link', up.body.link);
  await expectRefused('DELETE on an upload link', up.body.link, { method: 'DELETE' });
  await expectRefused('HEAD-less GET of bob via upload link', up.body.link.replace(`/${alice.id}/fresh.txt`, `/${bob.id}/secret.txt`));
  await expectRefused('PUT to another key with an upload link', up.body.link.replace(`/${alice.id}/fresh.txt`, `/${bob.id}/secret.txt`), { method: 'PUT', body: 'pwned' });
  expect((await h.read(`${alice.id}/secret.txt`))?.toString()).toBe("alice's secret");
  expect((await h.read(`${bob.id}/secret.txt`))?.toString()).toBe("bob's secret");
  expect(await h.exists(`${alice.id}/fresh.txt`)).toBe(false);
});

test('expired links are refused', async () => {
  const read = await h.call('user-read', { userKey: alice.user_key, args: { name: 'secret.txt', expiresIn: 1 } });
  const up = await h.call('user-upload-link', { userKey: alice.user_key, args: { name: 'late.txt', expiresIn: 1 } });
  const mk = await h.call('make-links', { adminKey: h.adminKey, args: { fileNames: [`${bob.id}/secret.txt`], expiresIn: 1 } });
  expect([read.status, up.status, mk.status]).toEqual([200, 200, 200]);
  await new Promise((r) => setTimeout(r, 2_200));
  await expectRefused('expired read link', read.body.link);
  await expectRefused('expired upload link', up.body.link, { method: 'PUT', body: 'late' });
  await expectRefused('expired make-links link', mk.body.files[`${bob.id}/secret.txt`]);
  expect(await h.exists(`${alice.id}/late.txt`)).toBe(false);
});

test('a PUT link signed for one content type refuses another (and none)', async () => {
  const up = await h.call('user-upload-link', { userKey: alice.user_key, args: { name: 'typed.txt', contentType: 'text/plain' } });
  expect(up.body.headers).toEqual({ 'Content-Type': 'text/plain' });
  await expectRefused('text/html instead of text/plain', up.body.link, { method: 'PUT', headers: { 'Content-Type': 'text/html' }, body: '<script>1</script>' });
  await expectRefused('no content type', up.body.link, { method: 'PUT', body: new Uint8Array([1, 2, 3]) });
  expect(await h.exists(`${alice.id}/typed.txt`)).toBe(false);
  const ok = await h.fetchLink(up.body.link, { method: 'PUT', headers: up.body.headers, body: 'plain' });
  expect(ok.status).toBe(200);
  expect((await h.read(`${alice.id}/typed.txt`))?.toString()).toBe('plain');
});

test('POST policies: tampered policy, key, content type or size are refused', async () => {
  const up = await h.call('user-upload-link', { userKey: alice.user_key, args: { name: 'posted.txt', method: 'POST', contentType: 'text/plain', size: 100 } });
  expect(up.status).toBe(200);
  const fields: Record<string, string> = up.body.fields;
  const post = (override: Record<string, string>, file: Buffer | string = 'hello', type = 'text/plain') => {
    const form = new FormData();
    for (const [k, v] of Object.entries({ ...fields, ...override })) form.append(k, v);
    form.append('file', new Blob([typeof file === 'string' ? file : new Uint8Array(file)], { type }), 'f.txt');
    return h.fetchLink(up.body.link, { method: 'POST', body: form });
  };
  const refusedStatus = (s: number) => s >= 400 && s < 500;
  const cases: Array<[string, Record<string, string>, (Buffer | string)?]> = [
    ['key changed to bob', { key: `${bob.id}/secret.txt` }],
    ['key with a traversal', { key: `${alice.id}/../${bob.id}/secret.txt` }],
    ['content type changed', { 'Content-Type': 'text/html' }],
    ['policy tampered', { Policy: Buffer.from(Buffer.from(fields.Policy, 'base64').toString().replace('"text/plain"', '"text/html"')).toString('base64') }],
    ['signature flipped', { 'X-Amz-Signature': flip(fields['X-Amz-Signature']) }],
    ['file over the size', {}, Buffer.alloc(101, 'a')],
  ];
  for (const [what, override, file] of cases) {
    const r = await post(override, file);
    refused++;
    expect([what, refusedStatus(r.status)]).toEqual([what, true]);
  }
  expect((await h.read(`${bob.id}/secret.txt`))?.toString()).toBe("bob's secret");
  expect(await h.exists(`${alice.id}/posted.txt`)).toBe(false);
  const ok = await post({});
  expect([200, 201, 204]).toContain(ok.status);
  expect(md5((await h.read(`${alice.id}/posted.txt`))!)).toBe(md5('hello'));
});

test('no link, answer or log line leaks a secret', () => {
  const seen = expectNoSecrets(h);
  console.log(`links: ${refused} tampered, expired or misused requests refused by the store; ${seen.answers} answers checked for secrets`);
});
