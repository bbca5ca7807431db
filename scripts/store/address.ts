/**
 * One client's share of addresses, for the bounds that count clients (the store's and the host's
 * connections, the host's sign-in and unknown-key limits).
 */
import net from 'node:net';

/**
 * The share of addresses one client is taken to hold, for the limits: an IPv4 address as it is (an
 * IPv4-mapped IPv6 one as its IPv4 address), an IPv6 address as its /64 (one subscriber's usual share:
 * its other addresses must not be fresh counts). Anything else is kept whole.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped && net.isIPv4(mapped[1])) return mapped[1];
  if (!net.isIPv6(address)) return address;
  const groups = (part: string) => (part === '' ? [] : part.split(':')).flatMap((g) => (g.includes('.') ? ['0', '0'] : [g]));
  const [head, tail] = address.split('%')[0].split('::');
  const front = groups(head);
  const back = tail === undefined ? [] : groups(tail);
  const full = [...front, ...Array(Math.max(0, 8 - front.length - back.length)).fill('0'), ...back];
  return `${full.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

export const isLoopback = (address: string) => address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');

/**
 * Caps the connections one client (addressKey) holds on `server` at `perClient`, and those of every
 * counted client together at `total`: past either, a new connection is closed before a byte is read.
 * Addresses `counted` rejects (the store's loopback: the host's own pool) are in neither count.
 * Listens first, so nothing else spends work on a connection it closes.
 */
export function capConnectionsPerClient(
  server: net.Server,
  o: { perClient: number; total?: number; counted?: (address: string) => boolean },
): void {
  const held = new Map<string, number>();
  const total = o.total ?? Infinity;
  let all = 0;
  server.prependListener('connection', (socket: net.Socket) => {
    const address = socket.remoteAddress ?? '';
    if (o.counted && !o.counted(address)) return;
    const client = addressKey(address);
    const now = (held.get(client) ?? 0) + 1;
    if (now > o.perClient || all >= total) {
      socket.destroy(); // over its share, or every counted place taken
      return;
    }
    held.set(client, now);
    all++;
    socket.once('close', () => {
      all--;
      const left = (held.get(client) ?? 1) - 1;
      if (left > 0) held.set(client, left);
      else held.delete(client);
    });
  });
}
