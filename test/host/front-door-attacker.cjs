// Unauthenticated load on the host for the front-door suite, run as its own process so that the test
// process, which measures the host, stays idle. Prints one JSON line of what it saw.
//
//   ATTACK=hold    CONNECTIONS keyless connections declaring 40 MB bodies (half Content-Length, half
//                  chunked), opened over the first second, each writing 256 KiB at once and then 32 KiB
//                  every 250 ms while the host reads; a connection the host closes is opened again
//                  after 1 s, until DURATION_MS.
//   ATTACK=json6m  one 65 MB JSON body with 6 M keys, sent as VARIANTS says (comma list): `length`
//                  (keyless, Content-Length), `chunked` (keyless), `keyed` (X-USER-KEY: USER_KEY).
'use strict';
const net = require('node:net');

const port = Number(process.env.PORT);
const path = process.env.TARGET_PATH || '/aws-storage/echo/';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const chunk = (b) => Buffer.concat([Buffer.from(b.length.toString(16) + '\r\n'), b, Buffer.from('\r\n')]);

function statusOf(buf) {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(buf.toString('latin1', 0, Math.min(buf.length, 32)));
  return m ? Number(m[1]) : 0;
}

async function hold() {
  const n = Number(process.env.CONNECTIONS || 200);
  const until = Date.now() + Number(process.env.DURATION_MS || 10_000);
  const stats = { opened: 0, statuses: {}, bytesSent: 0, maxOpen: 0 };
  let open = 0;
  const burst = Buffer.from('{"file":"' + 'A'.repeat(256 * 1024));
  const trickle = Buffer.alloc(32 * 1024, 0x41);
  const one = (i) =>
    new Promise((resolve) => {
      const chunked = i % 2 === 1;
      // allowHalfOpen: a FIN from the host does not end this side; it holds on until the host closes.
      const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      stats.opened++;
      let timer;
      let seen = false;
      let connected = false;
      const send = (b) => {
        // Holding, not flooding: nothing more while the host is not reading what was sent.
        if (s.destroyed || s.writableLength > 0) return;
        const out = chunked ? chunk(b) : b;
        stats.bytesSent += out.length;
        s.write(out);
      };
      s.on('connect', () => {
        connected = true;
        open++;
        stats.maxOpen = Math.max(stats.maxOpen, open);
        s.write(
          `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
            (chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${40 * 1024 * 1024}\r\n`) +
            '\r\n',
        );
        send(burst);
        timer = setInterval(() => (Date.now() < until ? send(trickle) : s.destroy()), 250);
      });
      s.on('data', (d) => {
        if (seen) return;
        seen = true;
        const st = statusOf(d);
        stats.statuses[st] = (stats.statuses[st] || 0) + 1;
      });
      s.on('error', () => undefined);
      s.on('close', () => {
        clearInterval(timer);
        if (connected) open--;
        resolve();
      });
    });
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      await sleep(i * 5); // the connections arrive over the first second
      while (Date.now() < until) {
        await one(i);
        await sleep(1_000);
      }
    }),
  );
  return stats;
}

/** `{"000000":1,"000001":1,…}`: 6 M keys, 11 bytes each, about 65 MB. */
function sixMillionKeys() {
  const keys = 6_000_000;
  const body = Buffer.allocUnsafe(2 + keys * 11);
  body[0] = 0x7b;
  let at = 1;
  for (let i = 0; i < keys; i++) {
    body[at] = 0x22;
    body.write(i.toString(16).padStart(6, '0'), at + 1, 'latin1');
    body[at + 7] = 0x22;
    body[at + 8] = 0x3a;
    body[at + 9] = 0x31;
    body[at + 10] = 0x2c;
    at += 11;
  }
  body[at - 1] = 0x7d;
  return body.subarray(0, at);
}

function sendBig(body, variant) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const t0 = Date.now();
    let sent = 0;
    let answer = Buffer.alloc(0);
    let done = false;
    const finish = (extra) => {
      if (done) return;
      done = true;
      s.destroy();
      const text = answer.toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      resolve({ variant, status: statusOf(answer), body: split === -1 ? '' : text.slice(split + 4), sent, ms: Date.now() - t0, ...extra });
    };
    const deadline = setTimeout(() => finish({ timedOut: true }), 12_000);
    s.on('connect', async () => {
      const headers = ['Content-Type: application/json'];
      if (variant === 'chunked') headers.push('Transfer-Encoding: chunked');
      else headers.push(`Content-Length: ${body.length}`);
      if (variant === 'keyed') headers.push(`X-USER-KEY: ${process.env.USER_KEY}`);
      s.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers.join('\r\n')}\r\n\r\n`);
      for (let at = 0; at < body.length && !done && !s.destroyed; at += 1 << 20) {
        const piece = body.subarray(at, Math.min(body.length, at + (1 << 20)));
        sent += piece.length;
        if (!s.write(variant === 'chunked' ? chunk(piece) : piece)) {
          await new Promise((r) => {
            const go = () => {
              s.off('drain', go);
              s.off('close', go);
              r();
            };
            s.on('drain', go);
            s.on('close', go);
          });
        }
      }
      if (variant === 'chunked' && !done && !s.destroyed) s.write('0\r\n\r\n');
    });
    s.on('data', (d) => {
      answer = Buffer.concat([answer, d]);
      const text = answer.toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const m = /content-length: (\d+)/i.exec(text);
      if (split !== -1 && m && answer.length >= split + 4 + Number(m[1])) {
        clearTimeout(deadline);
        finish({});
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(deadline);
      finish({ closed: true });
    });
  });
}

async function json6m() {
  const body = sixMillionKeys();
  const results = [];
  for (const variant of (process.env.VARIANTS || 'length,chunked,keyed').split(',')) {
    results.push(await sendBig(body, variant));
    await sleep(300);
  }
  return { bytes: body.length, results };
}

(process.env.ATTACK === 'json6m' ? json6m() : hold()).then(
  (r) => {
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exit(0);
  },
  (err) => {
    process.stderr.write(String(err && err.stack) + '\n');
    process.exit(1);
  },
);
