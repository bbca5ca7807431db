// A throwaway socket (socket.yml + built handlers) for testing the host without the real endpoints.
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT, tempDir } from '../support/host';

const CORE = JSON.stringify(path.join(PROJECT_ROOT, 'node_modules', '@syncano', 'core'));

const HANDLERS: Record<string, string> = {
  // answers through @syncano/core, as the real handlers do
  echo: `const Syncano = require(${CORE});
module.exports.default = async (ctx) => {
  const { response } = new Syncano(ctx);
  response.json({ args: ctx.args, meta: ctx.meta, config: ctx.config });
};`,
  secret: `module.exports.default = async (ctx) => {
  ctx.setResponse(new ctx.HttpResponse(200, JSON.stringify({ ok: true, admin: ctx.meta.admin }), 'application/json'));
};`,
  throws: `module.exports.default = async () => { throw new Error('boom'); };`,
  silent: `module.exports.default = async () => {};`,
  hangs: `module.exports.default = () => new Promise(() => {});`,
  late: `module.exports.default = (ctx) => {
  setTimeout(() => ctx.setResponse(new ctx.HttpResponse(200, '{"late":true}', 'application/json')), 100);
};`,
  slowok: `module.exports.default = async (ctx) => {
  await new Promise((r) => setTimeout(r, Number(ctx.args.ms || 1000)));
  ctx.setResponse(new ctx.HttpResponse(200, '{"slow":true}', 'application/json'));
};`,
  redirect: `module.exports.default = async (ctx) => {
  ctx.setResponse(new ctx.HttpResponse(302, '{}', 'application/json', { Location: 'http://127.0.0.1:1/x' }));
};`,
  // its own headers, some named as the host's base headers in another case, some the host's to set
  ownheaders: `module.exports.default = async (ctx) => {
  ctx.setResponse(new ctx.HttpResponse(200, '{"own":true}', 'application/json', { 'cache-control': 'private, max-age=60', 'X-Own': 'yes', 'content-length': '999', 'Content-Type': 'text/html', Connection: 'keep-alive' }));
};`,
  // takes a `file` (declared in socket.yml): says what the host handed over as it
  filekind: `module.exports.default = async (ctx) => {
  const f = ctx.args.file;
  const decoded = typeof f === 'object' && f !== null && f[Symbol.for('aws-storage.decoded-file')] === true;
  const kind = typeof f === 'string' ? 'string' : decoded ? 'decoded' : typeof f;
  const bytes = typeof f === 'string' ? Buffer.from(f, 'base64') : decoded ? f.bytes : Buffer.alloc(0);
  ctx.setResponse(new ctx.HttpResponse(200, JSON.stringify({ kind, size: bytes.length, sha256: require('node:crypto').createHash('sha256').update(bytes).digest('hex'), dataUrlType: decoded ? f.dataUrlType : undefined, name: ctx.args.name }), 'application/json'));
};`,
};

export function makeFixtureSocket(): string {
  const dir = tempDir('aws-storage-fixture-');
  const endpoints = Object.keys(HANDLERS)
    .map((n) => `  ${n}:\n    file: src/${n}.ts\n    description: ${n}\n${n === 'secret' ? '    private: true\n' : ''}${n === 'filekind' ? '    parameters:\n      file:\n        type: string\n' : ''}`)
    .join('');
  fs.writeFileSync(
    path.join(dir, 'socket.yml'),
    `name: aws-storage\nconfig:\n  MAX_FILE_SIZE:\n    description: max\n  AWS_BUCKET:\n    description: bucket\nendpoints:\n${endpoints}`,
  );
  fs.mkdirSync(path.join(dir, '.dist', 'src'), { recursive: true });
  for (const [n, code] of Object.entries(HANDLERS)) fs.writeFileSync(path.join(dir, '.dist', 'src', `${n}.js`), code);
  return dir;
}
