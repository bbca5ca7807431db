import { z } from 'zod';
import * as arg from './lib/args';
import { endpoint } from './lib/handler';
import { userKey } from './lib/names';
import { readFileLink } from './lib/operations';

export default endpoint({
  access: 'user',
  args: z.object({ name: arg.name, expiresIn: arg.expiresIn, download: arg.download, redirect: arg.flag }),
  run: async ({ args, store, user }) => {
    const body = await readFileLink(store, userKey(user.id, args.name), args);
    return { body, redirect: args.redirect ? body.link : undefined };
  },
});
