/**
 * Every kind of link the socket hands out, sent with each extra header (and, for POST, form field)
 * that could widen it: nothing is copied, published, tagged or changed beyond the signed upload.
 *
 * Runs against the embedded store by default and against Ceph RGW under `npm run test:rgw`
 * (AWS_S3_ENDPOINT and the AWS_* variables scripts/rgw/run.ts sets, AWS_UPLOAD_* included: RGW takes
 * headers a link did not sign, so there upload links are signed by a write-only subuser and a user
 * policy refuses ACL headers; README "Security").
 *
 * After each request, for the link's object and for alice's file:
 *   - copied: the object holds exactly the bytes the request sent (or is absent), never alice's;
 *   - published: an unsigned GET is refused, and GET ?acl (admin) shows no grant beyond the owner's;
 *   - changed: no tags, website redirect, storage class other than STANDARD, SSE, or object lock.
 */
import {
  GetObjectAclCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { escapeKey } from '../../src/lib/presign';
import { startHost, type StartedHost, callEndpoint } from '../support/host';
import { external, useStore } from '../support/store';

jest.setTimeout(180_000);

const onRgw = process.env.TEST_STORE === 'rgw';
const ALICE_SECRET = "alice's secret: do not copy";
const ALL_USERS = 'uri=http://acs.amazonaws.com/groups/global/AllUsers';
const AUTH_USERS = 'uri=http://acs.amazonaws.com/groups/global/AuthenticatedUsers';

interface User {
  id: number;
  username: string;
  user_key: string;
}

let host: StartedHost;
let s3: S3Client;
let endpoint: string;
let bucket: string;
let alice: User;
let bob: User;
let closeStore = async () => {};
let aliceKey: string;
let n = 0;
/** What each store did with each case: printed at the end. */
const outcomes: string[] = [];
/** Cases on RGW PUT links where a header set something on the link's own object (README "Security"). */
const residual: string[] = [];

/** Extra headers that could widen a link; `{src}` is alice's file as an x-amz-copy-source value. */
const HEADER_CASES: Array<[string, Record<string, string>]> = [
  ['x-amz-copy-source', { 'x-amz-copy-source': '{src}' }],
  ['x-amz-copy-source (no leading slash)', { 'x-amz-copy-source': '{src-noslash}' }],
  ['x-amz-copy-source + x-amz-copy-source-range', { 'x-amz-copy-source': '{src}', 'x-amz-copy-source-range': 'bytes=0-9' }],
  ['x-amz-copy-source + x-amz-metadata-directive: REPLACE', { 'x-amz-copy-source': '{src}', 'x-amz-metadata-directive': 'REPLACE' }],
  ['x-amz-metadata-directive: REPLACE', { 'x-amz-metadata-directive': 'REPLACE' }],
  ['x-amz-acl: public-read', { 'x-amz-acl': 'public-read' }],
  ['x-amz-acl: public-read-write', { 'x-amz-acl': 'public-read-write' }],
  ['x-amz-acl: authenticated-read', { 'x-amz-acl': 'authenticated-read' }],
  ['x-amz-grant-read: AllUsers', { 'x-amz-grant-read': ALL_USERS }],
  ['x-amz-grant-read: AuthenticatedUsers', { 'x-amz-grant-read': AUTH_USERS }],
  ['x-amz-grant-read-acp: AllUsers', { 'x-amz-grant-read-acp': ALL_USERS }],
  ['x-amz-grant-write-acp: AllUsers', { 'x-amz-grant-write-acp': ALL_USERS }],
  ['x-amz-grant-full-control: AllUsers', { 'x-amz-grant-full-control': ALL_USERS }],
  ['x-amz-tagging', { 'x-amz-tagging': 'stolen=yes' }],
  ['x-amz-website-redirect-location', { 'x-amz-website-redirect-location': 'https://evil.example/' }],
  ['x-amz-server-side-encryption: AES256', { 'x-amz-server-side-encryption': 'AES256' }],
  ['x-amz-storage-class: REDUCED_REDUNDANCY', { 'x-amz-storage-class': 'REDUCED_REDUNDANCY' }],
  ['x-amz-object-lock-mode + retain-until-date', { 'x-amz-object-lock-mode': 'GOVERNANCE', 'x-amz-object-lock-retain-until-date': '2099-01-01T00:00:00Z' }],
  ['x-amz-object-lock-legal-hold: ON', { 'x-amz-object-lock-legal-hold': 'ON' }],
];

/** Form fields a POST policy does not name: the store must refuse them (or ignore them). */
const FIELD_CASES: Array<[string, Record<string, string>]> = [
  ['field acl: public-read', { acl: 'public-read' }],
  ['field x-amz-copy-source', { 'x-amz-copy-source': '{src}' }],
  ['field tagging', { tagging: '<Tagging><TagSet><Tag><Key>stolen</Key><Value>yes</Value></Tag></TagSet></Tagging>' }],
  ['field success_action_redirect', { success_action_redirect: 'https://evil.example/' }],
  ['field redirect', { redirect: 'https://evil.example/' }],
  ['field x-amz-grant-read: AllUsers', { 'x-amz-grant-read': ALL_USERS }],
  ['field x-amz-grant-full-control: AllUsers', { 'x-amz-grant-full-control': ALL_USERS }],
  ['field x-amz-website-redirect-location', { 'x-amz-website-redirect-location': 'https://evil.example/' }],
  ['field x-amz-server-side-encryption', { 'x-amz-server-side-encryption': 'AES256' }],
  ['field x-amz-storage-class', { 'x-amz-storage-class': 'REDUCED_REDUNDANCY' }],
  ['field x-amz-object-lock-legal-hold', { 'x-amz-object-lock-legal-hold': 'ON' }],
];

function fill(values: Record<string, string>): Record<string, string> {
  const src = `/${bucket}/${aliceKey}`;
  return Object.fromEntries(
    Object.entries(values).map(([k, v]) => [k, v.replace('{src-noslash}', src.slice(1)).replace('{src}', src)]),
  );
}

beforeAll(async () => {
  // the embedded store by default, or the one the environment names (test:rgw), as every suite picks it
  const store = await useStore();
  ({ bucket, endpoint, client: s3 } = store);
  closeStore = () => store.close();
  if (onRgw) expect(process.env.AWS_UPLOAD_ACCESS_KEY_ID).toBeTruthy(); // run.ts sets up the upload identity
  host = await startHost({ env: store.config });
  alice = await host.addUser('alice');
  bob = await host.addUser('bob');
  const up = await call('user-upload', { name: 'secret.txt', file: Buffer.from(ALICE_SECRET).toString('base64'), contentType: 'text/plain' }, alice);
  expect(up.status).toBe(200);
  aliceKey = up.body.key;
  expect(aliceKey).toBe(`${alice.id}/secret.txt`);
  const own = await call('user-upload', { name: 'own.txt', file: Buffer.from("bob's own file").toString('base64'), contentType: 'text/plain' }, bob);
  expect(own.status).toBe(200);
});

afterAll(async () => {
  if (outcomes.length) console.log(`link-headers on ${onRgw ? 'Ceph RGW' : external ? 'an external store' : 'the embedded store'}:\n${outcomes.join('\n')}`);
  if (residual.length) console.log(`RGW PUT-link residual (the link's own object only; README "Security"):\n${residual.join('\n')}`);
  s3?.destroy();
  await host?.stop().catch(() => undefined);
  await closeStore();
});

const call = (endpointName: string, args: Record<string, unknown>, user?: User) => callEndpoint(host, endpointName, args, user);

const statusOf = (e: unknown) => (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
/** A store without ACLs or tags at all has none to widen. */
const unsupported = (e: unknown) =>
  ['NotImplemented', 'MethodNotAllowed', 'NotSupported'].includes((e as { name?: string }).name ?? '') || [405, 501].includes(statusOf(e) ?? 0);

interface ObjectState {
  exists: boolean;
  bytes?: Buffer;
  /** what is wrong with it besides its bytes: public, grants, tags, redirect, class, SSE, lock */
  widened: string[];
  /** the subset of `widened` that RGW PUT links cannot prevent (README "Security") */
  ownOnly: string[];
}

async function inspect(key: string): Promise<ObjectState> {
  let head;
  try {
    head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  } catch (e) {
    if (statusOf(e) === 404) return { exists: false, widened: [], ownOnly: [] };
    throw e;
  }
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const bytes = Buffer.from(await got.Body!.transformToByteArray());
  const widened: string[] = [];
  const ownOnly: string[] = [];
  const anon = await fetch(`${endpoint}/${bucket}/${escapeKey(key)}`);
  await anon.arrayBuffer();
  if (anon.status === 200) widened.push('an unsigned GET reads it');
  try {
    const acl = await s3.send(new GetObjectAclCommand({ Bucket: bucket, Key: key }));
    for (const g of acl.Grants ?? []) {
      if (g.Grantee?.ID && g.Grantee.ID === acl.Owner?.ID) continue;
      widened.push(`grant ${g.Grantee?.URI ?? g.Grantee?.ID ?? '?'}:${g.Permission}`);
    }
  } catch (e) {
    if (!unsupported(e)) throw e;
  }
  try {
    const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
    if (tags.TagSet?.length) ownOnly.push(`tags ${tags.TagSet.map((t) => `${t.Key}=${t.Value}`).join('&')}`);
  } catch (e) {
    if (!unsupported(e)) throw e;
  }
  if (head.WebsiteRedirectLocation) ownOnly.push(`website redirect ${head.WebsiteRedirectLocation}`);
  if (head.StorageClass && head.StorageClass !== 'STANDARD') widened.push(`storage class ${head.StorageClass}`);
  if (head.ServerSideEncryption) widened.push(`SSE ${head.ServerSideEncryption}`);
  if (head.ObjectLockMode || head.ObjectLockRetainUntilDate) widened.push(`object lock ${head.ObjectLockMode}`);
  if (head.ObjectLockLegalHoldStatus === 'ON') widened.push('legal hold');
  return { exists: true, bytes, widened: [...widened, ...ownOnly], ownOnly };
}

/** Alice's file after every case: her bytes, private, untagged. */
async function expectAliceUntouched(what: string): Promise<void> {
  const a = await inspect(aliceKey);
  expect([what, a.exists, a.bytes?.toString(), a.widened]).toEqual([what, true, ALICE_SECRET, []]);
}

/**
 * After a request through an upload link for `key` that sent `body`: the object is absent or holds
 * exactly `body`; nothing about it is widened (on RGW PUT links: tags and a website redirect on this
 * object are the residual the README names, recorded, never anything else).
 */
async function expectUploadContained(what: string, key: string, body: string, status: number, rgwPutLink: boolean): Promise<void> {
  const s = await inspect(key);
  outcomes.push(`${String(status).padEnd(4)} ${what}${s.exists ? ` -> stored${s.widened.length ? `, ${s.widened.join(', ')}` : ''}` : ''}`);
  if (s.exists) {
    expect([what, s.bytes!.includes(Buffer.from(ALICE_SECRET.slice(0, 10)))]).toEqual([what, false]);
    expect([what, s.bytes!.toString()]).toEqual([what, body]);
  }
  const widened = rgwPutLink ? s.widened.filter((w) => !s.ownOnly.includes(w)) : s.widened;
  expect([what, widened]).toEqual([what, []]);
  if (rgwPutLink && s.ownOnly.length) residual.push(`${what}: ${s.ownOnly.join(', ')}`);
  await expectAliceUntouched(what);
}

type UploadKind = 'user' | 'admin';

async function uploadLink(kind: UploadKind, method: 'PUT' | 'POST'): Promise<{ key: string; link: any }> {
  const name = `${kind}-${method.toLowerCase()}-${n++}.txt`;
  const args = { name: kind === 'admin' ? `uploads/${name}` : name, method, ...(method === 'POST' ? { size: 1000 } : {}) };
  const r = kind === 'user' ? await call('user-upload-link', args, bob) : await call('admin-upload-link', args);
  expect([name, r.status]).toEqual([name, 200]);
  return { key: r.body.key, link: r.body };
}

describe.each<UploadKind>(['user', 'admin'])('%s-upload-link', (kind) => {
  test('PUT: each extra header is refused or changes nothing beyond the signed upload', async () => {
    for (const [header, values] of HEADER_CASES) {
      const { key, link } = await uploadLink(kind, 'PUT');
      expect(link.method).toBe('PUT');
      const copying = 'x-amz-copy-source' in values;
      const body = copying ? '' : 'the signed upload';
      const res = await fetch(link.link, { method: 'PUT', headers: { ...link.headers, ...fill(values) }, body });
      await res.arrayBuffer();
      await expectUploadContained(`${kind} PUT + ${header}`, key, body, res.status, onRgw);
    }
    // and the link still works for what it was made for
    const { key, link } = await uploadLink(kind, 'PUT');
    const ok = await fetch(link.link, { method: 'PUT', headers: link.headers, body: 'plain' });
    expect(ok.status).toBe(200);
    expect((await inspect(key)).bytes?.toString()).toBe('plain');
  });

  test('POST: each extra form field or header is refused or changes nothing beyond the signed upload', async () => {
    const cases: Array<[string, Record<string, string>, Record<string, string>]> = [
      ...FIELD_CASES.map(([what, fields]): [string, Record<string, string>, Record<string, string>] => [what, fields, {}]),
      ...HEADER_CASES.map(([what, headers]): [string, Record<string, string>, Record<string, string>] => [`header ${what}`, {}, headers]),
    ];
    for (const [what, fields, headers] of cases) {
      const { key, link } = await uploadLink(kind, 'POST');
      expect(link.method).toBe('POST');
      const form = new FormData();
      for (const [k, v] of Object.entries({ ...(link.fields as Record<string, string>), ...fill(fields) })) form.append(k, v);
      form.append('file', new Blob(['the signed upload'], { type: 'text/plain' }), 'f.txt');
      const res = await fetch(link.link, { method: 'POST', body: form, headers: fill(headers), redirect: 'manual' });
      await res.arrayBuffer();
      const label = `${kind} POST + ${what}`;
      expect([label, res.headers.get('location') ?? '']).not.toEqual([label, expect.stringContaining('evil.example')]);
      await expectUploadContained(label, key, 'the signed upload', res.status, false);
    }
    const { key, link } = await uploadLink(kind, 'POST');
    const form = new FormData();
    for (const [k, v] of Object.entries(link.fields as Record<string, string>)) form.append(k, v);
    form.append('file', new Blob(['plain'], { type: 'text/plain' }), 'f.txt');
    const ok = await fetch(link.link, { method: 'POST', body: form });
    expect([200, 201, 204]).toContain(ok.status);
    expect((await inspect(key)).bytes?.toString()).toBe('plain');
  });
});

describe('read links', () => {
  const readLinks: Array<[string, () => Promise<string>]> = [
    ['user-read', async () => (await call('user-read', { name: 'own.txt' }, bob)).body.link],
    ['make-links', async () => (await call('make-links', { fileNames: [`${bob.id}/own.txt`] })).body.files[`${bob.id}/own.txt`]],
    [
      "user-upload's read link",
      async () => (await call('user-upload', { name: 'own.txt', file: Buffer.from("bob's own file").toString('base64'), contentType: 'text/plain' }, bob)).body.link,
    ],
  ];

  test.each(readLinks)('%s: GET with each extra header reads only its own file and changes nothing', async (what, makeLink) => {
    for (const [header, values] of HEADER_CASES) {
      const link = await makeLink();
      expect(typeof link).toBe('string');
      const res = await fetch(link, { headers: fill(values) });
      const text = await res.text();
      const label = `${what} GET + ${header}`;
      outcomes.push(`${String(res.status).padEnd(4)} ${label}`);
      expect([label, text.includes(ALICE_SECRET.slice(0, 10))]).toEqual([label, false]);
      if (res.status === 200) expect([label, text]).toEqual([label, "bob's own file"]);
      else expect([label, res.status >= 400 && res.status < 500]).toEqual([label, true]);
      const own = await inspect(`${bob.id}/own.txt`);
      expect([label, own.bytes?.toString(), own.widened]).toEqual([label, "bob's own file", []]);
      await expectAliceUntouched(label);
    }
  });
});
