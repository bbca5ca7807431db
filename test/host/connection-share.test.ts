/**
 * HOST_MAX_CONNECTIONS_PER_ADDRESS: one client address holds at most that many of the host's
 * connections, so a client that opens connections and sends nothing cannot fill HOST_MAX_CONNECTIONS
 * for everyone (attack pass 6 held the front door with 41 idle connections against a cap of 20). Real
 * sockets: 127.0.0.1 is one client, 127.0.0.2 (also loopback) another.
 */
import { startHost, type StartedHost } from '../support/host';
import { openIdle, raw, sleep } from './front-door-support';

jest.setTimeout(60_000);

const hosts: StartedHost[] = [];
afterAll(async () => {
  for (const h of hosts) await h.stop().catch(() => undefined);
});

const HEALTH = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';

async function start(env: Record<string, string>): Promise<number> {
  const host = await startHost({ env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', PORT: '0', S3_PORT: '0', ...env } });
  hosts.push(host);
  return Number(new URL(host.url).port);
}

test('past its share a client\'s new connection is closed unread; another client still gets in; a freed place is taken again', async () => {
  const port = await start({ HOST_MAX_CONNECTIONS_PER_ADDRESS: '4' });
  const held = await openIdle(port, 4);
  try {
    await sleep(100);
    const over = await raw(port, HEALTH, { timeoutMs: 3_000 });
    expect(over).toMatchObject({ status: 0, closed: true });
    expect(over.ms).toBeLessThan(1_000);
    expect((await raw(port, HEALTH, { timeoutMs: 3_000, localAddress: '127.0.0.2' })).status).toBe(200);
    held.pop()!.destroy();
    let again = 0;
    for (let i = 0; i < 40 && again !== 200; i++) {
      await sleep(50);
      again = (await raw(port, HEALTH, { timeoutMs: 3_000 })).status;
    }
    expect(again).toBe(200);
  } finally {
    for (const s of held) s.destroy();
  }
});

test('behind HOST_TRUST_PROXY there is no share by default: every connection is the proxy\'s', async () => {
  const port = await start({ HOST_TRUST_PROXY: 'true' });
  const held = await openIdle(port, 300); // past the 256 of the default share
  try {
    await sleep(100);
    expect((await raw(port, HEALTH, { timeoutMs: 3_000 })).status).toBe(200);
  } finally {
    for (const s of held) s.destroy();
  }
});

test('a share that is not a whole number stops the host at start, naming the setting', async () => {
  await expect(startHost({ env: { PORT: '0', S3_PORT: '0', HOST_MAX_CONNECTIONS_PER_ADDRESS: '-1' }, timeoutMs: 15_000 })).rejects.toThrow(/HOST_MAX_CONNECTIONS_PER_ADDRESS must be an integer/);
});
