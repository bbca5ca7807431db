/**
 * The socket's small holes (issue 12, "The socket"), over HTTP against the host and the embedded
 * store: a POST policy names its one key (`eq $key`), so `${filename}` is just characters; names given
 * twice to user-delete are reported once; a key argument of the wrong shape is 400 or 401, never 500;
 * a client that leaves mid-body costs one log line, no stack.
 */
import net from 'node:net';
import { b64, expectNoSecrets, md5, startHarness, type Harness, type User } from './harness';

jest.setTimeout(60_000);

let h: Harness;
let alice: User;
let bob: User;

beforeAll(async () => {
  h = await startHarness({ users: ['alice', 'bob'] });
  [alice, bob] = h.users;
  await h.put(`${bob.id}/secret.txt`, "bob's secret");
});
afterAll(async () => {
  await h?.close();
});

const policyOf = (fields: Record<string, string>) => JSON.parse(Buffer.from(fields.Policy, 'base64').toString('utf8'));

function postForm(link: string, fields: Record<string, string>, file: string, fileName = 'f.txt') {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('file', new Blob([file], { type: 'text/plain' }), fileName);
  return h.fetchLink(link, { method: 'POST', body: form });
}

describe('POST policies name the exact key', () => {
  test('every POST link, user or admin, names its key as ["eq", "$key", key], never starts-with; a changed key field is refused', async () => {
    const links = [
      await h.call('user-upload-link', { userKey: alice.user_key, args: { name: 'plain.txt', method: 'POST' } }),
      await h.call('user-upload-link', { userKey: alice.user_key, args: { name: 'up/typed.txt', method: 'POST', contentType: 'text/plain' } }),
      await h.call('admin-upload-link', { adminKey: h.adminKey, args: { name: 'reports/r.txt', method: 'POST' } }),
    ];
    for (const up of links) {
      expect(up.status).toBe(200);
      const { conditions } = policyOf(up.body.fields);
      const onKey = conditions.filter((c: unknown) => (Array.isArray(c) ? c[1] === '$key' : Object.prototype.hasOwnProperty.call(c, 'key')));
      expect(onKey).toEqual([['eq', '$key', up.body.key]]);
      expect(up.body.fields.key).toBe(up.body.key);
    }
    const [up] = links;
    const before = await h.keys();
    for (const key of [`${alice.id}/\${filename}`, `${alice.id}/plain.txt2`, `${alice.id}/evil\\name.txt`, `${bob.id}/secret.txt`]) {
      const r = await postForm(up.body.link, { ...up.body.fields, key }, 'sneaky', 'evil\\name.txt');
      expect([key, r.status >= 400 && r.status < 500]).toEqual([key, true]);
    }
    expect(await h.keys()).toEqual(before);
    expect((await h.read(`${bob.id}/secret.txt`))?.toString()).toBe("bob's secret");
    const ok = await postForm(up.body.link, up.body.fields, 'hello');
    expect([200, 201, 204]).toContain(ok.status);
    expect(md5((await h.read(up.body.key))!)).toBe(md5('hello'));
  });

  test('${filename} is just characters: no POST link is made for such a name (400, nothing signed); a PUT link stores it as written', async () => {
    for (const [endpoint, key] of [['user-upload-link', { userKey: alice.user_key }], ['admin-upload-link', { adminKey: h.adminKey }]] as const) {
      const r = await h.call(endpoint, { ...key, args: { name: 'up/${filename}', method: 'POST', contentType: 'text/plain' } });
      expect([endpoint, r.status, r.body.code]).toEqual([endpoint, 400, 'invalid_argument']);
      expect(r.body.message).toMatch(/\$\{filename\}/);
      expect(r.text).not.toMatch(/Policy|X-Amz-Signature/);
    }
    const put = await h.call('user-upload-link', { userKey: alice.user_key, args: { name: 'up/${filename}', contentType: 'text/plain' } });
    expect(put.status).toBe(200);
    expect(put.body.key).toBe(`${alice.id}/up/\${filename}`);
    const sent = await h.fetchLink(put.body.link, { method: 'PUT', headers: put.body.headers, body: 'literal' });
    expect(sent.status).toBe(200);
    expect((await h.read(`${alice.id}/up/\${filename}`))?.toString()).toBe('literal');
    const read = await h.call('user-read', { userKey: alice.user_key, args: { name: 'up/${filename}' } });
    expect((await h.fetchLink(read.body.link)).text).toBe('literal');
  });
});

describe('user-delete', () => {
  test('a name given twice (or in two Unicode forms of one name) is deleted, or reported missing, once', async () => {
    for (const name of ['twice.txt', 'caf\u00e9.txt']) {
      const put = await h.call('user-upload', { userKey: alice.user_key, args: { name, file: b64('x') } });
      expect(put.status).toBe(200);
    }
    const del = await h.call('user-delete', {
      userKey: alice.user_key,
      args: { names: ['twice.txt', 'twice.txt', 'caf\u00e9.txt', 'cafe\u0301.txt', 'gone.txt', 'gone.txt'] },
    });
    expect(del.status).toBe(200);
    expect([...del.body.deleted].sort()).toEqual(['caf\u00e9.txt', 'twice.txt']);
    expect(del.body.errors).toEqual([{ name: 'gone.txt', message: expect.any(String) }]);
    expect(await h.exists(`${alice.id}/twice.txt`)).toBe(false);
  });
});

describe('malformed key arguments', () => {
  test('a key that is a number, boolean, object, array of objects, or nested 10,000 deep: 400 or 401, never 500, on every kind of endpoint', async () => {
    const deep = (n: number) => '['.repeat(n) + '"x"' + ']'.repeat(n);
    const shapes: Array<[string, string]> = [
      ['number', '123'],
      ['boolean', 'true'],
      ['object', '{"a":"b"}'],
      ['array of objects', '[{"a":"b"}]'],
      ['nested array', '[["x"]]'],
      ['nested 10,000 deep', deep(10_000)],
    ];
    const targets = [
      '/aws-storage/user-list/',
      '/aws-storage/user-upload/',
      '/aws-storage/make-links/',
      '/v3/instances/local/endpoints/sockets/aws-storage/admin-upload-link/',
      '/v2/instances/local/users/',
    ];
    const seen: string[] = [];
    for (const arg of ['_user_key', 'user_key', '_api_key', 'api_key']) {
      for (const [label, value] of shapes) {
        for (const target of targets) {
          const res = await fetch(h.host.url + target, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: `{"name":"k.txt","username":"zed","${arg}":${value}}`,
          });
          const body = await res.json();
          seen.push(`${res.status}`);
          expect([arg, label, target, [400, 401].includes(res.status), body.code]).toEqual([
            arg,
            label,
            target,
            true,
            res.status === 400 ? 'invalid_argument' : 'unauthorized',
          ]);
        }
      }
    }
    expect(h.host.logs()).not.toMatch(/error:|RangeError|Maximum call stack/);
    expect(await h.keys()).not.toContain('k.txt');
  });
});

describe('an aborted request', () => {
  test('a client that leaves mid-body is logged in one line (499), with no stack trace and no error line', async () => {
    const port = Number(new URL(h.host.url).port);
    const before = h.host.logs().length;
    await new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write(
          `POST /aws-storage/user-upload/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
            `X-USER-KEY: ${alice.user_key}\r\nContent-Length: 1000000\r\n\r\n{"name":"aborted.txt","file":"${'A'.repeat(100_000)}`,
        );
        setTimeout(() => s.destroy(), 200);
      });
      s.on('error', () => undefined);
      s.on('close', () => resolve());
    });
    // one batch of log lines is written a turn later
    let lines: string[] = [];
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 50));
      lines = h.host.logs().slice(before).split('\n').filter((l) => l.trim() !== '');
      if (lines.some((l) => l.includes('/aws-storage/user-upload/'))) break;
    }
    const mine = lines.filter((l) => l.includes('/aws-storage/user-upload/'));
    expect(mine).toEqual([expect.stringMatching(/ POST \/aws-storage\/user-upload\/ 499 client closed the connection \d+(\.\d+)?ms$/)]);
    expect(lines.filter((l) => /^\s+at |error|aborted|ECONNRESET/i.test(l))).toEqual([]);
    expect(await h.exists(`${alice.id}/aborted.txt`)).toBe(false);
  });

  test('no answer or log line carries a secret', () => {
    expectNoSecrets(h);
  });
});
