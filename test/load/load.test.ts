/**
 * Load, in `npm test`: 50 concurrent clients against one host (embedded store), mixing upload link + PUT,
 * base64 uploads and reads for 5 users; every answer 2xx, every object whole by MD5, RSS bounded.
 */
import { printLoad, runLoad } from '../support/load';

jest.setTimeout(120_000);

/** The host's RSS after the run may exceed its RSS before by at most this (MB). */
const RSS_GROWTH_BOUND_MB = 150;

test('50 concurrent clients: every answer 2xx, every object present and whole, RSS bounded', async () => {
  const r = await runLoad({ clients: 50, opsPerClient: 12, users: 5, sizes: [1_024, 16_384, 65_536, 200_000], deadlineMs: 90_000 });
  printLoad('load (N=50)', r);
  console.log(`load (N=50): requests ${r.requests}, failures ${r.failures}, objects verified ${r.objectsVerified}; RSS before ${r.rssBeforeKb} kB, after ${r.rssAfterKb} kB (bound +${RSS_GROWTH_BOUND_MB} MB)`);
  expect(r.failureSamples).toEqual([]);
  expect(r.failures).toBe(0);
  expect(r.objectMismatches).toEqual([]);
  expect(r.objectsVerified).toBe(r.objectsWritten);
  expect(r.objectsWritten).toBeGreaterThanOrEqual(50 * 8);
  expect(r.reads).toBeGreaterThan(0);
  expect(r.readMismatches).toBe(0);
  expect(r.rssAfterKb - r.rssBeforeKb).toBeLessThan(RSS_GROWTH_BOUND_MB * 1024);
});
