/**
 * Presigned-link throughput: (a) getSignedUrl(new GetObjectCommand) per link, (b) @smithy/signature-v4
 * SignatureV4.presign per link, (c) src/lib/presign.ts createPresigner. 1000-key batches, warm-up,
 * several rounds, median links/s. Run: node --import tsx scripts/bench/presign.bench.ts [--rounds N]
 */
import { S3Client, GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { SignatureV4 } from '@smithy/signature-v4';
import { HttpRequest, escapeUri } from '@smithy/core/protocols';
import { Hash } from '@smithy/core/serde';
import { formatUrl } from '@aws-sdk/core/util';
import { createPresigner, PresignTarget } from '../../src/lib/presign';

export interface PresignBenchRow {
  name: string;
  linksPerSec: number;
  /** median time for one 1000-link batch, ms */
  batchMs: number;
  /** this row's links/s divided by (a)'s */
  ratioVsGetSignedUrl: number;
  /** this row's links/s divided by (b)'s */
  ratioVsSignatureV4: number;
}

const BATCH = 1000;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Another implementation measured in the same interleaved rounds: one call signs a batch and returns the links' total length. */
export interface ExtraImpl {
  name: string;
  batch: () => Promise<number>;
  /** links one batch makes (default: the batch size) */
  links?: number;
}

/** The 1000 keys every row signs (also used by scripts/bench/run.ts, so the handler signs the same names). */
export function presignBenchKeys(n = BATCH): string[] {
  return Array.from({ length: n }, (_, i) => `user-${i % 97}/photos/2024/IMG ${i} (ü€).jpg`);
}

export async function benchPresign(
  opts: { rounds?: number; budgetMs?: number; extra?: ExtraImpl[]; /** links per batch, default 1000 */ batchSize?: number } = {},
): Promise<PresignBenchRow[]> {
  const rounds = Math.max(1, opts.rounds ?? 7);
  const budgetMs = opts.budgetMs ?? 20_000; // stop adding rounds past this (a) is the slow one
  const target: PresignTarget = {
    accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
    secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    region: 'eu-central-1',
    endpoint: 'http://127.0.0.1:4569',
    forcePathStyle: true,
    bucket: 'bench-bucket',
  };
  const batchSize = Math.max(1, opts.batchSize ?? BATCH);
  const keys = presignBenchKeys(batchSize);
  const expiresIn = 3600;

  const client = new S3Client({
    region: target.region,
    endpoint: target.endpoint,
    forcePathStyle: target.forcePathStyle,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const signer = new SignatureV4({
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    region: target.region,
    service: 's3',
    sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: false,
    applyChecksum: false,
  });
  const presign = createPresigner(target);
  const url = new URL(target.endpoint as string);

  const impls: ExtraImpl[] = [
    {
      name: '(a) getSignedUrl(GetObjectCommand)',
      batch: async () => {
        let n = 0;
        for (const Key of keys) n += (await getSignedUrl(client, new GetObjectCommand({ Bucket: target.bucket, Key }), { expiresIn })).length;
        return n;
      },
    },
    {
      name: '(b) @smithy/signature-v4 presign',
      batch: async () => {
        let n = 0;
        for (const key of keys) {
          const req = new HttpRequest({
            method: 'GET',
            protocol: url.protocol,
            hostname: url.hostname,
            port: Number(url.port),
            path: `/${target.bucket}/${key.split('/').map(escapeUri).join('/')}`,
            query: { 'x-id': 'GetObject' },
            headers: { host: url.host, 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD' },
          });
          n += formatUrl(await signer.presign(req, { expiresIn })).length;
        }
        return n;
      },
    },
    {
      name: '(c) createPresigner (src/lib/presign)',
      batch: async () => {
        let n = 0;
        for (const key of keys) n += presign({ method: 'GET', key, expiresIn }).length;
        return n;
      },
    },
    ...(opts.extra ?? []),
  ];

  // sanity: (c) equals (a) for the same second (retry if the clock ticked between them)
  for (let attempt = 0; ; attempt++) {
    const a = await getSignedUrl(client, new GetObjectCommand({ Bucket: target.bucket, Key: keys[1] }), { expiresIn });
    const c = presign({ method: 'GET', key: keys[1], expiresIn });
    if (a === c) break;
    if (attempt >= 3) throw new Error(`presign bench: createPresigner disagrees with getSignedUrl:\n${a}\n${c}`);
  }

  const samples: number[][] = impls.map(() => []);
  // warm-up: one batch of (a) (slow, and it warms the shared crypto paths), up to 5 of (b) and (c) so the JIT settles
  await impls[0].batch();
  for (const impl of impls.slice(1)) {
    const w0 = Date.now();
    for (let k = 0; k < 5 && Date.now() - w0 < 1000; k++) await impl.batch();
  }
  const start = Date.now();
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < impls.length; i++) {
      const t0 = process.hrtime.bigint();
      await impls[i].batch();
      samples[i].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    if (Date.now() - start > budgetMs && r >= 2) break;
  }

  const batchMs = samples.map(median);
  const lps = batchMs.map((ms, i) => ((impls[i].links ?? batchSize) * 1000) / ms);
  return impls.map((impl, i) => ({
    name: impl.name,
    linksPerSec: Math.round(lps[i]),
    batchMs: Number(batchMs[i].toFixed(3)),
    ratioVsGetSignedUrl: Number((lps[i] / lps[0]).toFixed(2)),
    ratioVsSignatureV4: Number((lps[i] / lps[1]).toFixed(2)),
  }));
}

export function formatPresignTable(rows: PresignBenchRow[]): string {
  const head = ['implementation', 'links/s', 'ms/1000', 'x vs (a)', 'x vs (b)'];
  const body = rows.map((r) => [r.name, r.linksPerSec.toLocaleString('en-US'), r.batchMs.toFixed(2), r.ratioVsGetSignedUrl.toFixed(2), r.ratioVsSignatureV4.toFixed(2)]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

if (require.main === module) {
  const i = process.argv.indexOf('--rounds');
  const rounds = i > 0 ? Number(process.argv[i + 1]) : undefined;
  benchPresign({ rounds })
    .then((rows) => {
      console.log(`presign, ${BATCH}-key batches, median of rounds (node ${process.version})`);
      console.log(formatPresignTable(rows));
      const c = rows[2];
      console.log(`c/a = ${c.ratioVsGetSignedUrl}x, c/b = ${c.ratioVsSignatureV4}x`);
    })
    .catch((e) => {
      console.error(e);
      process.exitCode = 1;
    });
}
