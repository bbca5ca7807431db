/**
 * The host's CPU time per request (issue #15), section 7 of `npm run bench`; run alone with
 * `node --import tsx scripts/bench/cpu.bench.ts [--quick]` after `npm run build`.
 *
 * The server's own CPU time (utime + stime of its process, all threads, from /proc/<pid>/stat) over a
 * FIXED-RATE load, divided by the requests it answered: the load generator shares the two cores, so a
 * request rate measures the generator as much as the server; at a rate every server keeps up with,
 * the server's CPU per request does not depend on it. Three servers, interleaved rounds, medians:
 *   - a bare `node:http` server answering a constant JSON of the same length (the baseline);
 *   - the host over a no-op socket (every endpoint answers that constant at once): the host's own cost;
 *   - the host with the real `user-upload-link` (keys, ctx, zod, @syncano/core, signing).
 */
import './env';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startHost, type StartedHost } from '../../test/support/host';
import { PROJECT_ROOT, median, postJson, round, startBareServer } from './measure';

/** Clock ticks a second of /proc/<pid>/stat's utime and stime (USER_HZ: 100 on Linux). */
const TICKS_PER_S = 100;

/**
 * CPU seconds the process has used so far. Where the kernel keeps schedstats, the sum of its threads'
 * nanoseconds on a CPU (/proc/<pid>/task/<tid>/schedstat): a bare server's 4,000 requests are only
 * about ten 10 ms ticks, so /proc/<pid>/stat's utime + stime (the fallback, which also counts threads
 * that ended) would make each figure ±10 %. The servers measured keep their threads for their life.
 */
export function processCpuSeconds(pid: number): number {
  const precise = threadsCpuNs(pid);
  if (precise !== undefined) return precise / 1e9;
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after the ")" that ends the command name: state is field 3, utime 14, stime 15
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
}

function threadsCpuNs(pid: number): number | undefined {
  let total = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    let line: string;
    try {
      line = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // no schedstats here
      continue; // the thread ended meanwhile
    }
    const ns = Number(line.split(' ')[0]);
    if (!Number.isFinite(ns)) return undefined;
    total += ns;
  }
  return total;
}

export interface PacedResult {
  sent: number;
  ok: number;
  failed: number;
  /** ticks at which requests were due but maxInFlight were already waiting (they went out later) */
  lateTicks: number;
  seconds: number;
}

/**
 * Sends `rate` requests a second for `durationS`, in ticks of 10 ms, over keep-alive connections,
 * never more than maxInFlight at once (requests due meanwhile go out as answers come back, so a
 * stall of either side does not change the count); waits for the last answers (bounded). Only 127.0.0.1.
 */
export async function pacedLoad(opts: {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  rate: number;
  durationS: number;
  maxInFlight?: number;
}): Promise<PacedResult> {
  const target = new URL(opts.url);
  if (target.hostname !== '127.0.0.1') throw new Error(`load only 127.0.0.1, not ${opts.url}`);
  const maxInFlight = opts.maxInFlight ?? 32;
  const agent = new http.Agent({ keepAlive: true, maxSockets: maxInFlight });
  const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
  const headers = { ...opts.headers, ...(body ? { 'content-length': String(body.length) } : {}) };
  const result: PacedResult = { sent: 0, ok: 0, failed: 0, lateTicks: 0, seconds: 0 };
  let inFlight = 0;
  const one = () => {
    inFlight++;
    result.sent++;
    const req = http.request({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: opts.method, headers, agent }, (res) => {
      res.resume();
      res.on('end', () => {
        inFlight--;
        if (res.statusCode === 200) result.ok++;
        else result.failed++;
      });
    });
    req.on('error', () => {
      inFlight--;
      result.failed++;
    });
    req.end(body);
  };
  const started = performance.now();
  const total = Math.round(opts.rate * opts.durationS);
  const deadline = started + (opts.durationS * 3 + 10) * 1000;
  await new Promise<void>((done) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * opts.rate));
      while (result.sent < due && inFlight < maxInFlight) one();
      if (result.sent < due) result.lateTicks++;
      if (result.sent >= total || performance.now() > deadline) {
        clearInterval(tick);
        done();
      }
    }, 10);
  });
  for (let i = 0; i < 500 && inFlight > 0; i++) await new Promise((r) => setTimeout(r, 10));
  result.seconds = round((performance.now() - started) / 1000, 2);
  agent.destroy();
  return result;
}

export interface CpuTarget {
  name: string;
  pid: number;
  url: string;
  headers: Record<string, string>;
}

export interface CpuMeasure {
  name: string;
  /** median µs of the server's CPU per answered request */
  usPerRequest: number;
  rounds: number[];
  load: PacedResult;
}

/** The server's CPU µs per answered request over one paced load; throws if any request failed. */
export async function cpuPerRequest(t: CpuTarget, load: { rate: number; durationS: number; body: string }): Promise<{ us: number; load: PacedResult }> {
  const before = processCpuSeconds(t.pid);
  const r = await pacedLoad({ url: t.url, method: 'POST', headers: t.headers, body: load.body, rate: load.rate, durationS: load.durationS });
  const used = processCpuSeconds(t.pid) - before;
  const expected = Math.round(load.rate * load.durationS);
  if (r.failed || r.ok !== expected) throw new Error(`${t.name}: ${r.ok} of ${expected} ok, ${r.failed} failed (at ${load.rate}/s)`);
  return { us: round((used * 1e6) / r.ok, 1), load: r };
}

/** Medians of interleaved rounds: every round measures each target once, in turn. */
export async function measureCpu(targets: CpuTarget[], opts: { rounds: number; rate: number; durationS: number; warmS: number; body: string }): Promise<CpuMeasure[]> {
  for (const t of targets) await cpuPerRequest(t, { ...opts, durationS: opts.warmS });
  const runs = new Map(targets.map((t) => [t.name, [] as Array<{ us: number; load: PacedResult }>]));
  for (let r = 0; r < opts.rounds; r++) for (const t of targets) runs.get(t.name)!.push(await cpuPerRequest(t, opts));
  return targets.map((t) => {
    const rs = runs.get(t.name)!;
    const us = rs.map((x) => x.us);
    return { name: t.name, usPerRequest: median(us), rounds: us, load: rs[rs.length - 1].load };
  });
}

/** A host over a throwaway socket (this socket.yml) whose every endpoint answers `bytes` of constant JSON at once. */
export async function startNoopHost(bytes: number, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<{ host: StartedHost; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-storage-noop-socket-'));
  fs.copyFileSync(path.join(PROJECT_ROOT, 'socket.yml'), path.join(dir, 'socket.yml'));
  fs.mkdirSync(path.join(dir, '.dist', 'src'), { recursive: true });
  const body = JSON.stringify({ link: 'x'.repeat(Math.max(0, bytes - 11)) });
  const handler = `const body = ${JSON.stringify(body)};\nexports.default = (ctx) => ctx.setResponse(new ctx.HttpResponse(200, body, 'application/json'));\n`;
  for (const file of fs.readdirSync(path.join(PROJECT_ROOT, '.dist', 'src'))) {
    // the endpoints only: the runtime files are the build's, not endpoints
    if (file.endsWith('.js') && !file.startsWith('_')) fs.writeFileSync(path.join(dir, '.dist', 'src', file), handler);
  }
  const host = await startHost({ env: { SOCKET_DIR: dir, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env }, logToFile: true, nodeArgs });
  return { host, dir };
}

export interface CpuBenchRow {
  figure: string;
  value: number;
  unit: string;
  baseline: number | null;
  baselineName: string;
  /** the median of the rounds' ratios (each round: this server's µs over the bare server's) */
  ratio: number;
  target: string;
  pass: boolean | null;
}

/** Section 7: starts the three servers, measures, stops them; rows for the table. */
export async function benchCpu(opts: { quick: boolean; log: (s: string) => void; env?: Record<string, string> }): Promise<{ rows: CpuBenchRow[]; measures: CpuMeasure[]; rate: number }> {
  const rate = 1000;
  const stops: Array<() => Promise<unknown>> = [];
  try {
    const host = await startHost({ env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...opts.env }, logToFile: true });
    stops.push(async () => {
      await host.stop();
      fs.rmSync(host.dataDir, { recursive: true, force: true });
    });
    const user = await host.addUser('cpu');
    const linkUrl = `${host.url}/aws-storage/user-upload-link/`;
    const body = JSON.stringify({ name: 'bench/photo.jpg', contentType: 'image/jpeg' });
    const agent = new http.Agent({ keepAlive: false });
    const probe = await postJson(linkUrl, Buffer.from(body), { 'x-user-key': user.user_key }, agent);
    agent.destroy();
    if (probe.status !== 200 || typeof probe.body?.link !== 'string') throw new Error(`user-upload-link answered ${probe.status}`);
    const bytes = Buffer.byteLength(JSON.stringify(probe.body));

    const bare = await startBareServer(bytes);
    stops.push(() => bare.stop());
    const noop = await startNoopHost(bytes, opts.env);
    stops.push(async () => {
      await noop.host.stop();
      fs.rmSync(noop.dir, { recursive: true, force: true });
      fs.rmSync(noop.host.dataDir, { recursive: true, force: true });
    });
    const noopUser = await noop.host.addUser('cpu');
    const headers = (key: string) => ({ 'content-type': 'application/json', 'x-user-key': key });
    const measures = await measureCpu(
      [
        { name: 'bare', pid: bare.pid, url: bare.url, headers: headers(user.user_key) },
        { name: 'noop', pid: noop.host.process.pid!, url: `${noop.host.url}/aws-storage/user-upload-link/`, headers: headers(noopUser.user_key) },
        { name: 'host', pid: host.process.pid!, url: linkUrl, headers: headers(user.user_key) },
      ],
      { rounds: opts.quick ? 3 : 7, rate, durationS: opts.quick ? 2 : 4, warmS: opts.quick ? 1 : 2, body },
    );
    const [b, n, h] = measures;
    // Each round measures the three one after the other: the ratio within a round cancels the
    // machine's drift (other work on the two cores) better than a ratio of medians.
    const ratio = (m: CpuMeasure) => median(m.rounds.map((us, i) => us / b.rounds[i]));
    opts.log(`CPU per request at ${rate} req/s: bare ${b.usPerRequest} µs (${b.rounds.join('/')}), host no-op ${n.usPerRequest} µs (${n.rounds.join('/')}), host user-upload-link ${h.usPerRequest} µs (${h.rounds.join('/')}); per-round ratios no-op ${round(ratio(n), 2)}, user-upload-link ${round(ratio(h), 2)}`);
    const rows: CpuBenchRow[] = [
      { figure: `host CPU/request, no-op socket, ${rate} req/s`, value: n.usPerRequest, unit: 'µs', baseline: b.usPerRequest, baselineName: 'bare node:http µs', ratio: round(ratio(n), 2), target: '<= 2x', pass: ratio(n) <= 2 },
      { figure: `host CPU/request, user-upload-link, ${rate} req/s`, value: h.usPerRequest, unit: 'µs', baseline: b.usPerRequest, baselineName: 'bare node:http µs', ratio: round(ratio(h), 2), target: '<= 3.5x', pass: ratio(h) <= 3.5 },
    ];
    return { rows, measures, rate };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  }
}

if (require.main === module) {
  const quick = process.argv.includes('--quick');
  benchCpu({ quick, log: (s) => process.stdout.write(s + '\n') }).then(
    ({ rows }) => {
      for (const r of rows) process.stdout.write(`${r.figure}: ${r.value} ${r.unit} vs ${r.baseline} ${r.baselineName} = ${r.ratio}x (${r.target}) ${r.pass ? 'PASS' : 'FAIL'}\n`);
    },
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
