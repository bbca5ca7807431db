/**
 * The front door's bounds as settings (README, "The host"): connections, in-flight body bytes, slow
 * headers, stalled and trickling bodies. One host with small limits; real sockets on 127.0.0.1.
 */
import { startHost, type StartedHost } from '../support/host';
import { makeStoreFixtureSocket, openIdle, postHead, raw, sleep, startStubStore } from './front-door-support';

jest.setTimeout(60_000);

const MAX_CONNECTIONS = 20;
const MAX_INFLIGHT = 1_000_000;
const HEADERS_TIMEOUT_MS = 2_000;
const BODY_IDLE_MS = 1_000;
let store: Awaited<ReturnType<typeof startStubStore>>;
let host: StartedHost;
let port: number;
let alice: { id: number; user_key: string };

beforeAll(async () => {
  store = await startStubStore();
  host = await startHost({
    env: {
      SOCKET_DIR: makeStoreFixtureSocket(),
      AWS_S3_ENDPOINT: store.url,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'stub',
      AWS_SECRET_ACCESS_KEY: 'stub-secret',
      HOST_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
      HOST_MAX_INFLIGHT_BODY_BYTES: String(MAX_INFLIGHT),
      HOST_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      HOST_BODY_IDLE_TIMEOUT_MS: String(BODY_IDLE_MS),
      HOST_MIN_BODY_RATE: '1024',
    },
  });
  port = Number(new URL(host.url).port);
  alice = await host.addUser('alice');
});

afterAll(async () => {
  await host?.stop();
  await store?.close();
});

const echo = '/aws-storage/echo/';
const get = (p: string) => `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;

/** A JSON body of exactly n bytes: {"file":"AAA…"} */
const bodyOf = (n: number) => `{"file":"${'A'.repeat(n - 11)}"}`;

test('past HOST_MAX_CONNECTIONS requests answer 503 busy with Retry-After; past twice that, a connection is closed at once', async () => {
  const held = await openIdle(port, MAX_CONNECTIONS);
  try {
    await sleep(100);
    const busy = await raw(port, get('/healthz'), { timeoutMs: 3_000 });
    expect(busy.status).toBe(503);
    expect(busy.headers['retry-after']).toBe('1');
    expect(JSON.parse(busy.body)).toEqual({ code: 'busy', message: expect.stringMatching(/connections/) });
    // Up to twice the bound, connections are taken (and answered 503); past it, closed unanswered.
    const more = await openIdle(port, MAX_CONNECTIONS);
    held.push(...more);
    await sleep(100);
    const dropped = await raw(port, get('/healthz'), { timeoutMs: 3_000 });
    expect(dropped).toMatchObject({ status: 0, closed: true });
    expect(dropped.ms).toBeLessThan(1_000);
  } finally {
    for (const s of held) s.destroy();
  }
  // and once they are gone, the host answers again
  let again = 0;
  for (let i = 0; i < 40 && again !== 200; i++) {
    await sleep(50);
    again = (await raw(port, get('/healthz'), { timeoutMs: 3_000 })).status;
  }
  expect(again).toBe(200);
});

test('past HOST_MAX_INFLIGHT_BODY_BYTES a body is answered 503 busy with Retry-After before it is read; one body alone always passes', async () => {
  const key = { 'Content-Type': 'application/json', 'X-USER-KEY': alice.user_key };
  const size = 800_000;
  const body = bodyOf(size);
  // A: 800 kB declared, sent slowly (fast enough for the minimum rate), so that it is in flight.
  const a = raw(port, postHead(echo, { ...key, 'Content-Length': size }), {
    feed: async (write) => {
      for (let at = 0; at < size; at += 100_000) {
        if (!write(body.slice(at, at + 100_000))) return;
        await sleep(100);
      }
    },
    timeoutMs: 10_000,
  });
  await sleep(150);
  const b = await raw(port, postHead(echo, { ...key, 'Content-Length': size }), { timeoutMs: 3_000 });
  expect([b.status, b.sent, b.headers['retry-after']]).toEqual([503, 0, '1']);
  expect(JSON.parse(b.body)).toMatchObject({ code: 'busy' });
  const first = await a;
  expect(first.status).toBe(200);
  expect(JSON.parse(first.body).args.file).toHaveLength(size - 11);
  // The bytes are given back: the same body now passes, and so does one bigger than the whole bound.
  for (const n of [size, 1_500_000]) {
    const res = await fetch(host.url + echo, { method: 'POST', headers: { 'content-type': 'application/json', 'x-user-key': alice.user_key }, body: bodyOf(n) });
    expect([n, res.status]).toEqual([n, 200]);
    await res.arrayBuffer();
  }
});

test('slow clients are dropped: headers unfinished after HOST_HEADERS_TIMEOUT_MS, a body silent for HOST_BODY_IDLE_TIMEOUT_MS or slower than HOST_MIN_BODY_RATE', async () => {
  // Slowloris: 10 connections that send one header line every 500 ms and never finish.
  const started = performance.now();
  const slowloris = await Promise.all(
    Array.from({ length: 10 }, () =>
      raw(port, `POST ${echo} HTTP/1.1\r\nHost: 127.0.0.1\r\n`, {
        feed: async (write) => {
          for (let i = 0; i < 40 && write(`X-Slow-${i}: 1\r\n`); i++) await sleep(500);
        },
        timeoutMs: 15_000,
        waitCloseMs: 500,
      }),
    ),
  );
  const tookMs = performance.now() - started;
  // Node answers 408 and closes
  for (const s of slowloris) expect([s.status, s.closed]).toEqual([408, true]);
  expect(tookMs).toBeLessThan(HEADERS_TIMEOUT_MS + 2_500);

  const key = { 'Content-Type': 'application/json', 'X-USER-KEY': alice.user_key };
  // A body that stops: 408 about BODY_IDLE_MS after its last byte, and the connection is closed.
  const stalled = await raw(port, postHead(echo, { ...key, 'Content-Length': 100_000 }), {
    feed: (write) => void write('{"file":"' + 'A'.repeat(1000)),
    timeoutMs: 10_000,
    waitCloseMs: 500,
  });
  expect(stalled.status).toBe(408);
  expect(JSON.parse(stalled.body)).toMatchObject({ code: 'request_timeout', message: expect.stringMatching(/no request body bytes/) });
  expect(stalled.ms).toBeGreaterThanOrEqual(BODY_IDLE_MS - 50);
  expect(stalled.ms).toBeLessThan(BODY_IDLE_MS + 1_500);
  expect(stalled.closed).toBe(true);

  // A body that trickles 100 bytes every 200 ms (500 B/s, under the 1024 B/s minimum) never goes silent.
  const trickle = await raw(port, postHead(echo, { ...key, 'Content-Length': 100_000 }), {
    feed: async (write) => {
      write('{"file":"');
      for (let i = 0; i < 100 && write('A'.repeat(100)); i++) await sleep(200);
    },
    timeoutMs: 10_000,
  });
  expect(trickle.status).toBe(408);
  expect(JSON.parse(trickle.body)).toMatchObject({ code: 'request_timeout', message: expect.stringMatching(/slower than 1024 bytes a second/) });
  expect(trickle.ms).toBeLessThan(BODY_IDLE_MS + 2_000);
});
