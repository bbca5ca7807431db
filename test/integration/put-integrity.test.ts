/**
 * The socket's puts of bytes it holds (base64 uploads, small chunked bodies) carry a CRC32 of the body,
 * and are signed with its SHA-256 until the store has shown that it checks the CRC32 (then with
 * UNSIGNED-PAYLOAD): either way a body that changes on its way to the store is refused there, and
 * nothing is stored. A proxy on the loopback between the socket and a real store changes one byte of
 * the body of the puts it is told to.
 */
import net from 'node:net';
import userUpload from '../../src/user-upload';
import { invoke } from '../support/ctx';
import { useStore, type TestStore } from '../support/store';

jest.setTimeout(30_000);

let store: TestStore;
let proxy: net.Server;
let proxyUrl: string;
const sockets = new Set<net.Socket>();
/** puts whose path contains this are changed on their way */
const MARK = 'corrupt-me';

beforeAll(async () => {
  store = await useStore();
  const upstream = new URL(store.endpoint);
  proxy = net.createServer((client) => {
    const server = net.connect(Number(upstream.port || 80), upstream.hostname);
    for (const s of [client, server]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    server.on('error', () => client.destroy());
    client.on('error', () => server.destroy());
    server.pipe(client);
    // Requests one after another on this connection: headers, then Content-Length body bytes.
    let head = Buffer.alloc(0);
    let bodyLeft = 0;
    let flipAt = -1;
    client.on('data', (chunk: Buffer) => {
      const out: Buffer[] = [];
      let c = chunk;
      for (let guard = 0; c.length > 0 && guard < 1000; guard++) {
        if (bodyLeft > 0) {
          const n = Math.min(bodyLeft, c.length);
          const part = Buffer.from(c.subarray(0, n));
          if (flipAt >= 0 && flipAt < n) part[flipAt] ^= 0x01;
          flipAt -= n;
          bodyLeft -= n;
          out.push(part);
          c = c.subarray(n);
          continue;
        }
        head = Buffer.concat([head, c]);
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) {
          c = Buffer.alloc(0);
          continue;
        }
        const text = head.subarray(0, end).toString('latin1');
        out.push(head.subarray(0, end + 4));
        c = head.subarray(end + 4);
        head = Buffer.alloc(0);
        bodyLeft = Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? 0);
        flipAt = /^PUT /.test(text) && text.split('\r\n')[0].includes(MARK) ? Math.floor(bodyLeft / 2) : -1;
      }
      server.write(Buffer.concat(out));
    });
    client.on('end', () => server.end());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy(); // the socket's keep-alive connections
  await new Promise((resolve) => proxy?.close(resolve));
  await store?.close();
});

const alice = { user: { id: 31, username: 'alice' } };
const upload = (name: string, bytes: Buffer) =>
  invoke(userUpload, { ...alice, args: { name, file: bytes.toString('base64') }, config: { ...store.config, AWS_S3_ENDPOINT: proxyUrl } });

test('through the proxy, an unchanged body is stored as sent', async () => {
  const bytes = Buffer.from('the proxy passes this on as it is '.repeat(100));
  const res = await upload('plain.txt', bytes);
  expect(res.status).toBe(200);
  expect((await store.read('31/plain.txt')).equals(bytes)).toBe(true);
});

test('a body changed on its way to the store is refused there, and nothing is stored', async () => {
  expect((await upload('before.txt', Buffer.from('a put the store answers first'))).status).toBe(200);
  const bytes = Buffer.from('one byte of this changes on the way '.repeat(1000));
  const res = await upload(`${MARK}.txt`, bytes);
  expect(res.status).toBe(503);
  expect(res.body.code).toBe('storage_unavailable');
  expect(await store.keys()).not.toContain(`31/${MARK}.txt`);
});
