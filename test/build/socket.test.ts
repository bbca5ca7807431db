/**
 * socket.yml against @syncano/schema, its endpoints against src/, and the built bundles under
 * @syncano/test's run() — the loader `s deploy`'s platform and the socket's own tests used.
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Ajv from 'ajv';
import ajvKeywords from 'ajv-keywords';
import { parse } from 'yaml';
import { socketSchema } from '@syncano/schema';
import { useStore, type TestStore } from '../support/store';

const root = join(__dirname, '..', '..');
const socket = parse(readFileSync(join(root, 'socket.yml'), 'utf8'));
const dist = join(root, '.dist', 'src');
const endpointNames = Object.keys(socket.endpoints).sort();
const run$ = promisify(execFile);

/** A copy of .dist/src (and socket.yml) in a folder outside the project: no node_modules to fall back on. */
function distAlone(): string {
  const dir = mkdtempSync(join(tmpdir(), 'aws-storage-dist-'));
  cpSync(dist, join(dir, '.dist', 'src'), { recursive: true });
  cpSync(join(root, 'socket.yml'), join(dir, 'socket.yml'));
  return dir;
}

/** Runs `code` in a fresh node process in `cwd`; resolves with its stdout parsed as JSON. */
async function inFreshNode(code: string, cwd: string, env: Record<string, string> = {}): Promise<any> {
  const { stdout } = await run$(process.execPath, ['-e', code], { cwd, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

describe('socket.yml', () => {
  test('validates against @syncano/schema', () => {
    const ajv = new Ajv({ allErrors: true, $data: true });
    ajvKeywords(ajv, ['prohibited', 'switch']);
    const valid = ajv.validate(socketSchema, socket);
    expect(ajv.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  test('lists exactly the endpoints in src/, each with its file, parameters and responses', () => {
    const sources = readdirSync(join(root, 'src')).filter((f) => f.endsWith('.ts')).map((f) => f.replace(/\.ts$/, '')).sort();
    expect(Object.keys(socket.endpoints).sort()).toEqual(sources);
    for (const [name, def] of Object.entries<any>(socket.endpoints)) {
      expect(def.file).toBe(`src/${name}.ts`);
      expect(typeof def.description).toBe('string');
      expect(Object.keys(def.parameters).length).toBeGreaterThan(0);
      for (const p of Object.values<any>(def.parameters)) expect(p).toEqual({ type: expect.any(String), description: expect.any(String), example: expect.anything() });
      expect(def.response.examples.map((e: any) => e.exit_code)).toContain(200);
    }
  });

  test('private: true exactly on make-links and the admin endpoints; config lists every SPEC option', () => {
    const privateOnes = Object.entries<any>(socket.endpoints).filter(([, d]) => d.private === true).map(([n]) => n).sort();
    expect(privateOnes).toEqual([
      'admin-multipart-abort', 'admin-multipart-complete', 'admin-multipart-links', 'admin-multipart-start', 'admin-multipart-uploads',
      'admin-upload', 'admin-upload-link', 'make-links',
    ]);
    for (const option of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION', 'REGION', 'AWS_BUCKET', 'AWS_S3_ENDPOINT', 'AWS_S3_FORCE_PATH_STYLE', 'EXPIRE', 'MAX_FILE_SIZE', 'ALLOWED_CONTENT_TYPES', 'MAX_UPLOAD_SIZE', 'MULTIPART_EXPIRE_DAYS']) {
      expect(socket.config[option]).toEqual({ description: expect.any(String), required: false });
    }
  });
});

describe('the build under @syncano/test run()', () => {
  let store: TestStore;
  let run: (endpoint: string, ctx: object) => Promise<{ code: number; data: any; mimetype: string }>;

  beforeAll(async () => {
    expect(existsSync(join(root, '.dist', 'src', 'user-upload.js'))).toBe(true); // `npm test` builds first
    store = await useStore();
    process.chdir(root); // run() reads ./socket.yml and .dist/src from the working directory
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    run = require('@syncano/test').run;
  });
  afterAll(() => store.close());

  test('a success: user-upload then user-read through the built bundles', async () => {
    const meta = { user: { id: 5, username: 'five', user_key: 'k' }, instance: 'test' };
    const up = await run('user-upload', { args: { name: 'built.txt', file: Buffer.from('built!').toString('base64') }, meta, config: store.config });
    expect(up.code).toBe(200);
    expect(up.data).toMatchObject({ key: '5/built.txt', size: 6 });
    const read = await run('user-read', { args: { name: 'built.txt' }, meta, config: store.config });
    expect(read.code).toBe(200);
    expect(await (await fetch(read.data.link)).text()).toBe('built!');
  });

  test('a multipart upload through the built bundles: start, the part link, complete', async () => {
    const meta = { user: { id: 5, username: 'five', user_key: 'k' }, instance: 'test' };
    const bytes = Buffer.from('one small part');
    const start = await run('user-multipart-start', { args: { name: 'parts.txt', size: bytes.length, contentType: 'text/plain' }, meta, config: store.config });
    expect(start.code).toBe(200);
    expect(start.data).toMatchObject({ key: '5/parts.txt', partCount: 1, parts: [{ partNumber: 1, size: bytes.length }] });
    expect((await fetch(start.data.parts[0].link, { method: 'PUT', body: bytes })).status).toBe(200);
    const done = await run('user-multipart-complete', { args: { name: 'parts.txt', uploadId: start.data.uploadId }, meta, config: store.config });
    expect(done.code).toBe(200);
    expect(await (await fetch(done.data.link)).text()).toBe('one small part');
    await run('user-delete', { args: { name: 'parts.txt' }, meta, config: store.config });
  });

  test('refusals: no user is 401, a user on an admin endpoint is 403', async () => {
    const anonymous = await run('user-read', { args: { name: 'built.txt' }, meta: {}, config: store.config });
    expect(anonymous.code).toBe(401);
    expect(anonymous.data.code).toBe('unauthorized');
    const user = await run('admin-upload', { args: { name: 'x', file: 'eA==' }, meta: { user: { id: 5 } }, config: store.config });
    expect(user.code).toBe(403);
    expect(await store.keys()).toEqual(['5/built.txt']);
  });
});

describe('the build: one shared runtime, thin endpoints', () => {
  const files = () => readdirSync(dist).sort();

  test('.dist/src holds each endpoint, the runtime, the stable _runtime.js, and a source map for each bundle', () => {
    const runtimes = files().filter((f) => /^_runtime-[A-Z0-9]+\.js$/.test(f));
    expect(runtimes).toHaveLength(1);
    const expected = [...endpointNames.map((n) => `${n}.js`), runtimes[0], '_runtime.js'];
    expect(files().filter((f) => f.endsWith('.js')).sort()).toEqual(expected.sort());
    for (const f of expected.filter((f) => f !== '_runtime.js')) {
      expect(readFileSync(join(dist, f), 'utf8')).toContain(`//# sourceMappingURL=${f}.map`);
      expect(JSON.parse(readFileSync(join(dist, `${f}.map`), 'utf8')).sources.length).toBeGreaterThan(0);
    }
    expect(readFileSync(join(dist, '_runtime.js'), 'utf8')).toBe(`module.exports = require("./${runtimes[0]}");\n`);
    for (const n of endpointNames) {
      const code = readFileSync(join(dist, `${n}.js`), 'utf8');
      // thin: the endpoint's own code; the SDK, zod and src/lib come from the runtime it names
      expect(statSync(join(dist, `${n}.js`)).size).toBeLessThan(20_000);
      expect(code).toContain(`require("./${runtimes[0]}")`);
      expect(code).not.toMatch(/S3Client|ZodError/);
    }
    expect(statSync(join(dist, runtimes[0])).size).toBeGreaterThan(1_000_000);
  });

  test('every endpoint loads alone in a fresh process with only .dist/src, and answers a call without a key', async () => {
    const dir = distAlone();
    try {
      const code = `
        const name = process.env.ENDPOINT;
        const handler = require('./.dist/src/' + name + '.js').default;
        if (typeof handler !== 'function') throw new Error(name + ': no default function');
        class HttpResponse { constructor(status, content, mimetype) { Object.assign(this, { status, content, mimetype }); } }
        handler({ args: {}, meta: {}, config: {}, HttpResponse, setResponse: (r) => {
          console.log(JSON.stringify({ status: r.status, body: JSON.parse(r.content), modules: Object.keys(require.cache).map((f) => require('path').basename(f)) }));
        } });`;
      const answers: Record<string, any> = {};
      for (let i = 0; i < endpointNames.length; i += 2) {
        await Promise.all(endpointNames.slice(i, i + 2).map(async (n) => (answers[n] = await inFreshNode(code, dir, { ENDPOINT: n }))));
      }
      for (const n of endpointNames) {
        const admin = socket.endpoints[n].private === true;
        expect({ n, status: answers[n].status, code: answers[n].body.code }).toEqual({ n, status: admin ? 403 : 401, code: admin ? 'forbidden' : 'unauthorized' });
        // nothing but the endpoint and its runtime was loaded (no package from a node_modules)
        expect(answers[n].modules.sort()).toEqual([`${n}.js`, expect.stringMatching(/^_runtime-[A-Z0-9]+\.js$/)].sort());
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("@syncano/test's run() in a fresh process over a copy of .dist/src: an upload and its read link", async () => {
    const store = await useStore();
    const dir = distAlone();
    try {
      const code = `
        const { run } = require(${JSON.stringify(join(root, 'node_modules', '@syncano', 'test'))});
        const config = JSON.parse(process.env.STORE_CONFIG);
        const meta = { user: { id: 9, username: 'nine', user_key: 'k' }, instance: 'test' };
        (async () => {
          const up = await run('user-upload', { args: { name: 'alone.txt', file: Buffer.from('alone').toString('base64') }, meta, config });
          const read = await run('user-read', { args: { name: 'alone.txt' }, meta, config });
          const text = await (await fetch(read.data.link)).text();
          console.log(JSON.stringify({ up: up.code, key: up.data.key, read: read.code, text }));
        })().catch((e) => { console.error(e); process.exit(1); });`;
      const out = await inFreshNode(code, dir, { STORE_CONFIG: JSON.stringify(store.config), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
      expect(out).toEqual({ up: 200, key: '9/alone.txt', read: 200, text: 'alone' });
      expect(await store.keys()).toEqual(['9/alone.txt']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await store.close();
    }
  });

  test('a build running beside a process that loads the endpoints again and again never leaves it a broken set', async () => {
    // The loader clears require's cache each round, so every round reads the files as they are then.
    const loader = spawn(process.execPath, ['-e', `
      const fs = require('fs'); const path = require('path');
      const dir = ${JSON.stringify(dist)};
      const names = ${JSON.stringify(endpointNames)};
      let rounds = 0, failures = [];
      const deadline = Date.now() + 20000;
      process.stdin.on('data', () => { console.log(JSON.stringify({ rounds, failures })); process.exit(0); });
      (function round() {
        for (const k of Object.keys(require.cache)) delete require.cache[k];
        for (const n of names) {
          try { if (typeof require(path.join(dir, n + '.js')).default !== 'function') failures.push(n + ': no handler'); }
          catch (e) { failures.push(n + ': ' + e.message); }
        }
        rounds++;
        if (Date.now() < deadline) setImmediate(round);
      })();`], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    loader.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    const exited = new Promise((r) => loader.once('exit', r));
    try {
      await run$(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, timeout: 60_000 });
    } finally {
      loader.stdin.write('stop\n');
      await exited;
    }
    const result = JSON.parse(out.trim());
    expect(result.failures).toEqual([]);
    expect(result.rounds).toBeGreaterThan(0);
  });
});
