// `npm run build`: one CommonJS bundle per endpoint in .dist/src/<endpoint>.js, the layout `s deploy`
// ships and @syncano/test's run() loads. Each bundle carries its dependencies, so it deploys alone.
import { build } from 'esbuild';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const endpoints = readdirSync(join(root, 'src')).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
rmSync(join(root, '.dist'), { recursive: true, force: true });
const started = Date.now();
await build({
  entryPoints: endpoints.map((f) => join(root, 'src', f)),
  outdir: join(root, '.dist', 'src'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
});
console.log(`built ${endpoints.length} endpoints into .dist/src in ${Date.now() - started} ms`);
