/**
 * The embedded S3-compatible store: @20minutes/s3rver (patched, see
 * patches/@20minutes+s3rver+4.0.4.patch) on 127.0.0.1, files in a data directory.
 *
 * Every request must be signed (SigV4 header or presigned query, or a signed POST policy);
 * every bucket answers browsers with a permissive CORS rule unless it has its own.
 */
import fs from 'fs';
import os from 'os';
import path from 'path';
import type { Server, IncomingMessage, ServerResponse } from 'http';
import { DEFAULT_REGION, EMBEDDED_ACCESS_KEY_ID, EMBEDDED_SECRET_ACCESS_KEY } from '../../src/lib/defaults';

// s3rver ships no types: describe the little we use.
interface S3rverStore {
  getBucket(name: string): Promise<unknown>;
  getSubresource(bucket: string, key: string | undefined, type: string): Promise<unknown>;
}
interface S3rverInstance {
  store: S3rverStore;
  httpServer?: Server<typeof IncomingMessage, typeof ServerResponse>;
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverCtor = new (options: Record<string, unknown>) => S3rverInstance;
type CorsModel = new (xml: string) => unknown;

/* eslint-disable @typescript-eslint/no-require-imports */
const S3rver = require('@20minutes/s3rver') as S3rverCtor;
const { S3CorsConfiguration } = require('@20minutes/s3rver/lib/models/config') as {
  S3CorsConfiguration: CorsModel;
};
/* eslint-enable @typescript-eslint/no-require-imports */

export interface EmbeddedStore {
  endpoint: string;
  port: number;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  dataDir: string;
  close(): Promise<void>;
}

export interface EmbeddedStoreOptions {
  /** 0 or undefined: a random free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default: a fresh temp dir, removed on close (only when we created it). */
  dataDir?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Buckets created at start (kept if they already exist). */
  buckets?: string[];
  /** Default true. */
  silent?: boolean;
}

/** The store's default credentials (SPEC §5: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY defaults). */
export const EMBEDDED_CREDENTIALS = { accessKeyId: EMBEDDED_ACCESS_KEY_ID, secretAccessKey: EMBEDDED_SECRET_ACCESS_KEY } as const;

/** s3rver checks signatures for whatever region the client signed with; this is the one we report. */
export const EMBEDDED_REGION = DEFAULT_REGION;

/** CORS for buckets without a configuration of their own: browsers may GET/PUT/POST/HEAD from anywhere. */
export const DEFAULT_CORS_XML = [
  '<CORSConfiguration>',
  '<CORSRule>',
  '<AllowedOrigin>*</AllowedOrigin>',
  '<AllowedMethod>GET</AllowedMethod>',
  '<AllowedMethod>PUT</AllowedMethod>',
  '<AllowedMethod>POST</AllowedMethod>',
  '<AllowedMethod>HEAD</AllowedMethod>',
  '<AllowedHeader>*</AllowedHeader>',
  '<ExposeHeader>ETag</ExposeHeader>',
  '<MaxAgeSeconds>3000</MaxAgeSeconds>',
  '</CORSRule>',
  '</CORSConfiguration>',
].join('');

export async function startEmbeddedStore(opts: EmbeddedStoreOptions = {}): Promise<EmbeddedStore> {
  const host = opts.host ?? '127.0.0.1';
  const accessKeyId = opts.accessKeyId ?? EMBEDDED_CREDENTIALS.accessKeyId;
  const secretAccessKey = opts.secretAccessKey ?? EMBEDDED_CREDENTIALS.secretAccessKey;
  if (!accessKeyId || !secretAccessKey) throw new Error('embedded store: empty access key id or secret');

  const ownDir = !opts.dataDir;
  const dataDir = opts.dataDir
    ? path.resolve(opts.dataDir)
    : fs.mkdtempSync(path.join(os.tmpdir(), 'embedded-s3-'));
  fs.mkdirSync(dataDir, { recursive: true });

  const server = new S3rver({
    address: host,
    port: opts.port ?? 0,
    directory: dataDir,
    silent: opts.silent ?? true,
    // only the configured key pair is accepted by this instance (option added by our patch)
    accessKeys: { [accessKeyId]: secretAccessKey },
    // we always serve path-style on 127.0.0.1; never guess buckets from Host headers
    vhostBuckets: false,
    configureBuckets: (opts.buckets ?? []).map((name) => ({ name })),
  });

  // Default CORS for every bucket that has none (including buckets created later via the API).
  const store = server.store;
  const getSubresource = store.getSubresource.bind(store);
  store.getSubresource = async (bucket, key, type) => {
    const found = await getSubresource(bucket, key, type);
    if (found || type !== 'cors' || key !== undefined || !bucket) return found;
    if (!(await store.getBucket(bucket))) return found;
    return new S3CorsConfiguration(DEFAULT_CORS_XML);
  };

  let address: { port: number };
  try {
    address = await server.run();
  } catch (err) {
    if (ownDir) fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const port = address.port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const http = server.httpServer;
      const done = server.close().catch(() => undefined);
      // drop keep-alive and in-flight connections so close() is quick
      http?.closeAllConnections();
      await done;
      if (ownDir) fs.rmSync(dataDir, { recursive: true, force: true });
    })();
    return closing;
  };

  return {
    endpoint: `http://${urlHost}:${port}`,
    port,
    accessKeyId,
    secretAccessKey,
    region: EMBEDDED_REGION,
    dataDir,
    close,
  };
}
