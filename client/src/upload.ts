import { StorageApiError, canceledError, isExpiredLink, s3ErrorOf } from './errors.js';
import { backoffMs, retryableStatus, sleep, type Transport } from './http.js';
import { openSource, platform, type Source, type UploadData } from './source.js';
import { defaultResumeKey, ownerTag, type ResumeStore, type SavedUpload } from './state.js';

export interface UploadOptions {
  /** the file's type; default the Blob's type (else the socket's default) */
  contentType?: string;
  onProgress?: (progress: UploadProgress) => void;
  /** aborting it cancels the upload, as cancel() does */
  signal?: AbortSignal;
  /** bytes per part (the socket's rules: 5 MiB..5 GiB, at most 10,000 parts); default the socket's */
  partSize?: number;
  /** parts in flight at once; default 4 */
  concurrency?: number;
  /** below this size one PUT, from it multipart; default 16 MiB */
  threshold?: number;
  /** tries after the first for a part or a PUT that failed (no answer, 408, 429, 5xx); default 3 */
  retries?: number;
  /** what the saved state is kept under; default name + size + lastModified */
  resumeKey?: string;
  /** lifetime of the links asked for, in seconds (the socket's default otherwise) */
  expiresIn?: number;
}

export interface UploadProgress {
  /** bytes the store has taken (whole parts: a part counts once its PUT is answered) */
  loaded: number;
  total: number;
  /** the part just finished (multipart only) */
  part?: number;
  partsDone?: number;
  partCount?: number;
}

export interface UploadResult {
  key: string;
  name: string;
  size: number;
  etag: string;
  contentType?: string;
}

export type UploadState = 'running' | 'paused' | 'completed' | 'failed' | 'canceled';

export interface UploadTask {
  readonly state: UploadState;
  /** the multipart upload's id once it has one */
  readonly uploadId: string | undefined;
  /** stops starting parts and aborts those in flight (they restart on resume) */
  pause(): void;
  resume(): void;
  /** aborts the upload (the store drops its parts) and rejects the promise with code `canceled` */
  cancel(): Promise<void>;
  readonly promise: Promise<UploadResult>;
}

export interface UploadContext {
  transport: Transport;
  /** 'user' or 'admin': which family of endpoints */
  family: 'user' | 'admin';
  store: ResumeStore | undefined;
  /** who uploads (the client's URL and key), for the default resume key */
  owner: string;
}

interface LinkPart {
  partNumber: number;
  size: number;
  link?: string;
  expiresAt?: number;
  /** asked for again this long before expiresAt: a quarter of its life, at most 10 s */
  marginMs?: number;
}

interface StartAnswer {
  uploadId: string;
  key: string;
  name?: string;
  size: number;
  partSize: number;
  partCount: number;
  expiresAt?: string;
  parts: Array<{ partNumber: number; size: number; link: string }>;
}

interface LinksAnswer extends StartAnswer {
  uploaded?: Array<{ partNumber: number; size: number; etag: string }>;
}

interface CompleteAnswer {
  key: string;
  name: string;
  size: number;
  etag: string;
  contentType?: string;
}

interface UploadLinkAnswer {
  link: string;
  method?: string;
  headers?: Record<string, string>;
  key: string;
  expiresAt?: string;
}

export const DEFAULT_THRESHOLD = 16 * 1024 * 1024;
export const DEFAULT_CONCURRENCY = 4;
export const DEFAULT_RETRIES = 3;
/** a link this close to its expiry is asked for again before it is used */
const EXPIRY_MARGIN_MS = 10_000;

/** Thrown inside a part's PUT that pause, cancel or another part's failure aborted. */
const INTERRUPTED = Symbol('interrupted');

export function startUpload(ctx: UploadContext, name: string, data: UploadData, opts: UploadOptions = {}): UploadTask {
  return new Upload(ctx, name, data, opts);
}

class Upload implements UploadTask {
  readonly promise: Promise<UploadResult>;
  private _state: UploadState = 'running';
  private _uploadId: string | undefined;
  private readonly name: string;
  private readonly concurrency: number;
  private readonly retries: number;
  private source!: Source;
  private canceled = false;
  private failed = false;
  private readonly cancelCtrl = new AbortController();
  private readonly inflight = new Set<AbortController>();
  private resumeWaiters: Array<() => void> = [];
  // multipart
  private resumeKey = '';
  private saved: SavedUpload | undefined;
  private parts = new Map<number, LinkPart>();
  private done = new Map<number, string>();
  private pending: number[] = [];
  private partSize = 0;
  private loaded = 0;
  private refreshing: Promise<void> | undefined;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: UploadContext,
    name: string,
    private readonly data: UploadData,
    private readonly opts: UploadOptions,
  ) {
    this.name = typeof name === 'string' ? name.normalize('NFC') : name;
    this.concurrency = Math.max(1, Math.floor(opts.concurrency ?? DEFAULT_CONCURRENCY));
    this.retries = Math.max(0, Math.floor(opts.retries ?? DEFAULT_RETRIES));
    if (opts.signal) {
      if (opts.signal.aborted) this.canceled = true;
      else opts.signal.addEventListener('abort', () => void this.cancel(), { once: true });
    }
    this.promise = this.run();
    // an unobserved rejection (a caller that only used onProgress) is not a crash
    this.promise.catch(() => {});
  }

  get state(): UploadState {
    return this._state;
  }

  get uploadId(): string | undefined {
    return this._uploadId;
  }

  pause(): void {
    if (this._state !== 'running') return;
    this._state = 'paused';
    this.abortInflight();
  }

  resume(): void {
    if (this._state !== 'paused') return;
    this._state = 'running';
    this.wake();
  }

  async cancel(): Promise<void> {
    if (this._state === 'completed' || this._state === 'failed' || this._state === 'canceled') return;
    this.canceled = true;
    this._state = 'canceled';
    this.abortInflight();
    this.cancelCtrl.abort(canceledError());
    this.wake();
    await this.promise.then(
      () => {},
      () => {},
    );
  }

  private get paused(): boolean {
    return this._state === 'paused';
  }

  private wake(): void {
    const waiters = this.resumeWaiters;
    this.resumeWaiters = [];
    for (const w of waiters) w();
  }

  private untilResumed(): Promise<void> {
    if (!this.paused || this.canceled) return Promise.resolve();
    return new Promise((resolve) => this.resumeWaiters.push(resolve));
  }

  private abortInflight(): void {
    for (const c of this.inflight) c.abort();
  }

  private emit(p: UploadProgress): void {
    try {
      this.opts.onProgress?.(p);
    } catch {
      /* a listener's error is not the upload's */
    }
  }

  private checkCanceled(): void {
    if (this.canceled) throw canceledError();
  }

  private async run(): Promise<UploadResult> {
    try {
      this.checkCanceled();
      this.source = await openSource(this.data);
      const threshold = this.opts.threshold ?? DEFAULT_THRESHOLD;
      const result = this.source.size < threshold ? await this.single() : await this.multipart();
      this._state = 'completed';
      return result;
    } catch (err) {
      // Canceled, or its file changed (its parts are of a file that is no longer there): nothing to resume.
      const givenUp = this.canceled || (err instanceof StorageApiError && err.code === 'file_changed');
      if (givenUp && this._uploadId) {
        await this.abortStored(this._uploadId);
        await this.forget();
      }
      if (this.canceled) {
        this._state = 'canceled';
        throw err instanceof StorageApiError && err.code === 'canceled' ? err : canceledError(err);
      }
      this._state = 'failed';
      throw err;
    } finally {
      await this.source?.close().catch(() => {});
    }
  }

  // ---- one PUT ----

  private async single(): Promise<UploadResult> {
    const size = this.source.size;
    const contentType = this.opts.contentType ?? this.source.type;
    let link: UploadLinkAnswer | undefined;
    let linkMargin: number | undefined;
    let attempt = 0;
    let refreshes = 0;
    this.emit({ loaded: 0, total: size });
    for (;;) {
      await this.untilResumed();
      this.checkCanceled();
      if (!link || expiring(link.expiresAt, linkMargin)) {
        link = await this.ctx.transport.call<UploadLinkAnswer>(
          `${this.ctx.family}-upload-link`,
          { name: this.name, method: 'PUT', ...(contentType ? { contentType } : {}), ...(this.opts.expiresIn ? { expiresIn: this.opts.expiresIn } : {}) },
          { signal: this.cancelCtrl.signal },
        );
        linkMargin = link.expiresAt ? Math.min(EXPIRY_MARGIN_MS, Math.max(0, Date.parse(link.expiresAt) - Date.now()) / 4) : undefined;
      }
      const outcome = await this.put(link.link, await this.source.read(0, size), link.headers ?? {});
      if (outcome === INTERRUPTED) {
        this.checkCanceled();
        continue; // paused: start again on resume
      }
      if ('error' in outcome) {
        if (++attempt > this.retries) throw new StorageApiError(`upload: no answer from the store after ${attempt} tries`, 0, 'network_error', 'store', { cause: outcome.error });
        await sleep(backoffMs(attempt), this.cancelCtrl.signal);
        continue;
      }
      const res = outcome.res;
      if (res.ok) {
        await res.arrayBuffer().catch(() => {}); // read to its end: the connection is kept for the next part
        await this.source.unchanged?.(); // rewritten while it was sent: what was stored may mix both
        this.emit({ loaded: size, total: size });
        return { key: link.key, name: this.name, size, etag: unquote(res.headers.get('etag')), ...(contentType ? { contentType } : {}) };
      }
      const text = await res.text().catch(() => '');
      if (isExpiredLink(res.status, text) && refreshes++ < 3) {
        link = undefined;
        continue;
      }
      if (retryableStatus(res.status) && ++attempt <= this.retries) {
        await sleep(backoffMs(attempt), this.cancelCtrl.signal);
        continue;
      }
      throw storeError('upload', res.status, text);
    }
  }

  /** One PUT to a link, abortable by pause and cancel: the answer, no answer, or interrupted. */
  private async put(url: string, body: Blob | Uint8Array, headers: Record<string, string>): Promise<{ res: Response } | { error: unknown } | typeof INTERRUPTED> {
    if (this.paused || this.canceled || this.failed) return INTERRUPTED;
    const ctrl = new AbortController();
    this.inflight.add(ctrl);
    try {
      const direct = this.ctx.transport.customFetch ? undefined : platform.put?.(url, body, headers, ctrl.signal);
      const res = await (direct ??
        this.ctx.transport.fetch(url, { method: 'PUT', headers, body: body as BodyInit, signal: ctrl.signal }));
      return { res };
    } catch (error) {
      return ctrl.signal.aborted ? INTERRUPTED : { error };
    } finally {
      this.inflight.delete(ctrl);
    }
  }

  // ---- multipart ----

  private mp(op: 'start' | 'links' | 'complete' | 'abort'): string {
    return `${this.ctx.family}-multipart-${op}`;
  }

  private async multipart(): Promise<UploadResult> {
    const { size } = this.source;
    this.resumeKey = this.opts.resumeKey ?? defaultResumeKey(await ownerTag(this.ctx.owner), this.name, size, this.source.lastModified);
    const store = this.ctx.store;
    const saved = store ? await Promise.resolve(store.get(this.resumeKey)).catch(() => undefined) : undefined;
    let resumed = false;
    if (saved && saved.name === this.name && saved.size === size) {
      try {
        const answer = await this.ctx.transport.call<LinksAnswer>(
          this.mp('links'),
          { name: this.name, uploadId: saved.uploadId, ...(this.opts.expiresIn ? { expiresIn: this.opts.expiresIn } : {}) },
          { signal: this.cancelCtrl.signal },
        );
        if (answer.size === size) {
          this.saved = { ...saved, key: answer.key ?? saved.key, partSize: answer.partSize, partCount: answer.partCount };
          this.setUp(answer.uploadId ?? saved.uploadId, answer.partSize, answer.partCount, answer, answer.uploaded ?? []);
          resumed = true;
        }
      } catch (err) {
        this.checkCanceled();
        // the upload is gone (completed, aborted, expired) or not ours: start again
        if (!(err instanceof StorageApiError) || ![400, 404].includes(err.status)) throw err;
      }
      if (!resumed) await this.forget();
    }
    if (!resumed) {
      this.checkCanceled();
      const contentType = this.opts.contentType ?? this.source.type;
      const answer = await this.ctx.transport.call<StartAnswer>(
        this.mp('start'),
        {
          name: this.name,
          size,
          ...(contentType ? { contentType } : {}),
          ...(this.opts.partSize ? { partSize: this.opts.partSize } : {}),
          ...(this.opts.expiresIn ? { expiresIn: this.opts.expiresIn } : {}),
        },
        { signal: this.cancelCtrl.signal },
      );
      this.saved = {
        v: 1,
        uploadId: answer.uploadId,
        key: answer.key,
        name: this.name,
        size,
        partSize: answer.partSize,
        partCount: answer.partCount,
        parts: {},
        updatedAt: new Date().toISOString(),
      };
      this.setUp(answer.uploadId, answer.partSize, answer.partCount, answer, []);
      await this.save();
    }
    this.emit({ loaded: this.loaded, total: size, partsDone: this.done.size, partCount: this.parts.size });
    await this.runParts();
    this.checkCanceled();
    await this.source.unchanged?.(); // a part sent while the file was rewritten: not completed
    const result = await this.withRetries('complete', () =>
      this.ctx.transport.call<CompleteAnswer>(this.mp('complete'), { name: this.name, uploadId: this._uploadId }, { signal: this.cancelCtrl.signal }),
    );
    await this.forget();
    return { key: result.key, name: result.name, size: result.size, etag: result.etag, ...(result.contentType ? { contentType: result.contentType } : {}) };
  }

  private setUp(uploadId: string, partSize: number, partCount: number, answer: StartAnswer, uploaded: Array<{ partNumber: number; size: number; etag: string }>): void {
    this._uploadId = uploadId;
    this.partSize = partSize;
    const size = this.source.size;
    for (let n = 1; n <= partCount; n++) {
      this.parts.set(n, { partNumber: n, size: Math.min(partSize, size - (n - 1) * partSize) });
    }
    this.applyLinks(answer);
    for (const u of uploaded) {
      const p = this.parts.get(u.partNumber);
      if (!p || u.size !== p.size) continue; // a part of another size is uploaded again
      this.done.set(u.partNumber, unquote(u.etag));
      this.saved!.parts[String(u.partNumber)] = unquote(u.etag);
      this.loaded += p.size;
    }
    this.pending = [...this.parts.keys()].filter((n) => !this.done.has(n));
  }

  private applyLinks(answer: { parts?: Array<{ partNumber: number; size: number; link: string }>; expiresAt?: string }): void {
    const expiresAt = answer.expiresAt ? Date.parse(answer.expiresAt) : undefined;
    const marginMs = expiresAt === undefined ? undefined : Math.min(EXPIRY_MARGIN_MS, Math.max(0, expiresAt - Date.now()) / 4);
    for (const l of answer.parts ?? []) {
      const p = this.parts.get(l.partNumber);
      if (p) {
        p.link = l.link;
        p.expiresAt = expiresAt;
        p.marginMs = marginMs;
      }
    }
  }

  /** Fresh links for every part not yet done (one call shared by the parts that need it). */
  private refreshLinks(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const wanted = [...this.parts.keys()].filter((n) => !this.done.has(n));
        const answer = await this.withRetries('links', () =>
          this.ctx.transport.call<LinksAnswer>(
            this.mp('links'),
            { name: this.name, uploadId: this._uploadId, parts: wanted, ...(this.opts.expiresIn ? { expiresIn: this.opts.expiresIn } : {}) },
            { signal: this.cancelCtrl.signal },
          ),
        );
        this.applyLinks(answer);
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /** Sends the pending parts; returns once all are done and the task is not paused (a paused task completes nothing). */
  private async runParts(): Promise<void> {
    for (;;) {
      this.checkCanceled();
      if (this.paused) {
        await this.untilResumed();
        continue;
      }
      if (this.pending.length === 0) return;
      const workers = Array.from({ length: Math.min(this.concurrency, this.pending.length) }, () => this.worker());
      const results = await Promise.allSettled(workers);
      const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure) throw failure.reason;
    }
  }

  private async worker(): Promise<void> {
    while (!this.paused && !this.canceled && !this.failed) {
      const n = this.pending.shift();
      if (n === undefined) return;
      let ok = false;
      try {
        ok = await this.putPart(n);
      } catch (err) {
        this.failed = true;
        this.abortInflight();
        throw err;
      }
      if (!ok) {
        this.pending.unshift(n); // interrupted: again on resume
        return;
      }
    }
  }

  /** Uploads part n: true when the store has it, false when pause or cancel interrupted it. */
  private async putPart(n: number): Promise<boolean> {
    const part = this.parts.get(n)!;
    const start = (n - 1) * this.partSize;
    let attempt = 0;
    let refreshes = 0;
    for (;;) {
      if (this.paused || this.canceled || this.failed) return false;
      if (!part.link || expiring(part.expiresAt, part.marginMs)) {
        await this.refreshLinks();
        if (!part.link) throw new StorageApiError(`part ${n}: the socket gave no link for it`, 0, 'internal', this.mp('links'));
      }
      const outcome = await this.put(part.link, await this.source.read(start, start + part.size), {});
      if (outcome === INTERRUPTED) return false;
      if ('error' in outcome) {
        // a store may refuse an expired link before it reads the body, and close: no answer, but no mystery
        if (part.expiresAt !== undefined && Date.now() >= part.expiresAt && refreshes++ < 3) {
          part.link = undefined;
          continue;
        }
        if (++attempt > this.retries) {
          throw new StorageApiError(`part ${n}: no answer from the store after ${attempt} tries`, 0, 'network_error', 'store', { cause: outcome.error });
        }
        await sleep(backoffMs(attempt), this.cancelCtrl.signal);
        continue;
      }
      const res = outcome.res;
      if (res.ok) {
        await res.arrayBuffer().catch(() => {}); // read to its end: the connection is kept for the next part
        await this.partDone(n, unquote(res.headers.get('etag')));
        return true;
      }
      const text = await res.text().catch(() => '');
      if (isExpiredLink(res.status, text) && refreshes++ < 3) {
        part.link = undefined;
        continue;
      }
      if (retryableStatus(res.status) && ++attempt <= this.retries) {
        await sleep(backoffMs(attempt), this.cancelCtrl.signal);
        continue;
      }
      throw storeError(`part ${n}`, res.status, text);
    }
  }

  private async partDone(n: number, etag: string): Promise<void> {
    if (this.done.has(n)) return;
    const size = this.parts.get(n)!.size;
    this.done.set(n, etag);
    this.loaded += size;
    if (this.saved) {
      this.saved.parts[String(n)] = etag;
      this.saved.updatedAt = new Date().toISOString();
    }
    await this.save();
    this.emit({ loaded: this.loaded, total: this.source.size, part: n, partsDone: this.done.size, partCount: this.parts.size });
  }

  /** Writes the state, one write after the other (a later state never lands under an earlier one). */
  private save(): Promise<void> {
    const store = this.ctx.store;
    if (!store || !this.saved) return Promise.resolve();
    const snapshot: SavedUpload = { ...this.saved, parts: { ...this.saved.parts } };
    this.saving = this.saving.then(() => Promise.resolve(store.set(this.resumeKey, snapshot))).catch(() => {});
    return this.saving;
  }

  private async forget(): Promise<void> {
    const store = this.ctx.store;
    if (!store || !this.resumeKey) return;
    await this.saving;
    await Promise.resolve(store.remove(this.resumeKey)).catch(() => {});
  }

  /**
   * Aborts the store's upload of a task given up (canceled, or its file changed), so its parts do not stay behind. A host that did not
   * answer or was busy is asked again (S3 itself says an abort may need repeating), at most `retries`
   * more times; 404 means it is gone already. What still fails is left to the bucket's rule for
   * unfinished uploads: the task's own error is the one to report.
   */
  private async abortStored(uploadId: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.ctx.transport.call(`${this.ctx.family}-multipart-abort`, { name: this.name, uploadId });
        return;
      } catch (err) {
        const again = err instanceof StorageApiError && (err.status === 0 || retryableStatus(err.status));
        if (!again || attempt > this.retries) return;
        await sleep(backoffMs(attempt));
      }
    }
  }

  /** An endpoint call tried again when it got no answer or a 503 (the store busy). */
  private async withRetries<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        this.checkCanceled();
        const again = err instanceof StorageApiError && (err.status === 0 || err.status === 503 || err.status === 502 || err.status === 504);
        if (!again || attempt > this.retries) throw err;
        void what;
        await sleep(backoffMs(attempt), this.cancelCtrl.signal);
      }
    }
  }
}

function expiring(expiresAt: number | string | undefined, marginMs = EXPIRY_MARGIN_MS): boolean {
  if (expiresAt === undefined) return false;
  const t = typeof expiresAt === 'number' ? expiresAt : Date.parse(expiresAt);
  return Number.isFinite(t) && Date.now() > t - marginMs;
}

function unquote(etag: string | null | undefined): string {
  return (etag ?? '').replace(/^W\//, '').replace(/^"|"$/g, '');
}

function storeError(what: string, status: number, text: string): StorageApiError {
  const s3 = s3ErrorOf(text);
  const detail = [s3.code, s3.message].filter(Boolean).join(': ') || text.slice(0, 200);
  return new StorageApiError(`${what}: the store answered ${status}${detail ? ` (${detail})` : ''}`, status, 'upload_failed', 'store');
}
