import { z } from 'zod';
import * as arg from './lib/args';
import { endpoint } from './lib/handler';
import { adminKey } from './lib/names';
import { createUploadLink } from './lib/operations';

export default endpoint({
  access: 'admin',
  args: z.object({ name: arg.name, contentType: arg.contentType, expiresIn: arg.expiresIn, method: arg.method, size: arg.size }),
  run: async ({ args, store }) => ({
    body: await createUploadLink(store, adminKey(args.name).key, args),
  }),
});
