/**
 * What the user and admin multipart endpoints share: the part plan (S3's rules), the upload id handed
 * to callers, and the four operations (start, links, complete, abort) for one key.
 *
 * The socket keeps no state: the upload id a caller holds carries the store's upload id, the key, the
 * declared size, part size and content type, with an HMAC-SHA256 over them under a key derived from
 * the configured secret access key and the bucket. A caller can neither forge nor alter one, and the
 * key inside must be the key the caller's own name gives (`<user.id>/<name>`), so a user cannot use
 * another user's upload id even knowing it; the store binds its upload id to the key too.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { StorageConfig } from './config';
import { invalidArgument, StorageError } from './errors';
import { allowContentType, linkExpiry } from './operations';
import {
  abortMultipartUpload,
  completeMultipartUpload,
  createMultipartUpload,
  listParts,
  partLinks,
  readLink,
  type Store,
  type UploadedPart,
} from './storage';

export const MIB = 1024 * 1024;
/** S3's part rules: every part but the last at least 5 MiB, none over 5 GiB, at most 10,000 parts. */
export const MIN_PART_SIZE = 5 * MIB;
export const MAX_PART_SIZE = 5 * 1024 * MIB;
export const MAX_PARTS = 10_000;
export const DEFAULT_PART_SIZE = 8 * MIB;
const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

export interface Plan {
  size: number;
  partSize: number;
  partCount: number;
}

/**
 * The parts of a `size`-byte upload. Without a `partSize` the default (8 MiB) is raised, in whole MiB,
 * until there are at most 10,000 parts; a `partSize` the caller gave is kept, or refused (400).
 */
export function planParts(size: number, partSize?: number): Plan {
  if (partSize !== undefined) {
    if (partSize < MIN_PART_SIZE || partSize > MAX_PART_SIZE) {
      throw invalidArgument(`partSize: must be ${MIN_PART_SIZE} (5 MiB) to ${MAX_PART_SIZE} (5 GiB) bytes`);
    }
    const partCount = Math.ceil(size / partSize);
    if (partCount > MAX_PARTS) {
      const least = Math.ceil(size / MAX_PARTS);
      throw invalidArgument(`partSize: ${size} bytes in parts of ${partSize} make ${partCount} parts, over S3's ${MAX_PARTS}; use a partSize of at least ${least} bytes`);
    }
    return { size, partSize, partCount };
  }
  let chosen = DEFAULT_PART_SIZE;
  if (Math.ceil(size / chosen) > MAX_PARTS) chosen = Math.ceil(size / MAX_PARTS / MIB) * MIB;
  return { size, partSize: chosen, partCount: Math.ceil(size / chosen) };
}

/** Part n's exact size (1-based): the last part holds what is left. */
export function partSizeOf(plan: Plan, n: number): number {
  return n < plan.partCount ? plan.partSize : plan.size - plan.partSize * (plan.partCount - 1);
}

// ---- the upload id callers hold ----

interface Token extends Plan {
  /** the store's upload id */
  uploadId: string;
  key: string;
  contentType: string;
}

const MAX_TOKEN_LENGTH = 8192;
const tokenKeys = new WeakMap<StorageConfig, Buffer>();

function tokenKey(config: StorageConfig): Buffer {
  let key = tokenKeys.get(config);
  if (!key) {
    key = createHmac('sha256', config.secretAccessKey).update(`aws-storage multipart upload id\n${config.bucket}`, 'utf8').digest();
    tokenKeys.set(config, key);
  }
  return key;
}

const mac = (config: StorageConfig, payload: string) => createHmac('sha256', tokenKey(config)).update(payload, 'ascii').digest();

export function encodeUploadId(config: StorageConfig, t: Token): string {
  const payload = Buffer.from(
    JSON.stringify({ u: t.uploadId, k: t.key, s: t.size, p: t.partSize, t: t.contentType }),
    'utf8',
  ).toString('base64url');
  return `${payload}.${mac(config, payload).toString('base64url')}`;
}

const notOurs = () => invalidArgument('uploadId: not an upload id that multipart-start gave (or it was changed)');

/** Reads an upload id back, or throws 400 when it is malformed or its HMAC does not hold. */
export function decodeUploadId(config: StorageConfig, uploadId: string): Token {
  if (uploadId.length > MAX_TOKEN_LENGTH) throw notOurs();
  const dot = uploadId.indexOf('.');
  const payload = uploadId.slice(0, dot);
  const signature = uploadId.slice(dot + 1);
  if (dot < 1 || !/^[A-Za-z0-9_-]+$/.test(payload) || !/^[A-Za-z0-9_-]{43}$/.test(signature)) throw notOurs();
  const given = Buffer.from(signature, 'base64url');
  const expected = mac(config, payload);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw notOurs();
  let raw: { u?: unknown; k?: unknown; s?: unknown; p?: unknown; t?: unknown };
  try {
    raw = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw notOurs();
  }
  const { u, k, s, p, t } = raw ?? {};
  if (typeof u !== 'string' || typeof k !== 'string' || typeof t !== 'string' || !Number.isSafeInteger(s) || !Number.isSafeInteger(p)) throw notOurs();
  const size = s as number;
  const partSize = p as number;
  return { uploadId: u, key: k, contentType: t, size, partSize, partCount: Math.ceil(size / partSize) };
}

/** The caller's upload: its id must be one we signed, for the key the caller's name gives. */
function uploadFor(store: Store, target: { key: string; name: string }, uploadId: string): Token {
  const token = decodeUploadId(store.config, uploadId);
  if (token.key !== target.key) throw new StorageError('not_found', `upload not found: ${target.name}`);
  return token;
}

// ---- operations ----

export interface PartLink {
  partNumber: number;
  size: number;
  link: string;
}

function linksFor(store: Store, token: Token, numbers: readonly number[], expiresIn: number): { parts: PartLink[]; expiresAt: string } {
  const parts = numbers.map((partNumber) => ({ partNumber, size: partSizeOf(token, partNumber) }));
  const links = partLinks(store, token.key, token.uploadId, expiresIn, parts);
  return {
    parts: parts.map((p, i) => ({ ...p, link: links[i].link })),
    expiresAt: links[0]?.expiresAt ?? new Date(Date.now() + expiresIn * 1000).toISOString(),
  };
}

export async function startUpload(
  store: Store,
  target: { key: string; name: string },
  args: { size: number; contentType?: string; partSize?: number; expiresIn?: number },
) {
  const { config } = store;
  allowContentType(config, args.contentType);
  if (args.size > config.maxUploadSize) {
    throw new StorageError('payload_too_large', `size is over the limit of ${config.maxUploadSize} bytes`);
  }
  const plan = planParts(args.size, args.partSize);
  const contentType = args.contentType ?? DEFAULT_CONTENT_TYPE;
  const s3UploadId = await createMultipartUpload(store, target.key, contentType);
  const token: Token = { ...plan, uploadId: s3UploadId, key: target.key, contentType };
  const all = Array.from({ length: plan.partCount }, (_, i) => i + 1);
  const { parts, expiresAt } = linksFor(store, token, all, linkExpiry(config, args.expiresIn));
  return {
    uploadId: encodeUploadId(config, token),
    key: target.key,
    name: target.name,
    size: plan.size,
    partSize: plan.partSize,
    partCount: plan.partCount,
    contentType,
    expiresAt,
    parts,
  };
}

export async function uploadLinks(
  store: Store,
  target: { key: string; name: string },
  args: { uploadId: string; parts?: number[]; expiresIn?: number },
) {
  const token = uploadFor(store, target, args.uploadId);
  const wanted = args.parts === undefined ? undefined : [...new Set(args.parts)].sort((a, b) => a - b);
  const outside = wanted?.filter((n) => n > token.partCount);
  if (outside?.length) throw invalidArgument(`parts: this upload has parts 1 to ${token.partCount}; not ${outside.slice(0, 10).join(', ')}`);
  const uploaded = (await listParts(store, token.key, token.uploadId, target.name)).filter((p) => p.partNumber <= token.partCount);
  const done = new Set(uploaded.filter((p) => p.size === partSizeOf(token, p.partNumber)).map((p) => p.partNumber));
  const numbers = wanted ?? Array.from({ length: token.partCount }, (_, i) => i + 1).filter((n) => !done.has(n));
  const { parts, expiresAt } = linksFor(store, token, numbers, linkExpiry(store.config, args.expiresIn));
  return {
    uploadId: args.uploadId,
    key: token.key,
    size: token.size,
    partSize: token.partSize,
    partCount: token.partCount,
    parts,
    uploaded,
    expiresAt,
  };
}

/** Which of parts 1..partCount are missing or not of their exact size (empty: all there). */
export function checkParts(plan: Plan, listed: readonly UploadedPart[]): { missing: number[]; wrong: Array<{ partNumber: number; size: number; expected: number }> } {
  const byNumber = new Map(listed.map((p) => [p.partNumber, p]));
  const missing: number[] = [];
  const wrong: Array<{ partNumber: number; size: number; expected: number }> = [];
  for (let n = 1; n <= plan.partCount; n++) {
    const part = byNumber.get(n);
    const expected = partSizeOf(plan, n);
    if (!part) missing.push(n);
    else if (part.size !== expected) wrong.push({ partNumber: n, size: part.size, expected });
  }
  return { missing, wrong };
}

const few = (items: readonly string[]) => (items.length > 20 ? `${items.slice(0, 20).join(', ')} and ${items.length - 20} more` : items.join(', '));

export async function completeUpload(store: Store, target: { key: string; name: string }, args: { uploadId: string }) {
  const token = uploadFor(store, target, args.uploadId);
  const listed = await listParts(store, token.key, token.uploadId, target.name);
  const { missing, wrong } = checkParts(token, listed);
  if (missing.length || wrong.length) {
    const said = [
      missing.length ? `missing part${missing.length > 1 ? 's' : ''} ${few(missing.map(String))}` : '',
      wrong.length ? `wrong size: ${few(wrong.map((w) => `part ${w.partNumber} has ${w.size} bytes, not ${w.expected}`))}` : '',
    ].filter(Boolean);
    throw invalidArgument(`the upload is not whole (${token.partCount} parts of ${token.size} bytes in all): ${said.join('; ')}`);
  }
  const byNumber = new Map(listed.map((p) => [p.partNumber, p]));
  const parts = Array.from({ length: token.partCount }, (_, i) => byNumber.get(i + 1)!);
  const etag = await completeMultipartUpload(store, token.key, token.uploadId, parts, target.name);
  const { link } = readLink(store, token.key, linkExpiry(store.config, undefined));
  return { key: token.key, name: target.name, size: token.size, etag, contentType: token.contentType, link };
}

export async function abortUpload(store: Store, target: { key: string; name: string }, args: { uploadId: string }) {
  const token = uploadFor(store, target, args.uploadId);
  await abortMultipartUpload(store, token.key, token.uploadId, target.name);
  return { aborted: true as const, key: token.key };
}
