// The admin (account) key: ADMIN_KEY, else generated once and kept in DATA_DIR/admin-key (mode 0600).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface AdminKeySource {
  key: string;
  /** where it comes from: 'env' or the file path */
  source: 'env' | string;
  /** true only on the start that generated it */
  generated: boolean;
}

export function loadAdminKey(dataDir: string, fromEnv?: string): AdminKeySource {
  if (fromEnv) return { key: fromEnv, source: 'env', generated: false };
  const file = path.join(dataDir, 'admin-key');
  try {
    const key = fs.readFileSync(file, 'utf8').trim();
    if (key) return { key, source: file, generated: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = crypto.randomBytes(24).toString('hex');
  fs.mkdirSync(dataDir, { recursive: true });
  // 'wx': never overwrite a key another process wrote in the meantime.
  try {
    fs.writeFileSync(file, key + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadAdminKey(dataDir);
    throw err;
  }
  return { key, source: file, generated: true };
}

/** SHA-256 of a key: how keys are compared (and how the user store keeps them). One-shot where Node has it (>= 20.12). */
export const keyDigest: (s: string) => Buffer =
  typeof crypto.hash === 'function'
    ? (s) => crypto.hash('sha256', s, 'buffer')
    : (s) => crypto.createHash('sha256').update(s, 'utf8').digest();

/** Constant-time comparison of two digests (hashing first means lengths never leak). */
export function digestsEqual(a: Buffer, b: Buffer): boolean {
  return crypto.timingSafeEqual(a, b);
}

export interface StoreCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** true only on the start that generated them */
  generated: boolean;
  file: string;
}

/**
 * The embedded store's key pair: generated once per DATA_DIR and kept in DATA_DIR/store-credentials.json
 * (mode 0600) beside the admin key, so links keep working across restarts and no two data dirs share it.
 */
export function loadStoreCredentials(dataDir: string, generate: () => { accessKeyId: string; secretAccessKey: string }): StoreCredentials {
  const file = path.join(dataDir, 'store-credentials.json');
  try {
    const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as { accessKeyId?: unknown; secretAccessKey?: unknown };
    if (typeof saved.accessKeyId === 'string' && saved.accessKeyId && typeof saved.secretAccessKey === 'string' && saved.secretAccessKey) {
      return { accessKeyId: saved.accessKeyId, secretAccessKey: saved.secretAccessKey, generated: false, file };
    }
    throw new Error(`${file} is damaged: remove it to make a new key pair (links made with the old one stop working)`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const made = generate();
  fs.mkdirSync(dataDir, { recursive: true });
  try {
    fs.writeFileSync(file, JSON.stringify(made) + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadStoreCredentials(dataDir, generate);
    throw err;
  }
  return { ...made, generated: true, file };
}
