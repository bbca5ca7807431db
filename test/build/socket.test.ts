/**
 * socket.yml against @syncano/schema, its endpoints against src/, and the built bundles under
 * @syncano/test's run() — the loader `s deploy`'s platform and the socket's own tests used.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import ajvKeywords from 'ajv-keywords';
import { parse } from 'yaml';
import { socketSchema } from '@syncano/schema';
import { useStore, type TestStore } from '../support/store';

const root = join(__dirname, '..', '..');
const socket = parse(readFileSync(join(root, 'socket.yml'), 'utf8'));

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
