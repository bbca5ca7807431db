import { z } from 'zod';
import * as arg from './lib/args';
import { DEFAULT_MAKE_LINKS_EXPIRE } from './lib/config';
import { toStorageError } from './lib/errors';
import { endpoint } from './lib/handler';
import { adminKey } from './lib/names';
import { downloadDisposition, findKeys, linkExpiry } from './lib/operations';
import { ensureBucket, readUrl } from './lib/storage';

const MAX_KEYS = 1000;
const MAX_ECHO = 1024;

/** An invalid key is answered as given, but a huge one only by its start. */
const echo = (name: unknown) => (typeof name === 'string' && name.length > MAX_ECHO ? `${name.slice(0, MAX_ECHO)}…` : name);

export default endpoint({
  access: 'admin',
  args: z.object({ fileNames: arg.nameList(MAX_KEYS), expiresIn: arg.expiresIn, download: arg.download, check: arg.flag }),
  run: async ({ args, store }) => {
    const expiresIn = linkExpiry(store.config, args.expiresIn, DEFAULT_MAKE_LINKS_EXPIRE);
    const files: Record<string, string> = {};
    const errors: Array<{ name: unknown; message: string }> = [];
    const valid: string[] = [];
    for (const fileName of args.fileNames) {
      try {
        valid.push(adminKey(fileName, 'fileName').key);
      } catch (err) {
        errors.push({ name: echo(fileName), message: toStorageError(err).message });
      }
    }
    await ensureBucket(store);
    // A failing store fails the call (503), not one key.
    const found = args.check ? await findKeys(store, valid) : undefined;
    valid.forEach((key, i) => {
      if (found && !found[i]) errors.push({ name: key, message: `file not found: ${key}` });
      else files[key] = readUrl(store, key, expiresIn, downloadDisposition(key, args.download));
    });
    return { body: { files, errors } };
  },
});
