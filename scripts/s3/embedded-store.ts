/**
 * The embedded S3-compatible store (scripts/store/): on 127.0.0.1, files in a data directory.
 *
 * Every request must be signed (SigV4 header or presigned query, or a signed POST policy); every
 * bucket answers browsers with a permissive CORS rule unless it has its own. Without credentials
 * given, a random key pair is made for this start (the host keeps one per DATA_DIR).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { DEFAULT_REGION } from '../../src/lib/defaults';
import { Disk, type Bucket } from '../store/disk';
import { sweepUploads } from '../store/multipart';
import { createStoreServer } from '../store/server';

export { DEFAULT_CORS_XML } from '../store/cors';

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
  /** Default: a random pair for this start. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Buckets created at start (kept if they already exist). */
  buckets?: string[];
  /** Default true: no log lines. */
  silent?: boolean;
  /** How long a form POST may take to send its fields, up to the file (default FORM_FIELDS_TIMEOUT_MS). */
  formFieldsTimeoutMs?: number;
  /** Connections one address may hold (default 256); loopback addresses, the host's own, are not counted unless capLoopback. */
  maxConnectionsPerAddress?: number;
  capLoopback?: boolean;
  /** Buckets made or found at start (opts.buckets) without a lifecycle get a rule aborting incomplete uploads after this many days. */
  abortIncompleteUploadsAfterDays?: number;
  /** Refused bodies the store reads and drops at once before answering (default 64); past it, answered at once. */
  maxDrains?: number;
}

/** The store accepts signatures for any region; this is the one it reports. */
export const EMBEDDED_REGION = DEFAULT_REGION;

/** A new random key pair (20 upper-case letters and digits, 40 characters of secret), as AWS shapes them. */
export function generateCredentials(): { accessKeyId: string; secretAccessKey: string } {
  const id = 'AKES' + randomBytes(12).toString('hex').toUpperCase().slice(0, 16);
  return { accessKeyId: id, secretAccessKey: randomBytes(30).toString('base64').replace(/[^A-Za-z0-9]/g, 'x').slice(0, 40) };
}

const SWEEP_EVERY_MS = 60 * 60 * 1000;

/**
 * The rule the socket gives a bucket it creates (src/lib/storage.ts ensureBucket): incomplete multipart
 * uploads are aborted after `days`. A bucket the store makes at start (opts.buckets) is found by the
 * socket and never gets it, so it is set here, on a bucket with no lifecycle of its own.
 */
function ensureAbortRule(bucket: Bucket, days: number): void {
  if (bucket.settings.lifecycle !== undefined) return;
  bucket.settings = {
    ...bucket.settings,
    lifecycle:
      '<LifecycleConfiguration><Rule><ID>aws-storage-abort-incomplete-multipart-uploads</ID><Filter><Prefix></Prefix></Filter><Status>Enabled</Status>' +
      `<AbortIncompleteMultipartUpload><DaysAfterInitiation>${days}</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>`,
  };
  bucket.saveSettings();
}

export async function startEmbeddedStore(opts: EmbeddedStoreOptions = {}): Promise<EmbeddedStore> {
  const host = opts.host ?? '127.0.0.1';
  const generated = opts.accessKeyId || opts.secretAccessKey ? undefined : generateCredentials();
  const accessKeyId = opts.accessKeyId ?? generated?.accessKeyId ?? '';
  const secretAccessKey = opts.secretAccessKey ?? generated?.secretAccessKey ?? '';
  if (!accessKeyId || !secretAccessKey) throw new Error('embedded store: empty access key id or secret');

  const ownDir = !opts.dataDir;
  const dataDir = opts.dataDir ? path.resolve(opts.dataDir) : fs.mkdtempSync(path.join(os.tmpdir(), 'embedded-s3-'));
  const disk = new Disk(dataDir);
  const log = opts.silent === false ? (line: string) => process.stderr.write(`${line}\n`) : undefined;
  try {
    await disk.load();
    if (disk.damaged > 0) process.stderr.write(`aws-storage store: ${disk.damaged} damaged object file(s) skipped\n`);
    for (const name of opts.buckets ?? []) {
      disk.create(name);
      if (opts.abortIncompleteUploadsAfterDays) ensureAbortRule(disk.get(name), opts.abortIncompleteUploadsAfterDays);
    }
  } catch (err) {
    if (ownDir) fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }

  const server = createStoreServer({ disk, keys: new Map([[accessKeyId, secretAccessKey]]), log, formFieldsTimeoutMs: opts.formFieldsTimeoutMs, maxConnectionsPerAddress: opts.maxConnectionsPerAddress, capLoopback: opts.capLoopback, maxDrains: opts.maxDrains });
  const sweep = () => {
    for (const b of disk.buckets.values()) sweepUploads(b);
  };
  sweep();
  const timer = setInterval(sweep, SWEEP_EVERY_MS);
  timer.unref();

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    clearInterval(timer);
    if (ownDir) fs.rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      clearInterval(timer);
      const done = new Promise<void>((r) => server.close(() => r()));
      // drop keep-alive and in-flight connections so close() is quick
      server.closeAllConnections();
      await done;
      if (ownDir) fs.rmSync(dataDir, { recursive: true, force: true });
    })();
    return closing;
  };

  return { endpoint: `http://${urlHost}:${port}`, port, accessKeyId, secretAccessKey, region: EMBEDDED_REGION, dataDir, close };
}
