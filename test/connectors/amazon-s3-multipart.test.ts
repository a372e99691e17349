// The S3 connector's multipart upload (connectors/amazon-s3/multipart.ts) against a real
// store: Ceph RGW when S3_ENDPOINT is set (.ci/run), else the embedded s3rver. The client
// is the SDK's own, with `send` observed (and, for the failure cases, one part made to
// fail) so that the order of the requests can be checked.
import t from 'tap';
import { createHash } from 'node:crypto';
import {
  S3Client,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
} from '@aws-sdk/client-s3';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { partSizeFor, uploadMultipart } from '../../connectors/amazon-s3/multipart.js';
import { createS3Client } from '../../connectors/amazon-s3/client.js';
import { capturingLogger, memoryBody, memoryResources } from '../../runtime/sdk/testing/index.js';
import { patterned, realS3, s3Store, sha256, type TestStore } from '../helpers/s3-store.js';

const MiB = 1024 * 1024;

interface Sent {
  command: string;
  part?: number;
  at: 'start' | 'end';
  inFlight: number;
}

/** An SDK client whose requests are recorded; `failPart` makes that UploadPart fail. */
function observed(client: S3Client, options: { failPart?: number } = {}) {
  const log: Sent[] = [];
  let inFlight = 0;
  const send = client.send.bind(client) as (command: unknown, options?: unknown) => Promise<unknown>;
  (client as unknown as { send: typeof send }).send = async (command: unknown, sendOptions?: unknown) => {
    const name = (command as object).constructor.name.replace(/Command$/, '');
    const part = (command as { input: { PartNumber?: number } }).input.PartNumber;
    inFlight++;
    log.push({ command: name, part, at: 'start', inFlight });
    try {
      if (name === 'UploadPart' && part === options.failPart) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        throw Object.assign(new Error('the store fell over'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } });
      }
      return await send(command, sendOptions);
    } finally {
      inFlight--;
      log.push({ command: name, part, at: 'end', inFlight });
    }
  };
  return log;
}

/** The test store and its bucket; s3rver has no AbortMultipartUpload (405): only a real store can show the cleanup. */
async function store(t: { teardown(fn: () => unknown): void }): Promise<TestStore & { cleansUp: boolean }> {
  return { ...(await s3Store(t, 'quark-mp')), cleansUp: realS3 };
}

const request = (client: S3Client, bucket: string, key: string, bytes: Buffer, extra: Partial<Parameters<typeof uploadMultipart>[0]> = {}) => ({
  client,
  bucket,
  key,
  body: memoryBody(bytes),
  contentType: 'application/octet-stream',
  metadata: { origin: 'test' },
  ifNoneMatch: false,
  concurrency: 2,
  partSize: 5 * MiB,
  signal: new AbortController().signal,
  onProgress: () => undefined,
  resources: memoryResources(),
  log: capturingLogger([]),
  ...extra,
});

/** context.resources that also logs its holds and releases among the requests, to check their order. */
function recordingResources(log: Sent[]) {
  const resources = memoryResources();
  return {
    held: resources.held,
    async hold(resource: Parameters<typeof resources.hold>[0]) {
      const handle = await resources.hold(resource);
      log.push({ command: 'hold', at: 'end', inFlight: 0 });
      return { id: handle.id, release: async () => { log.push({ command: 'release', at: 'end', inFlight: 0 }); await handle.release(); } };
    },
  };
}

const pending = (log: Sent[]) => log.filter((e) => e.command === 'UploadPart' && e.at === 'end').at(-1);

const initiated = '<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>';

/** A stand-in S3 endpoint on loopback, closed with the test; resolves to its URL. */
async function standIn(t: { teardown(fn: () => unknown): void }, handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler!);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

t.test('part sizes: 16 MiB by default, never below 5 MiB, raised to fit 5 TiB in 10,000 parts', async (t) => {
  t.equal(partSizeFor(1), 16 * MiB);
  t.equal(partSizeFor(1024 * MiB), 16 * MiB);
  t.equal(partSizeFor(1024 * MiB, 5 * MiB), 5 * MiB);
  t.equal(partSizeFor(1024 * MiB, 1 * MiB), 5 * MiB, 'S3\'s minimum');
  t.equal(partSizeFor(100 * 1024 * MiB, 5 * MiB), 11 * MiB, '100 GiB does not fit in 10,000 parts of 5 MiB');
  const fiveTiB = 5 * 1024 * 1024 * MiB;
  t.equal(partSizeFor(fiveTiB), 525 * MiB);
  t.ok(Math.ceil(fiveTiB / partSizeFor(fiveTiB)) <= 10_000);
});

t.test(`multipart upload against ${realS3 ? 'a real S3 server' : 'the embedded s3rver'}`, async (t) => {
  const { client, bucket, cleansUp } = await store(t);

  t.test('every part lands once, at most `concurrency` at a time, and the bytes come back intact', async (t) => {
    const c = client();
    const log = observed(c);
    const bytes = patterned(23 * MiB);
    const progress: number[] = [];
    const resources = recordingResources(log);
    const done = await uploadMultipart(request(c, bucket, 'parts.bin', bytes, { concurrency: 3, onProgress: (n) => progress.push(n), resources }));
    const order = log.filter((e) => e.at === 'start' || e.command === 'hold' || e.command === 'release').map((e) => e.command);
    t.same([order.indexOf('CreateMultipartUpload'), order.indexOf('hold')], [0, 1], 'the upload is held for recovery before its first part');
    t.equal(order.at(-1), 'release', 'and released after the completion');
    t.match(resources.held, [{ kind: 'multipart-upload', data: { bucket, key: 'parts.bin', uploadId: /./ }, released: true }]);
    const head = await c.send(new HeadObjectCommand({ Bucket: bucket, Key: 'parts.bin' }));
    t.equal(done.etag, head.ETag, 'the object\'s ETag');
    const parts = log.filter((e) => e.command === 'UploadPart' && e.at === 'start').map((e) => e.part).sort((a, b) => a! - b!);
    t.same(parts, [1, 2, 3, 4, 5], '23 MiB in 5 MiB parts: five parts, each sent once');
    t.ok(Math.max(...log.filter((e) => e.command === 'UploadPart').map((e) => e.inFlight)) <= 3, 'never more than 3 parts in flight');
    t.same(progress.at(-1), bytes.length, 'progress ends at the size');
    t.same([...progress].sort((a, b) => a - b), progress, 'progress only grows');
    const got = await c.send(new GetObjectCommand({ Bucket: bucket, Key: 'parts.bin' }));
    const back = Buffer.from(await got.Body!.transformToByteArray());
    t.equal(sha256(back), sha256(bytes), 'same bytes');
    t.equal(got.Metadata?.origin, 'test', 'metadata set');
    await c.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'parts.bin' }));
  });

  t.test('a failing part stops the others, and the upload is aborted only after every part in flight has settled', async (t) => {
    const c = client();
    const log = observed(c, { failPart: 3 });
    const bytes = Buffer.alloc(40 * MiB, 7);
    const resources = recordingResources(log);
    await t.rejects(uploadMultipart(request(c, bucket, 'failing.bin', bytes, { concurrency: 2, resources })), { name: 'InternalError', message: 'the store fell over' }, 'the part\'s own error, not an abort');
    t.match(resources.held, [{ kind: 'multipart-upload', released: true }], 'released once the store confirmed the abort (s3rver: cannot abort, nothing to keep)');
    t.ok(log.findIndex((e) => e.command === 'release') > log.findIndex((e) => e.command === 'AbortMultipartUpload'), 'after the abort');
    const abortAt = log.findIndex((e) => e.command === 'AbortMultipartUpload' && e.at === 'start');
    t.ok(abortAt > 0, 'the upload is aborted');
    t.ok(log.indexOf(pending(log)!) < abortAt, 'no part ends after the abort starts');
    t.notOk(log.slice(abortAt).some((e) => e.command === 'UploadPart'), 'no part is sent after the abort');
    t.ok(log.filter((e) => e.command === 'UploadPart' && e.at === 'start').length < 8, 'the remaining parts were not sent');
    t.notOk(log.some((e) => e.command === 'CompleteMultipartUpload'), 'nothing completed');
    if (cleansUp) {
      const uploads = (await c.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
      t.same(uploads.filter((u) => u.Key === 'failing.bin'), [], 'no incomplete upload left');
    }
  });

  t.test('a cancel during the upload aborts it, and the error is the cancel', async (t) => {
    const c = client();
    const log = observed(c);
    const controller = new AbortController();
    const bytes = Buffer.alloc(40 * MiB, 9);
    const upload = uploadMultipart(request(c, bucket, 'cancelled.bin', bytes, { signal: controller.signal, onProgress: () => controller.abort() }));
    await t.rejects(upload, { name: 'AbortError' });
    t.ok(log.some((e) => e.command === 'AbortMultipartUpload'), 'aborted');
    t.notOk(log.some((e) => e.command === 'CompleteMultipartUpload'), 'nothing completed');
    if (cleansUp) {
      const uploads = (await c.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
      t.same(uploads.filter((u) => u.Key === 'cancelled.bin'), [], 'no incomplete upload left');
    }
  });

  t.test('with checksums on (the SDK\'s default against AWS), every part carries its CRC32 and so does the completion', async (t) => {
    const c = client({ requestChecksumCalculation: 'WHEN_SUPPORTED' });
    const headers: Record<string, string>[] = [];
    let echoed = 0;
    let completion = '';
    c.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { headers: Record<string, string>; query: Record<string, unknown>; body?: unknown };
        if ('partNumber' in request.query) headers.push({ ...request.headers });
        if ('uploadId' in request.query && typeof request.body === 'string') completion = request.body;
        const result = await next(args);
        if ('partNumber' in request.query && (result.response as { headers: Record<string, string> }).headers['x-amz-checksum-crc32']) echoed++;
        return result;
      },
      { step: 'finalizeRequest', name: 'recordHeaders' },
    );
    const bytes = Buffer.alloc(11 * MiB, 3);
    await uploadMultipart(request(c, bucket, 'checksummed.bin', bytes));
    t.equal(headers.length, 3, 'three parts');
    t.ok(headers.every((h) => /^[A-Za-z0-9+/]{6}==$/.test(h['x-amz-checksum-crc32'] ?? '')), 'each part has its CRC32');
    // a store that checks them answers each part with its checksum (AWS); Ceph 16 and s3rver do not
    t.equal(completion.split('<ChecksumCRC32>').length - 1, echoed, 'the completion lists every checksum the store answered with');
    const back = await c.send(new GetObjectCommand({ Bucket: bucket, Key: 'checksummed.bin' }));
    t.equal(sha256(Buffer.from(await back.Body!.transformToByteArray())), sha256(bytes), 'same bytes');
  });

  t.test('a signal aborted before the start sends nothing', async (t) => {
    const c = client();
    const log = observed(c);
    await t.rejects(uploadMultipart(request(c, bucket, 'never.bin', Buffer.alloc(6 * MiB), { signal: AbortSignal.abort() })), { name: 'AbortError' });
    t.same(log, []);
  });
});

// A store that starts the upload, then stops reading a part (as an RGW with a full OSD
// did): the part fails with a timeout once its socket has moved nothing for
// socketTimeoutMs, and the upload is aborted, instead of hanging until the operation's
// time limit.
t.test('a store that stops reading a part: the upload fails with a timeout and is aborted', async (t) => {
  const seen: string[] = [];
  const endpoint = await standIn(t, (request, response) => {
    const url = new URL(request.url!, 'http://x');
    seen.push(`${request.method} ${url.searchParams.has('uploads') ? 'create' : url.searchParams.has('partNumber') ? 'part' : url.searchParams.has('uploadId') ? 'upload' : url.pathname}`);
    if (request.method === 'POST' && url.searchParams.has('uploads')) {
      response.setHeader('content-type', 'application/xml');
      response.end(initiated);
    } else if (request.method === 'PUT') {
      request.pause(); // never reads the part, never answers
    } else if (request.method === 'DELETE') {
      response.statusCode = 204;
      response.end();
    } else {
      response.statusCode = 404;
      response.setHeader('content-type', 'application/xml');
      response.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code><Message></Message></Error>');
    }
  });
  const { client, transport } = createS3Client(
    { awsAccessKey: 'AKIAQUARKTEST0000000', awsSecretKey: 'secret', region: 'us-east-1', bucket: 'b', endpoint, forcePathStyle: true },
    {},
    // idle for 3 s: the stand-in answers the create at once, and a busy machine does not
    // leave a socket idle that long before the part stalls it for good
    { maxAttempts: 1, socketTimeoutMs: 3000 },
  );
  t.teardown(() => {
    client.destroy();
    transport.destroy();
  });
  // no operation time limit is set here: only the socket timeout can end the upload
  const resources = memoryResources();
  await t.rejects(uploadMultipart(request(client, 'b', 'k', Buffer.alloc(12 * MiB, 1), { concurrency: 1, resources })), { name: 'TimeoutError' });
  t.match(resources.held, [{ kind: 'multipart-upload', data: { bucket: 'b', key: 'k', uploadId: 'u1' }, released: true }], 'the abort was confirmed (NoSuchUpload): the record goes');
  t.same(seen.slice(0, 2), ['POST create', 'PUT part']);
  t.ok(seen.includes('DELETE upload'), 'the upload is aborted');
});

// AWS answers each part with the checksum it verified; neither s3rver nor Ceph 16 does.
// A stand-in store that answers as AWS documents it: the completion must list them.
t.test('a store that answers each part with its CRC32 gets every one back in the completion', async (t) => {
  const sent: string[] = [];
  let completion = '';
  const endpoint = await standIn(t, (request, response) => {
    const url = new URL(request.url!, 'http://x');
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      response.setHeader('content-type', 'application/xml');
      if (request.method === 'POST' && url.searchParams.has('uploads')) {
        response.end(initiated);
      } else if (request.method === 'PUT') {
        const crc = String(request.headers['x-amz-checksum-crc32']);
        sent[Number(url.searchParams.get('partNumber')) - 1] = crc;
        response.setHeader('etag', `"${createHash('md5').update(Buffer.concat(chunks)).digest('hex')}"`);
        response.setHeader('x-amz-checksum-crc32', crc);
        response.end();
      } else {
        completion = Buffer.concat(chunks).toString();
        response.end('<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>"x-3"</ETag></CompleteMultipartUploadResult>');
      }
    });
  });
  const c = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: { accessKeyId: 'AKIAQUARKTEST0000000', secretAccessKey: 'secret' }, requestChecksumCalculation: 'WHEN_SUPPORTED', responseChecksumValidation: 'WHEN_REQUIRED' });
  t.teardown(() => c.destroy());
  const bytes = patterned(11 * MiB);
  const done = await uploadMultipart(request(c, 'b', 'k', bytes));
  t.equal(done.etag, '"x-3"');
  t.equal(new Set(sent).size, 3, 'three parts, three different checksums');
  t.same([...completion.matchAll(/<ChecksumCRC32>([^<]+)<\/ChecksumCRC32>/g)].map((m) => m[1]), sent, 'each part\'s checksum, in order');
});

// The store goes away after the first part: the abort cannot be confirmed within its
// retries, so the upload stays held, for the runtime's recovery to abort later.
t.test('an abort the store never confirms leaves the upload held for recovery', async (t) => {
  const seen: string[] = [];
  let parts = 0;
  const endpoint = await standIn(t, (request, response) => {
    const url = new URL(request.url!, 'http://x');
    request.resume();
    request.on('end', () => {
      response.setHeader('content-type', 'application/xml');
      if (request.method === 'POST' && url.searchParams.has('uploads')) return response.end(initiated);
      if (request.method === 'PUT' && ++parts === 1) {
        response.setHeader('etag', '"0123456789abcdef0123456789abcdef"');
        return response.end();
      }
      seen.push(`${request.method} ${url.searchParams.has('partNumber') ? 'part' : 'upload'}`);
      response.statusCode = 503;
      response.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>down</Message></Error>');
    });
  });
  const { client, transport } = createS3Client({ awsAccessKey: 'AKIAQUARKTEST0000000', awsSecretKey: 'secret', region: 'us-east-1', bucket: 'b', endpoint, forcePathStyle: true }, {}, { maxAttempts: 1 });
  t.teardown(() => {
    client.destroy();
    transport.destroy();
  });
  const resources = memoryResources();
  const lines: Parameters<typeof capturingLogger>[0] = [];
  await t.rejects(uploadMultipart(request(client, 'b', 'k', Buffer.alloc(12 * MiB, 1), { concurrency: 1, resources, log: capturingLogger(lines) })), { name: 'ServiceUnavailable' });
  t.equal(seen.filter((s) => s === 'DELETE upload').length, 10, 'ten aborts, none confirmed');
  t.match(resources.held, [{ kind: 'multipart-upload', data: { uploadId: 'u1' }, released: false }], 'still held: the runtime aborts it later');
  t.match(lines, [{ level: 'warn', message: /could not be aborted; the runtime will abort it later/ }]);
});
