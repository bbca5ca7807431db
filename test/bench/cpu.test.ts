/**
 * The CPU-per-request measurement behind `npm run bench` section 8 (scripts/bench/cpu.bench.ts): the
 * paced load sends exactly rate × duration requests, and the server's CPU time is read from /proc.
 */
import { cpuPerRequest, pacedLoad, processCpuSeconds } from '../../scripts/bench/cpu.bench';
import { startBareServer, type BareServer } from '../../scripts/bench/measure';

let bare: BareServer;
beforeAll(async () => {
  bare = await startBareServer(100);
});
afterAll(() => bare.stop());

test('a paced load sends exactly rate × duration requests at that rate, and all are answered', async () => {
  const r = await pacedLoad({ url: bare.url, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', rate: 200, durationS: 1 });
  expect({ sent: r.sent, ok: r.ok, failed: r.failed }).toEqual({ sent: 200, ok: 200, failed: 0 });
  expect(r.seconds).toBeGreaterThanOrEqual(0.95);
  expect(r.seconds).toBeLessThan(5);
});

test("the server's CPU time grows with its work, and a figure per request comes out positive", async () => {
  const before = processCpuSeconds(bare.pid);
  const m = await cpuPerRequest({ name: 'bare', pid: bare.pid, url: bare.url, headers: {} }, { rate: 500, durationS: 2, body: '{}' });
  expect(processCpuSeconds(bare.pid)).toBeGreaterThan(before);
  expect(m.load.ok).toBe(1000); // (about 50 ms of CPU at least: /proc counts in 10 ms ticks)
  expect(m.us).toBeGreaterThan(0);
  expect(processCpuSeconds(process.pid)).toBeGreaterThan(0);
});

test('the CPU reading agrees with getrusage over 200 ms of work, to finer than a 10 ms tick', () => {
  const usage = process.cpuUsage();
  const before = processCpuSeconds(process.pid);
  // 200 ms of this process's CPU, however long that takes on a busy machine (at most 10 s)
  const deadline = performance.now() + 10_000;
  let x = 0;
  while (performance.now() < deadline) {
    for (let i = 0; i < 10_000; i++) x += Math.sqrt(x + 1);
    const spent = process.cpuUsage(usage);
    if (spent.user + spent.system >= 200_000) break;
  }
  const used = processCpuSeconds(process.pid) - before;
  const { user, system } = process.cpuUsage(usage);
  expect(x).toBeGreaterThan(0);
  expect(used).toBeGreaterThan(0.15);
  expect(Math.abs(used - (user + system) / 1e6)).toBeLessThan(0.02);
  // not whole ticks (the fallback's 10 ms steps) where the kernel keeps schedstats
  if (require('node:fs').existsSync(`/proc/${process.pid}/schedstat`)) expect(Math.round(used * 1e6) % 10_000).not.toBe(0);
});

test('load only goes to 127.0.0.1, and a failing server is an error, not a figure', async () => {
  await expect(pacedLoad({ url: 'http://example.com/', method: 'GET', headers: {}, rate: 1, durationS: 1 })).rejects.toThrow(/127\.0\.0\.1/);
  await expect(cpuPerRequest({ name: 'nobody', pid: process.pid, url: 'http://127.0.0.1:1/', headers: {} }, { rate: 20, durationS: 0.5, body: '{}' })).rejects.toThrow(/failed/);
});
