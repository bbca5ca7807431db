/**
 * The embedded store on its own thread (scripts/host/main.ts): the store's request parsing, MD5 and
 * file writes run on a second event loop, so a base64 upload through the host is pipelined with the
 * store as a direct PutObject from another process is, instead of taking turns on the host's loop.
 *
 * Should the thread die anyway, it is started again on the same port and data directory (with a
 * growing pause between tries); meanwhile the store's port does not answer, so /healthz says 503.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { startEmbeddedStore, type EmbeddedStore, type EmbeddedStoreOptions } from './embedded-store';

type ToWorker = { type: 'close' };
type FromWorker =
  | { type: 'ready'; store: Omit<EmbeddedStore, 'close'> }
  | { type: 'failed'; message: string; code?: string }
  | { type: 'closed' };

export interface StoreThread extends EmbeddedStore {
  /** how many times the thread was started again after it died */
  restarts(): number;
  /** the running thread (tests end it to see it come back) */
  thread(): Worker | undefined;
}

function spawnStore(opts: EmbeddedStoreOptions): Promise<{ worker: Worker; info: Omit<EmbeddedStore, 'close'> }> {
  return new Promise((resolve, reject) => {
    // The thread loads this same file: built (.dist/host/store-worker.js, as the host runs) or as
    // TypeScript under tsx (tests), when it registers tsx's require hook first.
    const code = `${__filename.endsWith('.ts') ? "require('tsx/cjs'); " : ''}require(${JSON.stringify(__filename)});`;
    const worker = new Worker(code, { eval: true, workerData: { storeThread: true, opts } });
    const onExit = (code: number) => reject(new Error(`embedded store thread exited (${code}) before it started`));
    worker.once('exit', onExit);
    worker.once('message', (m: FromWorker) => {
      worker.off('exit', onExit);
      if (m.type === 'ready') resolve({ worker, info: m.store });
      else if (m.type === 'failed') {
        void worker.terminate();
        reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
      }
    });
    worker.on('error', (err) => {
      process.stderr.write(`aws-storage store thread failed: ${err?.message ?? String(err)}\n`);
    });
  });
}

/** Starts the embedded store in a worker thread, and keeps it running; the same answer as startEmbeddedStore(). */
export async function startEmbeddedStoreThread(opts: EmbeddedStoreOptions): Promise<StoreThread> {
  const first = await spawnStore(opts);
  const info = first.info;
  // restarts keep the address and the key pair the socket was given
  const again: EmbeddedStoreOptions = { ...opts, port: info.port, accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey };
  let worker: Worker | undefined = first.worker;
  let closing = false;
  let restarts = 0;

  const watch = (w: Worker) => {
    w.once('exit', (code) => {
      if (closing) return;
      worker = undefined;
      process.stderr.write(`aws-storage store thread stopped (exit ${code}); starting it again\n`);
      void restart(200);
    });
  };
  const restart = async (pauseMs: number): Promise<void> => {
    await new Promise((r) => setTimeout(r, pauseMs));
    if (closing) return;
    try {
      const next = await spawnStore(again);
      if (closing) {
        void next.worker.terminate();
        return;
      }
      restarts++;
      worker = next.worker;
      watch(next.worker);
      process.stderr.write('aws-storage store thread running again\n');
    } catch (err) {
      process.stderr.write(`aws-storage store thread did not start: ${(err as Error).message}\n`);
      void restart(Math.min(pauseMs * 2, 5_000));
    }
  };
  watch(first.worker);

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing = true;
    closed ??= new Promise<void>((done) => {
      const w = worker;
      if (!w) return done();
      w.on('message', (m: FromWorker) => {
        if (m.type === 'closed') void w.terminate().then(() => done());
      });
      w.once('exit', () => done());
      w.postMessage({ type: 'close' } satisfies ToWorker);
    });
    return closed;
  };
  return { ...info, close, restarts: () => restarts, thread: () => worker };
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
