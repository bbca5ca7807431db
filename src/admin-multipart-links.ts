import { z } from 'zod';
import * as arg from './lib/args';
import { endpoint } from './lib/handler';
import { uploadLinks } from './lib/multipart';
import { adminKey } from './lib/names';

export default endpoint({
  access: 'admin',
  args: z.object({ name: arg.name, uploadId: arg.uploadId, parts: arg.partNumbers, expiresIn: arg.expiresIn }),
  run: async ({ args, store }) => ({
    body: await uploadLinks(store, adminKey(args.name), args),
  }),
});
