// A standalone embedded store in its own process, so that a test can SIGKILL it mid-upload.
// env: STORE_PORT, STORE_DIR, STORE_KEY_ID, STORE_SECRET, STORE_BUCKET. Prints "READY <endpoint>".
import { startEmbeddedStore } from '../../scripts/s3/embedded-store';

startEmbeddedStore({
  port: Number(process.env.STORE_PORT ?? 0),
  dataDir: process.env.STORE_DIR,
  accessKeyId: process.env.STORE_KEY_ID,
  secretAccessKey: process.env.STORE_SECRET,
  buckets: process.env.STORE_BUCKET ? [process.env.STORE_BUCKET] : [],
}).then(
  (s) => process.stdout.write(`READY ${s.endpoint}\n`),
  (err) => {
    process.stderr.write(`store failed: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
