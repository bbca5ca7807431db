import { StorageApiError } from './errors.js';

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface Transport {
  fetch: FetchLike;
  /** true when the caller gave its own fetch: then every request goes through it */
  customFetch: boolean;
  /** POSTs `args` as JSON to `${url}/${socket}/${endpoint}/` with the caller's key; throws StorageApiError */
  call<T>(endpoint: string, args: Record<string, unknown>, opts?: { signal?: AbortSignal }): Promise<T>;
}

export function makeTransport(base: string, socket: string, keyHeader: [string, string], fetchImpl?: FetchLike): Transport {
  const fetchFn: FetchLike = fetchImpl ?? ((input, init) => globalThis.fetch(input, init));
  const root = base.replace(/\/+$/, '');
  return {
    fetch: fetchFn,
    customFetch: fetchImpl !== undefined,
    async call<T>(endpoint: string, args: Record<string, unknown>, opts: { signal?: AbortSignal } = {}): Promise<T> {
      let res: Response;
      try {
        res = await fetchFn(`${root}/${socket}/${endpoint}/`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', [keyHeader[0]]: keyHeader[1] },
          body: JSON.stringify(args),
          signal: opts.signal,
        });
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        throw new StorageApiError(`${endpoint}: no answer (${(err as Error)?.message ?? err})`, 0, 'network_error', endpoint, { cause: err });
      }
      const text = await res.text();
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = undefined;
      }
      if (!res.ok) {
        const b = (body ?? {}) as { message?: unknown; code?: unknown };
        const code = typeof b.code === 'string' ? b.code : codeOfStatus(res.status);
        const message = typeof b.message === 'string' ? b.message : text.slice(0, 200) || res.statusText;
        throw new StorageApiError(`${endpoint}: ${message}`, res.status, code, endpoint);
      }
      if (body === undefined) throw new StorageApiError(`${endpoint}: the answer is not JSON`, res.status, 'internal', endpoint);
      return body as T;
    },
  };
}

/** The SPEC §4 code of a status, for an answer that brought none (a proxy's, say). */
export function codeOfStatus(status: number): string {
  switch (status) {
    case 400: return 'invalid_argument';
    case 401: return 'unauthorized';
    case 403: return 'forbidden';
    case 404: return 'not_found';
    case 405: return 'method_not_allowed';
    case 408: return 'request_timeout';
    case 409: return 'conflict';
    case 413: return 'payload_too_large';
    case 415: return 'unsupported_media_type';
    case 429: return 'too_many_requests';
    case 503: return 'storage_unavailable';
    case 504: return 'timeout';
    default: return status >= 500 ? 'internal' : 'invalid_argument';
  }
}

/** A status worth another try: the store or a proxy was busy or failing, not the request wrong. */
export function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Exponential backoff with full jitter: attempt 1 waits up to base, then 2×, 4×, … up to cap. */
export function backoffMs(attempt: number, base = 250, cap = 10_000): number {
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, attempt - 1));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
