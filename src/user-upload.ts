import { z } from 'zod';
import * as arg from './lib/args';
import { endpoint } from './lib/handler';
import { userKey } from './lib/names';
import { uploadFile } from './lib/operations';

export default endpoint({
  access: 'user',
  args: z.object({ name: arg.name, file: arg.file, contentType: arg.contentType }),
  run: async ({ args, store, user }) => ({
    body: await uploadFile(store, userKey(user.id, args.name), args),
  }),
});
