// Runs one handler the way the Syncano platform did: it answers through ctx.setResponse(new HttpResponse(...)).
export class HttpResponse {
  status_code: number;
  content: unknown;
  content_type: string;
  headers: Record<string, string>;
  constructor(status = 200, content: unknown = null, mimetype = 'text/plain', headers: Record<string, string> = {}) {
    this.status_code = status;
    this.content = content;
    this.content_type = mimetype;
    this.headers = headers ?? {};
  }
}

export interface HandlerAnswer {
  status: number;
  body: Buffer;
  contentType: string;
  headers: Record<string, string>;
}

export function jsonAnswer(status: number, value: unknown, headers: Record<string, string> = {}): HandlerAnswer {
  return { status, body: Buffer.from(JSON.stringify(value)), contentType: 'application/json', headers };
}

export const errorAnswer = (status: number, code: string, message: string) => jsonAnswer(status, { message, code });

function toAnswer(r: unknown): HandlerAnswer {
  if (!(r instanceof HttpResponse)) {
    return errorAnswer(500, 'internal', 'the endpoint answered with something other than an HttpResponse');
  }
  const status = Number.isInteger(r.status_code) && r.status_code >= 100 && r.status_code <= 599 ? r.status_code : 500;
  let body: Buffer;
  if (r.content === null || r.content === undefined) body = Buffer.alloc(0);
  else if (Buffer.isBuffer(r.content)) body = r.content;
  else if (typeof r.content === 'string') body = Buffer.from(r.content);
  else body = Buffer.from(JSON.stringify(r.content));
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers ?? {})) {
    if (v !== undefined && v !== null && !/[\r\n]/.test(String(v)) && /^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(k)) {
      headers[k] = String(v);
    }
  }
  return { status, body, contentType: r.content_type || 'text/plain', headers };
}

export interface InvokeOptions {
  timeoutMs: number;
  /** how long to keep waiting for setResponse after the handler resolved without answering */
  graceMs: number;
  onError?: (err: unknown) => void;
  /** true while a streamed body is still arriving: the timeout waits for it (its own timeouts bound it) */
  stillReceiving?: () => boolean;
}

/**
 * Calls handler(ctx) and waits for its first setResponse. A handler that throws before answering, or
 * resolves and does not answer within graceMs, is a 500; one that takes longer than timeoutMs, a 504.
 */
export function invokeHandler(
  handler: (ctx: unknown) => unknown,
  ctx: { args: unknown; meta: unknown; config: unknown },
  opts: InvokeOptions,
): Promise<HandlerAnswer> {
  return new Promise<HandlerAnswer>((resolve) => {
    let done = false;
    const timers: NodeJS.Timeout[] = [];
    const finish = (a: HandlerAnswer) => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      resolve(a);
    };
    const internal = () => errorAnswer(500, 'internal', 'the endpoint failed');
    const timeUp = () => {
      // Time up while a streamed body is still arriving: the full time again once it has arrived.
      if (!opts.stillReceiving?.()) return finish(errorAnswer(504, 'timeout', 'the endpoint did not answer in time'));
      const waitForBody = () => timers.push(setTimeout(opts.stillReceiving?.() ? waitForBody : () => timers.push(setTimeout(timeUp, opts.timeoutMs)), 250));
      waitForBody();
    };
    const fullCtx = {
      args: ctx.args,
      meta: ctx.meta,
      config: ctx.config,
      HttpResponse,
      setResponse: (r: unknown) => finish(toAnswer(r)),
    };
    let result: unknown;
    try {
      result = handler(fullCtx);
    } catch (err) {
      opts.onError?.(err);
      finish(internal());
      return;
    }
    // armed only for a handler that did not answer at once (no timer to set and clear for one that did)
    if (!done) timers.push(setTimeout(timeUp, opts.timeoutMs));
    Promise.resolve(result).then(
      () => {
        if (!done) timers.push(setTimeout(() => finish(internal()), opts.graceMs));
      },
      (err) => {
        opts.onError?.(err);
        finish(internal());
      },
    );
  });
}
