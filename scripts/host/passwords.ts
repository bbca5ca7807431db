// Users' passwords: scrypt (memory-hard, in node:crypto), its parameters kept beside each hash so that
// they can be raised later without a reset: `scrypt$<N>$<r>$<p>$<salt b64url>$<hash b64url>`.
// A hash made with weaker parameters than today's is re-made at the next successful sign-in.
import crypto from 'node:crypto';

/** OWASP's scrypt equivalents (2025): N=2^17,r=8,p=1 … N=2^15,r=8,p=3. 32 MiB per hash, ~150 ms here. */
export const SCRYPT = { N: 2 ** 15, r: 8, p: 3 } as const;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Passwords are 8..256 characters (NIST 800-63B: at least 8, and allow at least 64). */
export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 256;
/** KDF runs at once (each holds 32 MiB and a libuv thread); more wait their turn, up to QUEUE_MAX. */
const CONCURRENT_MAX = 2;
const QUEUE_MAX = 64;

export class InvalidPasswordError extends Error {}
/** Too many password checks waiting: the host answers 503 `busy`. */
export class PasswordsBusyError extends Error {}

interface Params {
  N: number;
  r: number;
  p: number;
}

/** Why this password cannot be used, or undefined when it can. */
export function passwordProblem(password: unknown): string | undefined {
  if (typeof password !== 'string') return 'password must be a string';
  const length = [...password].length;
  if (length < PASSWORD_MIN) return `password must be at least ${PASSWORD_MIN} characters`;
  if (length > PASSWORD_MAX) return `password must be at most ${PASSWORD_MAX} characters`;
  if (/[\u0000-\u001f\u007f]/.test(password)) return 'password must not contain control characters';
  return undefined;
}

let running = 0;
const waiting: Array<() => void> = [];

/** One scrypt at a time per slot; a long queue is refused, not grown (a login flood must not eat memory). */
async function withSlot<T>(work: () => Promise<T>): Promise<T> {
  if (running >= CONCURRENT_MAX) {
    if (waiting.length >= QUEUE_MAX) throw new PasswordsBusyError('too many sign-ins at once; try again shortly');
    await new Promise<void>((resolve) => waiting.push(resolve));
  } else {
    running++;
  }
  try {
    return await work();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function derive(password: string, salt: Buffer, params: Params): Promise<Buffer> {
  return withSlot(
    () =>
      new Promise<Buffer>((resolve, reject) =>
        crypto.scrypt(password.normalize('NFC'), salt, HASH_BYTES, { ...params, maxmem: 256 * params.N * params.r }, (err, key) =>
          err ? reject(err) : resolve(key),
        ),
      ),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const problem = passwordProblem(password);
  if (problem) throw new InvalidPasswordError(problem);
  const salt = crypto.randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, SCRYPT);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), hash.toString('base64url')].join('$');
}

function parse(encoded: string): { params: Params; salt: Buffer; hash: Buffer } | undefined {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  // Bounds on what a stored hash may ask for: a damaged row must not make one sign-in take a gigabyte.
  const powerOfTwo = Number.isInteger(N) && N >= 2 && N <= 2 ** 20 && (N & (N - 1)) === 0;
  if (!powerOfTwo || !Number.isInteger(r) || r < 1 || r > 32 || !Number.isInteger(p) || p < 1 || p > 16) return undefined;
  const salt = Buffer.from(parts[4], 'base64url');
  const hash = Buffer.from(parts[5], 'base64url');
  if (salt.length < 8 || hash.length !== HASH_BYTES) return undefined;
  return { params: { N, r, p }, salt, hash };
}

/** A hash of no one's password with today's parameters: checked when the username is unknown, so both cost the same. */
let decoy: Promise<string> | undefined;
const decoyHash = () => (decoy ??= hashPassword(crypto.randomBytes(18).toString('base64url')));

/**
 * Whether `password` matches `encoded`. `encoded` undefined (no such user, or no password set) still
 * costs one full KDF run, so that a wrong username and a wrong password take the same time.
 */
export async function verifyPassword(password: string, encoded: string | null | undefined): Promise<boolean> {
  const stored = encoded ? parse(encoded) : undefined;
  const target = stored ?? parse(await decoyHash())!;
  const candidate = typeof password === 'string' && password.length <= PASSWORD_MAX * 4 ? password : '';
  const key = await derive(candidate, target.salt, target.params);
  return stored !== undefined && crypto.timingSafeEqual(key, target.hash);
}

/** true when a hash was made with weaker parameters than today's (re-hash it at the next sign-in). */
export function needsRehash(encoded: string): boolean {
  const stored = parse(encoded);
  if (!stored) return false;
  const { N, r, p } = stored.params;
  return N * r * p < SCRYPT.N * SCRYPT.r * SCRYPT.p;
}
