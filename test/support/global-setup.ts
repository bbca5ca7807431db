// One temporary folder per jest run: every test's temp files (host DATA_DIRs, embedded stores, user
// databases, browser profiles) go under it, because os.tmpdir() reads TMPDIR, which the workers inherit
// (they start after this). global-teardown.ts removes it, so a run leaves nothing in /tmp.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default function globalSetup(): void {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-storage-test-run-'));
  process.env.AWS_STORAGE_TEST_TMP = root;
  process.env.AWS_STORAGE_TEST_TMP_WAS = process.env.TMPDIR ?? '';
  process.env.TMPDIR = root;
}
