/**
 * One address cannot take the store's connections from everyone else: past its share a new connection
 * is closed before a byte is read. Loopback (the host's own pool) is not counted unless capLoopback.
 */
import net from 'node:net';
import { startEmbeddedStore, type EmbeddedStore } from '../../scripts/s3/embedded-store';

const open = (store: EmbeddedStore) =>
  new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(Number(new URL(store.endpoint).port), '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });

/** Sends a GET on a fresh connection: the first bytes of the answer, or '' when the store closed it unanswered. */
function ask(store: EmbeddedStore): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(Number(new URL(store.endpoint).port), '127.0.0.1');
    let got = '';
    s.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) s.destroy();
    });
    s.on('error', () => {});
    // bounded: 3 s without an end is a closed-unanswered ''; the timer goes with the socket (no leftover)
    const giveUp = setTimeout(() => s.destroy(), 3_000);
    s.on('close', () => {
      clearTimeout(giveUp);
      resolve(got);
    });
    s.on('connect', () => s.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
  });
}

test('past its share, a new connection from one address is closed unanswered; one freed lets the next in', async () => {
  const store = await startEmbeddedStore({ maxConnectionsPerAddress: 4, capLoopback: true });
  const held: net.Socket[] = [];
  try {
    for (let i = 0; i < 4; i++) held.push(await open(store));
    expect(await ask(store)).toBe('');
    held.shift()!.destroy();
    await new Promise((r) => setTimeout(r, 100)); // the store sees the close
    expect(await ask(store)).toMatch(/^HTTP\/1\.1 403 /); // answered: an unsigned GET is AccessDenied
  } finally {
    for (const s of held) s.destroy();
    await store.close();
  }
});

test('loopback is not counted by default: the host\'s own connections are never refused', async () => {
  const store = await startEmbeddedStore({ maxConnectionsPerAddress: 4 });
  const held: net.Socket[] = [];
  try {
    for (let i = 0; i < 10; i++) held.push(await open(store));
    expect(await ask(store)).toMatch(/^HTTP\/1\.1 403 /);
  } finally {
    for (const s of held) s.destroy();
    await store.close();
  }
});
