/**
 * Hostile names × every endpoint that takes a name × two users (and the admin), over HTTP against the
 * host, as a JSON body and pasted raw into the query string (so the host's own percent-decoding is in
 * play). Each call is refused with 400 or confined to the caller's own prefix (admin: to exactly the
 * name it gave); afterwards the bucket holds exactly the keys the test meant to create, and each user's
 * own files are untouched.
 */
import { expectedNameRuling, hostileNames, LONG_SEGMENT_NAMES, TWIN2_NFC, TWIN2_NFD, TWIN_NFC, type HostileName } from '../support/hostile-names';
import { b64, expectNoSecrets, md5, startHarness, type Answer, type Harness, type Transport, type User } from './harness';

jest.setTimeout(180_000);

let h: Harness;
let alice: User;
let bob: User;
/** every key the test meant to create → MD5 of its bytes */
const expected = new Map<string, string>();
const problems: string[] = [];
let requests = 0;
let namesTried = 0;
const SECRET_FILE = 'secret.txt';

beforeAll(async () => {
  h = await startHarness({ users: ['alice', 'bob'] });
  [alice, bob] = h.users;
  // each user's own private files, which the other user's names aim at
  for (const u of h.users) {
    for (const [name, content] of [
      [SECRET_FILE, `${u.username}'s secret`],
      [TWIN_NFC, `${u.username}'s NFC twin`],
    ]) {
      const r = await h.call('user-upload', { userKey: u.user_key, args: { name, file: b64(content) } });
      expect(r.status).toBe(200);
      expected.set(`${u.id}/${name}`, md5(content));
    }
  }
});

afterAll(async () => {
  await h?.close();
});

/** The name the host received: for 'raw', parsed from the URL exactly as the host parses it. */
function received(a: Answer, param: string, transport: Transport, sent: string): unknown {
  if (transport !== 'raw') return sent;
  const all = new URL(a.url).searchParams.getAll(param);
  return all.length === 1 ? all[0] : all.length === 0 ? undefined : all;
}

function rawHasKeyParam(a: Answer): boolean {
  const sp = new URL(a.url).searchParams;
  return ['user_key', '_user_key', 'api_key', '_api_key'].some((k) => sp.has(k));
}

function problem(where: string, what: string, a?: Answer) {
  problems.push(`${where}: ${what}${a ? ` (status ${a.status}: ${a.text.slice(0, 200)})` : ''}`);
}

/** Raw: the name pasted into the URL; a JSON body carries it as it is. */
function sendName(transport: Transport, param: string, name: string) {
  return transport === 'raw' ? { raw: { [param]: name } } : { args: { [param]: name } };
}

/** PUTs `bytes` through an upload link's answer; the store must take them, and they must land at its key. */
async function putThroughLink(where: string, answer: { link: string; headers: Record<string, string>; key: string }, bytes: Buffer<ArrayBuffer>) {
  const put = await h.fetchLink(answer.link, { method: 'PUT', headers: answer.headers, body: bytes });
  requests++;
  if (put.status !== 200) {
    problem(`${where} PUT link`, `the store answered ${put.status}: ${put.text.slice(0, 200)}`);
    return;
  }
  expected.set(answer.key, md5(bytes));
  const stored = await h.read(answer.key);
  if (!stored || md5(stored) !== md5(bytes)) problem(`${where} PUT link`, `the upload did not land at ${answer.key}`);
}

async function userRound(user: User, hn: HostileName, transport: Transport, nonce: string) {
  const prefix = `${user.id}/`;
  const where = `${user.username} ${transport} "${hn.label}"`;
  const base = { userKey: user.user_key, transport: transport === 'raw' ? ('raw' as const) : ('json' as const) };
  const judge = (a: Answer, param = 'name', endpoint: string) => {
    requests++;
    const got = received(a, param, transport, hn.name);
    if (transport === 'raw' && rawHasKeyParam(a)) {
      // a key smuggled in through the name: two disagreeing user keys
      if (a.status !== 401) problem(`${where} ${endpoint}`, 'an injected key parameter was not refused with 401', a);
      return undefined;
    }
    const rule = expectedNameRuling(got, prefix);
    if (a.status >= 500) {
      problem(`${where} ${endpoint}`, 'answered 5xx', a);
      return undefined;
    }
    if (!rule.ok) {
      // user-delete reports a bad name as an errors entry (deleting nothing); see the test below for SPEC §3's 400
      const deleteRefused =
        endpoint === 'user-delete' && a.status === 200 && a.body?.deleted?.length === 0 && a.body?.errors?.length === 1;
      if (deleteRefused) return undefined;
      if (a.status !== 400) problem(`${where} ${endpoint}`, `name refused by the rules (${rule.why}) answered ${a.status}`, a);
      else if (a.body?.code !== 'invalid_argument') problem(`${where} ${endpoint}`, 'a 400 without code invalid_argument', a);
      return undefined;
    }
    return rule.nfc;
  };

  // 1. delete first: a name must never delete someone else's file (the files are checked at the end)
  const del = await h.call('user-delete', { ...base, ...sendName(transport, 'name', hn.name) });
  const delName = judge(del, 'name', 'user-delete');
  if (delName !== undefined) {
    if (del.status !== 200) problem(`${where} user-delete`, 'a valid name was not answered 200', del);
    for (const n of del.body?.deleted ?? []) {
      const key = prefix + n;
      if (n !== delName) problem(`${where} user-delete`, `deleted "${n}", not the name given`, del);
      if (!expected.has(key)) problem(`${where} user-delete`, `deleted ${key}, which this user never created`, del);
      expected.delete(key);
    }
  }

  // 2. upload link + PUT
  const link = await h.call('user-upload-link', { ...base, ...sendName(transport, 'name', hn.name) });
  const linkName = judge(link, 'name', 'user-upload-link');
  if (linkName !== undefined) {
    if (link.status !== 200) problem(`${where} user-upload-link`, 'a valid name was not answered 200', link);
    else if (link.body.key !== prefix + linkName) problem(`${where} user-upload-link`, `key ${JSON.stringify(link.body.key)} is not ${prefix}<name>`, link);
    else await putThroughLink(where, link.body, Buffer.from(`link ${nonce} ${user.username} ${hn.label}`));
  }

  // 3. base64 upload
  const content = Buffer.from(`b64 ${nonce} ${user.username} ${hn.label}`);
  const up = await h.call('user-upload', {
    ...base,
    ...(transport === 'raw' ? { raw: { file: encodeURIComponent(b64(content)), name: hn.name } } : { args: { name: hn.name, file: b64(content) } }),
  });
  const upName = judge(up, 'name', 'user-upload');
  let uploadedKey: string | undefined;
  if (upName !== undefined) {
    if (up.status !== 200) problem(`${where} user-upload`, 'a valid name was not answered 200', up);
    else if (up.body.key !== prefix + upName || up.body.name !== upName) problem(`${where} user-upload`, `key ${JSON.stringify(up.body.key)} is not ${prefix}<name>`, up);
    else {
      uploadedKey = up.body.key;
      expected.set(up.body.key, md5(content));
    }
  }

  // 4. read: only ever the caller's own bytes
  const read = await h.call('user-read', { ...base, ...sendName(transport, 'name', hn.name) });
  const readName = judge(read, 'name', 'user-read');
  if (readName !== undefined) {
    if (read.status === 404) {
      if (uploadedKey) problem(`${where} user-read`, 'its own upload was not found', read);
    } else if (read.status !== 200) problem(`${where} user-read`, 'a valid name was not answered 200 or 404', read);
    else if (read.body.key !== prefix + readName) problem(`${where} user-read`, `key ${JSON.stringify(read.body.key)} is not ${prefix}<name>`, read);
    else {
      const got = await h.fetchLink(read.body.link);
      requests++;
      if (got.status !== 200 || md5(got.bytes) !== expected.get(read.body.key)) {
        problem(`${where} user-read`, `the read link gave ${got.status} ${JSON.stringify(got.text.slice(0, 80))}, not this user's bytes`);
      }
    }
  }

  // 5. list with the name as prefix: only the caller's own files
  const list = await h.call('user-list', { ...base, ...sendName(transport, 'prefix', hn.name) });
  requests++;
  if (list.status >= 500 || (list.status !== 200 && list.status !== 400 && !(transport === 'raw' && rawHasKeyParam(list)))) {
    problem(`${where} user-list`, 'answered neither 200 nor 400', list);
  } else if (list.status === 200) {
    for (const f of list.body.files ?? []) {
      if (!expected.has(prefix + f.name)) problem(`${where} user-list`, `listed "${f.name}", not one of this user's files`, list);
    }
  }
}

async function adminRound(hn: HostileName, transport: Transport, nonce: string) {
  const where = `admin ${transport} "${hn.label}"`;
  const base = { adminKey: h.adminKey, transport: transport === 'raw' ? ('raw' as const) : ('json' as const) };
  const judge = (a: Answer, param: string, endpoint: string) => {
    requests++;
    const got = received(a, param, transport, hn.name);
    if (a.status >= 500) {
      problem(`${where} ${endpoint}`, 'answered 5xx', a);
      return undefined;
    }
    if (transport === 'raw' && rawHasKeyParam(a)) {
      if (a.status !== 401 && a.status !== 400) problem(`${where} ${endpoint}`, 'an injected key parameter was accepted', a);
      return undefined;
    }
    const rule = expectedNameRuling(got, '');
    if (!rule.ok) {
      if (endpoint !== 'make-links' && a.status !== 400) problem(`${where} ${endpoint}`, `name refused by the rules (${rule.why}) answered ${a.status}`, a);
      if (endpoint === 'make-links' && Array.isArray(got) && a.status !== 200) problem(`${where} ${endpoint}`, 'two names were not answered 200', a);
      if (endpoint === 'make-links' && !Array.isArray(got)) {
        if (a.status !== 200 && !(a.status === 400 && got === undefined)) problem(`${where} make-links`, 'an invalid key failed the call', a);
        else if (a.status === 200 && Object.keys(a.body.files).length !== 0) problem(`${where} make-links`, `gave links for an invalid key: ${Object.keys(a.body.files)}`, a);
      }
      return undefined;
    }
    return rule.nfc;
  };

  const link = await h.call('admin-upload-link', { ...base, ...sendName(transport, 'name', hn.name) });
  const linkName = judge(link, 'name', 'admin-upload-link');
  if (linkName !== undefined) {
    if (link.status !== 200 || link.body.key !== linkName) problem(`${where} admin-upload-link`, `not 200 with key = the NFC name`, link);
    else await putThroughLink(where, link.body, Buffer.from(`admin link ${nonce} ${hn.label}`));
  }

  const content = Buffer.from(`admin b64 ${nonce} ${hn.label}`);
  const up = await h.call('admin-upload', {
    ...base,
    ...(transport === 'raw' ? { raw: { file: encodeURIComponent(b64(content)), name: hn.name } } : { args: { name: hn.name, file: b64(content) } }),
  });
  const upName = judge(up, 'name', 'admin-upload');
  if (upName !== undefined) {
    if (up.status !== 200 || up.body.key !== upName) problem(`${where} admin-upload`, 'not 200 with key = the NFC name', up);
    else expected.set(up.body.key, md5(content));
  }

  const links = await h.call('make-links', {
    ...base,
    ...(transport === 'raw' ? { raw: { check: 'true', fileNames: hn.name } } : { args: { fileNames: hn.name, check: true } }),
  });
  const mkName = judge(links, 'fileNames', 'make-links');
  if (mkName !== undefined) {
    if (links.status !== 200) problem(`${where} make-links`, 'a valid key was not answered 200', links);
    else {
      for (const [key, url] of Object.entries(links.body.files as Record<string, string>)) {
        if (key !== mkName) problem(`${where} make-links`, `a link for ${JSON.stringify(key)}, not the key given`, links);
        const got = await h.fetchLink(url);
        requests++;
        if (got.status !== 200 || md5(got.bytes) !== expected.get(key)) problem(`${where} make-links`, `the link for ${key} gave other bytes (${got.status})`);
      }
    }
  }
}

const TRANSPORTS: Transport[] = ['json', 'raw'];

test('user endpoints: every hostile name is refused (400) or confined to the caller\'s prefix', async () => {
  for (const transport of TRANSPORTS) {
    await Promise.all(
      [alice, bob].map(async (user) => {
        const other = user === alice ? bob : alice;
        const names = hostileNames({ otherUserId: other.id, otherFile: SECRET_FILE });
        namesTried = Math.max(namesTried, names.length);
        for (const hn of names) await userRound(user, hn, transport, transport);
      }),
    );
  }
  console.log(`hostile names: ${namesTried} names x 5 user endpoints x 2 users x ${TRANSPORTS.length} transports; ${requests} requests; ${problems.length} problems`);
  expect(problems).toEqual([]);
  expect(namesTried).toBeGreaterThanOrEqual(60);
});

test("each user's own files are untouched by the other's names", async () => {
  for (const u of [alice, bob]) {
    expect(md5((await h.read(`${u.id}/${SECRET_FILE}`))!)).toBe(md5(`${u.username}'s secret`));
    // the NFC twin was overwritten only by its owner's own NFD name (confined): it holds what they wrote
    expect(md5((await h.read(`${u.id}/${TWIN_NFC}`))!)).toBe(expected.get(`${u.id}/${TWIN_NFC}`));
  }
});

test("an NFD twin of alice's file, sent by bob, never reads alice's file", async () => {
  expect(TWIN2_NFD).not.toBe(TWIN2_NFC);
  expect(TWIN2_NFD.normalize('NFC')).toBe(TWIN2_NFC);
  const a = await h.call('user-upload', { userKey: alice.user_key, args: { name: TWIN2_NFC, file: b64("alice's résumé") } });
  expect(a.status).toBe(200);
  expected.set(a.body.key, md5("alice's résumé"));

  // bob, who has no such file: 404 for both forms, nothing listed, never alice's bytes
  for (const name of [TWIN2_NFD, TWIN2_NFC]) {
    const r = await h.call('user-read', { userKey: bob.user_key, args: { name } });
    expect([r.status, r.body.code]).toEqual([404, 'not_found']);
    const r2 = await h.call('user-read', { userKey: bob.user_key, transport: 'raw', raw: { name: encodeURIComponent(name) } });
    expect(r2.status).toBe(404);
  }
  const l = await h.call('user-list', { userKey: bob.user_key, args: { prefix: TWIN2_NFD.split('/')[0] } });
  expect([l.status, l.body.files]).toEqual([200, []]);
  for (const name of [`../${alice.id}/${TWIN2_NFD}`, `${alice.id}/${TWIN2_NFD}`, `/${alice.id}/${TWIN2_NFD}`]) {
    const r = await h.call('user-read', { userKey: bob.user_key, args: { name } });
    expect([400, 404]).toContain(r.status);
  }

  // bob uploads the NFD twin: it lands in bob's prefix, NFC; alice still reads her own bytes
  const b = await h.call('user-upload', { userKey: bob.user_key, args: { name: TWIN2_NFD, file: b64("bob's résumé") } });
  expect([b.status, b.body.key, b.body.name]).toEqual([200, `${bob.id}/${TWIN2_NFC}`, TWIN2_NFC]);
  expected.set(b.body.key, md5("bob's résumé"));
  const bobRead = await h.call('user-read', { userKey: bob.user_key, args: { name: TWIN2_NFD } });
  expect((await h.fetchLink(bobRead.body.link)).text).toBe("bob's résumé");
  const aliceRead = await h.call('user-read', { userKey: alice.user_key, args: { name: TWIN2_NFD } });
  expect(aliceRead.body.key).toBe(`${alice.id}/${TWIN2_NFC}`);
  expect((await h.fetchLink(aliceRead.body.link)).text).toBe("alice's résumé");
});

test('admin endpoints: every hostile name is refused (400 / an errors entry) or used as exactly that key', async () => {
  const before = requests;
  const names = hostileNames({ otherUserId: alice.id, otherFile: `admin-${SECRET_FILE}` });
  for (const transport of TRANSPORTS) {
    for (const hn of names) await adminRound(hn, transport, `admin-${transport}`);
  }
  console.log(`hostile names (admin): ${names.length} names x 3 admin endpoints x ${TRANSPORTS.length} transports; ${requests - before} requests; ${problems.length} problems`);
  expect(problems).toEqual([]);
});

test('user-delete: a single invalid name is a 400 invalid_argument, as on every other endpoint (SPEC §3)', async () => {
  // SPEC §3: "Anything else: 400, and nothing is read or written". A missing file is an errors entry
  // (§4), but a name that can never be valid is a malformed argument.
  const statuses: Record<string, number> = {};
  for (const name of ['../x', `../${bob.id}/${SECRET_FILE}`, 'a//b', 'x\u0000y', '']) {
    const r = await h.call('user-delete', { userKey: alice.user_key, args: { name } });
    statuses[JSON.stringify(name)] = r.status;
    expect(r.body.deleted ?? []).toEqual([]);
  }
  expect(statuses).toEqual(Object.fromEntries(Object.keys(statuses).map((k) => [k, 400])));
});

test('names with a segment over 255 bytes: stored (as S3 does) or refused 400 when the store cannot hold them; never 5xx', async () => {
  // The embedded store keeps one file per key and a segment becomes a file name (NAME_MAX 255 bytes);
  // S3, MinIO and RGW take such keys. Either answer is clean; a 5xx or a half-written object is not.
  const results: Record<string, string> = {};
  const targets: Array<[string, { userKey?: string; adminKey?: string }, string]> = [
    ...LONG_SEGMENT_NAMES.map((n) => [n, { userKey: alice.user_key }, `${alice.id}/${n}`] as [string, { userKey: string }, string]),
    ['c'.repeat(1024), { adminKey: h.adminKey }, 'c'.repeat(1024)],
  ];
  for (const [name, key, objectKey] of targets) {
    const endpoint = key.adminKey ? 'admin-upload' : 'user-upload';
    const up = await h.call(endpoint, { ...key, args: { name, file: b64('long') } });
    results[`${endpoint} ${Buffer.byteLength(name)} bytes`] = `${up.status} ${up.body?.code ?? ''}`.trim();
    if (up.status === 200) {
      expect(up.body.key).toBe(objectKey);
      expected.set(up.body.key, md5('long'));
    } else {
      expect([up.status, up.body.code]).toEqual([400, 'invalid_argument']);
    }
  }
  console.log(`long segments: ${JSON.stringify(results)}`);
});

test('after the whole matrix the bucket holds exactly the keys the test meant to create, each whole', async () => {
  const keys = await h.keys();
  const unexpected = keys.filter((k) => !expected.has(k));
  const missing = [...expected.keys()].filter((k) => !keys.includes(k)).sort();
  console.log(`bucket after the matrix: ${keys.length} objects, ${expected.size} expected, ${unexpected.length} unexpected, ${missing.length} missing`);
  expect(unexpected).toEqual([]);
  expect(missing).toEqual([]);
  const wrong: string[] = [];
  for (const k of keys) if (md5((await h.read(k))!) !== expected.get(k)) wrong.push(k);
  expect(wrong).toEqual([]);
  // no key outside a user's prefix except what the admin wrote on purpose, and none with a ".." segment
  expect(keys.filter((k) => k.split('/').some((s) => s === '..' || s === '.' || s === ''))).toEqual([]);
});

test('no answer and no log line carries a secret (S3 secret, admin key, user keys, link signatures)', () => {
  const seen = expectNoSecrets(h);
  console.log(`secrets: ${seen.answers} answers (${seen.answerBytes} bytes) and ${seen.logBytes} bytes of host log checked`);
});
