// `npm run build`: the layout `s deploy` ships (.dist/src/**) and @syncano/test's run() loads.
//
//   .dist/src/_runtime-<hash>.js  one CommonJS bundle of src/lib/* and the packages the endpoints import
//                                 (AWS SDK, zod, @syncano/core), keyed by module: {'lib/args': …, 'zod': …}
//   .dist/src/<endpoint>.js       a thin CommonJS bundle per endpoint (`default` = the handler); its
//                                 imports of ./lib/* and of packages read the runtime's modules
//   .dist/src/_runtime.js         `module.exports = require('./_runtime-<hash>.js')`, for the host
//
// So a process that loads all seventeen endpoints holds one copy of the SDK, not seventeen. The
// runtime's name carries its content hash: an endpoint requires the runtime it was built with, so a
// host or test loading .dist/src while a build runs never pairs an endpoint with another build's runtime.
//
//   .dist/host/main.js, store-worker.js   the standalone host (`npm start` runs `node .dist/host/main.js`),
//                                 its packages left in node_modules: no TypeScript compiler at run time
//                                 (tsx's loader thread and compile cost the host ~25 MB and start time)
import { build } from 'esbuild';
import { builtinModules } from 'node:module';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'src');
const out = join(root, '.dist', 'src');
const hostOut = join(root, '.dist', 'host');
const endpoints = readdirSync(src).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
const libModules = readdirSync(join(src, 'lib')).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
const started = Date.now();

if (endpoints.some((f) => f.startsWith('_'))) throw new Error('src/_*.ts: names starting with _ are the build\'s own (.dist/src/_runtime*.js)');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  legalComments: 'none',
  // Whitespace and syntax only; names stay, so stack traces still read. The .map files give the
  // sources back (`node --enable-source-maps`).
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
};

const isPackage = (spec) => !spec.startsWith('.') && !spec.startsWith('/') && !spec.startsWith('node:') && !builtinModules.includes(spec);
/** The runtime's key of an import from an endpoint: 'lib/<name>' for ./lib/<name>, the specifier for a package. */
const libKey = (spec) => /^\.\/lib\/([A-Za-z0-9_.-]+?)(\.ts)?$/.exec(spec)?.[1];

/** The packages the endpoints import themselves (a build that bundles nothing, only to read the imports). */
async function packagesOfEndpoints() {
  const found = new Set();
  await build({
    ...common,
    entryPoints: endpoints.map((f) => join(src, f)),
    outdir: join(root, '.dist', 'scan'),
    write: false,
    sourcemap: false,
    plugins: [{
      name: 'scan',
      setup(b) {
        b.onResolve({ filter: /.*/ }, (a) => {
          if (a.kind === 'entry-point') return undefined;
          if (isPackage(a.path)) found.add(a.path);
          return { path: a.path, external: true };
        });
      },
    }],
  });
  return [...found].sort();
}

/** Endpoint imports of the runtime's modules become `require('./<runtime>')[key]`. */
function useRuntime(runtimeFile, packages) {
  return {
    name: 'use-runtime',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (a) => {
        if (a.namespace === 'runtime') return { path: a.path, external: true };
        if (a.kind === 'entry-point' || relative(src, a.resolveDir) !== '') return undefined;
        const key = libKey(a.path) ? `lib/${libKey(a.path)}` : packages.includes(a.path) ? a.path : undefined;
        return key ? { path: key, namespace: 'runtime' } : undefined;
      });
      b.onLoad({ filter: /.*/, namespace: 'runtime' }, (a) => ({
        contents: `module.exports = require(${JSON.stringify(`./${runtimeFile}`)})[${JSON.stringify(a.path)}];`,
        loader: 'js',
      }));
    },
  };
}

/** The host: main.ts and the store's thread (its own file: the thread loads it by name). */
async function buildHost(dir) {
  const worker = join(root, 'scripts', 's3', 'store-worker.ts');
  await build({
    ...common,
    entryPoints: { main: join(root, 'scripts', 'host', 'main.ts'), 'store-worker': worker },
    outdir: dir,
    packages: 'external',
    minifyWhitespace: false,
    minifySyntax: false,
    // import() of our own modules becomes require(), so they are bundled, not looked up as .ts at run time
    supported: { 'dynamic-import': false },
    plugins: [{
      name: 'store-worker-apart',
      setup(b) {
        b.onResolve({ filter: /\/store-worker$/ }, (a) => (a.kind === 'entry-point' ? undefined : { path: './store-worker.js', external: true }));
      },
    }],
  });
}

/** Renames each file into `to` (atomic per file), in the given order; then removes what `to` has beyond them. */
function moveInto(from, to, files) {
  mkdirSync(to, { recursive: true });
  for (const file of files) renameSync(join(from, file), join(to, file));
  for (const stale of readdirSync(to)) if (!files.includes(stale)) rmSync(join(to, stale), { force: true });
}

// Build beside the output, then move each file into place (rename is atomic): the runtime first, the
// endpoints next, the stable _runtime.js last; files of an older build go only after that.
mkdirSync(join(root, '.dist'), { recursive: true });
const staging = mkdtempSync(join(root, '.dist', '.staging-'));
try {
  const packages = await packagesOfEndpoints();
  const modules = [
    ...libModules.map((f) => [`lib/${f.replace(/\.ts$/, '')}`, join(src, 'lib', f)]),
    ...packages.map((p) => [p, p]),
  ];
  const entry = `module.exports = {\n${modules.map(([key, from]) => `  ${JSON.stringify(key)}: require(${JSON.stringify(from)}),`).join('\n')}\n};\n`;
  const runtime = await build({
    ...common,
    stdin: { contents: entry, resolveDir: src, sourcefile: '_runtime.js', loader: 'js' },
    outdir: staging,
    entryNames: '_runtime-[hash]',
    metafile: true,
  });
  const runtimeFile = basename(Object.keys(runtime.metafile.outputs).find((f) => f.endsWith('.js')));
  await build({
    ...common,
    entryPoints: endpoints.map((f) => join(src, f)),
    outdir: staging,
    plugins: [useRuntime(runtimeFile, packages)],
  });
  writeFileSync(join(staging, '_runtime.js'), `module.exports = require(${JSON.stringify(`./${runtimeFile}`)});\n`);
  await buildHost(join(staging, 'host'));

  const order = (f) => (f === '_runtime.js' ? 2 : f.startsWith('_runtime-') ? 0 : 1);
  const built = readdirSync(staging).filter((f) => f !== 'host').sort((a, b) => order(a) - order(b));
  moveInto(staging, out, built);
  moveInto(join(staging, 'host'), hostOut, readdirSync(join(staging, 'host')));
  console.log(`built ${endpoints.length} endpoints over ${runtimeFile} (src/lib, ${packages.join(', ')}) into .dist/src in ${Date.now() - started} ms`);
} finally {
  rmSync(staging, { recursive: true, force: true });
}
