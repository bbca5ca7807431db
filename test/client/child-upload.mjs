// Uploads one file from its path with the built client, in a process of its own, as a user's script
// would: `import ... from '@aws-storage/client'` (resolved through the package's "exports", "node").
// Args (JSON in argv[2]): url, userKey, name, path, partSize, concurrency, stateDir.
// Prints one JSON line per event: {"event":"part",...}, then {"event":"done",...} with RSS figures.
import { createClient } from '@aws-storage/client';

const o = JSON.parse(process.argv[2]);
const client = createClient({ url: o.url, userKey: o.userKey }, { storage: { dir: o.stateDir } });
// Node loads its fetch (undici) on first use: measure from a process that has made a call.
if (o.warm) await client.list({ limit: 1 });
const rssAtStart = process.memoryUsage().rss;
let rssPeak = rssAtStart;
const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 10);
const started = Date.now();
const task = client.upload(o.name, { path: o.path }, {
  partSize: o.partSize,
  concurrency: o.concurrency,
  onProgress: (p) => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    if (p.part) console.log(JSON.stringify({ event: 'part', part: p.part, loaded: p.loaded, partsDone: p.partsDone }));
  },
});
try {
  const result = await task.promise;
  clearInterval(sampler);
  console.log(JSON.stringify({ event: 'done', result, ms: Date.now() - started, rssAtStart, rssPeak }));
} catch (err) {
  clearInterval(sampler);
  console.log(JSON.stringify({ event: 'error', message: String(err?.message ?? err), code: err?.code, status: err?.status }));
  process.exitCode = 1;
}
