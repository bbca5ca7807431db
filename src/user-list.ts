import { z } from 'zod';
import { invalidArgument } from './lib/errors';
import { endpoint } from './lib/handler';
import { checkName, userPrefix } from './lib/names';
import { listObjects } from './lib/storage';

const limit = z.preprocess(
  (v) => (typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v),
  z.number({ error: 'must be a number from 1 to 1000' }).int().min(1).max(1000).default(100),
);

// The cursor is the last name of the page, base64url: the next page starts after it, inside the prefix.
const encodeCursor = (name: string) => Buffer.from(name, 'utf8').toString('base64url');
function decodeCursor(cursor: string, prefix: string): string {
  const name = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[A-Za-z0-9_-]+$/.test(cursor) || encodeCursor(name) !== cursor) throw invalidArgument('cursor: not a cursor from user-list');
  return checkName(name, prefix, 'cursor');
}

export default endpoint({
  access: 'user',
  args: z.object({
    prefix: z.string({ error: 'must be a string' }).optional(),
    limit,
    cursor: z.string({ error: 'must be a string' }).max(2048).optional(),
  }),
  run: async ({ args, store, user }) => {
    const base = userPrefix(user.id);
    // A prefix may end in "/" (a folder); the rest must be a valid name.
    const prefix = args.prefix ? checkName(args.prefix.replace(/\/$/, ''), base, 'prefix') + (args.prefix.endsWith('/') ? '/' : '') : '';
    const startAfter = args.cursor ? base + decodeCursor(args.cursor, base) : undefined;
    const page = await listObjects(store, { prefix: base + prefix, startAfter, limit: args.limit });
    const files = page.files.map(({ key, ...rest }) => ({ name: key.slice(base.length), ...rest }));
    const last = files.at(-1);
    return { body: { files, cursor: page.truncated && last ? encodeCursor(last.name) : null } };
  },
});
