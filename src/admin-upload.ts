import { z } from 'zod';
import * as arg from './lib/args';
import { endpoint } from './lib/handler';
import { adminKey } from './lib/names';
import { uploadFile } from './lib/operations';

export default endpoint({
  access: 'admin',
  args: z.object({ name: arg.name, file: arg.file, contentType: arg.contentType }),
  run: async ({ args, store }) => ({
    body: await uploadFile(store, adminKey(args.name), args),
  }),
});
