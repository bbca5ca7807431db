/**
 * The embedded store on its own thread (scripts/host/main.ts): the store's request parsing, MD5 and
 * file writes run on a second event loop, so a base64 upload through the host is pipelined with the
 * store as a direct PutObject from another process is, instead of taking turns on the host's loop.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { startEmbeddedStore, type EmbeddedStore, type EmbeddedStoreOptions } from './embedded-store';

type ToWorker = { type: 'close' };
type FromWorker =
  | { type: 'ready'; store: Omit<EmbeddedStore, 'close'> }
  | { type: 'failed'; message: string; code?: string }
  | { type: 'closed' };

/** Starts the embedded store in a worker thread; the same answer as startEmbeddedStore(). */
export function startEmbeddedStoreThread(opts: EmbeddedStoreOptions): Promise<EmbeddedStore> {
  return new Promise((resolve, reject) => {
    // This file is TypeScript, run by tsx: the thread registers tsx's require hook before loading it.
    const code = `require('tsx/cjs'); require(${JSON.stringify(__filename)});`;
    const worker = new Worker(code, { eval: true, workerData: { storeThread: true, opts } });
    let closed: Promise<void> | undefined;
    const close = (): Promise<void> => {
      closed ??= new Promise<void>((done) => {
        const onMessage = (m: FromWorker) => {
          if (m.type === 'closed') void worker.terminate().then(() => done());
        };
        worker.on('message', onMessage);
        worker.once('exit', () => done());
        worker.postMessage({ type: 'close' } satisfies ToWorker);
      });
      return closed;
    };
    worker.once('message', (m: FromWorker) => {
      if (m.type === 'ready') resolve({ ...m.store, close });
      else if (m.type === 'failed') {
        void worker.terminate();
        reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
      }
    });
    worker.on('error', (err) => {
      process.stderr.write(`aws-storage embedded store thread failed: ${err?.stack ?? String(err)}\n`);
      reject(err);
    });
    worker.once('exit', (code) => reject(new Error(`embedded store thread exited (${code}) before it started`)));
  });
}

const data = workerData as { storeThread?: boolean; opts: EmbeddedStoreOptions } | null;
if (!isMainThread && parentPort && data?.storeThread) {
  const port = parentPort;
  startEmbeddedStore(data.opts).then(
    (store) => {
      const { close, ...info } = store;
      port.postMessage({ type: 'ready', store: info } satisfies FromWorker);
      port.on('message', (m: ToWorker) => {
        if (m.type === 'close') void close().then(() => port.postMessage({ type: 'closed' } satisfies FromWorker));
      });
    },
    (err: Error & { code?: string }) => port.postMessage({ type: 'failed', message: err.message, code: err.code } satisfies FromWorker),
  );
}
