/**
 * The store the S3 connector's tests run against: Ceph RGW (or any S3) when S3_ENDPOINT,
 * S3_ACCESS_KEY and S3_SECRET_KEY are set (.ci/run, ../shared/tools/ceph-s3 DIR/s3.env),
 * else an embedded s3rver; with a fresh bucket, and bodies whose every 4 KiB differ.
 */
import { createHash } from 'node:crypto';
import S3rver from 's3rver';
import { S3Client, CreateBucketCommand } from '@aws-sdk/client-s3';
import { tempDir } from './quark.js';

const env = process.env as Record<string, string | undefined>;

/** Whether the tests run against a real S3 server (S3_ENDPOINT and its keys set). */
export const realS3 = Boolean(env.S3_ENDPOINT && env.S3_ACCESS_KEY && env.S3_SECRET_KEY);

export interface ClientOptions {
  /** The SDK's request checksums: WHEN_REQUIRED by default. */
  requestChecksumCalculation?: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED';
}

export interface TestStore {
  /** A new SDK client of the store (destroyed at teardown); path-style, request checksums only when required unless `options` asks for them. */
  client(options?: ClientOptions): S3Client;
  /** A bucket made for this test: `<prefix>-<time>`. */
  bucket: string;
  /** The store's endpoint and keys, for a client of one's own. */
  endpoint: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

/** The store (an s3rver started for this test when there is no real one) and a new bucket in it. */
export async function s3Store(t: { teardown(fn: () => unknown): void }, prefix: string): Promise<TestStore> {
  let endpoint = env.S3_ENDPOINT;
  let credentials = { accessKeyId: env.S3_ACCESS_KEY ?? '', secretAccessKey: env.S3_SECRET_KEY ?? '' };
  if (!realS3) {
    const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: tempDir(t, 'quark-s3rver-') });
    const { port } = (await server.run()) as { port: number };
    t.teardown(() => server.close());
    endpoint = `http://127.0.0.1:${port}`;
    credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  }
  const client = (options: ClientOptions = {}) => {
    const c = new S3Client({ region: env.S3_REGION ?? 'us-east-1', endpoint, forcePathStyle: true, credentials, requestChecksumCalculation: options.requestChecksumCalculation ?? 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    t.teardown(() => c.destroy());
    return c;
  };
  const bucket = `${prefix}-${Date.now().toString(36)}`;
  await client().send(new CreateBucketCommand({ Bucket: bucket }));
  return { client, bucket, endpoint: endpoint!, credentials };
}

/** Bytes that differ in every 4 KiB, so that parts in the wrong order or place show. */
export function patterned(size: number, seed = 0): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i + 4 <= bytes.length; i += 4096) bytes.writeUInt32BE((i + seed) >>> 0, i);
  return bytes;
}

export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
