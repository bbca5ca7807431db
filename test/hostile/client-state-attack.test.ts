/**
 * Attack pass 3: the Node client's resume state (client/src/node.ts fileStore). Its default directory is
 * os.tmpdir()/aws-storage-uploads, one path for every account of the machine, and the temporary file it
 * writes before the rename has a predictable name (<hash of the resume key>.json.<pid>.<n>.tmp). Another
 * account that made the directory first (world-writable) can plant a symlink at that name: the victim's
 * writeFile follows it and overwrites any file the victim may write. The state must only ever be kept
 * in a directory that is the caller's alone, and never be written through a link.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_STATE_DIR, fileStore } from '../../client/src/node';
import type { SavedUpload } from '../../client/src/state';

const state = (uploadId: string): SavedUpload => ({
  v: 1,
  uploadId,
  key: '7/report.pdf',
  name: 'report.pdf',
  size: 6 * 1024 * 1024,
  partSize: 5 * 1024 * 1024,
  partCount: 2,
  parts: {},
  updatedAt: new Date().toISOString(),
});
const resumeKey = `report.pdf\n${6 * 1024 * 1024}\n1700000000000`;
const stateFile = (dir: string) => path.join(dir, `${createHash('sha256').update(resumeKey).digest('hex').slice(0, 32)}.json`);

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'client-state-attack-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

/** what another account does first: the shared directory, writable by all (no sticky bit) */
function plantSharedDir(): string {
  const dir = path.join(root, 'aws-storage-uploads');
  fs.mkdirSync(dir);
  fs.chmodSync(dir, 0o777);
  return dir;
}

test('set() never writes through a link planted at its temporary name', async () => {
  const dir = plantSharedDir();
  const precious = path.join(root, 'precious.txt');
  fs.writeFileSync(precious, 'the victim\'s own file\n');
  // the first temporary names this process would use
  for (let n = 1; n <= 4; n++) fs.symlinkSync(precious, `${stateFile(dir)}.${process.pid}.${n}.tmp`);

  await Promise.resolve().then(() => fileStore(dir).set(resumeKey, state('mine'))).catch(() => undefined);

  expect(fs.readFileSync(precious, 'utf8')).toBe('the victim\'s own file\n'); // fails: overwritten with the JSON state
});

test('a directory others may write is not used for state: nothing is written there, nothing planted is read', async () => {
  const dir = plantSharedDir();
  const planted = JSON.stringify(state('planted-by-another-account'));
  fs.writeFileSync(stateFile(dir), planted);
  fs.chmodSync(stateFile(dir), 0o666);

  const store = fileStore(dir);
  expect(await store.get(resumeKey)).toBeUndefined(); // fails: the planted state is taken
  await Promise.resolve().then(() => store.set(resumeKey, state('mine'))).catch(() => undefined);
  expect(fs.readFileSync(stateFile(dir), 'utf8')).toBe(planted); // fails: the state went into the shared directory
});

test('the default directory is not one path shared by every account of the machine', () => {
  if (typeof process.getuid !== 'function') return; // Windows: per-user temp directories already
  expect(DEFAULT_STATE_DIR).not.toBe(path.join(os.tmpdir(), 'aws-storage-uploads')); // fails
});

test('the state still works in a directory of its own (the fix keeps resume)', async () => {
  const dir = path.join(root, 'own');
  const store = fileStore(dir);
  await store.set(resumeKey, state('mine'));
  expect((await store.get(resumeKey))?.uploadId).toBe('mine');
  expect(fs.statSync(dir).mode & 0o077).toBe(0);
  expect(fs.statSync(stateFile(dir)).mode & 0o077).toBe(0);
  expect(fs.readdirSync(dir)).toEqual([path.basename(stateFile(dir))]);
  await store.remove(resumeKey);
  expect(await store.get(resumeKey)).toBeUndefined();
});
