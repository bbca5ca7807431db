/**
 * `npm run bench`: every figure beside its baseline, measured in this one run on this machine.
 *
 *   1. make-links, 1000 keys, the built handler alone (in-process ctx, admin meta, embedded store) vs
 *      (a) getSignedUrl(GetObjectCommand) per link and (b) @smithy/signature-v4 presign per link,
 *      interleaved in the same rounds (scripts/bench/presign.bench.ts);
 *   2. the host's user-upload-link over HTTP (autocannon, 32 connections) vs a bare node:http server
 *      answering a constant JSON of the same length, each in its own process; then the host with
 *      HOST_WORKERS = the number of cores, the host over a no-op socket (its own cost), and the host
 *      with its users in PostgreSQL (a throw-away server, scripts/bench/postgres.ts) vs SQLite;
 *   3. user-upload base64 of 1 MiB and 8 MiB through the host vs a direct PutObject of the same bytes
 *      to the same store, and the host's peak RSS growth;
 *   4. make-links µs per link at 10, 100 and 1000 keys;
 *   5. the embedded store's PUT / GET / HEAD (1 KiB, 64 KiB; PUT 8 MiB) vs a bare fs write+rename / read / stat
 *      loop of the same sizes (scripts/bench/store.bench.ts);
 *   6. multipart: 256 MiB through the client's part links vs @aws-sdk/lib-storage Upload to the same store,
 *      links for 10,000 parts vs a getSignedUrl(UploadPartCommand) loop, the client's RSS growth while
 *      it uploads from a file vs the file's size (scripts/bench/multipart.bench.ts);
 *   7. what the host costs: ms to healthy after `node .dist/host/main.js` starts, RSS at rest, peak RSS
 *      under a 32-connection user-upload-link load (scripts/bench/host-cost.ts);
 *   8. the host's CPU time per request under a fixed-rate load, over a no-op socket and with
 *      user-upload-link, vs a bare node:http server (scripts/bench/cpu.bench.ts).
 *   9. uploads against the peer: raw-body user-upload of 1 and 8 MiB (one at a time, 8 at once) and base64
 *      user-upload of 8 MiB vs a direct PutObject, make-links check vs without (scripts/bench/uploads.bench.ts).
 *
 * Prints one table (figure, value, baseline, ratio, target, pass/fail) and writes bench-results/bench.json.
 * Options: --quick (shorter rounds, one 3 s load each), --duration <s> (autocannon seconds per round, default 5;
 * the request rates are the median of 3 interleaved rounds).
 */
import './env';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { storeClient } from '../s3/client';
import { startEmbeddedStore } from '../s3/embedded-store';
import { startHost, type StartedHost } from '../../test/support/host';
import { benchPresign, formatPresignTable, presignBenchKeys, type PresignBenchRow } from './presign.bench';
import { benchStore, type StoreBenchRow } from './store.bench';
import { benchMultipart, type MultipartBenchRow } from './multipart.bench';
import { measureLookups, startBenchPostgres, type LookupFigures } from './postgres';
import { benchCpu, startNoopHost, type CpuBenchRow, type CpuMeasure } from './cpu.bench';
import { measureHostCost, type HostCost } from './host-cost';
import { benchUploads, type UploadsBenchRow } from './uploads.bench';
import {
  PROJECT_ROOT,
  loadAvg,
  loadBuiltHandler,
  makeLinksBatch,
  makeLinksOnce,
  measureHttp,
  measureMakeLinksScaling,
  measureUpload,
  postJson,
  readMem,
  round,
  startBareServer,
  type BareServer,
  type Handler,
  type HttpLoadResult,
  type ScalingRow,
  type UploadResult,
} from './measure';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const durIdx = argv.indexOf('--duration');
const LOAD_S = durIdx >= 0 ? Math.max(1, Math.min(60, Number(argv[durIdx + 1]) || 5)) : QUICK ? 3 : 5;
const WARM_S = QUICK ? 1 : 2;
const ROUNDS = QUICK ? 3 : 7;
const HTTP_ROUNDS = QUICK ? 1 : 3;
const RUN_LIMIT_MS = 14 * 60_000; // the whole run, whatever happens (section 6 ~90 s, 7 and 8 ~2 min, 9 ~60 s, PostgreSQL ~25 s)
const MiB = 1024 * 1024;

interface Row {
  figure: string;
  value: number | null;
  unit: string;
  baseline: number | null;
  baselineName: string;
  ratio: number | null;
  target: string;
  pass: boolean | null;
}

const log = (s: string) => process.stdout.write(s + '\n');
/** The bench's SQLite hosts stay SQLite even when the caller's environment names a DATABASE_URL. */
const SQLITE_HOST_ENV = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', DATABASE_URL: '' };

async function main(): Promise<void> {
  const t0 = Date.now();
  const loads: Record<string, string> = { start: loadAvg() };
  log(`aws-storage bench: node ${process.version}, ${os.cpus().length} cores, load ${loads.start}${QUICK ? ' (quick)' : ''}`);
  const errors: Record<string, string> = {};
  const children: Array<{ stop: () => Promise<unknown> }> = [];
  const watchdog = setTimeout(() => {
    log(`bench: over ${RUN_LIMIT_MS / 1000} s, stopping`);
    for (const c of children) void c.stop();
    setTimeout(() => process.exit(2), 3_000).unref();
  }, RUN_LIMIT_MS);
  watchdog.unref();

  let handler: Handler | null = loadBuiltHandler('make-links');
  const handlerSource = handler ? '.dist/src/make-links.js' : 'src/make-links.ts';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  handler ??= require('../../src/make-links').default as Handler;

  // ---- 1 and 4: make-links in-process, embedded store in this process ----
  let presignRows: PresignBenchRow[] = [];
  let scaling: ScalingRow[] = [];
  let linksChecked = 0;
  const store = await startEmbeddedStore({ buckets: [] });
  try {
    const bucket = 'bench-links';
    const config = {
      AWS_S3_ENDPOINT: store.endpoint,
      AWS_ACCESS_KEY_ID: store.accessKeyId,
      AWS_SECRET_ACCESS_KEY: store.secretAccessKey,
      AWS_REGION: store.region,
      AWS_BUCKET: bucket,
    };
    const keys = presignBenchKeys(1000);
    // The first call creates the bucket (HeadBucket, CreateBucket, PutBucketCors): not measured.
    const first = await makeLinksOnce(handler, config, keys);
    linksChecked = await checkLinks(store, bucket, keys, first.files);
    log(`make-links: first call done, ${linksChecked} sampled links fetched their objects`);

    presignRows = await benchPresign({
      rounds: ROUNDS,
      budgetMs: QUICK ? 5_000 : 20_000,
      extra: [{ name: '(h) make-links handler, 1000 keys', batch: makeLinksBatch(handler, config, keys) }],
    });
    log(formatPresignTable(presignRows));
    scaling = await measureMakeLinksScaling(handler, config, { sizes: [10, 100, 1000], keys: presignBenchKeys, rounds: ROUNDS, budgetMs: QUICK ? 4_000 : 12_000 });
    log(`scaling: ${scaling.map((s) => `${s.keys} keys ${s.usPerLink} µs/link`).join(', ')}`);
  } catch (err) {
    errors.makeLinks = String((err as Error)?.stack ?? err);
    log(`make-links: FAILED ${errors.makeLinks}`);
  } finally {
    await store.close();
  }
  loads.afterMakeLinks = loadAvg();

  // ---- 2 and 3: the host ----
  let host: StartedHost | undefined;
  let bare: BareServer | undefined;
  const uploads: UploadResult[] = [];
  let hostLoad: HttpLoadResult | undefined;
  let bareLoad: HttpLoadResult | undefined;
  let noopLoad: HttpLoadResult | undefined;
  let workersLoad: HttpLoadResult | undefined;
  let postgresLoad: HttpLoadResult | undefined;
  /** the median over rounds of (PostgreSQL host / SQLite host), each pair measured back to back */
  let postgresRatio: number | undefined;
  let postgresSkipped: string | undefined;
  let lookups: LookupFigures | undefined;
  const WORKERS = os.availableParallelism();
  let httpRounds: Record<string, number[]> = {};
  let hostRss: { start: number; end: number } | undefined;
  let answerBytes = 0;
  try {
    host = await startHost({ env: SQLITE_HOST_ENV, logToFile: true });
    children.push(host);
    let h = host;
    let user = await h.addUser('bench');
    let pid = h.process.pid!;
    const s3 = {
      endpoint: h.s3Endpoint!,
      bucket: h.bucket!,
      ...h.s3Credentials!,
      region: 'eu-central-1',
    };
    const client = storeClient(s3);
    try {
      // 3 first, on a host that has served little, so its RSS is near its resting size.
      for (const bytes of [1 * MiB, 8 * MiB]) {
        try {
          const u = await measureUpload({ hostUrl: h.url, userKey: user.user_key, s3, hostPid: pid }, { bytes, rounds: QUICK ? 3 : 5, client });
          uploads.push(u);
          const p = u.hostPhasesMs;
          log(`user-upload ${bytes / MiB} MiB: host ${u.hostMs} ms (read ${p.read}, parse ${p.parse}, handler ${p.handler}), direct put ${u.directMs} ms (x${u.ratio}); host RSS +${(u.rssGrowthBytes / MiB).toFixed(1)} MiB (x${u.rssGrowthRatio}), then +${(u.steadyRssGrowthBytes / MiB).toFixed(1)} MiB`);
        } catch (err) {
          errors[`upload${bytes / MiB}MiB`] = String((err as Error)?.stack ?? err);
          log(`user-upload ${bytes / MiB} MiB: FAILED ${errors[`upload${bytes / MiB}MiB`]}`);
        }
      }
    } finally {
      client.destroy();
    }
    loads.afterUploads = loadAvg();

    // A fresh host for the request rate: one that has just held 8 MiB uploads carries a grown heap.
    await h.stop();
    children.splice(children.indexOf(h), 1);
    fs.rmSync(h.dataDir, { recursive: true, force: true });
    host = h = await startHost({ env: SQLITE_HOST_ENV, logToFile: true });
    children.push(h);
    user = await h.addUser('bench');
    pid = h.process.pid!;
    hostRss = { start: readMem(pid).rss, end: 0 };

    // 2: user-upload-link under load, against a bare server answering as many bytes.
    const linkUrl = `${h.url}/aws-storage/user-upload-link/`;
    const reqBody = JSON.stringify({ name: 'bench/photo.jpg', contentType: 'image/jpeg' });
    const reqHeaders: Record<string, string> = { 'content-type': 'application/json', 'x-user-key': user.user_key };
    const agent = new http.Agent({ keepAlive: false });
    const probe = await postJson(linkUrl, Buffer.from(reqBody), { 'x-user-key': user.user_key }, agent);
    agent.destroy();
    if (probe.status !== 200 || typeof probe.body?.link !== 'string') throw new Error(`user-upload-link answered ${probe.status}: ${JSON.stringify(probe.body)}`);
    answerBytes = Buffer.byteLength(JSON.stringify(probe.body));
    bare = await startBareServer(answerBytes);
    children.push(bare);
    const load = { method: 'POST' as const, body: reqBody, connections: 32 };

    // The same host with HOST_WORKERS = the number of cores (node:cluster), and the host over a
    // socket whose endpoints answer a constant at once: what the host (HTTP, keys, ctx, log) costs
    // without the socket's work.
    const multi = await startHost({ env: { ...SQLITE_HOST_ENV, HOST_WORKERS: String(WORKERS) }, logToFile: true });
    children.push(multi);
    const noop = await startNoopHost(answerBytes, SQLITE_HOST_ENV);
    children.push(noop.host);
    // The same host, its users in PostgreSQL (a server of the bench's own), over the same store as
    // the SQLite host: the one difference is where keys are looked up (cached, so it should cost ~nothing).
    const pg = await startBenchPostgres(log);
    let pgHost: StartedHost | undefined;
    if ('skipped' in pg) {
      postgresSkipped = pg.skipped;
      log(`host with PostgreSQL users: skipped (${pg.skipped})`);
    } else {
      children.push(pg);
      pgHost = await startHost({
        env: {
          ...SQLITE_HOST_ENV,
          DATABASE_URL: pg.url,
          AWS_S3_ENDPOINT: h.s3Endpoint!,
          AWS_BUCKET: h.bucket!,
          AWS_ACCESS_KEY_ID: h.s3Credentials!.accessKeyId,
          AWS_SECRET_ACCESS_KEY: h.s3Credentials!.secretAccessKey,
          AWS_REGION: 'eu-central-1',
        },
        logToFile: true,
      });
      children.push(pgHost);
    }
    try {
      const multiUser = await multi.addUser('bench');
      const noopUser = await noop.host.addUser('bench');
      const targets = [
        { name: 'bare', url: bare.url, headers: reqHeaders, runs: [] as HttpLoadResult[] },
        { name: 'host', url: linkUrl, headers: reqHeaders, runs: [] as HttpLoadResult[] },
        { name: 'workers', url: `${multi.url}/aws-storage/user-upload-link/`, headers: { ...reqHeaders, 'x-user-key': multiUser.user_key }, runs: [] as HttpLoadResult[] },
        { name: 'noop', url: `${noop.host.url}/aws-storage/user-upload-link/`, headers: { ...reqHeaders, 'x-user-key': noopUser.user_key }, runs: [] as HttpLoadResult[] },
      ];
      if (pgHost) {
        const pgUser = await pgHost.addUser('bench');
        const pgAgent = new http.Agent({ keepAlive: false });
        const pgProbe = await postJson(`${pgHost.url}/aws-storage/user-upload-link/`, Buffer.from(reqBody), { 'x-user-key': pgUser.user_key }, pgAgent);
        pgAgent.destroy();
        if (pgProbe.status !== 200) throw new Error(`user-upload-link with PostgreSQL users answered ${pgProbe.status}: ${JSON.stringify(pgProbe.body)}`);
        // right after the SQLite host in every round, so that each round's ratio compares two
        // moments seconds apart on a machine whose speed drifts
        targets.splice(2, 0, { name: 'postgres', url: `${pgHost.url}/aws-storage/user-upload-link/`, headers: { ...reqHeaders, 'x-user-key': pgUser.user_key }, runs: [] });
      }
      for (const t of targets) await measureHttp({ ...load, url: t.url, headers: t.headers, durationS: WARM_S });
      // Interleaved rounds, the median of each: the machine's speed drifts over a minute, and a
      // ratio of two figures taken at different moments would carry that drift.
      for (let r = 0; r < HTTP_ROUNDS; r++) {
        for (const t of targets) t.runs.push(await measureHttp({ ...load, url: t.url, headers: t.headers, durationS: LOAD_S }));
      }
      const runsOf = (name: string) => targets.find((t) => t.name === name)?.runs;
      [bareLoad, hostLoad, workersLoad, noopLoad] = ['bare', 'host', 'workers', 'noop'].map((n) => medianRun(runsOf(n)!));
      const pgRuns = runsOf('postgres');
      if (pgRuns) {
        postgresLoad = medianRun(pgRuns);
        postgresRatio = median(pgRuns.map((r, i) => r.reqPerSec / runsOf('host')![i].reqPerSec));
      }
      httpRounds = Object.fromEntries(targets.map((t) => [t.name, t.runs.map((x) => x.reqPerSec)]));
      loads.afterHttp = loadAvg();
      hostRss.end = readMem(pid).rss;
      log(`host user-upload-link: ${hostLoad.reqPerSec} req/s p50 ${hostLoad.p50Ms} ms p99 ${hostLoad.p99Ms} ms (${hostLoad.non2xx} non-2xx, ${hostLoad.errors} errors)`);
      log(`host, ${WORKERS} workers:       ${workersLoad.reqPerSec} req/s p50 ${workersLoad.p50Ms} ms p99 ${workersLoad.p99Ms} ms (${workersLoad.non2xx} non-2xx, ${workersLoad.errors} errors)`);
      log(`host, no-op endpoint:  ${noopLoad.reqPerSec} req/s p50 ${noopLoad.p50Ms} ms p99 ${noopLoad.p99Ms} ms`);
      if (postgresLoad) log(`host, PostgreSQL users: ${postgresLoad.reqPerSec} req/s p50 ${postgresLoad.p50Ms} ms p99 ${postgresLoad.p99Ms} ms (${postgresLoad.non2xx} non-2xx, ${postgresLoad.errors} errors); median round ratio to SQLite x${round(postgresRatio!, 2)}`);
      log(`bare node:http:        ${bareLoad.reqPerSec} req/s p50 ${bareLoad.p50Ms} ms p99 ${bareLoad.p99Ms} ms`);
      log(`rounds (req/s): ${targets.map((t) => `${t.name} ${t.runs.map((x) => Math.round(x.reqPerSec)).join('/')}`).join(', ')}`);
    } finally {
      if (pgHost) {
        await pgHost.stop();
        fs.rmSync(pgHost.dataDir, { recursive: true, force: true });
      }
      if (!('skipped' in pg)) {
        try {
          lookups = await measureLookups(pg.url);
          log(`user lookups in-process, µs: cached SQLite ${lookups.cachedUs.sqlite} / PostgreSQL ${lookups.cachedUs.postgres}; unknown key SQLite ${lookups.missUs.sqlite} / PostgreSQL ${lookups.missUs.postgres}`);
        } catch (err) {
          errors.lookups = String((err as Error)?.stack ?? err);
          log(`user lookups: FAILED ${errors.lookups}`);
        }
        await pg.stop();
      }
      await multi.stop();
      fs.rmSync(multi.dataDir, { recursive: true, force: true });
      await noop.host.stop();
      fs.rmSync(noop.dir, { recursive: true, force: true });
      fs.rmSync(noop.host.dataDir, { recursive: true, force: true });
    }
  } catch (err) {
    errors.host = String((err as Error)?.stack ?? err);
    log(`host: FAILED ${errors.host}`);
  } finally {
    await bare?.stop();
    if (host) {
      await host.stop();
      fs.rmSync(host.dataDir, { recursive: true, force: true });
    }
  }

  // ---- 5: the embedded store vs a bare fs loop ----
  let storeRows: StoreBenchRow[] = [];
  try {
    storeRows = await benchStore({ quick: QUICK, log });
  } catch (err) {
    errors.store = String((err as Error)?.stack ?? err);
    log(`store: FAILED ${errors.store}`);
  }

  // ---- 6: multipart uploads (client vs lib-storage, links for 10,000 parts, client RSS) ----
  let multipartRows: MultipartBenchRow[] = [];
  try {
    multipartRows = await benchMultipart({ quick: QUICK, log });
  } catch (err) {
    errors.multipart = String((err as Error)?.stack ?? err);
    log(`multipart: FAILED ${errors.multipart}`);
  }
  // ---- 7: what the host costs (start, memory) ----
  const costs: HostCost[] = [];
  try {
    for (let i = 0; i < (QUICK ? 1 : 3); i++) {
      const c = await measureHostCost({ loadS: LOAD_S });
      costs.push(c);
      log(`host cost: healthy ${c.healthyMs} ms, RSS at rest ${c.restRssMiB} MiB, peak ${c.peakRssMiB} MiB under 32 connections (${Math.round(c.load.reqPerSec)} req/s)`);
    }
  } catch (err) {
    errors.hostCost = String((err as Error)?.stack ?? err);
    log(`host cost: FAILED ${errors.hostCost}`);
  }

  // ---- 8: the host's CPU per request at a fixed rate ----
  let cpuRows: CpuBenchRow[] = [];
  let cpuMeasures: CpuMeasure[] = [];
  try {
    ({ rows: cpuRows, measures: cpuMeasures } = await benchCpu({ quick: QUICK, log }));
  } catch (err) {
    errors.cpu = String((err as Error)?.stack ?? err);
    log(`cpu: FAILED ${errors.cpu}`);
  }

  // ---- 9: uploads against the peer (raw body, base64, make-links check) ----
  let uploadsRows: UploadsBenchRow[] = [];
  try {
    uploadsRows = await benchUploads({ quick: QUICK, log });
  } catch (err) {
    errors.uploads = String((err as Error)?.stack ?? err);
    log(`uploads: FAILED ${errors.uploads}`);
  }
  loads.end = loadAvg();

  // ---- the table ----
  const rows: Row[] = [];
  const byName = (p: string) => presignRows.find((r) => r.name.startsWith(p));
  const hRow = byName('(h)');
  const aRow = byName('(a)');
  const bRow = byName('(b)');
  const cRow = byName('(c)');
  if (hRow && aRow && bRow) {
    rows.push(row('make-links 1000 keys (handler)', hRow.linksPerSec, 'links/s', null, '', '>= 20,000 links/s', hRow.linksPerSec >= 20_000));
    rows.push(row('  vs (a) getSignedUrl loop', hRow.linksPerSec, 'links/s', aRow.linksPerSec, '(a) links/s', '>= 10x', hRow.linksPerSec / aRow.linksPerSec >= 10));
    rows.push(row('  vs (b) signature-v4 presign loop', hRow.linksPerSec, 'links/s', bRow.linksPerSec, '(b) links/s', '>= 0.67x (within 1.5x)', hRow.linksPerSec / bRow.linksPerSec >= 1 / 1.5));
    if (cRow) rows.push(row('  (c) createPresigner alone, vs (b)', cRow.linksPerSec, 'links/s', bRow.linksPerSec, '(b) links/s', 'info', null));
  }
  if (hostLoad && bareLoad) {
    rows.push(row('host user-upload-link, 32 conns', hostLoad.reqPerSec, 'req/s', bareLoad.reqPerSec, 'bare node:http req/s', '>= 0.5x', hostLoad.reqPerSec / bareLoad.reqPerSec >= 0.5));
    rows.push(row('  p50 latency', hostLoad.p50Ms, 'ms', bareLoad.p50Ms, 'bare p50 ms', 'info', null));
    rows.push(row('  p99 latency', hostLoad.p99Ms, 'ms', bareLoad.p99Ms, 'bare p99 ms', '< 25 ms', hostLoad.p99Ms < 25 && hostLoad.non2xx === 0 && hostLoad.errors === 0));
    if (workersLoad) {
      rows.push(row(`host user-upload-link, ${WORKERS} workers`, workersLoad.reqPerSec, 'req/s', bareLoad.reqPerSec, 'bare node:http req/s', '>= 0.5x', workersLoad.reqPerSec / bareLoad.reqPerSec >= 0.5));
      rows.push(row(`  p99 latency, ${WORKERS} workers`, workersLoad.p99Ms, 'ms', bareLoad.p99Ms, 'bare p99 ms', '< 25 ms', workersLoad.p99Ms < 25 && workersLoad.non2xx === 0 && workersLoad.errors === 0));
    }
    if (noopLoad) rows.push(row('  host with a no-op endpoint', noopLoad.reqPerSec, 'req/s', bareLoad.reqPerSec, 'bare node:http req/s', 'info (host alone)', null));
  }
  if (postgresLoad && hostLoad && postgresRatio !== undefined) {
    const pgRow = row('host user-upload-link, PostgreSQL users', postgresLoad.reqPerSec, 'req/s', hostLoad.reqPerSec, 'host, SQLite users req/s', '>= 0.9x (median round ratio)', postgresRatio >= 0.9 && postgresLoad.non2xx === 0 && postgresLoad.errors === 0);
    // the ratio shown is the per-round one the target is judged on, not the ratio of the two medians
    pgRow.ratio = round(postgresRatio, 2);
    rows.push(pgRow);
    rows.push(row('  p99 latency, PostgreSQL users', postgresLoad.p99Ms, 'ms', hostLoad.p99Ms, 'SQLite p99 ms', 'info', null));
    if (lookups) {
      rows.push(row('  key lookup, found before (cached), PostgreSQL', lookups.cachedUs.postgres, 'µs', lookups.cachedUs.sqlite, 'SQLite µs', 'info (per request)', null));
      rows.push(row('  key lookup, unknown key, PostgreSQL', lookups.missUs.postgres, 'µs', lookups.missUs.sqlite, 'SQLite µs', 'info (a round trip)', null));
    }
  } else if (postgresSkipped) {
    log(`host user-upload-link with PostgreSQL users: not measured (${postgresSkipped})`);
  }
  for (const u of uploads) {
    const mib = u.bytes / MiB;
    rows.push(row(`user-upload ${mib} MiB via host`, u.hostMs, 'ms', u.directMs, 'direct PutObject ms', '<= 1.3x', u.ratio <= 1.3));
    rows.push(row(`  host peak RSS growth, ${mib} MiB`, round(u.rssGrowthBytes / MiB, 1), 'MiB', mib, 'file MiB', '< 4x', u.rssGrowthBytes < 4 * u.bytes));
    rows.push(row(`  the same, once the host has served ${mib} MiB`, round(u.steadyRssGrowthBytes / MiB, 1), 'MiB', mib, 'file MiB', 'info (< 4x)', null));
    rows.push(row(`  same process, direct put alone`, round(u.directRssGrowthBytes / MiB, 1), 'MiB', mib, 'file MiB', 'info (the store)', null));
    rows.push(row(`  host phases: read / parse / handler`, u.hostPhasesMs.handler, 'ms', u.directMs, 'direct PutObject ms', `info: read ${u.hostPhasesMs.read}, parse ${u.hostPhasesMs.parse} ms`, null));
  }
  if (scaling.length) {
    const base = scaling.find((s) => s.keys === 1000) ?? scaling[scaling.length - 1];
    for (const s of scaling) {
      rows.push(row(`make-links µs/link, ${s.keys} keys`, s.usPerLink, 'µs', base.usPerLink, 'µs/link at 1000', '<= 1.5x (flat)', s.usPerLink <= 1.5 * base.usPerLink));
    }
  }
  for (const s of storeRows) {
    const baselineName = s.baselineName ?? `fs ${s.op === 'PUT' ? 'write+rename' : s.op === 'GET' ? 'read' : 'stat'} ops/s`;
    rows.push(row(s.figure, s.storeOps, 'ops/s', s.fsOps, baselineName, s.target === null ? 'info' : `>= ${s.target}x`, s.target === null ? null : s.ratio >= s.target));
  }
  for (const m of multipartRows) rows.push(row(m.figure, m.value, m.unit, m.baseline, m.baselineName, m.target, m.pass));
  if (costs.length) {
    // the worst of the runs: a target is met only if every start met it
    const worst = (f: (c: HostCost) => number) => Math.max(...costs.map(f));
    rows.push(row(`host healthy after start (worst of ${costs.length})`, worst((c) => c.healthyMs), 'ms', 1500, 'target ms', '<= 1.5 s', worst((c) => c.healthyMs) <= 1500));
    rows.push(row(`host RSS at rest (worst of ${costs.length})`, worst((c) => c.restRssMiB), 'MiB', 120, 'target MiB', '<= 120 MB', worst((c) => c.restRssMiB) * 1.048576 <= 120));
    rows.push(row(`host peak RSS, 32 conns user-upload-link (worst)`, worst((c) => c.peakRssMiB), 'MiB', 200, 'target MiB', '<= 200 MB', worst((c) => c.peakRssMiB) * 1.048576 <= 200));
  }
  for (const c of cpuRows) rows.push({ ...row(c.figure, c.value, c.unit, c.baseline, c.baselineName, c.target, c.pass), ratio: c.ratio });
  for (const u of uploadsRows) rows.push(row(u.figure, u.value, u.unit, u.baseline, u.baselineName, u.target, u.pass));
  log('');
  log(`aws-storage bench (${handlerSource}; load: start ${loads.start} / end ${loads.end}; ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  log(formatTable(rows));
  const failed = rows.filter((r) => r.pass === false).length;
  log(`${rows.filter((r) => r.pass === true).length} pass, ${failed} fail${Object.keys(errors).length ? `, errors in: ${Object.keys(errors).join(', ')}` : ''}`);

  const out = {
    when: new Date().toISOString(),
    node: process.version,
    cores: os.cpus().length,
    quick: QUICK,
    loadS: LOAD_S,
    handler: handlerSource,
    loads,
    durationS: round((Date.now() - t0) / 1000, 1),
    rows,
    makeLinks: { presign: presignRows, linksChecked, scaling },
    host: { rounds: httpRounds, userUploadLink: hostLoad, bare: bareLoad, workers: WORKERS, userUploadLinkWorkers: workersLoad, noopEndpoint: noopLoad, userUploadLinkPostgres: postgresLoad, postgresRatio, postgresSkipped, lookups, answerBytes, rss: hostRss },
    uploads: uploads.map(({ answer: _a, ...u }) => u),
    store: storeRows,
    multipart: multipartRows,
    hostCost: costs,
    cpu: cpuMeasures,
    uploadsAgainstPeer: uploadsRows,
    errors,
  };
  const dir = path.join(PROJECT_ROOT, 'bench-results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'bench.json'), JSON.stringify(out, null, 2) + '\n');
  log(`written ${path.relative(process.cwd(), path.join(dir, 'bench.json')) || 'bench-results/bench.json'}`);
  clearTimeout(watchdog);
  if (Object.keys(errors).length) process.exitCode = 1;
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The run with the median request rate (its latencies come with it). */
function medianRun(runs: HttpLoadResult[]): HttpLoadResult {
  const sorted = [...runs].sort((x, y) => x.reqPerSec - y.reqPerSec);
  return sorted[(sorted.length - 1) >> 1];
}

/** Puts objects at a few of the keys and fetches their links from the handler's answer: each must return its bytes. */
async function checkLinks(
  store: { endpoint: string; accessKeyId: string; secretAccessKey: string; region: string },
  bucket: string,
  keys: string[],
  files: Record<string, string>,
): Promise<number> {
  const client = storeClient(store);
  try {
    const sample = [0, 1, 96, 500, 998, 999].map((i) => keys[i]);
    for (const key of sample) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `bench ${key}` }));
      const res = await fetch(files[key], { signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      if (res.status !== 200 || text !== `bench ${key}`) throw new Error(`link for ${key}: ${res.status} ${text.slice(0, 200)}`);
    }
    return sample.length;
  } finally {
    client.destroy();
  }
}

function row(figure: string, value: number, unit: string, baseline: number | null, baselineName: string, target: string, pass: boolean | null): Row {
  return {
    figure,
    value,
    unit,
    baseline,
    baselineName,
    ratio: baseline ? round(value / baseline, 2) : null,
    target,
    pass,
  };
}

function fmt(n: number | null): string {
  if (n === null || !Number.isFinite(n)) return '-';
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  return String(round(n, n >= 100 ? 0 : n >= 10 ? 1 : 2));
}

function formatTable(rows: Row[]): string {
  const head = ['figure', 'value', 'baseline', 'ratio', 'target', 'result'];
  const body = rows.map((r) => [
    r.figure,
    `${fmt(r.value)} ${r.unit}`,
    r.baseline === null ? '-' : `${fmt(r.baseline)} ${r.baselineName}`,
    r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`,
    r.target,
    r.pass === null ? 'info' : r.pass ? 'PASS' : 'FAIL',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 1 || i === 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
