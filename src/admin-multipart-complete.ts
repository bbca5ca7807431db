import { z } from 'zod';
import * as arg from './lib/args';
import { endpoint } from './lib/handler';
import { completeUpload } from './lib/multipart';
import { adminKey } from './lib/names';

export default endpoint({
  access: 'admin',
  args: z.object({ name: arg.name, uploadId: arg.uploadId }),
  run: async ({ args, store }) => ({
    body: await completeUpload(store, adminKey(args.name), args),
  }),
});
