import { z } from 'zod';
import * as arg from './lib/args';
import { invalidArgument, toStorageError } from './lib/errors';
import { endpoint } from './lib/handler';
import { userKey } from './lib/names';
import { deleteObject, headObject, mapLimit } from './lib/storage';

const MAX_NAMES = 1000;

export default endpoint({
  access: 'user',
  args: z.object({ name: arg.name.optional(), names: z.array(z.unknown()).min(1).max(MAX_NAMES).optional() }),
  run: async ({ args, store, user }) => {
    if ((args.name === undefined) === (args.names === undefined)) throw invalidArgument('give either name or names');
    // Every name is checked before anything is deleted: a bad name fails the call and changes nothing.
    const checked = (args.names ?? [args.name]).map((given, i) => userKey(user.id, given, args.names ? `names.${i}` : 'name'));
    // A name given twice (or in two forms of one NFC name) is one file: deleted, or reported, once.
    const targets = [...new Map(checked.map((t) => [t.key, t])).values()];
    const deleted: string[] = [];
    const errors: Array<{ name: string; message: string }> = [];
    await mapLimit(targets, 16, async (target) => {
      try {
        await headObject(store, target.key, target.name); // S3 deletes silently; a missing file is reported
        await deleteObject(store, target.key);
        deleted.push(target.name);
      } catch (err) {
        const error = toStorageError(err);
        if (error.code !== 'not_found') throw error;
        errors.push({ name: target.name, message: error.message });
      }
    });
    return { body: { deleted, errors } };
  },
});
