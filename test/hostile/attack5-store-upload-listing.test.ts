/**
 * Attack pass 6, end to end: ListMultipartUploads paged through the uploads of one key by a marker
 * that did not follow its own order (the store's own paging test: attack4-multipart-index). A user who
 * started more than 1000 uploads of one name hid some of them from admin-multipart-uploads, and so
 * from the abort a user's removal makes (their part links kept writing parts until a later sweep).
 */
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { mapLimit } from '../../src/lib/storage';
import { startHarness } from './harness';

jest.setTimeout(120_000);

test('through the socket: 1005 uploads a user started of one name are all listed, and aborted, by admin-multipart-uploads', async () => {
  const h = await startHarness({ users: ['mallory'] });
  try {
    const [mallory] = h.users;
    const ids = await mapLimit(Array.from({ length: 1005 }, (_, i) => i), 8, async () => {
      const r = await h.call('user-multipart-start', { userKey: mallory.user_key, args: { name: 'same.bin', size: 10 } });
      expect(r.status).toBe(200);
      return r.body.uploadId as string;
    });
    expect(ids.length).toBe(1005);
    const r = await h.call('admin-multipart-uploads', { adminKey: h.adminKey, args: { prefix: `${mallory.id}/`, abort: true } });
    expect(r.status).toBe(200);
    const listed = (r.body.uploads as Array<{ uploadId: string }>).map((u) => u.uploadId);
    expect([listed.length, new Set(listed).size, (r.body.aborted as string[]).length]).toEqual([1005, 1005, 1005]);
    const left = await h.s3.send(new ListMultipartUploadsCommand({ Bucket: h.bucket, Prefix: `${mallory.id}/` }));
    expect(left.Uploads ?? []).toEqual([]);
  } finally {
    await h.close();
  }
});
