import { z } from 'zod';
import * as arg from './lib/args';
import { endpoint } from './lib/handler';
import { abortUpload } from './lib/multipart';
import { userKey } from './lib/names';

export default endpoint({
  access: 'user',
  args: z.object({ name: arg.name, uploadId: arg.uploadId }),
  run: async ({ args, store, user }) => ({
    body: await abortUpload(store, userKey(user.id, args.name), args),
  }),
});
