/** An SDK client for an S3-compatible store, for tests and benchmarks that check the store directly. */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

export interface StoreAddress {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** Path style, and checksums only where S3 requires them, as the socket's own client (SPEC §5). */
export function storeClient(store: StoreAddress, extra: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client({
    endpoint: store.endpoint,
    region: store.region,
    forcePathStyle: true,
    credentials: { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...extra,
  });
}
