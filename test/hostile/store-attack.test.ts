/**
 * Store attack, what held: an outsider with bob's links (user-read, user-upload-link PUT and POST)
 * tries to reach alice's file (`<alice.id>/secret.txt`), or anything beyond the one operation on the
 * one key a link was signed for, through the embedded store of the host (`npm start`, its own
 * thread): path canonicalisation, query and header tricks, malformed framing, POST form tricks,
 * multipart, listing, CORS, credentials in output, racing writes. Every request goes over a bare
 * socket, so nothing is normalised on the client side. The finding is in store-attack-poison.test.ts.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { storeClient } from '../../scripts/s3/client';
import { startHost, type StartedHost, callEndpoint } from '../support/host';

jest.setTimeout(90_000);

interface User {
  id: number;
  username: string;
  user_key: string;
}

const ALICE_SECRET = "alice's secret: never to bob";
const BOB_A = "bob's own a.txt";

let host: StartedHost;
let s3: S3Client;
let alice: User;
let bob: User;
let bucket: string;
let storeHost: string; // "127.0.0.1:<port>"
let storePort: number;

const call = (endpointName: string, args: Record<string, unknown>, user?: User) => callEndpoint(host, endpointName, args, user);

interface Raw {
  status: number;
  head: string;
  body: string;
}

/**
 * Bytes on a bare TCP connection to the store (Connection: close is the caller's), everything read
 * until the store closes or `timeoutMs`; status 0: no status line (closed or timed out).
 */
function raw(bytes: Buffer | string, timeoutMs = 5_000): Promise<Raw> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port: storePort });
    let got = Buffer.alloc(0);
    const finish = () => {
      clearTimeout(timer);
      sock.destroy();
      let s = got.toString('latin1');
      // skip interim answers (100 Continue)
      while (/^HTTP\/1\.1 1\d\d /.test(s) && s.includes('\r\n\r\n')) s = s.slice(s.indexOf('\r\n\r\n') + 4);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(s);
      const end = s.indexOf('\r\n\r\n');
      resolve({ status: m ? Number(m[1]) : 0, head: end < 0 ? s : s.slice(0, end), body: end < 0 ? '' : Buffer.from(s.slice(end + 4), 'latin1').toString('utf8') });
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
    sock.on('error', finish);
    sock.on('close', finish);
    sock.on('connect', () => sock.end(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes));
  });
}

const req = (method: string, target: string, headers: Array<[string, string]> = [], body = '') =>
  `${method} ${target} HTTP/1.1\r\n${[['Host', storeHost], ...headers, ['Connection', 'close']].map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`;

/** path + query of a link */
const target = (link: string) => {
  const u = new URL(link);
  return u.pathname + u.search;
};

async function objectText(key: string): Promise<string | undefined> {
  try {
    const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await r.Body!.transformToByteArray()).toString('utf8');
  } catch (e) {
    if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
    throw e;
  }
}

async function allKeys(): Promise<string[]> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

async function expectAliceUntouched(what: string): Promise<void> {
  expect([what, await objectText(`${alice.id}/secret.txt`)]).toEqual([what, ALICE_SECRET]);
  const aliceKeys = (await allKeys()).filter((k) => k.startsWith(`${alice.id}/`));
  expect([what, aliceKeys]).toEqual([what, [`${alice.id}/secret.txt`]]);
}

const storeStops = () => (host.logs().match(/store thread (stopped|failed)/g) ?? []).length;

beforeAll(async () => {
  host = await startHost();
  bucket = host.bucket!;
  const endpoint = new URL(host.s3Endpoint!);
  storeHost = endpoint.host;
  storePort = Number(endpoint.port);
  s3 = storeClient({ endpoint: host.s3Endpoint!, region: 'us-east-1', ...host.s3Credentials! });
  alice = await host.addUser('alice');
  bob = await host.addUser('bob');
  expect((await call('user-upload', { name: 'secret.txt', file: Buffer.from(ALICE_SECRET).toString('base64'), contentType: 'text/plain' }, alice)).status).toBe(200);
  expect((await call('user-upload', { name: 'a.txt', file: Buffer.from(BOB_A).toString('base64'), contentType: 'text/plain' }, bob)).status).toBe(200);
  expect((await call('user-upload', { name: 'caf\u00e9.txt', file: Buffer.from('nfc').toString('base64') }, bob)).status).toBe(200);
});

afterAll(async () => {
  s3?.destroy();
  await host?.stop().catch(() => undefined);
});

test("bob's read link, re-pathed or re-queried every way: another key is 400/403/404, never alice's bytes; the same key reads only bob's file", async () => {
  const link = target((await call('user-read', { name: 'a.txt' }, bob)).body.link);
  const nfcLink = target((await call('user-read', { name: 'caf\u00e9.txt' }, bob)).body.link);
  const [path, query] = link.split('?');
  const own = `/${bob.id}/a.txt`;
  const a = `/${alice.id}/secret.txt`;
  const swap = (to: string) => `${path.replace(own, to)}?${query}`;
  const sig = new URL(`http://x${link}`).searchParams.get('X-Amz-Signature')!;
  const expires = new URL(`http://x${link}`).searchParams.get('X-Amz-Expires')!;
  const otherKey: Array<[string, string]> = [
    ['traversal', swap(`/${bob.id}/..${a}`)],
    ['traversal %2e%2e', swap(`/${bob.id}/%2e%2e${a}`)],
    ['traversal %2E%2E', swap(`/${bob.id}/%2E%2E${a}`)],
    ['traversal %2F', swap(`/${bob.id}%2F..%2F${alice.id}%2Fsecret.txt`)],
    ['traversal backslash', swap(`/${bob.id}/..%5C${alice.id}%5Csecret.txt`)],
    ['traversal overlong %C0%AE', swap(`/${bob.id}/%C0%AE%C0%AE${a}`)],
    ['traversal overlong %C0%AF', swap(`/${bob.id}/..%C0%AF${alice.id}/secret.txt`)],
    ['double-encoded traversal', swap(`/${bob.id}/%252e%252e${a}`)],
    ["alice's key", swap(a)],
    ['trailing slash', swap(`${own}/`)],
    ['double slash in key', swap(`/${bob.id}//a.txt`)],
    ['double slash before bucket', `/${path}?${query}`],
    ['slash after bucket', swap(`/${own}`)],
    ['%2F inside the key', swap(`/${bob.id}%2Fa.txt`)],
    ['dot segment', swap(`/${bob.id}/./a.txt`)],
    ['NUL', swap(`${own}%00`)],
    ['NFD twin of an NFC name', nfcLink.replace('caf%C3%A9.txt', 'cafe%CC%81.txt')],
    ['second ?', `${link}?x=1`],
    ['literal #', `${link}#frag`],
    ['duplicated signature', `${link}&X-Amz-Signature=${sig}`],
    ['duplicated X-Amz-Expires', `${link}&X-Amz-Expires=604800`],
    ['duplicated X-Amz-Credential', `${link}&X-Amz-Credential=x`],
    ['lower-case x-amz-signature', link.replace('X-Amz-Signature', 'x-amz-signature')],
    ['lower-case x-amz-expires', link.replace('X-Amz-Expires', 'x-amz-expires')],
    ['lower-case x-amz-algorithm', link.replace('X-Amz-Algorithm', 'x-amz-algorithm')],
    ['X-Amz-Expires with a leading zero', link.replace(`X-Amz-Expires=${expires}`, `X-Amz-Expires=0${expires}`)],
    ['X-Amz-Expires with a plus sign', link.replace(`X-Amz-Expires=${expires}`, `X-Amz-Expires=%2B${expires}`)],
    ['X-Amz-Expires huge', link.replace(`X-Amz-Expires=${expires}`, 'X-Amz-Expires=99999999999999999999')],
    ['X-Amz-Expires empty', link.replace(`X-Amz-Expires=${expires}`, 'X-Amz-Expires=')],
    ['empty parameter', `${link}&=`],
    ['response-content-type added', `${link}&response-content-type=text%2Fhtml`],
    ['x-amz-acl parameter added', `${link}&x-amz-acl=public-read`],
    ['X-Amz-Security-Token added', `${link}&X-Amz-Security-Token=x`],
    ['x-id changed', link.replace('x-id=GetObject', 'x-id=ListObjects')],
    ['?acl', `${link}&acl`],
    ['?tagging', `${link}&tagging`],
    ['?uploads', `${link}&uploads`],
    ['?versionId', `${link}&versionId=null`],
  ];
  const outcomes: string[] = [];
  for (const [what, t] of otherKey) {
    for (const method of ['GET', 'HEAD']) {
      const r = await raw(req(method, t));
      outcomes.push(`${method} ${what}: ${r.status}`);
      expect([method, what, r.body.includes('alice')]).toEqual([method, what, false]);
      // HEAD is another operation: never allowed on a GET link
      expect([method, what, [400, 403, 404, 501].includes(r.status) ? 'refused' : r.status]).toEqual([method, what, 'refused']);
    }
  }
  // The same key written another way: bob's own file, or refused.
  const sameKey: Array<[string, string]> = [
    ['the link itself', link],
    ['%3N for the digit', swap(`/%3${bob.id}/a.txt`)],
    ['%61 for a', swap(`/${bob.id}/%61.txt`)],
    ['mixed-case escape of the bucket', `${path.replace(`/${bucket}/`, `/${bucket.replace('-', '%2d')}/`)}?${query}`],
    ['trailing &', `${link}&`],
    ['reordered query', `${path}?${query.split('&').reverse().join('&')}`],
  ];
  for (const [what, t] of sameKey) {
    const r = await raw(req('GET', t));
    outcomes.push(`GET ${what}: ${r.status}`);
    expect([what, r.status === 200 ? r.body : [400, 403].includes(r.status) ? 'refused' : r.status]).toEqual([what, r.status === 200 ? BOB_A : 'refused']);
  }
  expect((await raw(req('GET', link))).body).toBe(BOB_A); // positive control
  await expectAliceUntouched('read-link variants');
});

test("bob's read link with hostile headers and framing: the same answer or refused, never another key, the store keeps serving", async () => {
  const link = target((await call('user-read', { name: 'a.txt' }, bob)).body.link);
  const aliceTarget = link.replace(`/${bob.id}/a.txt`, `/${alice.id}/secret.txt`);
  const cases: Array<[string, string]> = [
    ['two Host headers', `GET ${link} HTTP/1.1\r\nHost: ${storeHost}\r\nHost: ${storeHost}\r\nConnection: close\r\n\r\n`],
    ['Host with another port', `GET ${link} HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: close\r\n\r\n`],
    ['no Host', `GET ${link} HTTP/1.1\r\nConnection: close\r\n\r\n`],
    ['absolute-form target, other host', `GET http://other.example${aliceTarget} HTTP/1.1\r\nHost: ${storeHost}\r\nConnection: close\r\n\r\n`],
    ['absolute-form target, own host', `GET http://${storeHost}${link} HTTP/1.1\r\nHost: ${storeHost}\r\nConnection: close\r\n\r\n`],
    ['obs-fold Host', `GET ${link} HTTP/1.1\r\nHost: ${storeHost}\r\n x\r\nConnection: close\r\n\r\n`],
    ['Content-Length and Transfer-Encoding', `GET ${link} HTTP/1.1\r\nHost: ${storeHost}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n`],
    ['smuggled second request', `GET ${link} HTTP/1.1\r\nHost: ${storeHost}\r\nContent-Length: 0\r\n\r\nGET ${aliceTarget} HTTP/1.1\r\nHost: ${storeHost}\r\nConnection: close\r\n\r\n`],
    ['unsigned x-amz-copy-source', `GET ${link} HTTP/1.1\r\nHost: ${storeHost}\r\nx-amz-copy-source: /${bucket}/${alice.id}/secret.txt\r\nConnection: close\r\n\r\n`],
    ['Authorization beside the presigned query', `GET ${link} HTTP/1.1\r\nHost: ${storeHost}\r\nAuthorization: AWS4-HMAC-SHA256 Credential=x/20200101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=${'0'.repeat(64)}\r\nConnection: close\r\n\r\n`],
    ['HTTP/1.0', `GET ${link} HTTP/1.0\r\nHost: ${storeHost}\r\n\r\n`],
  ];
  for (const [what, bytes] of cases) {
    const r = await raw(bytes);
    expect([what, r.body.includes('alice')]).toEqual([what, false]);
    expect([what, r.status === 200 ? r.body.startsWith(BOB_A) : r.status === 0 || (r.status >= 400 && r.status < 500) ? 'refused' : r.status]).toEqual([
      what,
      r.status === 200 ? true : 'refused',
    ]);
  }
  const hz = await fetch(`${host.url}/healthz`);
  expect(hz.status).toBe(200);
});

test("bob's PUT link: no trick writes anything but bob's one key, nor starts or joins a multipart upload", async () => {
  const put = async () => target((await call('user-upload-link', { name: 'put.txt' }, bob)).body.link);
  const own = `/${bob.id}/put.txt`;
  const a = `/${alice.id}/secret.txt`;
  // an upload alice's key really has (started with the store's own key pair)
  const mp = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: `${alice.id}/secret.txt` }));
  try {
    const link = await put();
    const cases: Array<[string, string]> = [
      ['onto alice\'s key', req('PUT', link.replace(own, a), [['Content-Length', '4']], 'EVIL')],
      ['traversal', req('PUT', link.replace(own, `/${bob.id}/..${a}`), [['Content-Length', '4']], 'EVIL')],
      ['encoded traversal', req('PUT', link.replace(own, `/${bob.id}/%2e%2e%2F${alice.id}%2Fsecret.txt`), [['Content-Length', '4']], 'EVIL')],
      ['as POST ?uploads (initiate)', req('POST', `${link}&uploads`, [['Content-Length', '0']])],
      ['as POST ?uploads on alice\'s key', req('POST', `${link.replace(own, a)}&uploads`, [['Content-Length', '0']])],
      ['UploadPart into alice\'s upload', req('PUT', `${link.replace(own, a)}&uploadId=${mp.UploadId}&partNumber=1`, [['Content-Length', '4']], 'EVIL')],
      ['UploadPart with alice\'s uploadId on bob\'s key', req('PUT', `${link}&uploadId=${mp.UploadId}&partNumber=1`, [['Content-Length', '4']], 'EVIL')],
      ['complete alice\'s upload', req('POST', `${link.replace(own, a)}&uploadId=${mp.UploadId}`, [['Content-Length', '0']])],
      ['list alice\'s parts', req('GET', `${link.replace(own, a)}&uploadId=${mp.UploadId}`)],
      ['abort alice\'s upload', req('DELETE', `${link.replace(own, a)}&uploadId=${mp.UploadId}`)],
      ['list uploads', req('GET', `/${bucket}?uploads&${link.split('?')[1]}`)],
      ['as DELETE', req('DELETE', link)],
      ['as GET', req('GET', link)],
      ['as POST', req('POST', link, [['Content-Length', '4']], 'EVIL')],
      ['unsigned x-amz-copy-source', req('PUT', link, [['x-amz-copy-source', `/${bucket}/${alice.id}/secret.txt`], ['Content-Length', '0']])],
      ['unsigned x-amz-meta', req('PUT', link, [['x-amz-meta-a', 'b'], ['Content-Length', '4']], 'EVIL')],
      ['unsigned x-amz-content-sha256 (aws-chunked)', req('PUT', link, [['x-amz-content-sha256', 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD'], ['Content-Length', '4']], 'EVIL')],
      ['two Content-Length', req('PUT', link, [['Content-Length', '4'], ['Content-Length', '9']], 'EVILEVIL!')],
      ['Content-Length and Transfer-Encoding', req('PUT', link, [['Content-Length', '4'], ['Transfer-Encoding', 'chunked']], '4\r\nEVIL\r\n0\r\n\r\n')],
      ['Transfer-Encoding alone', req('PUT', link, [['Transfer-Encoding', 'chunked']], '4\r\nEVIL\r\n0\r\n\r\n')],
      ['obs-fold', req('PUT', link, [['Content-Length', '4'], ['X-Fold', 'a\r\n b']], 'EVIL')],
    ];
    for (const [what, bytes] of cases) {
      const r = await raw(bytes);
      expect([what, r.status === 0 || (r.status >= 400 && r.status < 500) || r.status === 501 ? 'refused' : r.status]).toEqual([what, 'refused']);
      expect([what, r.body.includes('alice')]).toEqual([what, false]);
    }
    // framing that is well-formed writes bob's key, whole, with exactly the bytes sent
    const fine: Array<[string, string, string]> = [
      ['Expect: 100-continue', req('PUT', await put(), [['Content-Length', '5'], ['Expect', '100-continue']], 'HELLO'), 'HELLO'],
      ['Range on PUT', req('PUT', await put(), [['Content-Length', '5'], ['Range', 'bytes=0-1']], 'WORLD'), 'WORLD'],
    ];
    for (const [what, bytes, body] of fine) {
      const r = await raw(bytes);
      expect([what, r.status]).toEqual([what, 200]);
      expect([what, await objectText(`${bob.id}/put.txt`)]).toEqual([what, body]);
    }
    // a write condition that does not hold writes nothing (S3's conditional writes)
    const unmet = await raw(req('PUT', await put(), [['Content-Length', '3'], ['If-Match', '"nope"']], 'ABC'));
    expect(unmet.status).toBe(412);
    expect(await objectText(`${bob.id}/put.txt`)).toBe('WORLD');
  } finally {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: `${alice.id}/secret.txt`, UploadId: mp.UploadId })).catch(() => undefined);
  }
  await expectAliceUntouched('PUT-link tricks');
  expect((await allKeys()).filter((k) => k.startsWith(`${bob.id}/`))).toEqual([`${bob.id}/a.txt`, `${bob.id}/caf\u00e9.txt`, `${bob.id}/put.txt`].sort());
});

test("bob's POST link: form tricks write at most bob's one key", async () => {
  const B = 'atkBoundary93x';
  const part = (name: string, value: string, extra = '') => `--${B}\r\nContent-Disposition: form-data; name="${name}"${extra}\r\n\r\n${value}\r\n`;
  const fieldsOf = (f: Record<string, string>, change: Record<string, string | null> = {}) =>
    Object.entries({ ...f, ...change })
      .filter(([, v]) => v !== null)
      .map(([k, v]) => part(k, v as string))
      .join('');
  const file = (v = 'BOB', filename = 'x.txt') => part('file', v, `; filename="${filename}"`);
  const end = `--${B}--\r\n`;
  const a = `${alice.id}/secret.txt`;
  const cases: Array<[string, (f: Record<string, string>) => string]> = [
    ['key = alice\'s', (f) => fieldsOf(f, { key: a }) + file() + end],
    ['key after the file part', (f) => fieldsOf(f, { key: null }) + file() + part('key', f.key) + end],
    ['KEY beside key', (f) => fieldsOf(f) + part('KEY', a) + file() + end],
    ['Key instead of key', (f) => fieldsOf(f, { key: null }) + part('Key', a) + file() + end],
    ['key = ${filename}, filename alice\'s key', (f) => fieldsOf(f, { key: `${bob.id}/\${filename}` }) + file('BOB', a) + end],
    ['key = ${filename}, filename ../', (f) => fieldsOf(f, { key: `${bob.id}/\${filename}` }) + file('BOB', `../${a}`) + end],
    ['key = ${filename}, filename backslashes', (f) => fieldsOf(f, { key: `${bob.id}/\${filename}` }) + file('BOB', `..\\${alice.id}\\secret.txt`) + end],
    ['filename*= on the file part', (f) => fieldsOf(f, { key: `${bob.id}/\${filename}` }) + part('file', 'BOB', `; filename*=UTF-8''..%2F${alice.id}%2Fsecret.txt`) + end],
    ['policy of another key (alice) by name case', (f) => fieldsOf(f, { Policy: null }) + part('policy', f.Policy) + part('POLICY', f.Policy) + file() + end],
    ['success_action_redirect', (f) => fieldsOf(f) + part('success_action_redirect', 'https://evil.example/') + file() + end],
    ['x-amz-meta field', (f) => fieldsOf(f) + part('x-amz-meta-evil', '1') + file() + end],
    ['acl field', (f) => fieldsOf(f) + part('acl', 'public-read') + file() + end],
    ['field name with a trailing space', (f) => fieldsOf(f) + part('key ', a) + file() + end],
    ['empty field name', (f) => fieldsOf(f) + part('', a) + file() + end],
    ['boundary inside a field value', (f) => fieldsOf(f, { key: `${f.key}\r\n--${B}\r\nContent-Disposition: form-data; name="key"\r\n\r\n${a}` }) + file() + end],
    ['no file part', (f) => fieldsOf(f) + end],
  ];
  const outcomes: string[] = [];
  for (const [what, build] of cases) {
    const link = (await call('user-upload-link', { name: 'post.txt', method: 'POST', size: 1000 }, bob)).body;
    const body = build(link.fields);
    const r = await raw(
      req('POST', new URL(link.link).pathname, [['Content-Type', `multipart/form-data; boundary=${B}`], ['Content-Length', String(Buffer.byteLength(body))]], body),
    );
    outcomes.push(`${r.status} ${what}`);
    expect([what, r.status >= 400 && r.status < 500 ? 'refused' : r.status]).toEqual([what, 'refused']);
    await expectAliceUntouched(what);
    const bobKeys = (await allKeys()).filter((k) => k.startsWith(`${bob.id}/`) && k !== `${bob.id}/a.txt` && k !== `${bob.id}/caf\u00e9.txt` && k !== `${bob.id}/put.txt`);
    expect([what, bobKeys]).toEqual([what, []]);
  }
  // held but taken: fields the store ignores or that change nothing; the one key, bob's bytes
  const taken: Array<[string, (f: Record<string, string>) => string]> = [
    ['bucket field naming another bucket', (f) => fieldsOf(f, { bucket: 'other-bucket' }) + file('ONE') + end],
    ['two file parts (the second ignored)', (f) => fieldsOf(f) + file('ONE') + file('TWO') + end],
    ['x-ignore- field naming alice\'s key', (f) => fieldsOf(f) + part('x-ignore-key', a) + file('ONE') + end],
    ['fields after the file part', (f) => fieldsOf(f) + file('ONE') + part('key', a) + end],
  ];
  for (const [what, build] of taken) {
    const link = (await call('user-upload-link', { name: 'post.txt', method: 'POST', size: 1000 }, bob)).body;
    const body = build(link.fields);
    const r = await raw(
      req('POST', new URL(link.link).pathname, [['Content-Type', `multipart/form-data; boundary=${B}`], ['Content-Length', String(Buffer.byteLength(body))]], body),
    );
    expect([what, r.status === 204 || (r.status >= 400 && r.status < 500) ? 'ok' : r.status]).toEqual([what, 'ok']);
    if (r.status === 204) expect([what, await objectText(`${bob.id}/post.txt`)]).toEqual([what, 'ONE']);
    await expectAliceUntouched(what);
    await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${bob.id}/post.txt` })).then(() => call('user-delete', { name: 'post.txt' }, bob)).catch(() => undefined);
  }
});

test('no socket link lists the bucket or a prefix; the store answers nothing unsigned', async () => {
  const read = (await call('user-read', { name: 'a.txt' }, bob)).body.link as string;
  const up = (await call('user-upload-link', { name: 'x.txt' }, bob)).body.link as string;
  for (const link of [read, up]) {
    const q = link.split('?')[1];
    for (const t of [
      `/${bucket}?${q}`,
      `/${bucket}/?${q}`,
      `/${bucket}?list-type=2&prefix=${alice.id}%2F&${q}`,
      `/${bucket}/${bob.id}/?${q}`,
      `/${bucket}/${bob.id}?${q}`,
      `/?${q}`,
      `/${bucket}?list-type=2`,
      `/${bucket}?uploads`,
      `/${bucket}?cors`,
      `/`,
    ]) {
      for (const method of ['GET', 'HEAD']) {
        const r = await raw(req(method, t));
        expect([method, t, [400, 403, 404, 405, 501].includes(r.status) ? 'refused' : r.status]).toEqual([method, t, 'refused']);
        expect([t, /secret|ListBucketResult|<Key>/.test(r.body)]).toEqual([t, false]);
      }
    }
  }
});

test('CORS preflights and answers leak nothing: the same for an existing and a missing key, and for another user', async () => {
  const pre = (path: string, method = 'GET', headers = 'x-amz-copy-source') =>
    raw(req('OPTIONS', path, [['Origin', 'https://evil.example'], ['Access-Control-Request-Method', method], ['Access-Control-Request-Headers', headers]]));
  const strip = (r: Raw) => r.head.replace(/^(x-amz-request-id|date): .*$/gim, '').trim();
  const existing = await pre(`/${bucket}/${alice.id}/secret.txt`);
  const missing = await pre(`/${bucket}/${alice.id}/nothing-here.txt`);
  expect(strip(existing)).toBe(strip(missing));
  expect(existing.body).not.toContain('secret');
  for (const m of ['DELETE', 'PATCH']) {
    const r = await pre(`/${bucket}/${alice.id}/secret.txt`, m);
    expect([m, r.status]).toEqual([m, 403]);
  }
  // an unsigned GET with an Origin: refused, CORS headers or not, and names no key
  const r = await raw(req('GET', `/${bucket}/${alice.id}/secret.txt`, [['Origin', 'https://evil.example']]));
  expect(r.status).toBe(403);
  expect(r.body).not.toMatch(/secret|\/\d+\//);
});

test("the store's key pair shows nowhere: host output, /healthz, the page, error answers of the store and the socket", async () => {
  const { secretAccessKey } = host.s3Credentials!;
  expect(secretAccessKey.length).toBeGreaterThan(10);
  const seen: string[] = [host.logs()];
  for (const p of ['/healthz', '/', '/index.html', '/app.js', '/style.css', '/store-credentials.json', '/..%2fstore-credentials.json', '/%2e%2e/store-credentials.json']) {
    const res = await fetch(`${host.url}${p}`);
    seen.push(await res.text());
  }
  for (const t of [`/${bucket}/${alice.id}/secret.txt`, `/${bucket}?list-type=2`, '/', `/${bucket}/x?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${host.s3Credentials!.accessKeyId}%2F20200101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20200101T000000Z&X-Amz-Expires=1&X-Amz-SignedHeaders=host&X-Amz-Signature=${'0'.repeat(64)}`]) {
    const r = await raw(req('GET', t));
    seen.push(r.head, r.body);
  }
  seen.push((await call('user-read', { name: 'nope.txt' }, bob)).text, (await call('user-read', { name: '../x' }, bob)).text);
  for (const s of seen) {
    expect(s.includes(secretAccessKey)).toBe(false);
    expect(s.includes(secretAccessKey.slice(0, 16))).toBe(false);
  }
});

test('racing PUTs and DELETEs on one key: every read is one whole version (bytes, length and ETag together)', async () => {
  const versions = ['A', 'B', 'C'].map((c) => c.repeat(300 * 1024)); // over the store's one-read size
  const md5 = (s: string) => crypto.createHash('md5').update(s).digest('hex');
  const linkFor = async () => (await call('user-upload-link', { name: 'race.bin' }, bob)).body.link as string;
  const putLinks = await Promise.all(versions.map(() => linkFor()));
  await fetch(putLinks[0], { method: 'PUT', body: versions[0] });
  const readLink = (await call('user-read', { name: 'race.bin' }, bob)).body.link as string;
  const bad: string[] = [];
  let reads = 0;
  const deadline = Date.now() + 6_000;
  const writer = async (i: number) => {
    for (let n = 0; n < 25 && Date.now() < deadline; n++) {
      const r = await fetch(putLinks[i], { method: 'PUT', body: versions[i] });
      await r.arrayBuffer();
      if (n % 5 === 4) await call('user-delete', { name: 'race.bin' }, bob);
    }
  };
  const reader = async () => {
    for (let n = 0; n < 60 && Date.now() < deadline; n++) {
      const r = await fetch(readLink);
      const body = Buffer.from(await r.arrayBuffer()).toString('latin1');
      if (r.status === 404) continue;
      reads++;
      const etag = (r.headers.get('etag') ?? '').replace(/"/g, '');
      if (r.status !== 200 || !versions.includes(body) || etag !== md5(body) || Number(r.headers.get('content-length')) !== body.length) {
        bad.push(`${r.status} len ${body.length} etag ${etag} first ${body.slice(0, 1)} last ${body.slice(-1)}`);
      }
    }
  };
  await Promise.all([writer(0), writer(1), writer(2), reader(), reader(), reader()]);
  expect(bad).toEqual([]);
  expect(reads).toBeGreaterThan(10);
  await expectAliceUntouched('race');
});

test('malformed and oversized requests are answered 4xx/501 or closed, never 500, and the store thread never stops', async () => {
  const before = storeStops();
  const big = 'a'.repeat(70);
  const longForm = Array.from({ length: 150 }, (_, i) => `--${big}\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nv\r\n`).join('');
  const cases: string[] = [
    req('POST', `/${bucket}`, [['Content-Type', `multipart/form-data; boundary=${big}`], ['Content-Length', String(longForm.length)]], longForm),
    req('POST', `/${bucket}`, [['Content-Type', 'multipart/form-data; boundary="'], ['Content-Length', '4']], 'abcd'),
    req('POST', `/${bucket}`, [['Content-Type', 'multipart/form-data; boundary=x'], ['Content-Length', '20']], 'no boundary here....'),
    req('POST', `/${bucket}`, [['Content-Type', 'multipart/form-data; boundary=x'], ['Content-Length', '40']], `--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--x--`),
    req('POST', `/${bucket}`, [['Content-Type', 'multipart/form-data; boundary=x'], ['Content-Length', String(9000 + 10)]], `--x\r\n${'H'.repeat(9000)}\r\n\r\n`),
    req('POST', `/${bucket}`, [['Content-Type', 'multipart/form-data; boundary=x'], ['Transfer-Encoding', 'chunked']], '5\r\n--x\r\n\r\n0\r\n\r\n'),
    req('POST', `/${bucket}`, [['Content-Type', 'multipart/form-data; boundary=x'], ['Content-Length', '120']], `--x\r\nContent-Disposition: form-data; name="policy"\r\n\r\n%%%notbase64\r\n--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nv\r\n--x--\r\n`),
    req('GET', `/${bucket}/${'%FF'.repeat(50)}`),
    req('GET', `/${bucket}/x?${'a=1&'.repeat(200)}`),
    req('GET', `/${bucket}/x?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%E0%A4%A`),
    req('GET', `/${bucket}/${'k'.repeat(2000)}`),
    req('PUT', `/${bucket}/x`, [['Authorization', `AWS4-HMAC-SHA256 Credential=${'/'.repeat(3000)}, SignedHeaders=host, Signature=x`]]),
    req('GET', `/${bucket}/x`, [['Range', `bytes=${'9'.repeat(30)}-`]]),
    req('OPTIONS', `/${bucket}/x`, [['Origin', 'o'], ['Access-Control-Request-Method', 'GET'], ['Access-Control-Request-Headers', ','.repeat(5000)]]),
    `GET /${bucket}/x HTTP/1.1\r\nHost: ${storeHost}\r\nX: ${'v'.repeat(20_000)}\r\n\r\n`,
    'NOT-HTTP\r\n\r\n',
  ];
  for (const bytes of cases) {
    const r = await raw(bytes);
    expect([bytes.slice(0, 60), r.status >= 500 && r.status !== 501 ? r.status : 'ok']).toEqual([bytes.slice(0, 60), 'ok']);
  }
  await new Promise((r) => setTimeout(r, 200));
  expect(storeStops()).toBe(before);
  const hz = await fetch(`${host.url}/healthz`);
  expect(hz.status).toBe(200);
  expect((await raw(req('GET', target((await call('user-read', { name: 'a.txt' }, bob)).body.link)))).body).toBe(BOB_A);
});
