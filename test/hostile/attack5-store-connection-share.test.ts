/**
 * Attack pass 6: the embedded store's connection shares. Links send browsers straight to the store,
 * so anyone can open connections to it without a key. "One client that keeps reconnecting cannot
 * take them all" (README) held only for IPv4: the share was per exact address, and one IPv6 client
 * holds a whole /64. And the 2048 were shared with loopback, the host's own pool: outsiders who held
 * them all left the host unable to reach its store (every call 503).
 *
 * The store sees its peers' addresses from the socket; here every connection comes from 127.0.0.1 and
 * a listener put before the store's own gives each the address a client elsewhere would have.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Disk } from '../../scripts/store/disk';
import { createStoreServer } from '../../scripts/store/server';

jest.setTimeout(60_000);

interface Started {
  server: http.Server;
  port: number;
  /** the address the next connections are given, in order (none left: the real one, 127.0.0.1) */
  plan: string[];
  accepted: () => number;
  close(): Promise<void>;
}

async function start(opts: { maxConnectionsPerAddress?: number } = {}): Promise<Started> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attack6-conn-'));
  const disk = new Disk(dir);
  await disk.load();
  const server = createStoreServer({ disk, keys: new Map([['AKID', 'secret']]), ...opts });
  const plan: string[] = [];
  let accepted = 0;
  server.prependListener('connection', (socket: net.Socket) => {
    accepted++;
    const address = plan.shift();
    if (address !== undefined) Object.defineProperty(socket, 'remoteAddress', { value: address });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    port,
    plan,
    accepted: () => accepted,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Opens one connection as `address` (or as itself) and waits until the store has taken it. */
async function open(s: Started, held: net.Socket[], address?: string): Promise<void> {
  const before = s.accepted();
  if (address !== undefined) s.plan.push(address);
  const sock = net.connect(s.port, '127.0.0.1');
  sock.on('error', () => {});
  held.push(sock);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', () => resolve());
    sock.once('error', reject);
  });
  for (let i = 0; i < 2000 && s.accepted() === before && !sock.destroyed; i++) await new Promise((r) => setImmediate(r));
  s.plan.length = 0;
}

/** Whether a connection opened now (as `address`, else as loopback) is answered: the status line, or '' when closed unanswered. */
async function ask(s: Started, address?: string): Promise<string> {
  if (address !== undefined) s.plan.push(address);
  const got = await new Promise<string>((resolve) => {
    const sock = net.connect(s.port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => sock.destroy(), 3_000);
    sock.on('data', (d) => {
      text += d.toString('latin1');
      if (text.includes('\r\n')) sock.destroy();
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(text.split('\r\n')[0]);
    });
    sock.on('connect', () => sock.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'));
  });
  s.plan.length = 0;
  return got;
}

test('one IPv6 client (its /64) holds one share, whichever of its addresses it connects from; another /64 has its own', async () => {
  const s = await start({ maxConnectionsPerAddress: 4 });
  const held: net.Socket[] = [];
  try {
    for (let i = 1; i <= 4; i++) await open(s, held, `2001:db8:1:2::${i}`);
    // the same client from fresh addresses of its /64 (a client picks any it likes): past its share
    expect(await ask(s, '2001:db8:1:2::99')).toBe('');
    expect(await ask(s, '2001:db8:1:2:ffff:ffff:ffff:fffe')).toBe('');
    // another subscriber's /64, and an IPv4 client, are not held back by it
    expect(await ask(s, '2001:db8:1:3::1')).toMatch(/^HTTP\/1\.1 403 /);
    expect(await ask(s, '203.0.113.7')).toMatch(/^HTTP\/1\.1 403 /);
    // an IPv4-mapped address is its IPv4 client: 4 of them leave no room for a fifth
    for (let i = 0; i < 4; i++) await open(s, held, '::ffff:198.51.100.1');
    expect(await ask(s, '198.51.100.1')).toBe('');
  } finally {
    for (const h of held) h.destroy();
    await s.close();
  }
});

test('outsiders holding every connection they may (2048, 256 from each of 8 addresses) still leave the host (loopback) its way in', async () => {
  const s = await start();
  const held: net.Socket[] = [];
  try {
    for (let a = 1; a <= 8; a++) for (let i = 0; i < 256; i++) await open(s, held, `203.0.113.${a}`);
    // a ninth outsider finds the store full
    expect(await ask(s, '203.0.113.9')).toBe('');
    // the host's own connection is answered
    expect(await ask(s)).toMatch(/^HTTP\/1\.1 403 /);
  } finally {
    for (const h of held) h.destroy();
    await s.close();
  }
});
