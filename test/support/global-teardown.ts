// Removes the run's temporary folder (see global-setup.ts); KEEP_TEST_TMP=1 keeps it to read the
// hosts' logs and data after a failure.
import fs from 'node:fs';

export default function globalTeardown(): void {
  const root = process.env.AWS_STORAGE_TEST_TMP;
  if (!root) return;
  const was = process.env.AWS_STORAGE_TEST_TMP_WAS;
  if (was) process.env.TMPDIR = was;
  else delete process.env.TMPDIR;
  if (process.env.KEEP_TEST_TMP === '1') {
    console.log(`test temp files kept in ${root}`);
    return;
  }
  fs.rmSync(root, { recursive: true, force: true, maxRetries: 3 });
}
