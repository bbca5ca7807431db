// Fixtures for the client tests: random files on disk with their SHA-256, a fetch that counts (and can
// break) what the client sends, and the built package made importable by its name from a child process.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT, tempDir } from '../support/host';

export const MIB = 1024 * 1024;

export function randomFile(dir: string, size: number, name = `file-${size}.bin`): { path: string; sha256: string } {
  const file = path.join(dir, name);
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'w');
  try {
    for (let done = 0; done < size; ) {
      const chunk = crypto.randomBytes(Math.min(4 * MIB, size - done));
      hash.update(chunk);
      fs.writeSync(fd, chunk);
      done += chunk.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { path: file, sha256: hash.digest('hex') };
}

export const sha256 = (bytes: Uint8Array) => crypto.createHash('sha256').update(bytes).digest('hex');

/** Downloads a link and hashes it as it streams (the bytes, as the store serves them). */
export async function downloadSha256(url: string): Promise<{ sha256: string; size: number; contentType: string | null }> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`download ${res.status}: ${await res.text()}`);
  const hash = crypto.createHash('sha256');
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size, contentType: res.headers.get('content-type') };
}

export interface Sent {
  method: string;
  /** endpoint name for socket calls, 'part' or 'put' for PUTs to links */
  kind: string;
  partNumber?: number;
  status?: number;
  error?: string;
}

/**
 * A fetch that records each request; `before` may throw (a network error) or wait, `after` may read the
 * answer (a clone). Part PUTs carry `partNumber` in the link's query.
 */
export function recordingFetch(hooks: { before?: (s: Sent, count: number) => Promise<void> | void; after?: (s: Sent, res: Response) => Promise<void> | void } = {}) {
  const sent: Sent[] = [];
  const fetchFn = async (input: string, init?: RequestInit): Promise<Response> => {
    const url = new URL(input);
    const endpoint = /\/aws-storage\/([^/]+)\/$/.exec(url.pathname)?.[1];
    const partNumber = url.searchParams.get('partNumber');
    const s: Sent = {
      method: init?.method ?? 'GET',
      kind: endpoint ?? (partNumber ? 'part' : 'put'),
      partNumber: partNumber ? Number(partNumber) : undefined,
    };
    sent.push(s);
    const same = sent.filter((x) => x.kind === s.kind && x.partNumber === s.partNumber).length;
    try {
      await hooks.before?.(s, same);
      const res = await fetch(input, init);
      s.status = res.status;
      await hooks.after?.(s, res.clone());
      return res;
    } catch (err) {
      s.error = String((err as Error)?.message ?? err);
      throw err;
    }
  };
  return { fetch: fetchFn, sent, parts: () => sent.filter((s) => s.kind === 'part') };
}

/** A directory whose node_modules/@aws-storage/client is client/ (built), so `import '@aws-storage/client'` resolves by its exports. */
export function packageHome(): string {
  const home = tempDir('aws-storage-client-home-');
  fs.mkdirSync(path.join(home, 'node_modules', '@aws-storage'), { recursive: true });
  fs.symlinkSync(path.join(PROJECT_ROOT, 'client'), path.join(home, 'node_modules', '@aws-storage', 'client'), 'dir');
  fs.copyFileSync(path.join(__dirname, 'child-upload.mjs'), path.join(home, 'child-upload.mjs'));
  return home;
}

export interface ChildEvent {
  event: string;
  [k: string]: any;
}

/** Runs child-upload.mjs; `onEvent` may return true to SIGKILL the child there (a crash mid-upload). */
export function runChild(home: string, args: Record<string, unknown>, onEvent: (e: ChildEvent) => boolean | void = () => {}): Promise<{ events: ChildEvent[]; killed: boolean; code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(home, 'child-upload.mjs'), JSON.stringify(args)], { cwd: home, stdio: ['ignore', 'pipe', 'pipe'] });
    const events: ChildEvent[] = [];
    let killed = false;
    let buf = '';
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim() || killed) continue;
        const e = JSON.parse(line) as ChildEvent;
        events.push(e);
        if (onEvent(e)) {
          killed = true;
          child.kill('SIGKILL');
        }
      }
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ events, killed, code, stderr }));
  });
}
