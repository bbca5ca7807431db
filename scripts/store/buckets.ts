/** Bucket operations: create, head, delete, list; CORS and lifecycle configuration. */
import type { IncomingMessage } from 'node:http';
import { bodyOf, checkWhole, digestsOf } from './body';
import { header, type RequestParts, type Verified } from './auth';
import type { Disk, Bucket } from './disk';
import { S3Error, fail } from './errors';
import { parseCors } from './cors';
import { emptyReply, isoDate, xmlReply, type Reply } from './reply';
import { childExactText, childrenNamed, childText, parseXml, S3_NS, xmlEscape } from './xml';

const MAX_XML_BODY = 256 * 1024;

/** Reads a small (XML) body whole, checking its length and any digest it carries. */
export async function readSmallBody(req: IncomingMessage, parts: RequestParts, v: Verified): Promise<string> {
  if (header(parts, 'transfer-encoding') !== undefined && v.payload.kind !== 'chunked') {
    fail('NotImplemented', 'A header you provided implies functionality that is not implemented: Transfer-Encoding');
  }
  const digests = digestsOf(parts, v.payload, MAX_XML_BODY);
  const declared = Number(header(parts, 'content-length') ?? '0');
  if (!(declared <= MAX_XML_BODY)) fail('MaxMessageLengthExceeded', 'Your request was too big.');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of bodyOf(req, v.payload)) {
    size += c.length;
    if (size > MAX_XML_BODY) fail('MaxMessageLengthExceeded', 'Your request was too big.');
    chunks.push(c);
  }
  const body = Buffer.concat(chunks);
  checkWhole(digests, body);
  return body.toString('utf8');
}

export function listBuckets(disk: Disk): Reply {
  const buckets = [...disk.buckets.values()]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((b) => `<Bucket><Name>${xmlEscape(b.name)}</Name><CreationDate>${isoDate(b.settings.created)}</CreationDate></Bucket>`)
    .join('');
  return xmlReply(200, `<ListAllMyBucketsResult xmlns="${S3_NS}"><Owner><ID>embedded</ID><DisplayName>embedded</DisplayName></Owner><Buckets>${buckets}</Buckets></ListAllMyBucketsResult>`);
}

export async function createBucket(req: IncomingMessage, parts: RequestParts, v: Verified, disk: Disk, name: string): Promise<Reply> {
  const body = await readSmallBody(req, parts, v);
  if (body.trim()) {
    const root = parseXml(body);
    if (root.name !== 'CreateBucketConfiguration') fail('MalformedXML', 'Expected a CreateBucketConfiguration');
  }
  if (!disk.create(name)) throw new S3Error('BucketAlreadyOwnedByYou', 'Your previous request to create the named bucket succeeded and you already own it.');
  return emptyReply(200, { Location: `/${name}` });
}

export async function putCors(req: IncomingMessage, parts: RequestParts, v: Verified, bucket: Bucket): Promise<Reply> {
  const xml = await readSmallBody(req, parts, v);
  parseCors(xml);
  bucket.settings = { ...bucket.settings, cors: xml };
  bucket.saveSettings();
  return emptyReply(200);
}

export function getCors(bucket: Bucket): Reply {
  if (bucket.settings.cors === undefined) throw new S3Error('NoSuchCORSConfiguration', 'The CORS configuration does not exist');
  return xmlReply(200, bucket.settings.cors.replace(/^<\?xml[^>]*\?>\s*/, ''));
}

export interface LifecycleRule {
  prefix: string;
  abortAfterDays?: number;
}

export function parseLifecycle(xml: string): LifecycleRule[] {
  const root = parseXml(xml);
  if (root.name !== 'LifecycleConfiguration') fail('MalformedXML', 'Expected a LifecycleConfiguration');
  return childrenNamed(root, 'Rule').map((r) => {
    const status = childText(r, 'Status');
    if (status !== 'Enabled' && status !== 'Disabled') fail('MalformedXML', 'A lifecycle Rule needs Status Enabled or Disabled');
    const filter = r.children.find((c) => c.name === 'Filter');
    const prefix = (filter ? childExactText(filter, 'Prefix') : childExactText(r, 'Prefix')) ?? '';
    const abort = r.children.find((c) => c.name === 'AbortIncompleteMultipartUpload');
    const days = abort ? childText(abort, 'DaysAfterInitiation') : undefined;
    if (abort && (days === undefined || !/^[1-9]\d{0,4}$/.test(days))) fail('MalformedXML', 'DaysAfterInitiation must be a positive integer');
    for (const c of r.children) {
      if (!['ID', 'Status', 'Filter', 'Prefix', 'AbortIncompleteMultipartUpload'].includes(c.name)) {
        fail('NotImplemented', `The lifecycle action ${c.name} is not implemented by this store`);
      }
    }
    return { prefix, abortAfterDays: status === 'Enabled' && days ? Number(days) : undefined };
  });
}

export async function putLifecycle(req: IncomingMessage, parts: RequestParts, v: Verified, bucket: Bucket): Promise<Reply> {
  const xml = await readSmallBody(req, parts, v);
  parseLifecycle(xml);
  bucket.settings = { ...bucket.settings, lifecycle: xml };
  bucket.saveSettings();
  return emptyReply(200);
}

export function getLifecycle(bucket: Bucket): Reply {
  if (bucket.settings.lifecycle === undefined) throw new S3Error('NoSuchLifecycleConfiguration', 'The lifecycle configuration does not exist');
  return xmlReply(200, bucket.settings.lifecycle.replace(/^<\?xml[^>]*\?>\s*/, ''));
}

export function deleteSetting(bucket: Bucket, which: 'cors' | 'lifecycle'): Reply {
  const { [which]: _gone, ...rest } = bucket.settings;
  bucket.settings = rest;
  bucket.saveSettings();
  return emptyReply(204);
}

const MAX_DELETE_KEYS = 1000;

/** DeleteObjects: up to 1000 keys in one request; S3 requires a digest of the document. */
export async function deleteObjects(req: IncomingMessage, parts: RequestParts, v: Verified, bucket: Bucket): Promise<Reply> {
  if (header(parts, 'content-md5') === undefined && ![...parts.headers.keys()].some((h) => h.startsWith('x-amz-checksum-'))) {
    fail('InvalidRequest', 'Missing required header for this request: Content-MD5 or x-amz-checksum-*');
  }
  const root = parseXml(await readSmallBody(req, parts, v));
  if (root.name !== 'Delete') fail('MalformedXML', 'Expected a Delete document');
  const keys = childrenNamed(root, 'Object').map((o) => childExactText(o, 'Key') ?? '');
  if (keys.length === 0 || keys.length > MAX_DELETE_KEYS) fail('MalformedXML', `A Delete document names 1 to ${MAX_DELETE_KEYS} objects`);
  const quiet = childText(root, 'Quiet') === 'true';
  const out: string[] = [];
  for (const key of keys) {
    if (key === '' || Buffer.byteLength(key) > 1024) {
      out.push(`<Error><Key>${xmlEscape(key)}</Key><Code>InvalidArgument</Code><Message>Invalid key</Message></Error>`);
      continue;
    }
    bucket.remove(key);
    if (!quiet) out.push(`<Deleted><Key>${xmlEscape(key)}</Key></Deleted>`);
  }
  return xmlReply(200, `<DeleteResult xmlns="${S3_NS}">${out.join('')}</DeleteResult>`);
}
