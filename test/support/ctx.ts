/** Calls a handler with a ctx shaped as the Syncano platform built it, and collects its answer. */
export interface Answer {
  status: number;
  body: any;
  headers: Record<string, string>;
}

export interface Caller {
  user?: { id: number | string; username?: string; user_key?: string };
  admin?: boolean;
}

type Handler = (ctx: object) => Promise<void> | void;

export function invoke(
  handler: Handler,
  options: { args?: Record<string, unknown>; config?: Record<string, unknown>; instance?: string } & Caller,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // The platform's HttpResponse: (status, content, mimetype, headers).
    function HttpResponse(this: any, status: number, content: string, mimetype: string, headers: Record<string, string>) {
      this.status = status;
      this.content = content;
      this.mimetype = mimetype;
      this.headers = headers ?? {};
    }
    const setResponse = (r: { status: number; content: string; mimetype: string; headers: Record<string, string> }) => {
      try {
        expectJson(r.mimetype);
        resolve({ status: r.status, body: JSON.parse(r.content), headers: r.headers });
      } catch (err) {
        reject(err);
      }
    };
    const meta = {
      instance: 'instance' in options ? options.instance : 'test',
      socket: 'aws-storage',
      executed_by: 'socket_endpoint',
      ...(options.user ? { user: { username: `user${options.user.id}`, user_key: 'k', ...options.user } } : {}),
      ...(options.admin ? { admin: { id: 1, email: 'admin@test' } } : {}),
    };
    Promise.resolve(handler({ args: options.args ?? {}, meta, config: options.config ?? {}, HttpResponse, setResponse })).catch(reject);
  });
}

function expectJson(mimetype: string) {
  if (mimetype !== 'application/json') throw new Error(`answer is ${mimetype}, not JSON`);
}
