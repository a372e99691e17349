// The S3 connector's Copy inside a store (connectors/amazon-s3/copy.ts) against a real
// store: Ceph RGW when S3_ENDPOINT is set (.ci/run), else the embedded s3rver (which has
// CopyObject but no UploadPartCopy: the multipart copy is tested on the real store only,
// SKIPPED without S3_ENDPOINT). The client's `send` is observed, and can replace the source
// just before a copy request, so that the order of the requests can be checked.
import t from 'tap';
import { type S3Client, GetObjectCommand, ListMultipartUploadsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { copyObject, copySource } from '../../connectors/amazon-s3/copy.js';
import { capturingLogger, memoryResources } from '../../runtime/sdk/testing/index.js';
import { patterned, realS3 as real, s3Store, sha256 as sha } from '../helpers/s3-store.js';

const MiB = 1024 * 1024;

interface Sent {
  command: string;
  input: Record<string, unknown>;
  at: 'start' | 'end';
  inFlight: number;
}

/** Records the client's requests; `before(command)` runs first (to replace the source, or to fail a part). */
function observed(client: S3Client, before: (command: string, input: Record<string, unknown>) => Promise<void> | void = () => undefined) {
  const log: Sent[] = [];
  let inFlight = 0;
  const send = client.send.bind(client) as (command: unknown, options?: unknown) => Promise<unknown>;
  (client as unknown as { send: typeof send }).send = async (command: unknown, options?: unknown) => {
    const name = (command as object).constructor.name.replace(/Command$/, '');
    const input = (command as { input: Record<string, unknown> }).input;
    inFlight++;
    log.push({ command: name, input, at: 'start', inFlight });
    try {
      await before(name, input);
      return await send(command, options);
    } finally {
      inFlight--;
      log.push({ command: name, input, at: 'end', inFlight });
    }
  };
  return log;
}


t.test('the copy source header: bucket and key, each segment URL-encoded, and the version', async (t) => {
  t.equal(copySource('b', 'in/a b+c/ü.txt'), 'b/in/a%20b%2Bc/%C3%BC.txt');
  t.equal(copySource('b', 'k', 'v 1'), 'b/k?versionId=v%201');
});

t.test(`Copy against ${real ? 'a real S3 server' : 'the embedded s3rver'}`, async (t) => {
  const { client, bucket } = await s3Store(t, 'quark-copy');
  const admin = client();
  const put = (key: string, bytes: Buffer, extra: { ContentType?: string; Metadata?: Record<string, string> } = {}) => admin.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentLength: bytes.length, ...extra }));
  const read = async (key: string) => {
    const got = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return { bytes: Buffer.from(await got.Body!.transformToByteArray()), contentType: got.ContentType, metadata: got.Metadata };
  };
  const request = (c: S3Client, from: string, to: string, extra: Partial<Parameters<typeof copyObject>[0]> = {}) => ({
    client: c,
    source: { bucket, key: from },
    target: { bucket, key: to },
    threshold: 5120 * MiB,
    partSize: 5 * MiB,
    concurrency: 2,
    compatible: true,
    signal: new AbortController().signal,
    onProgress: () => undefined,
    resources: memoryResources(),
    log: capturingLogger([]),
    ...extra,
  });

  t.test('up to the threshold: one CopyObject pinned to the source\'s ETag, content type and metadata kept', async (t) => {
    const bytes = patterned(3 * MiB + 5);
    await put('in/a.bin', bytes, { ContentType: 'application/x-test', Metadata: { origin: 'copy-test' } });
    const c = client();
    const log = observed(c);
    const progress: number[] = [];
    const done = await copyObject(request(c, 'in/a.bin', 'out/a.bin', { onProgress: (n) => progress.push(n) }));
    t.match(done, { size: bytes.length, multipart: false, contentType: 'application/x-test', etag: /./ });
    const starts = log.filter((e) => e.at === 'start');
    t.same(starts.map((e) => e.command), ['HeadObject', 'CopyObject'], 'a HeadObject, then the store copies');
    t.match(starts[1]!.input, { CopySource: `${bucket}/in/a.bin`, CopySourceIfMatch: /./, MetadataDirective: 'COPY' });
    const copy = await read('out/a.bin');
    t.equal(sha(copy.bytes), sha(bytes), 'same bytes');
    t.equal(copy.contentType, 'application/x-test');
    t.same(copy.metadata, { origin: 'copy-test' });
    t.same(progress, [bytes.length]);
  });

  t.test('a source replaced between HeadObject and the copy: 412, nothing copied', { skip: !real && 's3rver ignores copy preconditions; set S3_ENDPOINT (.ci/run: Ceph RGW)' }, async (t) => {
    await put('in/b.bin', patterned(MiB, 1));
    const c = client();
    observed(c, async (command) => {
      if (command === 'CopyObject') await put('in/b.bin', patterned(MiB, 2));
    });
    const error = await copyObject(request(c, 'in/b.bin', 'out/b.bin')).then(() => undefined, (e: unknown) => e);
    t.match(error, { $metadata: { httpStatusCode: 412 } });
    await t.rejects(read('out/b.bin'), { name: 'NoSuchKey' }, 'no copy');
  });

  t.test('a missing source: the store\'s 404', async (t) => {
    const error = await copyObject(request(client(), 'in/none.bin', 'out/none.bin')).then(() => undefined, (e: unknown) => e);
    t.match(error, { $metadata: { httpStatusCode: 404 } });
  });

  t.test('above the threshold: UploadPartCopy ranges, at most `concurrency` at once, held until completed', { skip: !real && 's3rver has no UploadPartCopy; set S3_ENDPOINT (.ci/run: Ceph RGW)' }, async (t) => {
    const bytes = patterned(12 * MiB + 7, 3);
    await put('in/c.bin', bytes, { ContentType: 'text/x-big', Metadata: { origin: 'parts' } });
    const c = client();
    const log = observed(c);
    const resources = memoryResources();
    const progress: number[] = [];
    const done = await copyObject(request(c, 'in/c.bin', 'out/c.bin', { threshold: 5 * MiB, resources, onProgress: (n) => progress.push(n) }));
    t.match(done, { size: bytes.length, multipart: true, contentType: 'text/x-big' });
    const parts = log.filter((e) => e.command === 'UploadPartCopy' && e.at === 'start');
    t.same(parts.map((e) => e.input.CopySourceRange).sort(), ['bytes=0-5242879', 'bytes=10485760-12582918', 'bytes=5242880-10485759']);
    t.ok(parts.every((e) => typeof e.input.CopySourceIfMatch === 'string'), 'each part pinned to the source\'s ETag');
    t.ok(Math.max(...log.filter((e) => e.command === 'UploadPartCopy').map((e) => e.inFlight)) <= 2, 'never more than 2 parts in flight');
    t.match(resources.held, [{ kind: 'multipart-upload', data: { bucket, key: 'out/c.bin', uploadId: /./ }, released: true }], 'held for recovery, released after the completion');
    t.equal(progress.at(-1), bytes.length);
    const copy = await read('out/c.bin');
    t.equal(sha(copy.bytes), sha(bytes), 'same bytes');
    t.equal(copy.contentType, 'text/x-big');
    t.same(copy.metadata, { origin: 'parts' });
  });

  t.test('a source replaced during a multipart copy (RGW ignores the parts\' precondition; the source is asked again before the completion): the upload is aborted, nothing left', { skip: !real && 's3rver has no UploadPartCopy; set S3_ENDPOINT (.ci/run: Ceph RGW)' }, async (t) => {
    await put('in/d.bin', patterned(12 * MiB, 4));
    const c = client();
    let replaced = false;
    const log = observed(c, async (command) => {
      if (command === 'UploadPartCopy' && !replaced) {
        replaced = true;
        await put('in/d.bin', patterned(12 * MiB, 5));
      }
    });
    const resources = memoryResources();
    const error = await copyObject(request(c, 'in/d.bin', 'out/d.bin', { threshold: 5 * MiB, concurrency: 1, resources })).then(() => undefined, (e: unknown) => e);
    t.match(error, { $metadata: { httpStatusCode: 412 } });
    t.ok(log.some((e) => e.command === 'AbortMultipartUpload'), 'aborted');
    t.notOk(log.some((e) => e.command === 'CompleteMultipartUpload'), 'nothing completed');
    t.match(resources.held, [{ kind: 'multipart-upload', released: true }], 'released once the store confirmed the abort');
    const uploads = (await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
    t.same(uploads.filter((u) => u.Key === 'out/d.bin'), [], 'no incomplete upload left');
  });
});
