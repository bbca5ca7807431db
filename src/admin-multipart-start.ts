import { z } from 'zod';
import * as arg from './lib/args';
import { endpoint } from './lib/handler';
import { startUpload } from './lib/multipart';
import { adminKey } from './lib/names';

export default endpoint({
  access: 'admin',
  args: z.object({ name: arg.name, size: arg.uploadSize, contentType: arg.contentType, partSize: arg.partSize, expiresIn: arg.expiresIn }),
  run: async ({ args, store }) => ({
    body: await startUpload(store, adminKey(args.name), args),
  }),
});
