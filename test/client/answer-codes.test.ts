// What the client makes of an answer that is not the socket's: a proxy's or a load balancer's bare
// status with a text body (no JSON code), from a real node:http server on 127.0.0.1. Each status gets
// the code the client README names, and a JSON answer keeps its own code.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient, StorageApiError } from '../../client/src/node';

let server: http.Server;
let url: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      // /aws-storage/<status>/ answers that status; /aws-storage/json/ the host's own shape
      const step = (req.url ?? '').split('/')[2];
      if (step === 'json') {
        res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '3' });
        res.end(JSON.stringify({ message: 'slow down', code: 'too_many_unknown_keys' }));
        return;
      }
      res.writeHead(Number(step), { 'Content-Type': 'text/plain' });
      res.end(`proxy says ${step}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

async function refusal(endpoint: string): Promise<StorageApiError> {
  const client = createClient({ url, userKey: 'k' }, { storage: false });
  const err = await client.call(endpoint, {}).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageApiError);
  return err as StorageApiError;
}

test.each([
  [400, 'invalid_argument'],
  [401, 'unauthorized'],
  [404, 'not_found'],
  [408, 'request_timeout'],
  [413, 'payload_too_large'],
  [429, 'too_many_requests'],
  [502, 'internal'],
  [503, 'storage_unavailable'],
  [504, 'timeout'],
])('a bare %i from a proxy is code %s, with its status and text', async (status, code) => {
  const err = await refusal(String(status));
  expect(err.status).toBe(status);
  expect(err.code).toBe(code);
  expect(err.message).toContain(`proxy says ${status}`);
});

test('an answer with a JSON code keeps that code', async () => {
  const err = await refusal('json');
  expect(err.status).toBe(429);
  expect(err.code).toBe('too_many_unknown_keys');
  expect(err.message).toContain('slow down');
});
