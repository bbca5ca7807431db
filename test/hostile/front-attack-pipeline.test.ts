/**
 * An outside pass on the host's front door: HTTP/1.1 pipelining. Node's http server parses every
 * request of a chunk a client sends and starts them all at once (their answers queued in order), and
 * nothing in the host bounds requests in flight per connection, nor closes a connection whose client
 * reads no answer. Real host process (`npm start`'s main.ts) with the embedded store, raw sockets on
 * 127.0.0.1. Each test has its own host, so that one's memory does not show in another's.
 */
import fs from 'node:fs';
import net from 'node:net';
import { startHost, type StartedHost } from '../support/host';

jest.setTimeout(60_000);

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rss = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const portOf = (h: StartedHost) => Number(new URL(h.url).port);

/** Opens `count` connections, each writing `head` `times` over in one write (~60 KB: one read for the host). */
function pipeliners(port: number, head: string, times: number, count: number, read: boolean): net.Socket[] {
  const out: net.Socket[] = [];
  for (let i = 0; i < count; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    if (read) s.on('data', () => undefined);
    s.once('connect', () => {
      s.write(head.repeat(times));
      if (!read) s.pause();
    });
    out.push(s);
  }
  return out;
}

/** Host-side sockets of `port` still ESTABLISHED (Linux /proc/net/tcp; 127.0.0.1 only). */
function establishedOnHost(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return fs
    .readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => {
      const f = l.trim().split(/\s+/);
      return f[1]?.endsWith(`:${hex}`) && f[3] === '01';
    }).length;
}

async function userRead(h: StartedHost, key: string): Promise<{ ms: number; status: number }> {
  const t0 = performance.now();
  try {
    const r = await fetch(`${h.url}/aws-storage/user-read/`, {
      method: 'POST',
      headers: { 'x-user-key': key, 'content-type': 'application/json' },
      body: '{"name":"a.txt"}',
      signal: AbortSignal.timeout(15_000),
    });
    await r.text();
    return { ms: performance.now() - t0, status: r.status };
  } catch {
    return { ms: performance.now() - t0, status: 0 };
  }
}

test('10 keyless connections pipelining 1,800 GET /healthz each start 18,000 store checks at once: host RSS must grow < 200 MB (+1.0 to 1.25 GB before) and a user call must answer within 2 s (it took 6 to 13 s before; 500 ms had failed at 535 and 766 ms with other suites sharing the two cores)', async () => {
  const h = await startHost({ env: { SHUTDOWN_TIMEOUT_MS: '1000' } });
  const socks: net.Socket[] = [];
  try {
    const alice = await h.addUser('alice');
    await fetch(`${h.url}/aws-storage/user-upload/`, {
      method: 'POST',
      headers: { 'x-user-key': alice.user_key, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'a.txt', file: 'aGVsbG8=' }),
    });
    for (let i = 0; i < 5; i++) await userRead(h, alice.user_key); // warm
    const base = rss(h.process.pid!);
    // 33 bytes a request: 1,800 of them are 59 KB, one write, one read on the host's side.
    socks.push(...pipeliners(portOf(h), 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 1_800, 10, true));
    let peak = base;
    let slowest = 0;
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      await sleep(300);
      const r = await userRead(h, alice.user_key);
      slowest = Math.max(slowest, r.ms);
      statuses.push(r.status);
      peak = Math.max(peak, rss(h.process.pid!));
    }
    // Measured at 3f7715a: +1.0 to 1.25 GB RSS, a user-read taking 6 to 13 s.
    // 200 MB, not 100: Node 24 grew 95-133 MB here (the code before this session too), Node 20 and 22 less.
    expect({ rssGrowthMB: Math.round((peak - base) / MiB) < 200 ? 'under 200' : Math.round((peak - base) / MiB), slowestUserCallMs: slowest < 2000 ? 'under 2000' : Math.round(slowest) }).toEqual({
      rssGrowthMB: 'under 200',
      slowestUserCallMs: 'under 2000',
    });
    expect(statuses.every((s) => s === 200 || s === 503)).toBe(true);
  } finally {
    socks.forEach((s) => s.destroy());
    await h.stop();
  }
});

test('keyless clients that pipeline GET /app.js and never read the answers make the host hold them all, and keep the connections forever: RSS must grow < 170 MB (holding every answer is ~270 MB) and an unread connection must be dropped', async () => {
  // Short slow-client timeouts, so that "dropped after the host's own timeouts" is quick to see.
  const h = await startHost({ env: { HOST_HEADERS_TIMEOUT_MS: '2000', HOST_BODY_IDLE_TIMEOUT_MS: '2000', SHUTDOWN_TIMEOUT_MS: '1000' } });
  const port = portOf(h);
  const socks: net.Socket[] = [];
  try {
    await fetch(`${h.url}/app.js`).then((r) => r.arrayBuffer()); // warm
    const base = rss(h.process.pid!);
    const before = establishedOnHost(port);
    // 34 bytes a request for a 15 KB answer: 10 connections × 1,800 = 612 KB sent for ~270 MB of answers.
    socks.push(...pipeliners(port, 'GET /app.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 1_800, 10, false));
    let peak = base;
    for (let i = 0; i < 10; i++) {
      await sleep(300);
      peak = Math.max(peak, rss(h.process.pid!));
    }
    // Three times the host's longest slow-client timeout, with no byte read by any of them.
    await sleep(3_000); // 6 s in all
    peak = Math.max(peak, rss(h.process.pid!));
    // (the warm-up's keep-alive connection, counted in `before`, may have closed meanwhile: never below 0)
    const stillOpen = Math.max(0, establishedOnHost(port) - before);
    // Measured at 3f7715a: +250 to 600 MB RSS (it stays), 9 or 10 of the 10 still open (they stay: no timeout applies).
    expect({
      // 170 MB, not 100: Node 24 grew 106-124 MB here; holding every answer would be ~270 MB and more
      rssGrowthMB: Math.round((peak - base) / MiB) < 170 ? 'under 170' : Math.round((peak - base) / MiB),
      unreadConnectionsStillOpenAfter6s: stillOpen,
    }).toEqual({ rssGrowthMB: 'under 170', unreadConnectionsStillOpenAfter6s: 0 });
  } finally {
    socks.forEach((s) => s.destroy());
    await h.stop();
  }
});

test('a request pipelined behind a refused one (401, Connection: close) is still run: its upload is stored though the client only ever sees the 401 and the close', async () => {
  const h = await startHost();
  try {
    const alice = await h.addUser('alice');
    const upload = JSON.stringify({ name: 'behind-the-401.txt', file: 'aGVsbG8=' });
    const seen = await new Promise<string>((resolve) => {
      const s = net.connect(portOf(h), '127.0.0.1');
      let out = '';
      s.on('data', (d) => (out += d.toString('latin1')));
      s.on('error', () => undefined);
      const t = setTimeout(() => {
        s.destroy();
        resolve(out);
      }, 4_000);
      s.on('close', () => {
        clearTimeout(t);
        resolve(out);
      });
      s.once('connect', () =>
        s.write(
          'POST /aws-storage/user-list/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-User-Key: not-a-key\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}' +
            `POST /aws-storage/user-upload/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-User-Key: ${alice.user_key}\r\nContent-Type: application/json\r\nContent-Length: ${upload.length}\r\n\r\n${upload}`,
        ),
      );
    });
    const answers = seen.match(/^HTTP\/1\.1 \d+/gm) ?? [];
    expect(answers).toEqual(['HTTP/1.1 401']); // the client is told: 401, connection closed
    expect(seen).toMatch(/connection: close/i);
    await sleep(500);
    const list = await fetch(`${h.url}/aws-storage/user-list/`, { headers: { 'x-user-key': alice.user_key } }).then((r) => r.json());
    // RFC 9112 §9.6: a server that sends "close" MUST NOT process any further requests on that connection.
    // Measured at 3f7715a: the upload behind the 401 is stored (and its 200 is never delivered).
    expect(list.files.map((f: { name: string }) => f.name)).toEqual([]);
  } finally {
    await h.stop();
  }
});
