// The peer: a plain script on @aws-sdk/lib-storage (upload) and GetObject piped to a file
// (download), with the same part size and concurrency as the connector.
// usage: node bench/sdk-transfer.mjs upload|download <file> <bucket> <key>
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { performance } from 'node:perf_hooks';
import { S3Client, GetObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';

const [direction, file, bucket, key] = process.argv.slice(2);
const client = new S3Client({
  region: process.env.S3_REGION ?? 'us-east-1',
  endpoint: process.env.S3_ENDPOINT,
  forcePathStyle: true,
  credentials: { accessKeyId: process.env.S3_ACCESS_KEY, secretAccessKey: process.env.S3_SECRET_KEY },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const started = performance.now();
if (direction === 'upload') {
  const size = statSync(file).size;
  const partSize = Math.max(Number(process.env.PART_MB ?? 16) * 1048576, Math.ceil(size / 10000 / 1048576) * 1048576);
  await new Upload({ client, params: { Bucket: bucket, Key: key, Body: createReadStream(file, { highWaterMark: 1024 * 1024 }) }, partSize, queueSize: Number(process.env.CONCURRENCY ?? 4) }).done();
} else {
  const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  await pipeline(response.Body, createWriteStream(file));
}
console.log(JSON.stringify({ seconds: (performance.now() - started) / 1000, maxRssMb: process.resourceUsage().maxRSS / 1024 }));
