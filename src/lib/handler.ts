/**
 * The shared handler wrapper: every endpoint is `endpoint({access, args, run})`. It checks who calls
 * (before it looks at args or config), validates args, builds the store and answers through
 * @syncano/core's response, turning every error into SPEC §4's `{message, code}`.
 */
import Syncano from '@syncano/core';
import type { z } from 'zod';
import { toStorageError, StorageError } from './errors';
import { storeFor, type Store } from './storage';

export interface SyncanoUser {
  id: number | string;
  username?: string;
  user_key?: string;
}

export interface Ctx {
  args?: Record<string, unknown>;
  meta?: { user?: SyncanoUser; admin?: unknown; instance?: string; [k: string]: unknown };
  config?: Record<string, unknown>;
  HttpResponse?: unknown;
  setResponse?: unknown;
}

export interface Reply {
  body: unknown;
  status?: number;
  /** Answer 302 to this URL (the body is still sent, for clients that do not follow). */
  redirect?: string;
}

type Access = 'user' | 'admin';

interface Spec<S extends z.ZodType, A extends Access> {
  access: A;
  args: S;
  run: (input: { args: z.output<S>; store: Store; user: A extends 'user' ? SyncanoUser : undefined }) => Promise<Reply>;
}

export function endpoint<S extends z.ZodType, A extends Access>(spec: Spec<S, A>) {
  return async (ctx: Ctx): Promise<void> => {
    const response = new Syncano(ctx).response;
    try {
      const user = authorize(spec.access, ctx.meta);
      const parsed = spec.args.safeParse(ctx.args ?? {});
      if (!parsed.success) throw parsed.error;
      const store = storeFor(ctx.config, ctx.meta?.instance);
      const reply = await spec.run({ args: parsed.data, store, user: user as never });
      if (reply.redirect) response.header('Location', reply.redirect).json(reply.body, 302);
      else response.json(reply.body, reply.status ?? 200);
    } catch (err) {
      const error = toStorageError(err);
      if (error.code === 'internal') console.error('aws-storage: unexpected error', (err as Error)?.stack ?? err);
      response.json(error.toJSON(), error.status);
    }
  };
}

function authorize(access: Access, meta: Ctx['meta']): SyncanoUser | undefined {
  if (access === 'admin') {
    if (!meta?.admin) throw new StorageError('forbidden', 'this endpoint needs an admin key');
    return undefined;
  }
  const user = meta?.user;
  if (!user || (typeof user.id !== 'number' && typeof user.id !== 'string') || user.id === '') {
    throw new StorageError('unauthorized', 'this endpoint needs a valid user key');
  }
  return user;
}
