import { z } from 'zod';
import * as arg from './lib/args';
import { endpoint } from './lib/handler';
import { userKey } from './lib/names';
import { createUploadLink } from './lib/operations';

export default endpoint({
  access: 'user',
  args: z.object({ name: arg.name, contentType: arg.contentType, expiresIn: arg.expiresIn, method: arg.method, size: arg.size }),
  run: async ({ args, store, user }) => ({
    body: await createUploadLink(store, userKey(user.id, args.name).key, args),
  }),
});
