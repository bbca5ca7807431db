import { z } from 'zod';
import * as arg from './lib/args';
import { invalidArgument } from './lib/errors';
import { endpoint } from './lib/handler';
import { MAX_KEY_BYTES } from './lib/names';
import { abortMultipartUpload, listMultipartUploads, mapLimit } from './lib/storage';

const seconds = z.preprocess(
  (v) => (typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v),
  z.number({ error: 'must be a whole number of seconds' }).int().min(0).optional(),
);

export default endpoint({
  access: 'admin',
  args: z.object({
    prefix: z.string({ error: 'must be a string' }).optional(),
    olderThan: seconds,
    abort: arg.flag,
  }),
  run: async ({ args, store }) => {
    // A prefix is any start of a key (it may end in "/"): a string a key could begin with.
    const prefix = args.prefix ?? '';
    if (Buffer.byteLength(prefix, 'utf8') > MAX_KEY_BYTES || /[\u0000-\u001f\u007f]/.test(prefix) || !prefix.isWellFormed()) {
      throw invalidArgument(`prefix must be at most ${MAX_KEY_BYTES} bytes, without control characters`);
    }
    const olderThan = args.olderThan ?? 0;
    const cutoff = Date.now() - olderThan * 1000;
    // olderThan 0 is every upload, whatever the store's clock says; else only those known to be older.
    const uploads = (await listMultipartUploads(store, prefix.normalize('NFC'))).filter(
      (u) => olderThan === 0 || (u.initiated !== null && Date.parse(u.initiated) <= cutoff),
    );
    const aborted: string[] = [];
    if (args.abort) {
      await mapLimit(uploads, 8, async (u) => {
        await abortMultipartUpload(store, u.key, u.uploadId).then(
          () => aborted.push(u.uploadId),
          (err: { code?: string }) => {
            if (err?.code !== 'not_found') throw err; // completed or aborted meanwhile: nothing left to abort
          },
        );
      });
    }
    return { body: { uploads, aborted } };
  },
});
