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
/** A store that drains at most two refused bodies at once. */
const capped = storeForFile([BUCKET], { maxDrains: 2 });

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

test('a refused body declared over 64 MiB is answered at once and not read: the connection is reset before the client is done', async () => {
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

/** Sends `head`, then `chunk` as fast as the store takes it for up to `ms`; what came back, and when. */
function flood(url: URL, head: string, chunk: Buffer, ms: number): Promise<{ answer: string; answeredAfterMs: number; sent: number; closedAfterMs: number }> {
  return new Promise((resolve) => {
    const socket = net.connect({ port: Number(url.port), host: '127.0.0.1' });
    const started = Date.now();
    let answer = '';
    let answeredAfterMs = -1;
    let sent = 0;
    socket.on('data', (d) => {
      if (answeredAfterMs < 0) answeredAfterMs = Date.now() - started;
      answer += d.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve({ answer, answeredAfterMs, sent, closedAfterMs: Date.now() - started }));
    socket.write(head);
    void (async () => {
      while (!socket.destroyed && Date.now() - started < ms) {
        sent += chunk.length;
        if (!socket.write(chunk)) await Promise.race([drained(socket), new Promise((r) => setTimeout(r, 50))]);
      }
    })();
  });
}

test('a refused chunked body is answered at once and not read (1-byte chunks cost the store a callback each)', async () => {
  const url = await badLink('chunked.bin');
  const tiny = Buffer.from('1\r\na\r\n'.repeat(10_000));
  const out = await flood(url, `PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nTransfer-Encoding: chunked\r\n\r\n`, tiny, 4_000);
  expect(out.answer).toMatch(/^HTTP\/1\.1 403 /);
  expect(out.answeredAfterMs).toBeLessThan(500);
  // what the kernel's buffers take: the store stopped reading at its answer
  expect(out.sent).toBeLessThan(32 * MiB);
  expect(out.closedAfterMs).toBeLessThan(3_500);
});

test('a request pipelined behind a refusal answered Connection: close does not run (RFC 9112 9.6)', async () => {
  const bad = await badLink('pipelined-refused.bin');
  const good = new URL(await getSignedUrl(file.s3, new PutObjectCommand({ Bucket: BUCKET, Key: 'pipelined.txt' }), { expiresIn: 300 }));
  const socket = net.connect({ port: Number(bad.port), host: '127.0.0.1', allowHalfOpen: true });
  socket.on('error', () => {});
  let answer = '';
  const answered = new Promise<void>((r) => socket.on('data', (d) => ((answer += d.toString('latin1')), r())));
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  // 10 bytes of a 1000-byte body: the store waits for the rest, then answers 403 and ends the connection
  socket.write(`PUT ${bad.pathname}${bad.search} HTTP/1.1\r\nHost: ${bad.host}\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(10)}`);
  await answered;
  expect(answer).toMatch(/^HTTP\/1\.1 403 [^]*\r\nConnection: close\r\n/i);
  socket.write('x'.repeat(990) + `PUT ${good.pathname}${good.search} HTTP/1.1\r\nHost: ${good.host}\r\nContent-Length: 5\r\n\r\nhello`);
  socket.end();
  await closed;
  await expect(getText(file.s3, BUCKET, 'pipelined.txt')).rejects.toThrow();
});

/** A PUT through `url` with `Expect: 100-continue`: the first answer, and the final one after the body if a 100 came. */
function putExpecting(url: URL, headers: string, body: string): Promise<{ first: string; final: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port: Number(url.port), host: '127.0.0.1' });
    let got = '';
    let first = '';
    const timer = setTimeout(() => (socket.destroy(), reject(new Error(`no answer: ${got}`))), 5_000);
    socket.on('data', (d) => {
      got += d.toString('latin1');
      if (!first && got.includes('\r\n\r\n')) {
        first = got.slice(0, got.indexOf('\r\n'));
        if (/^HTTP\/1\.1 100 /.test(first)) {
          got = got.slice(got.indexOf('\r\n\r\n') + 4);
          socket.write(body);
        } else {
          clearTimeout(timer);
          socket.destroy();
          resolve({ first, final: first });
        }
      } else if (first && /^HTTP\/1\.1 [2-5]\d\d /.test(got) && got.includes('\r\n\r\n')) {
        clearTimeout(timer);
        socket.destroy();
        resolve({ first, final: got.slice(0, got.indexOf('\r\n')) });
      }
    });
    socket.on('error', () => {});
    socket.write(`PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n${headers}\r\n`);
  });
}

test('Expect: 100-continue: a refusal that needs no body (a write condition) comes instead of the 100; a good PUT gets its 100, then 200', async () => {
  const link = async () => new URL(await getSignedUrl(file.s3, new PutObjectCommand({ Bucket: BUCKET, Key: 'kept.txt' }), { expiresIn: 300 }));
  expect(await putExpecting(await link(), 'If-None-Match: *\r\n', 'other')).toEqual({ first: 'HTTP/1.1 412 Precondition Failed', final: 'HTTP/1.1 412 Precondition Failed' });
  expect(await getText(file.s3, BUCKET, 'kept.txt')).toBe('kept');
  expect(await putExpecting(await link(), '', 'kept')).toEqual({ first: 'HTTP/1.1 100 Continue', final: 'HTTP/1.1 200 OK' });
});

/** A PUT of 1000 bytes that sends only its first 10: when its first answer came (ms after the start), and a way to send the rest. */
function partialPut(url: URL): { answeredAfterMs: Promise<number>; sendRest: () => void; close: () => void } {
  const socket = net.connect({ port: Number(url.port), host: '127.0.0.1', allowHalfOpen: true });
  socket.on('error', () => {});
  const started = Date.now();
  const answeredAfterMs = new Promise<number>((resolve) => {
    let got = '';
    socket.on('data', (d) => {
      got += d.toString('latin1');
      if (/^HTTP\/1\.1 403 /.test(got)) resolve(Date.now() - started);
    });
    socket.once('close', () => resolve(-1));
  });
  socket.write(`PUT ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(10)}`);
  return { answeredAfterMs, sendRest: () => socket.write('x'.repeat(990)), close: () => socket.destroy() };
}

const answeredWithin = (p: Promise<number>, ms: number) => Promise.race([p, new Promise<number>((r) => setTimeout(() => r(-2), ms))]);

test('refused bodies drained at once are capped (maxDrains): past the cap a refusal is answered at once, and a drain that ends frees its place', async () => {
  const link = async (key: string) => {
    const url = new URL(await getSignedUrl(capped.s3, new PutObjectCommand({ Bucket: BUCKET, Key: key }), { expiresIn: 300 }));
    url.searchParams.set('X-Amz-Signature', '0'.repeat(64));
    return url;
  };
  const first = [partialPut(await link('d1.bin')), partialPut(await link('d2.bin'))];
  // the two within the cap wait for their bodies: no answer yet
  expect(await answeredWithin(first[0].answeredAfterMs, 400)).toBe(-2);
  expect(await answeredWithin(first[1].answeredAfterMs, 10)).toBe(-2);
  // a third is past the cap: answered at once, its body not waited for
  const third = partialPut(await link('d3.bin'));
  const thirdAfter = await answeredWithin(third.answeredAfterMs, 1_000);
  expect(thirdAfter).toBeGreaterThanOrEqual(0);
  expect(thirdAfter).toBeLessThan(1_000);
  // the first two, their bodies sent, get their 403s; their places are free again
  for (const p of first) p.sendRest();
  for (const p of first) expect(await answeredWithin(p.answeredAfterMs, 1_500)).toBeGreaterThanOrEqual(0);
  const fourth = partialPut(await link('d4.bin'));
  expect(await answeredWithin(fourth.answeredAfterMs, 400)).toBe(-2);
  fourth.sendRest();
  expect(await answeredWithin(fourth.answeredAfterMs, 1_500)).toBeGreaterThanOrEqual(0);
  for (const p of [...first, third, fourth]) p.close();
});
