/**
 * The hostile suites' fixture: an embedded store started here with non-default credentials, the host
 * pointed at it (AWS_S3_ENDPOINT), an S3 client that sees the whole bucket, and a `call` that captures
 * every answer so that the suite can prove no secret was ever answered or logged.
 */
import crypto from 'node:crypto';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { storeClient } from '../../scripts/s3/client';
import { startEmbeddedStore, type EmbeddedStore } from '../../scripts/s3/embedded-store';
import { startHost, type StartedHost } from '../support/host';

export interface User {
  id: number;
  username: string;
  user_key: string;
}

export interface Answer {
  status: number;
  text: string;
  body: any;
  headers: Headers;
  url: string;
}

export type Transport = 'json' | 'query' | 'raw';

export interface CallOptions {
  args?: Record<string, unknown>;
  /** the name-like argument pasted into the query string as it is (only for transport 'raw') */
  raw?: Record<string, string>;
  transport?: Transport;
  userKey?: string;
  adminKey?: string;
  headers?: Record<string, string>;
  /** a body sent as it is (POST), instead of args */
  body?: string | Buffer;
  method?: 'GET' | 'POST';
}

export interface Harness {
  host: StartedHost;
  store: EmbeddedStore;
  s3: S3Client;
  bucket: string;
  secretAccessKey: string;
  adminKey: string;
  users: User[];
  /** every answer's status line, headers and body, in order */
  captured: string[];
  call(endpoint: string, opts?: CallOptions): Promise<Answer>;
  /** a request to any URL (a presigned link), captured too */
  fetchLink(url: string | URL, init?: RequestInit): Promise<{ status: number; bytes: Buffer; text: string }>;
  keys(): Promise<string[]>;
  read(key: string): Promise<Buffer | undefined>;
  put(key: string, body: Buffer | string): Promise<void>;
  exists(key: string): Promise<boolean>;
  /** the strings that must never appear in an answer or the host's log */
  secrets(): Array<{ what: string; value: string }>;
  close(): Promise<void>;
}

export const md5 = (b: Buffer | string) => crypto.createHash('md5').update(b).digest('hex');
export const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64');

export async function startHarness(opts: { users?: string[]; env?: Record<string, string>; storePort?: number } = {}): Promise<Harness> {
  const accessKeyId = `HOSTILE${crypto.randomBytes(6).toString('hex').toUpperCase()}`;
  const secretAccessKey = crypto.randomBytes(30).toString('base64url');
  const bucket = `hostile-${crypto.randomBytes(5).toString('hex')}`;
  const store = await startEmbeddedStore({ accessKeyId, secretAccessKey, buckets: [bucket], port: opts.storePort });
  const host = await startHost({
    env: {
      AWS_S3_ENDPOINT: store.endpoint,
      AWS_ACCESS_KEY_ID: accessKeyId,
      AWS_SECRET_ACCESS_KEY: secretAccessKey,
      AWS_REGION: store.region,
      AWS_BUCKET: bucket,
      ...opts.env,
    },
  });
  const s3 = storeClient({ endpoint: store.endpoint, region: store.region, accessKeyId, secretAccessKey });
  const users: User[] = [];
  for (const name of opts.users ?? []) users.push(await host.addUser(name));
  const captured: string[] = [];

  const capture = (status: number, headers: Headers, text: string) => {
    const h: string[] = [];
    headers.forEach((v, k) => h.push(`${k}: ${v}`));
    captured.push(`${status}\n${h.join('\n')}\n\n${text}`);
  };

  async function call(endpoint: string, o: CallOptions = {}): Promise<Answer> {
    const transport = o.transport ?? 'json';
    const headers: Record<string, string> = { ...o.headers };
    if (o.userKey !== undefined) headers['x-user-key'] = o.userKey;
    if (o.adminKey !== undefined) headers['x-api-key'] = o.adminKey;
    let url = `${host.url}/aws-storage/${endpoint}/`;
    let method: string = o.method ?? (transport === 'json' || o.body !== undefined ? 'POST' : 'GET');
    let body: string | Buffer | undefined = o.body;
    if (body === undefined && transport === 'json') {
      headers['content-type'] ??= 'application/json';
      body = JSON.stringify(o.args ?? {});
    } else if (body === undefined) {
      const parts: string[] = [];
      for (const [k, val] of Object.entries(o.args ?? {})) {
        for (const one of Array.isArray(val) ? val : [val]) {
          parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(typeof one === 'string' ? one : JSON.stringify(one))}`);
        }
      }
      for (const [k, val] of Object.entries(o.raw ?? {})) parts.push(`${k}=${val}`);
      if (parts.length) url += `?${parts.join('&')}`;
      method = o.method ?? 'GET';
    }
    const res = await fetch(url, { method, headers, body: method === 'GET' ? undefined : (body as BodyInit | undefined) });
    const text = await res.text();
    capture(res.status, res.headers, text);
    let parsed: any = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON: the test will say so */
    }
    return { status: res.status, text, body: parsed, headers: res.headers, url };
  }

  async function fetchLink(url: string | URL, init: RequestInit = {}) {
    const res = await fetch(url, init);
    const bytes = Buffer.from(await res.arrayBuffer());
    capture(res.status, res.headers, bytes.toString('utf8'));
    return { status: res.status, bytes, text: bytes.toString('utf8') };
  }

  return {
    host,
    store,
    s3,
    bucket,
    secretAccessKey,
    adminKey: host.adminKey,
    users,
    captured,
    call,
    fetchLink,
    async keys() {
      const keys: string[] = [];
      let ContinuationToken: string | undefined;
      for (let page = 0; page < 1000; page++) {
        const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken }));
        keys.push(...(out.Contents ?? []).map((c) => c.Key!));
        ContinuationToken = out.NextContinuationToken;
        if (!ContinuationToken) break;
      }
      return keys.sort();
    },
    async read(key) {
      try {
        const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return Buffer.from(await out.Body!.transformToByteArray());
      } catch (err) {
        if ((err as { name?: string }).name === 'NoSuchKey') return undefined;
        throw err;
      }
    },
    async put(key, body) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: Buffer.from(body) }));
    },
    async exists(key) {
      try {
        await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
        return true;
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
        throw err;
      }
    },
    secrets() {
      return [
        { what: 'the S3 secret access key', value: secretAccessKey },
        { what: 'the admin key', value: host.adminKey },
        ...users.map((u) => ({ what: `user ${u.username}'s key`, value: u.user_key })),
      ];
    },
    async close() {
      s3.destroy();
      await host.stop().catch(() => undefined);
      await store.close();
    },
  };
}

/**
 * Asserts that no secret appears in what the host answered or logged, nor a presigned link's signature
 * in the log. Returns the sizes looked at, for the suite's printout.
 */
export function expectNoSecrets(h: Harness, extraSecrets: Array<{ what: string; value: string }> = []) {
  const answers = h.captured.join('\n');
  const log = h.host.logs();
  const leaks: string[] = [];
  for (const s of [...h.secrets(), ...extraSecrets]) {
    if (!s.value) continue;
    const forms = new Set([s.value, encodeURIComponent(s.value)]);
    for (const form of forms) {
      if (answers.includes(form)) leaks.push(`${s.what} in an answer`);
      if (log.includes(form)) leaks.push(`${s.what} in the host's log`);
    }
  }
  if (/X-Amz-Signature=/i.test(log)) leaks.push("a presigned link's signature in the host's log");
  if (/X-Amz-Credential=/i.test(log)) leaks.push("a presigned link's credential in the host's log");
  expect(leaks).toEqual([]);
  return { answers: h.captured.length, answerBytes: answers.length, logBytes: log.length };
}
