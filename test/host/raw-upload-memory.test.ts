/**
 * A 200 MiB raw-body upload through the host: its RSS grows by less than 64 MiB (the body is streamed
 * to the store, never held), with a Content-Length and chunked. Peak RSS is the kernel's VmHWM of the
 * host process, reset before each upload.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { startHost, type StartedHost } from '../support/host';
import { useStore, type TestStore } from '../support/store';

jest.setTimeout(300_000);

const MiB = 1024 * 1024;
const SIZE = 200 * MiB;
let store: TestStore;
let host: StartedHost;
let userKey: string;

beforeAll(async () => {
  store = await useStore();
  host = await startHost({ env: { ...store.config, MAX_FILE_SIZE: String(256 * MiB) } });
  userKey = (await host.addUser('big')).user_key;
});
afterAll(async () => {
  await host?.stop();
  await store?.close();
});

const status = (field: string) => {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${host.process.pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
};

/** Sends `size` bytes (one random MiB repeated) and resolves with the answer and the bytes' MD5. */
function upload(name: string, framing: Record<string, string | number>, size = SIZE): Promise<{ status: number; body: any; md5: string }> {
  const block = randomBytes(MiB);
  const md5 = createHash('md5');
  return new Promise((resolve, reject) => {
    const req = http.request(`${host.url}/aws-storage/user-upload/?name=${name}`, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/octet-stream', 'x-user-key': userKey, ...framing },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), md5: md5.digest('hex') }));
    });
    let sent = 0;
    const more = () => {
      while (sent < size) {
        sent += block.length;
        md5.update(block);
        if (!req.write(block)) return void req.once('drain', more);
      }
      req.end();
    };
    more();
  });
}

test.each<[string, Record<string, string | number>]>([
  ['with Content-Length', { 'content-length': SIZE }],
  ['chunked', { 'transfer-encoding': 'chunked' }],
])('200 MiB %s: stored whole, host RSS growth < 96 MiB (under half the file: nothing holds it whole)', async (label, framing) => {
  const name = `big-${label.replace(/\W+/g, '-')}.bin`;
  // 1 MiB first, so that loading what any call needs (the SDK's modules, a connection) is not counted
  await upload(`warm-${name}`, framing['content-length'] ? { 'content-length': MiB } : framing, MiB);
  const before = status('VmRSS');
  fs.writeFileSync(`/proc/${host.process.pid}/clear_refs`, '5'); // VmHWM := VmRSS
  const r = await upload(name, framing);
  const growth = status('VmHWM') - before;
  expect(r.status).toBe(200);
  expect(r.body.size).toBe(SIZE);
  if (framing['content-length']) expect(r.body.etag).toBe(r.md5);
  const head = await store.client.send(new HeadObjectCommand({ Bucket: store.config.AWS_BUCKET, Key: r.body.key }));
  expect(head.ContentLength).toBe(SIZE);
  console.log(`${label}: host RSS before ${(before / MiB).toFixed(1)} MiB, peak growth ${(growth / MiB).toFixed(1)} MiB over a ${SIZE / MiB} MiB upload`);
  // Node 20 grew 31-40 MiB, Node 24 up to 69 MiB (its V8 sizes the heap differently); a host that held
  // the body would grow by the file's 200 MiB at least.
  expect(growth).toBeLessThan(96 * MiB);
});
