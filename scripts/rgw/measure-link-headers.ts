/**
 * Measures, on a Ceph RGW, what unsigned extra headers (and POST form fields) do to a presigned link,
 * for each way the socket could sign its upload links. Prints one line per case; changes nothing
 * outside the buckets it creates. Run it against the throw-away cluster:
 *
 *   node --import tsx scripts/rgw/run.ts -- node --import tsx scripts/rgw/measure-link-headers.ts
 *
 * Identities (from the environment scripts/rgw/run.ts sets):
 *   main    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY: the socket's user (reads and writes)
 *   upload  AWS_UPLOAD_ACCESS_KEY_ID / AWS_UPLOAD_SECRET_ACCESS_KEY: a subuser of it, `--access=write`
 *   sts     AssumeRole of RGW_ROLE_ARN with a session policy allowing PutObject on <bucket>/2/* (needs
 *           `rgw sts key` and `rgw s3 auth use sts` in the radosgw config, and the role; not set up by run.ts)
 * Arguments pick what runs: main, upload, sts, policyN (bucket policies with Deny conditions, below).
 * Note that run.ts also puts the no-ACL-headers user policy on the socket's user, so under run.ts the
 * ACL cases of `main` and `upload` are refused by that policy.
 *
 * For each case: the status RGW answered, whether the target key holds the victim's bytes (copied),
 * whether an unsigned GET of it is answered 200 (published), whether its ACL has a grant beyond the
 * owner's, and whether it carries tags, a redirect location, a storage class or SSE.
 */
import { randomBytes } from 'node:crypto';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteBucketPolicyCommand,
  DeleteObjectCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { createPresigner } from '../../src/lib/presign';

const endpoint = process.env.AWS_S3_ENDPOINT!;
const region = process.env.AWS_REGION ?? 'us-east-1';
const ids = {
  main: { accessKeyId: process.env.AWS_ACCESS_KEY_ID!, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY! },
  upload: { accessKeyId: process.env.AWS_UPLOAD_ACCESS_KEY_ID!, secretAccessKey: process.env.AWS_UPLOAD_SECRET_ACCESS_KEY! },
};
type Creds = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
type Who = keyof typeof ids | 'sts';

/** Per-user temporary credentials: AssumeRole of RGW_ROLE_ARN with a session policy for <bucket>/2/* (PutObject only). */
async function stsCreds(bucket: string): Promise<Creds> {
  const { STSClient, AssumeRoleCommand } = await import('@aws-sdk/nested-clients/sts');
  const sts = new STSClient({ endpoint, region, credentials: ids.main });
  const Policy = JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: ['s3:PutObject'], Resource: [`arn:aws:s3:::${bucket}/2/*`] }],
  });
  const out = await sts.send(new AssumeRoleCommand({ RoleArn: process.env.RGW_ROLE_ARN, RoleSessionName: 'user-2', Policy, DurationSeconds: 900 }));
  sts.destroy();
  const c = out.Credentials!;
  return { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken };
}

const client = (who: Who, creds?: Creds) =>
  new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: creds ?? ids[who as keyof typeof ids],
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
const admin = client('main');
const SECRET = 'alice secret bytes';
const ALL_USERS = 'uri=http://acs.amazonaws.com/groups/global/AllUsers';

async function state(bucket: string, key: string): Promise<string> {
  const out: string[] = [];
  try {
    const got = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const body = Buffer.from(await got.Body!.transformToByteArray()).toString();
    if (body.includes(SECRET)) out.push('COPIED');
    if (got.WebsiteRedirectLocation) out.push(`redirect=${got.WebsiteRedirectLocation}`);
    if (got.StorageClass && got.StorageClass !== 'STANDARD') out.push(`class=${got.StorageClass}`);
    if (got.ServerSideEncryption) out.push(`sse=${got.ServerSideEncryption}`);
    if (got.ObjectLockMode || got.ObjectLockLegalHoldStatus === 'ON') out.push('LOCKED');
  } catch (e) {
    return `absent (${(e as Error).name})`;
  }
  const anon = await fetch(`${endpoint}/${bucket}/${key}`);
  if (anon.status === 200) out.push('PUBLIC');
  const acl = await admin.send(new GetObjectAclCommand({ Bucket: bucket, Key: key }));
  const extra = (acl.Grants ?? []).filter((g) => g.Grantee?.ID !== acl.Owner?.ID);
  if (extra.length) out.push(`grants=${extra.map((g) => `${g.Grantee?.URI ?? g.Grantee?.ID}:${g.Permission}`).join(',')}`);
  const tags = await admin.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
  if (tags?.TagSet?.length) out.push(`TAGGED=${tags.TagSet.map((t) => `${t.Key}=${t.Value}`).join('&')}`);
  return out.length ? out.join(' ') : 'clean';
}

const PUT_CASES: Array<[string, Record<string, string>, string]> = [
  ['copy-source', { 'x-amz-copy-source': '/{bucket}/1/secret.txt' }, ''],
  ['copy-source + directive REPLACE', { 'x-amz-copy-source': '/{bucket}/1/secret.txt', 'x-amz-metadata-directive': 'REPLACE' }, ''],
  ['copy-source + range', { 'x-amz-copy-source': '/{bucket}/1/secret.txt', 'x-amz-copy-source-range': 'bytes=0-5' }, ''],
  ['acl public-read', { 'x-amz-acl': 'public-read' }, 'mine'],
  ['acl public-read-write', { 'x-amz-acl': 'public-read-write' }, 'mine'],
  ['grant-read AllUsers', { 'x-amz-grant-read': ALL_USERS }, 'mine'],
  ['grant-full-control AllUsers', { 'x-amz-grant-full-control': ALL_USERS }, 'mine'],
  ['tagging', { 'x-amz-tagging': 'stolen=yes' }, 'mine'],
  ['website-redirect', { 'x-amz-website-redirect-location': 'https://evil.example/' }, 'mine'],
  ['sse AES256', { 'x-amz-server-side-encryption': 'AES256' }, 'mine'],
  ['storage-class', { 'x-amz-storage-class': 'STANDARD_IA' }, 'mine'],
  ['object-lock', { 'x-amz-object-lock-mode': 'GOVERNANCE', 'x-amz-object-lock-retain-until-date': '2099-01-01T00:00:00Z' }, 'mine'],
  ['legal-hold', { 'x-amz-object-lock-legal-hold': 'ON' }, 'mine'],
  ['plain upload (control)', {}, 'mine'],
];

const POST_FIELDS: Array<[string, Record<string, string>, Record<string, string>?]> = [
  ['form acl public-read', { acl: 'public-read' }],
  ['form x-amz-copy-source', { 'x-amz-copy-source': '/{bucket}/1/secret.txt' }],
  ['form tagging', { tagging: '<Tagging><TagSet><Tag><Key>stolen</Key><Value>yes</Value></Tag></TagSet></Tagging>' }],
  ['form success_action_redirect', { success_action_redirect: 'https://evil.example/' }],
  ['form x-amz-grant-read', { 'x-amz-grant-read': ALL_USERS }],
  ['form website-redirect', { 'x-amz-website-redirect-location': 'https://evil.example/' }],
  ['form storage-class', { 'x-amz-storage-class': 'STANDARD_IA' }],
  ['form x-amz-meta-x', { 'x-amz-meta-x': 'y' }],
  ['header acl public-read on POST', {}, { 'x-amz-acl': 'public-read' }],
  ['header copy-source on POST', {}, { 'x-amz-copy-source': '/{bucket}/1/secret.txt' }],
  ['header tagging on POST', {}, { 'x-amz-tagging': 'stolen=yes' }],
  ['plain POST (control)', {}],
];

async function measure(label: string, who: Who, policy?: object): Promise<void> {
  const bucket = `measure-${randomBytes(4).toString('hex')}`;
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  await admin.send(new PutObjectCommand({ Bucket: bucket, Key: '1/secret.txt', Body: SECRET }));
  if (policy) {
    const text = JSON.stringify(policy).replaceAll('{bucket}', bucket);
    await admin.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: text }));
  }
  console.log(`\n== ${label} (links signed by ${who})`);
  const creds: Creds = who === 'sts' ? await stsCreds(bucket) : ids[who];
  const presign = createPresigner({ ...creds, region, endpoint, forcePathStyle: true, bucket });
  let n = 0;
  for (const [what, headers, body] of PUT_CASES) {
    const key = `2/put-${n++}.txt`;
    const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, v.replaceAll('{bucket}', bucket)]));
    const res = await fetch(presign({ method: 'PUT', key, expiresIn: 300 }), { method: 'PUT', headers: h, body });
    const text = await res.text();
    const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? '';
    console.log(`PUT  ${what.padEnd(34)} ${res.status} ${code.padEnd(22)} -> ${await state(bucket, key)}`);
  }
  const poster = client(who, creds);
  for (const [what, fields, headers] of POST_FIELDS) {
    const key = `2/post-${n++}.txt`;
    const post = await createPresignedPost(poster, {
      Bucket: bucket,
      Key: key,
      Expires: 300,
      Conditions: [['eq', '$key', key], ['content-length-range', 0, 1000], ['starts-with', '$Content-Type', '']],
    });
    const form = new FormData();
    for (const [k, v] of Object.entries(post.fields)) form.append(k, v);
    for (const [k, v] of Object.entries(fields)) form.append(k, v.replaceAll('{bucket}', bucket));
    form.append('file', new Blob(['mine'], { type: 'text/plain' }), 'f.txt');
    const h = Object.fromEntries(Object.entries(headers ?? {}).map(([k, v]) => [k, v.replaceAll('{bucket}', bucket)]));
    const res = await fetch(post.url, { method: 'POST', body: form, headers: h, redirect: 'manual' });
    const text = await res.text();
    const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? res.headers.get('location') ?? '';
    console.log(`POST ${what.padEnd(34)} ${res.status} ${code.slice(0, 22).padEnd(22)} -> ${await state(bucket, key)}`);
  }
  // Does the identity read at all (a copy needs read on its source)?
  const read = await poster.send(new GetObjectCommand({ Bucket: bucket, Key: '1/secret.txt' })).then(
    () => 'yes',
    (e) => `no (${(e as Error).name})`,
  );
  const readLink = await fetch(presign({ method: 'GET', key: '1/secret.txt', expiresIn: 60 }));
  console.log(`can ${who} read 1/secret.txt: SDK ${read}, presigned GET ${readLink.status}`);
  poster.destroy();
  if (policy) await admin.send(new DeleteBucketPolicyCommand({ Bucket: bucket }));
  const list = await admin.send(new ListObjectsV2Command({ Bucket: bucket }));
  for (const o of list.Contents ?? []) await admin.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key! }));
  await admin.send(new DeleteBucketCommand({ Bucket: bucket }));
}

const deny = (Condition: object) => ({ Effect: 'Deny', Principal: '*', Action: 's3:PutObject', Resource: 'arn:aws:s3:::{bucket}/*', Condition });
const policy = (...Statement: object[]) => ({ Version: '2012-10-17', Statement });
const denyPolicies: Record<string, object> = {
  'policy1 StringNotEquals s3:x-amz-acl ""': policy(deny({ StringNotEquals: { 's3:x-amz-acl': '' } })),
  'policy2 StringLike s3:x-amz-acl "?*"': policy(deny({ StringLike: { 's3:x-amz-acl': '?*' } })),
  'policy3 Null s3:x-amz-grant-read false': policy(deny({ Null: { 's3:x-amz-grant-read': 'false' } })),
  'policy4 Null s3:x-amz-grant-read true': policy(deny({ Null: { 's3:x-amz-grant-read': 'true' } })),
  'policy5 StringLike s3:x-amz-grant-read "*"': policy(deny({ StringLike: { 's3:x-amz-grant-read': '*' } })),
  'policy7 StringLike s3:RequestObjectTagKeys "*"': policy(deny({ StringLike: { 's3:RequestObjectTagKeys': '*' } })),
  'policy8 ForAnyValue:StringLike s3:RequestObjectTagKeys "*"': policy(deny({ 'ForAnyValue:StringLike': { 's3:RequestObjectTagKeys': '*' } })),
  'policy9 StringLike s3:x-amz-website-redirect-location "*"': policy(deny({ StringLike: { 's3:x-amz-website-redirect-location': '*' } })),
  'policy10 StringLike s3:RequestObjectTag/stolen "*"': policy(deny({ StringLike: { 's3:RequestObjectTag/stolen': '*' } })),
  'policy6 Null s3:x-amz-copy-source false': policy(deny({ Null: { 's3:x-amz-copy-source': 'false' } })),
};
async function main() {
  const which = process.argv.slice(2);
  const want = (s: string) => which.length === 0 || which.some((w) => s.includes(w));
  if (want('main')) await measure('the main identity (as the socket signs today)', 'main');
  if (want('sts') && process.env.RGW_ROLE_ARN) await measure('STS AssumeRole, session policy PutObject on <bucket>/2/*', 'sts');
  if (want('upload') && ids.upload.accessKeyId) await measure('a write-only subuser', 'upload');
  for (const [label, policy] of Object.entries(denyPolicies)) {
    if (want(label.split(' ')[0])) await measure(label, ids.upload.accessKeyId ? 'upload' : 'main', policy);
  }
  admin.destroy();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
