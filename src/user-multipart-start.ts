import { z } from 'zod';
import * as arg from './lib/args';
import { endpoint } from './lib/handler';
import { startUpload } from './lib/multipart';
import { userKey } from './lib/names';

export default endpoint({
  access: 'user',
  args: z.object({ name: arg.name, size: arg.uploadSize, contentType: arg.contentType, partSize: arg.partSize, expiresIn: arg.expiresIn }),
  run: async ({ args, store, user }) => ({
    body: await startUpload(store, userKey(user.id, args.name), args),
  }),
});
