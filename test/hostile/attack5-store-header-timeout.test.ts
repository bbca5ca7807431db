/**
 * Attack pass 6: "headers must arrive within 20 s" (README) on the embedded store. Node checks its
 * headersTimeout only every connectionsCheckingInterval, 30 s unless set: a connection that trickles
 * its headers (a line every 2 s, no key needed) was held 26 to 50 s, two and a half times what the
 * store means to give, so holding the store's connections cost an attacker that much less.
 */
import net from 'node:net';
import { startEmbeddedStore } from '../../scripts/s3/embedded-store';

jest.setTimeout(60_000);

test('a connection that never finishes its headers is closed about 20 s after it opened, not up to 50', async () => {
  const store = await startEmbeddedStore({});
  try {
    const lived = await new Promise<number>((resolve) => {
      const start = Date.now();
      const sock = net.connect(store.port, '127.0.0.1', () => sock.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${store.port}\r\n`));
      const trickle = setInterval(() => sock.write('X-Slow: 1\r\n'), 2_000);
      const giveUp = setTimeout(() => sock.destroy(), 45_000);
      sock.on('error', () => {});
      sock.on('close', () => {
        clearInterval(trickle);
        clearTimeout(giveUp);
        resolve(Date.now() - start);
      });
    });
    // 20 to 21 s from a plain node process, 24 s seen inside jest's worker; the old code's first check
    // came 30 s after the store started (32 s seen here), later ones up to 50 s: under 29 s leaves a
    // busy machine room and still fails the old code
    expect(lived).toBeGreaterThanOrEqual(19_000);
    expect(lived).toBeLessThan(29_000);
  } finally {
    await store.close();
  }
});
