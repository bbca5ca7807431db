// Loads the socket: socket.yml and the built handlers (.dist/src/<endpoint>.js), once at start. The
// handlers share one runtime (.dist/src/_runtime.js, scripts/build.mjs): require() loads it once.
import fs from 'node:fs';
import path from 'node:path';
import { EndpointMeta, readSocketYml, SocketDefinition } from './env';

export type Handler = (ctx: unknown) => unknown;

export interface LoadedEndpoint {
  name: string;
  metadata: EndpointMeta;
  handler: Handler;
}

export interface LoadedSocket {
  definition: SocketDefinition;
  endpoints: Map<string, LoadedEndpoint>;
}

export function loadSocket(socketDir: string): LoadedSocket {
  const definition = readSocketYml(socketDir);
  const endpoints = new Map<string, LoadedEndpoint>();
  const missing: string[] = [];
  for (const [name, metadata] of Object.entries(definition.endpoints)) {
    const file = path.join(socketDir, '.dist', 'src', `${name}.js`);
    if (!fs.existsSync(file)) {
      missing.push(path.relative(socketDir, file));
      continue;
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(file);
    const handler = typeof mod?.default === 'function' ? mod.default : typeof mod === 'function' ? mod : undefined;
    if (!handler) throw new Error(`${file} does not export a handler function`);
    endpoints.set(name, { name, metadata: metadata ?? {}, handler });
  }
  if (missing.length) {
    throw new Error(`built handlers missing (${missing.join(', ')}): run \`npm run build\` first`);
  }
  return { definition, endpoints };
}

/**
 * The built socket's shared runtime (src/lib and packages, keyed 'lib/<module>'), so the host uses the
 * copy of the SDK the handlers already loaded; undefined for a socket built without one.
 */
export function loadRuntime(socketDir: string): Record<string, Record<string, unknown>> | undefined {
  const file = path.join(socketDir, '.dist', 'src', '_runtime.js');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return fs.existsSync(file) ? require(file) : undefined;
}
