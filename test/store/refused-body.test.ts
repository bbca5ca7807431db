/**
 * A request the store refuses while its body is still coming (a PUT link with a bad signature, an
 * expired one, a form it refuses): the client must be able to finish sending and read the refusal,
 * not see a reset (EPIPE / ECONNRESET) that throws the answer away. Past DRAIN_MAX_BYTES (64 MiB) the
 * store stops reading and resets: a refusal never reads without bound.
 */
import net from 'node:net';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { getText, storeForFile } from './helpers';

const BUCKET = 'refusals';
const MiB = 1024 * 1024;
const file = storeForFile([BUCKET]);

beforeAll(async () => {
  await file.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'kept.txt', Body: 'kept' }));
});

async function badLink(key: string): Promise<URL> {
  const url = new URL(await getSignedUrl(file.s3, new PutObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: 300 }));
  const sig = url.searchParams.get('X-Amz-Signature')!;
  url.searchParams.set('X-Amz-Signature', (sig[0] === '0' ? '1' : '0') + sig.slice(1));
  return url;
}

interface Outcome {
  answer: string;
  sent: number;
  writeError?: string;
  /** the store ended the connection (FIN) */
  ended: boolean;
}

const drained = (socket: net.Socket) =>
  new Promise<void>((resolve) => {
    const done = () => {
      socket.off('drain', done).off('close', done);
      resolve();
    };
    socket.on('drain', done).on('close', done);
  });

/** Head and body as an HTTP client sends them: as fast as the store takes them, the answer read meanwhile. */
function putWhole(url: URL, total: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    // half-open as HTTP clients are: a FIN after the answer does not stop the body
    const socket = net.connect({ port: Number(url.port), host: '127.0.0.1', allowHalfOpen: true });
    const out: Outcome = { answer: '', sent: 0, ended: false };
    const chunk = Buffer.alloc(MiB, 0x61);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close in 15 s: ${JSON.stringify({ ...out, answer: out.answer.slice(0, 40) })}`));
    }, 15_000);
    socket.on('data', (d) => (out.answer += d.toString('latin1')));
    socket.on('end', () => (out.ended = true));
    socket.on('error', (err: NodeJS.ErrnoException) => (out.writeError = err.code ?? err.message));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.write(`PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: ${total}\r\n\r\n`);
    void (async () => {
      while (out.sent < total && !socket.destroyed) {
        const n = Math.min(MiB, total - out.sent);
        out.sent += n;
        if (!socket.write(chunk.subarray(0, n))) await drained(socket);
      }
      if (!socket.destroyed) socket.end();
    })();
  });
}

test('a PUT refused before its body is read: the client sends all 20 MiB, then reads the 403, and the connection closes without a reset', async () => {
  for (let i = 0; i < 3; i++) {
    const out = await putWhole(await badLink(`refused-${i}.bin`), 20 * MiB);
    expect(out.answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(out.answer).toContain('<Code>SignatureDoesNotMatch</Code>');
    expect(out.writeError).toBeUndefined();
    expect(out.sent).toBe(20 * MiB);
  }
  await expect(getText(file.s3, BUCKET, 'refused-0.bin')).rejects.toThrow();
});

test('a refused body past 64 MiB is not read on: the connection is reset before the client is done', async () => {
  const out = await putWhole(await badLink('huge.bin'), 1024 * MiB);
  expect(out.answer).toMatch(/^HTTP\/1\.1 403 /);
  expect(out.writeError).toMatch(/ECONNRESET|EPIPE/);
  // what the kernel's buffers take beyond the store's bound, not the gigabyte
  expect(out.sent).toBeLessThan(128 * MiB);
  expect(await getText(file.s3, BUCKET, 'kept.txt')).toBe('kept');
});

test('fetch PUTs of 20 MiB to a refused link: every one reads its 403', async () => {
  const body = Buffer.alloc(20 * MiB, 0x62);
  const url = await badLink('fetched.bin');
  const statuses: Array<number | string> = [];
  for (let i = 0; i < 10; i++) {
    statuses.push(
      await fetch(url, { method: 'PUT', body }).then(
        async (r) => (await r.text(), r.status),
        (e: Error & { cause?: { code?: string } }) => e.cause?.code ?? e.message,
      ),
    );
  }
  expect(statuses).toEqual(Array(10).fill(403));
});
