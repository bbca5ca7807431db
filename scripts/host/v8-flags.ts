// Imported first by the host (main.ts): V8 settings for a process that serves short requests.
//
// Allocation-site pretenuring off. V8 marks an allocation site "tenure" when every object it made since
// the last young-generation GC was still alive at it; from then on the site allocates straight into the
// old generation. In this host a few sites get that mark during start-up and the first calls (objects
// that did live), and then every `user-upload-link` call's objects from them went to the old
// generation: at 1000 req/s about 1.2 MB promoted per scavenge, scavenges of 3–7 ms instead of ~1 ms,
// and a full mark-compact every ~3 s. Without it the old generation stays flat under the same load.
// The README's CPU section has the measurements. A `--allocation-site-pretenuring` given to node wins.
import v8 from 'node:v8';

const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => /^--(no-)?allocation[-_]site[-_]pretenuring$/.test(a));
if (!given) v8.setFlagsFromString('--no-allocation-site-pretenuring');
