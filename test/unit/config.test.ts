import { parseConfig } from '../../src/lib/config';
import { StorageError } from '../../src/lib/errors';

const notConfigured = (raw: unknown, instance: unknown = 'inst') => {
  try {
    parseConfig(raw, instance);
  } catch (err) {
    if (err instanceof StorageError && err.code === 'not_configured') return err.message;
  }
  return undefined;
};

const KEYS = { AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'SECRET' };

describe('configuration (SPEC §5)', () => {
  test('no built-in key pair: without credentials the socket is not configured, and says which option', () => {
    expect(notConfigured({})).toBe('configuration option AWS_ACCESS_KEY_ID is required');
    expect(notConfigured({ AWS_ACCESS_KEY_ID: 'AK' })).toBe('configuration option AWS_SECRET_ACCESS_KEY is required');
    expect(notConfigured({ AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: 'S' })).toMatch(/AWS_ACCESS_KEY_ID/);
  });

  test('defaults', () => {
    expect(parseConfig(KEYS, 'my-app')).toEqual({
      accessKeyId: 'AK',
      secretAccessKey: 'SECRET',
      sessionToken: undefined,
      region: 'eu-central-1',
      bucket: 'my-app-bucket',
      endpoint: undefined,
      forcePathStyle: false,
      timeoutMs: 5000,
      expire: undefined,
      maxFileSize: 52428800,
      maxUploadSize: 5368709120,
      multipartExpireDays: 7,
      allowedContentTypes: undefined,
    });
  });

  test('MAX_UPLOAD_SIZE (up to S3\'s 5 TiB object) and MULTIPART_EXPIRE_DAYS (0: no lifecycle rule)', () => {
    expect(parseConfig({ ...KEYS, MAX_UPLOAD_SIZE: '10485760', MULTIPART_EXPIRE_DAYS: '0' }, 'x')).toMatchObject({ maxUploadSize: 10485760, multipartExpireDays: 0 });
    expect(parseConfig({ ...KEYS, MAX_UPLOAD_SIZE: String(5 * 1024 ** 4) }, 'x').maxUploadSize).toBe(5 * 1024 ** 4);
    for (const bad of [{ MAX_UPLOAD_SIZE: '0' }, { MAX_UPLOAD_SIZE: String(5 * 1024 ** 4 + 1) }, { MAX_UPLOAD_SIZE: '1.5' }, { MULTIPART_EXPIRE_DAYS: '-1' }]) {
      expect(() => parseConfig({ ...KEYS, ...bad }, 'x')).toThrow(new RegExp(`configuration option ${Object.keys(bad)[0]}`));
    }
  });

  test('strings from socket.yml are read as numbers, flags and lists; REGION is an alias', () => {
    const c = parseConfig(
      { ...KEYS, REGION: 'us-west-2', AWS_S3_ENDPOINT: 'http://127.0.0.1:9000/', EXPIRE: '60', MAX_FILE_SIZE: '1024', ALLOWED_CONTENT_TYPES: 'image/*, Text/Plain', AWS_S3_FORCE_PATH_STYLE: 'false' },
      'x',
    );
    expect(c).toMatchObject({ region: 'us-west-2', endpoint: 'http://127.0.0.1:9000', expire: 60, maxFileSize: 1024, forcePathStyle: false });
    expect(c.allowedContentTypes).toEqual(['image/*', 'text/plain']);
    expect(parseConfig({ ...KEYS, AWS_S3_ENDPOINT: 'http://h:1' }, 'x').forcePathStyle).toBe(true);
    expect(parseConfig({ ...KEYS, AWS_REGION: 'ap-south-1', REGION: 'us-west-2' }, 'x').region).toBe('ap-south-1');
  });

  test.each([
    [{ AWS_BUCKET: 'Bad_Bucket' }, 'AWS_BUCKET'],
    [{ AWS_S3_ENDPOINT: 'not a url' }, 'AWS_S3_ENDPOINT'],
    [{ EXPIRE: '0' }, 'EXPIRE'],
    [{ EXPIRE: '604801' }, 'EXPIRE'],
    [{ MAX_FILE_SIZE: '-1' }, 'MAX_FILE_SIZE'],
    [{ MAX_FILE_SIZE: 'lots' }, 'MAX_FILE_SIZE'],
    [{ ALLOWED_CONTENT_TYPES: 'images' }, 'ALLOWED_CONTENT_TYPES'],
    [{ AWS_S3_FORCE_PATH_STYLE: 'maybe' }, 'AWS_S3_FORCE_PATH_STYLE'],
  ])('%j is not_configured naming %s', (raw, option) => {
    expect(notConfigured({ ...KEYS, ...raw })).toContain(option);
  });

  test('no bucket and no instance names AWS_BUCKET; a secret never appears in the message', () => {
    expect(notConfigured(KEYS, null)).toContain('AWS_BUCKET');
    const message = notConfigured({ AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'hunter2', AWS_S3_ENDPOINT: 'hunter2' });
    expect(message).toContain('AWS_S3_ENDPOINT');
    expect(message).not.toContain('hunter2');
  });
});
