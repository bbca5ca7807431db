// The built client package as a user installs it: its own ESM package with types and no runtime
// dependencies, a browser entry that imports nothing of Node, and a Node entry found by "exports".
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../support/host';
import { packageHome } from './support';

const CLIENT = path.join(PROJECT_ROOT, 'client');
const pkg = JSON.parse(fs.readFileSync(path.join(CLIENT, 'package.json'), 'utf8'));

test('client/package.json: an ES module package with types and no runtime dependencies', () => {
  expect(pkg.type).toBe('module');
  expect(pkg.dependencies ?? {}).toEqual({});
  expect(pkg.peerDependencies ?? {}).toEqual({});
  expect(pkg.exports['.'].node).toEqual({ types: './dist/node.d.ts', default: './dist/node.js' });
  expect(pkg.exports['.'].default).toEqual({ types: './dist/index.d.ts', default: './dist/index.js' });
  for (const f of ['index.js', 'index.d.ts', 'node.js', 'node.d.ts']) expect(fs.existsSync(path.join(CLIENT, 'dist', f))).toBe(true);
});

test('the browser entry reaches no node: module (or any package) through its imports', () => {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      const spec = m[1] ?? m[2];
      expect(spec).toMatch(/^\.\.?\//); // relative only: no node:, no package
      visit(path.resolve(path.dirname(file), spec));
    }
  };
  visit(path.join(CLIENT, 'dist', 'index.js'));
  expect([...seen].map((f) => path.basename(f)).sort()).toEqual(['client.js', 'errors.js', 'http.js', 'index.js', 'source.js', 'state.js', 'upload.js']);
});

function runModule(home: string, code: string): any {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: home, encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!);
}

test('Node resolves the package by its name to the node entry; the browser entry alone refuses a file path', () => {
  const home = packageHome();
  try {
    const node = runModule(home, `import * as c from '@aws-storage/client'; console.log(JSON.stringify(Object.keys(c)));`);
    expect(node).toEqual(expect.arrayContaining(['createClient', 'StorageApiError', 'fileStore', 'memoryStore', 'localStorageStore']));
    const browser = runModule(
      home,
      `const b = await import(${JSON.stringify(path.join(CLIENT, 'dist', 'index.js'))});
       const client = b.createClient({ url: 'http://127.0.0.1:1', userKey: 'k' }, { storage: false });
       const err = await client.upload('a', { path: '/etc/hostname' }).promise.catch((e) => e);
       console.log(JSON.stringify({ keys: Object.keys(b), pathError: String(err) }));`,
    );
    expect(browser.keys).toEqual(expect.arrayContaining(['createClient', 'StorageApiError', 'memoryStore', 'localStorageStore']));
    expect(browser.keys).not.toContain('fileStore');
    expect(browser.pathError).toMatch(/TypeError: upload from a file path needs Node/);
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
});
