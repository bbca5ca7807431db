/**
 * Runs a command against a throw-away one-node Ceph cluster (one monitor, one OSD on memstore,
 * one radosgw), all on 127.0.0.1 and all inside a fresh temp folder.
 *
 *   node --import tsx scripts/rgw/run.ts -- <command...>
 *
 * The command gets AWS_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
 * AWS_S3_FORCE_PATH_STYLE=true, TEST_STORE=rgw, and AWS_UPLOAD_ACCESS_KEY_ID /
 * AWS_UPLOAD_SECRET_ACCESS_KEY: RGW accepts x-amz-* headers a presigned link did not sign, so the
 * cluster is set up as the README's Security section tells a deployment to set up RGW:
 *   - the socket's user gets a subuser with `--access=write` whose keys sign upload links only
 *     (a copy needs read on its source: `x-amz-copy-source` on an upload link is AccessDenied);
 *   - a user policy on the socket's user (subusers included) denies PutObject carrying a canned ACL
 *     or a grant (`x-amz-acl`, `x-amz-grant-*`), so no link publishes a file.
 * scripts/rgw/measure-link-headers.ts shows what each measure does. Afterwards (also on failure, SIGINT or SIGTERM)
 * every daemon started here is stopped by pid (radosgw, OSD, monitor: the other order waits), the
 * temp folder is removed, and the script exits with the command's exit code.
 *
 * Needs the packages scripts/rgw/install.sh installs. Every ceph command gets `-c <conf>`, so
 * nothing reads or writes /etc/ceph or /var/lib/ceph.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const RGW_ACCESS_KEY = 'RGWTESTACCESSKEY0001';
export const RGW_SECRET_KEY = 'rgwTestSecretKey0000000000000000000000001';
export const RGW_REGION = 'us-east-1';
export const RGW_UPLOAD_ACCESS_KEY = 'RGWTESTUPLOADKEY0001';
export const RGW_UPLOAD_SECRET_KEY = 'rgwTestUploadSecretKey000000000000000001';
const RGW_USER = 'aws-storage-test';
/** Sets the socket user's policy (caps user-policy=*); the socket's own user has no caps. */
const RGW_POLICY_ADMIN = 'aws-storage-policy-admin';
const RGW_POLICY_ADMIN_ACCESS_KEY = 'RGWTESTPOLICYADMIN01';
const RGW_POLICY_ADMIN_SECRET_KEY = 'rgwTestPolicyAdminSecret0000000000000001';
/**
 * Denies PutObject with a canned ACL or a grant, for the socket's user and its subusers, on every
 * bucket. StringLike, not Null: RGW 16.2.15's Null operator denied plain PUTs and let grants through.
 */
export const NO_ACL_HEADERS_POLICY = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Deny', Action: 's3:PutObject', Resource: 'arn:aws:s3:::*', Condition: { StringLike: { 's3:x-amz-acl': '?*' } } },
    ...['read', 'write', 'read-acp', 'write-acp', 'full-control'].map((g) => ({
      Effect: 'Deny',
      Action: 's3:PutObject',
      Resource: 'arn:aws:s3:::*',
      Condition: { StringLike: { [`s3:x-amz-grant-${g}`]: '*' } },
    })),
  ],
};
const MON_ID = 'a';
const RGW_NAME = 'client.rgw.a';
const MEMSTORE_BYTES = 1024 * 1024 * 1024;
const STEP_TIMEOUT_MS = 60_000;

const t0 = Date.now();
const log = (msg: string): void => {
  process.stderr.write(`rgw: ${msg}\n`);
};
const since = (t: number): string => `${((Date.now() - t) / 1000).toFixed(1)} s`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Arguments

const argv = process.argv.slice(2);
const dashdash = argv.indexOf('--');
const command = dashdash >= 0 ? argv.slice(dashdash + 1) : argv;
if (command.length === 0) {
  process.stderr.write('usage: node --import tsx scripts/rgw/run.ts -- <command...>\n');
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** A port nobody listens on right now (127.0.0.1). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

class StepError extends Error {}

/**
 * Runs a ceph tool (monmaptool, mkfs, ceph, radosgw-admin) to completion, in its own process group
 * so a terminal's Ctrl-C does not cut it off mid-write; stopAll() finds any still running by our
 * config path. On timeout only this pid is killed, never a group.
 */
function run(cmd: string, args: string[], timeoutMs = STEP_TIMEOUT_MS): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (e) {
      reject(e);
      return;
    }
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new StepError(`${cmd} ${args.join(' ')}: no answer in ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      // give the pipes a moment to drain, without depending on EOF (a grandchild may hold them)
      setTimeout(() => {
        child.stdout!.destroy();
        child.stderr!.destroy();
        resolve({ code, signal, stdout, stderr });
      }, 20);
    });
  });
}

async function must(cmd: string, args: string[], timeoutMs?: number): Promise<string> {
  const r = await run(cmd, args, timeoutMs);
  if (r.code !== 0) {
    throw new StepError(
      `${cmd} ${args.join(' ')} failed (${r.signal ?? `exit ${r.code}`}): ${(r.stderr || r.stdout).trim().slice(-2000)}`,
    );
  }
  return r.stdout;
}

/** Polls `probe` until it returns true, at most `timeoutMs`. */
async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = STEP_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  for (;;) {
    if (aborted) throw new StepError(`interrupted while waiting for ${what}`);
    const ok = await probe().catch((e: unknown) => {
      if (e instanceof StepError) throw e; // a daemon died: no point waiting
      return false;
    });
    if (ok) return;
    if (Date.now() > deadline) throw new StepError(`${what}: not ready in ${timeoutMs / 1000} s`);
    await sleep(delay);
    delay = Math.min(delay * 2, 500);
  }
}

/** True while the pid is a live (not zombie) process. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** VmRSS (now) or VmHWM (peak) of a process, in kB. */
function rssKb(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+)\\s+kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// The cluster

// Admin sockets are unix sockets (path <= 107 bytes): keep the folder short.
const dir = mkdtempSync(join(tmpdir().length <= 60 ? tmpdir() : '/tmp', 'rgw-'));
const conf = join(dir, 'ceph.conf');
const paths = {
  run: join(dir, 'run'),
  log: join(dir, 'log'),
  mon: join(dir, 'mon'),
  osd: join(dir, 'osd'),
  rgw: join(dir, 'rgw'),
  crash: join(dir, 'crash'),
};
/** Daemons started, in start order; stopped radosgw, OSD, monitor. */
interface Daemon {
  name: string;
  pid: number;
  proc: ChildProcess;
  exited: boolean;
}
const daemons: Daemon[] = [];
let aborted = false;
let child: ChildProcess | undefined;

/**
 * Starts a daemon in the foreground (`-f`) as our own child, so we know its pid, see it exit and
 * reap it (forked daemons would be left to a pid 1 that may not reap them). It gets its own process
 * group (detached): a Ctrl-C in the terminal reaches the command and us, not the daemons, which we
 * stop ourselves, in order.
 */
function startDaemon(name: string, cmd: string, args: string[]): Daemon {
  const out = openSync(join(paths.log, `${name}.stdout`), 'a');
  const proc = spawn(cmd, [...args, '-f'], { stdio: ['ignore', out, out], detached: true });
  closeSync(out);
  if (proc.pid === undefined) throw new StepError(`could not start ${cmd}`);
  const d: Daemon = { name, pid: proc.pid, proc, exited: false };
  proc.once('exit', (code, signal) => {
    d.exited = true;
    if (!stopping) log(`${name} (pid ${d.pid}) exited unexpectedly (${signal ?? `exit ${code}`})`);
  });
  proc.once('error', () => (d.exited = true));
  daemons.push(d);
  return d;
}

function checkRunning(...ds: Daemon[]): void {
  for (const d of ds) if (d.exited) throw new StepError(`${d.name} exited during start`);
}

/** Every process whose command line names our temp folder (ours alone: the folder is fresh). */
function strayPids(): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(conf) && alive(pid)) found.push(pid);
    } catch {
      /* gone */
    }
  }
  return found;
}

async function stopPid(name: string, pid: number, isAlive: () => boolean): Promise<void> {
  if (!isAlive()) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 15_000;
  while (isAlive() && Date.now() < deadline) await sleep(25);
  if (isAlive()) {
    log(`${name} (pid ${pid}) ignored SIGTERM for 15 s; SIGKILL`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    const killDeadline = Date.now() + 5_000;
    while (isAlive() && Date.now() < killDeadline) await sleep(25);
  }
}

let stopping: Promise<void> | undefined;
function stopAll(): Promise<void> {
  stopping ??= (async () => {
    const t = Date.now();
    for (const d of [...daemons].reverse()) await stopPid(d.name, d.pid, () => !d.exited);
    // anything else naming our (fresh, unique) config file, e.g. a radosgw-admin left hanging
    for (const pid of strayPids()) await stopPid(`pid ${pid}`, pid, () => alive(pid));
    if (daemons.length > 0) log(`daemons stopped (${since(t)})`);
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (e) {
      log(`could not remove ${dir}: ${(e as Error).message}`);
    }
  })();
  return stopping;
}

/** The last lines of every daemon log, monitor first and radosgw last (nearest the error). */
function logTails(lines = 20): void {
  if (!existsSync(paths.log)) return;
  const rank = (f: string) => (f.startsWith('mon.') ? 0 : f.startsWith('osd.') ? 1 : 2);
  const files = readdirSync(paths.log).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  for (const f of files) {
    let text = '';
    try {
      text = readFileSync(join(paths.log, f), 'utf8');
    } catch {
      continue;
    }
    const tail = text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .slice(-lines)
      .map((l) => l.slice(0, 300))
      .join('\n');
    if (tail) process.stderr.write(`----- ${f} (last ${lines} lines) -----\n${tail}\n`);
  }
}

function writeConf(monPort: number, rgwPort: number, fsid: string): void {
  const lines = [
    '[global]',
    `fsid = ${fsid}`,
    `mon initial members = ${MON_ID}`,
    `mon host = [v2:127.0.0.1:${monPort}]`,
    'public network = 127.0.0.1/32',
    'ms bind msgr1 = false',
    'ms bind ipv6 = false',
    'auth cluster required = none',
    'auth service required = none',
    'auth client required = none',
    'auth allow insecure global id reclaim = true',
    'ms mon client mode = crc',
    `keyring = ${join(dir, 'keyring')}`,
    `run dir = ${paths.run}`,
    `pid file = ${paths.run}/$name.pid`,
    `admin socket = ${paths.run}/$name.asok`,
    `log file = ${paths.log}/$name.log`,
    `crash dir = ${paths.crash}`,
    'mon cluster log to file = false',
    'log to syslog = false',
    'err to syslog = false',
    'paxos propose interval = 0.01',
    'mon allow pool size one = true',
    'mon allow pool delete = true',
    'mon warn on pool no redundancy = false',
    'osd pool default size = 1',
    'osd pool default min size = 1',
    'osd pool default pg num = 8',
    'osd pool default pgp num = 8',
    'osd pool default pg autoscale mode = off',
    'osd crush chooseleaf type = 0',
    '',
    '[mon]',
    `mon data = ${paths.mon}/$cluster-$id`,
    '',
    '[osd]',
    `osd data = ${paths.osd}/$cluster-$id`,
    'osd objectstore = memstore',
    `memstore device bytes = ${MEMSTORE_BYTES}`,
    '',
    `[${RGW_NAME}]`,
    `rgw data = ${paths.rgw}`,
    `rgw frontends = beast endpoint=127.0.0.1:${rgwPort}`,
    'rgw enable usage log = false',
    '',
  ];
  writeFileSync(conf, lines.join('\n'));
}

async function bootstrap(): Promise<number> {
  for (const p of Object.values(paths)) mkdirSync(p, { recursive: true });
  const monPort = await freePort();
  let rgwPort = await freePort();
  while (rgwPort === monPort) rgwPort = await freePort();
  const fsid = randomUUID();
  writeConf(monPort, rgwPort, fsid);
  writeFileSync(join(dir, 'keyring'), '');
  const c = ['-c', conf];
  const cli = (...args: string[]) => must('ceph', [...c, '--connect-timeout', '15', ...args]);

  // monitor
  let t = Date.now();
  const monmap = join(dir, 'monmap');
  await must('monmaptool', [...c, '--create', '--fsid', fsid, '--addv', MON_ID, `[v2:127.0.0.1:${monPort}]`, monmap]);
  await must('ceph-mon', [...c, '-i', MON_ID, '--mkfs', '--monmap', monmap]);
  const mon = startDaemon(`mon.${MON_ID}`, 'ceph-mon', [...c, '-i', MON_ID]);
  await waitFor('monitor quorum', async () => {
    checkRunning(mon);
    const r = await run('ceph', [...c, '--connect-timeout', '5', 'quorum_status'], 10_000);
    return r.code === 0;
  });
  log(`monitor up on 127.0.0.1:${monPort} (${since(t)})`);

  // OSD (memstore: data in RAM)
  t = Date.now();
  const osdUuid = randomUUID();
  const osdId = (await cli('osd', 'new', osdUuid)).trim();
  if (osdId !== '0') throw new StepError(`ceph osd new gave id ${JSON.stringify(osdId)}, expected 0`);
  mkdirSync(join(paths.osd, `ceph-${osdId}`), { recursive: true });
  await must('ceph-osd', [...c, '-i', osdId, '--mkfs', '--osd-uuid', osdUuid]);
  const osd = startDaemon(`osd.${osdId}`, 'ceph-osd', [...c, '-i', osdId]);
  await waitFor('OSD up', async () => {
    checkRunning(mon, osd);
    const r = await run('ceph', [...c, '--connect-timeout', '5', 'osd', 'stat', '-f', 'json'], 10_000);
    if (r.code !== 0) return false;
    const s = JSON.parse(r.stdout) as { num_up_osds?: number; num_in_osds?: number };
    return s.num_up_osds === 1 && s.num_in_osds === 1;
  });
  log(`OSD up (${since(t)})`);

  // radosgw (creates its pools, then listens)
  t = Date.now();
  const rgw = startDaemon(RGW_NAME, 'radosgw', [...c, '-n', RGW_NAME]);
  await waitFor(`radosgw on 127.0.0.1:${rgwPort}`, async () => {
    checkRunning(mon, osd, rgw);
    return portOpen(rgwPort);
  });
  log(`radosgw up on 127.0.0.1:${rgwPort} (${since(t)})`);

  t = Date.now();
  await must('radosgw-admin', [
    ...c,
    'user',
    'create',
    `--uid=${RGW_USER}`,
    `--display-name=${RGW_USER}`,
    `--access-key=${RGW_ACCESS_KEY}`,
    `--secret-key=${RGW_SECRET_KEY}`,
  ]);
  log(`S3 user ${RGW_USER} created (${since(t)})`);

  t = Date.now();
  await must('radosgw-admin', [
    ...c,
    'subuser',
    'create',
    `--uid=${RGW_USER}`,
    `--subuser=${RGW_USER}:upload`,
    '--access=write',
    '--key-type=s3',
    `--access-key=${RGW_UPLOAD_ACCESS_KEY}`,
    `--secret-key=${RGW_UPLOAD_SECRET_KEY}`,
  ]);
  await must('radosgw-admin', [
    ...c,
    'user',
    'create',
    `--uid=${RGW_POLICY_ADMIN}`,
    `--display-name=${RGW_POLICY_ADMIN}`,
    `--access-key=${RGW_POLICY_ADMIN_ACCESS_KEY}`,
    `--secret-key=${RGW_POLICY_ADMIN_SECRET_KEY}`,
    '--caps=user-policy=*',
  ]);
  const put = await iamCall(rgwPort, {
    Action: 'PutUserPolicy',
    UserName: RGW_USER,
    PolicyName: 'no-acl-headers',
    PolicyDocument: JSON.stringify(NO_ACL_HEADERS_POLICY),
  });
  if (put.status !== 200) throw new StepError(`PutUserPolicy answered ${put.status}: ${put.body.slice(0, 300)}`);
  log(`upload subuser ${RGW_USER}:upload (write only) and the no-ACL-headers user policy set (${since(t)})`);
  return rgwPort;
}

/** One call of RGW's IAM API (form-encoded POST, SigV4 service "iam") as the policy admin. */
async function iamCall(port: number, params: Record<string, string>): Promise<{ status: number; body: string }> {
  const body = new URLSearchParams(params).toString();
  const host = `127.0.0.1:${port}`;
  const longDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
  const shortDate = longDate.slice(0, 8);
  const scope = `${shortDate}/${RGW_REGION}/iam/aws4_request`;
  const payloadHash = createHash('sha256').update(body).digest('hex');
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    host,
    'x-amz-content-sha256': payloadHash,
    'x-amz-date': longDate,
  };
  const signed = Object.keys(headers).sort();
  const canonical = ['POST', '/', '', ...signed.map((h) => `${h}:${headers[h]}`), '', signed.join(';'), payloadHash].join('\n');
  const toSign = ['AWS4-HMAC-SHA256', longDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  let key: Buffer = createHmac('sha256', `AWS4${RGW_POLICY_ADMIN_SECRET_KEY}`).update(shortDate).digest();
  for (const part of [RGW_REGION, 'iam', 'aws4_request']) key = createHmac('sha256', key).update(part).digest();
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${RGW_POLICY_ADMIN_ACCESS_KEY}/${scope}, SignedHeaders=${signed.join(';')}, Signature=${signature}`;
  delete headers.host;
  const res = await fetch(`http://${host}/`, { method: 'POST', headers, body, signal: AbortSignal.timeout(STEP_TIMEOUT_MS) });
  return { status: res.status, body: await res.text() };
}

function runCommand(port: number): Promise<number> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      AWS_S3_ENDPOINT: `http://127.0.0.1:${port}`,
      AWS_ACCESS_KEY_ID: RGW_ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: RGW_SECRET_KEY,
      AWS_UPLOAD_ACCESS_KEY_ID: RGW_UPLOAD_ACCESS_KEY,
      AWS_UPLOAD_SECRET_ACCESS_KEY: RGW_UPLOAD_SECRET_KEY,
      AWS_REGION: RGW_REGION,
      AWS_S3_FORCE_PATH_STYLE: 'true',
      TEST_STORE: 'rgw',
    };
    delete env.AWS_PROFILE;
    delete env.AWS_SESSION_TOKEN;
    delete env.REGION;
    child = spawn(command[0], command.slice(1), { stdio: 'inherit', env });
    child.once('error', (e) => {
      log(`could not start ${command[0]}: ${e.message}`);
      resolve(127);
    });
    child.once('exit', (code, signal) => {
      child = undefined;
      if (signal) resolve(128 + (signalNumber[signal] ?? 1));
      else resolve(code ?? 1);
    });
  });
}

const signalNumber: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

let signalled: NodeJS.Signals | undefined;
function onSignal(sig: NodeJS.Signals): void {
  if (signalled) {
    log(`${sig} again; still stopping the daemons`);
    return;
  }
  signalled = sig;
  aborted = true;
  log(`${sig}: stopping`);
  // The command shares our process group: a terminal's Ctrl-C already reached it. SIGTERM (or a
  // SIGINT sent to our pid alone) is passed on. If it does not exit in 10 s, it is killed.
  if (child?.pid) {
    try {
      child.kill(sig);
    } catch {
      /* gone */
    }
    const c = child;
    setTimeout(() => {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, 10_000).unref();
  } else {
    // still bootstrapping: stop now
    void stopAll().then(() => process.exit(128 + (signalNumber[sig] ?? 1)));
  }
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
process.on('SIGHUP', onSignal);

async function main(): Promise<number> {
  let port: number;
  try {
    port = await bootstrap();
  } catch (e) {
    if (!aborted) {
      log(`start failed: ${(e as Error).message}`);
      logTails();
    }
    await stopAll();
    return aborted ? 128 + (signalNumber[signalled!] ?? 1) : 1;
  }
  const rss = daemons.reduce((sum, d) => sum + rssKb(d.pid), 0);
  log(`cluster ready in ${since(t0)} (${dir}, daemons ${Math.round(rss / 1024)} MB RSS)`);
  if (aborted) {
    await stopAll();
    return 128 + (signalNumber[signalled!] ?? 1);
  }
  const code = await runCommand(port);
  const peak = daemons.reduce((sum, d) => sum + rssKb(d.pid, 'VmHWM'), 0);
  if (peak > 0) log(`command exited ${code}; daemons peaked at ${Math.round(peak / 1024)} MB RSS`);
  await stopAll();
  return code;
}

main().then(
  (code) => process.exit(signalled && code === 0 ? 128 + (signalNumber[signalled] ?? 1) : code),
  async (e) => {
    log(`unexpected error: ${(e as Error).stack ?? e}`);
    await stopAll();
    process.exit(1);
  },
);
