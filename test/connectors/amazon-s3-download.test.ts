// The S3 connector's Get in parallel ranged GETs (connectors/amazon-s3/download.ts)
// against a real store: Ceph RGW when S3_ENDPOINT is set (.ci/run), else the embedded
// s3rver. The client is the SDK's own, with `send` observed (and, for the failure cases,
// a part's answer broken) so that the requests can be checked.
import t from 'tap';
import { Readable, Transform, Writable, pipeline } from 'node:stream';
import { pipeline as pipelineDone } from 'node:stream/promises';
import { type S3Client, PutObjectCommand } from '@aws-sdk/client-s3';
import { download, DownloadError } from '../../connectors/amazon-s3/download.js';
import { patterned, realS3 as real, s3Store, sha256 as sha } from '../helpers/s3-store.js';
import type { PositionalBody } from '../../runtime/sdk/index.js';

const MiB = 1024 * 1024;

interface Get {
  range?: string;
  ifMatch?: string;
  at: 'start' | 'end';
  inFlight: number;
}

type Breaker = (get: { range?: string; try: number }) => 'refuse' | 'break' | undefined;

/** Counts the bytes the client's GetObject bodies hand on (through a 64 KiB buffer), in `count.bytes`. */
function counted(client: S3Client, count: { bytes: number }) {
  const send = client.send.bind(client) as (command: unknown, options?: unknown) => Promise<unknown>;
  (client as unknown as { send: typeof send }).send = async (command: unknown, options?: unknown) => {
    const response = (await send(command, options)) as { Body: Readable };
    const counter = new Transform({
      highWaterMark: 64 * 1024,
      transform(chunk: Buffer, _encoding, done) {
        count.bytes += chunk.length;
        done(null, chunk);
      },
    });
    response.Body = pipeline(response.Body, counter, () => undefined);
    return response;
  };
}

/** Records the client's GetObjects; `breaker` makes one refuse (HTTP 500) or break after 64 KiB of its body. */
function observed(client: S3Client, breaker: Breaker = () => undefined) {
  const log: Get[] = [];
  const tries = new Map<string, number>();
  let inFlight = 0;
  const send = client.send.bind(client) as (command: unknown, options?: unknown) => Promise<unknown>;
  (client as unknown as { send: typeof send }).send = async (command: unknown, options?: unknown) => {
    const input = (command as { input: { Range?: string; IfMatch?: string } }).input;
    const start = input.Range?.replace(/-.*/, '') ?? 'all';
    tries.set(start, (tries.get(start) ?? 0) + 1);
    inFlight++;
    log.push({ range: input.Range, ifMatch: input.IfMatch, at: 'start', inFlight });
    try {
      const fault = breaker({ range: input.Range, try: tries.get(start)! });
      if (fault === 'refuse') throw Object.assign(new Error('the store fell over'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } });
      const response = (await send(command, options)) as { Body: Readable };
      if (fault === 'break') response.Body = brokenAfter(response.Body, 64 * 1024);
      return response;
    } finally {
      inFlight--;
      log.push({ range: input.Range, at: 'end', inFlight });
    }
  };
  return log;
}

/** The first `bytes` of a body, then a connection reset. */
function brokenAfter(body: Readable, bytes: number): Readable {
  return Readable.from(
    (async function* () {
      let sent = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        const room = bytes - sent;
        yield chunk.subarray(0, room);
        sent += Math.min(room, chunk.length);
        if (sent >= bytes) break;
      }
      body.destroy();
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    })(),
  );
}
const never = new AbortController().signal;

async function drain(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

t.test(`Get in ranged parts against ${real ? 'a real S3 server' : 'the embedded s3rver'}`, async (t) => {
  const { client, bucket } = await s3Store(t, 'quark-get');
  const put = (key: string, bytes: Buffer) => client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentLength: bytes.length }));
  const request = (c: S3Client, key: string, extra: Partial<Parameters<typeof download>[0]> = {}) => ({ client: c, bucket, key, partSize: MiB, concurrency: 3, signal: never, ...extra });

  t.test('an object that fits in one part is one GET', async (t) => {
    const bytes = patterned(MiB - 10);
    await put('small.bin', bytes);
    const c = client();
    const log = observed(c);
    const got = await download(request(c, 'small.bin'));
    t.equal(got.size, bytes.length);
    t.equal(got.parts, 1);
    t.equal(sha(await drain(got.body as Readable)), sha(bytes), 'same bytes');
    t.equal(log.filter((g) => g.at === 'start').length, 1, 'one GET');
  });

  t.test('an empty object is one answer with no bytes', async (t) => {
    await put('empty.bin', Buffer.alloc(0));
    const got = await download(request(client(), 'empty.bin'));
    t.equal(got.size, 0);
    t.equal((await drain(got.body as Readable)).length, 0);
  });

  t.test('a larger object comes in parts, at most `concurrency` at once, each pinned to the ETag, in order', async (t) => {
    const bytes = patterned(7 * MiB + 12345);
    await put('large.bin', bytes);
    const c = client();
    const log = observed(c);
    const got = await download(request(c, 'large.bin'));
    t.equal(got.size, bytes.length, 'the size from Content-Range');
    t.equal(got.parts, 8);
    t.equal(sha(await drain(got.body as Readable)), sha(bytes), 'same bytes, in order');
    const starts = log.filter((g) => g.at === 'start');
    t.same(starts.map((g) => g.range).sort(), [0, 1, 2, 3, 4, 5, 6, 7].map((i) => `bytes=${i * MiB}-${Math.min(bytes.length, (i + 1) * MiB) - 1}`).sort(), 'each part once');
    t.equal(starts[0]!.ifMatch, undefined, 'the first GET asks for any version');
    t.ok(starts.slice(1).every((g) => g.ifMatch === got.head.ETag && g.ifMatch), 'the others for the first one\'s ETag');
    t.ok(Math.max(...log.map((g) => g.inFlight)) <= 3, 'never more than 3 GETs in flight');
  });

  t.test('a slow reader holds the download to its read-ahead, not to concurrency × part size', async (t) => {
    const bytes = patterned(24 * MiB, 5);
    await put('slow.bin', bytes);
    const c = client();
    const pulled = { bytes: 0 };
    counted(c, pulled);
    const readAhead = 256 * 1024;
    const got = await download(request(c, 'slow.bin', { partSize: 8 * MiB, concurrency: 3, readAhead }));
    const chunks: Buffer[] = [];
    let read = 0;
    let held = 0;
    // a reader slower than the store, taking a chunk a timer tick, as a pipeline to a slow disk would
    const slow = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _encoding, done) {
        chunks.push(chunk);
        read += chunk.length;
        held = Math.max(held, pulled.bytes - read);
        setTimeout(done, 1);
      },
    });
    await pipelineDone(got.body as Readable, slow);
    t.equal(sha(Buffer.concat(chunks)), sha(bytes), 'same bytes, in order');
    // the head part 256 KiB and the stream's 256 KiB, each part behind it its read-ahead, and a
    // few 64 KiB chunks in transit; before, the parts behind the head held their 8 MiB each,
    // and the head part pushed every chunk it got into the stream whether the reader wanted
    // it or not
    t.ok(held <= 3 * MiB + 2 * readAhead, `at most ${Math.round(held / 1024)} KiB fetched and not yet read`);
  });

  t.test('a part whose transfer breaks is asked for again from where it broke', async (t) => {
    const bytes = patterned(4 * MiB, 7);
    await put('broken.bin', bytes);
    const c = client();
    const log = observed(c, (g) => (g.range?.startsWith(`bytes=${2 * MiB}-`) && g.try === 1 ? 'break' : undefined));
    const got = await download(request(c, 'broken.bin'));
    t.equal(sha(await drain(got.body as Readable)), sha(bytes), 'same bytes');
    t.ok(log.some((g) => g.at === 'start' && g.range === `bytes=${2 * MiB + 64 * 1024}-${3 * MiB - 1}`), 'the retry starts at the byte the break reached');
  });

  t.test('a part refused three times fails the stream with the store\'s code', async (t) => {
    const bytes = patterned(4 * MiB, 9);
    await put('refused.bin', bytes);
    const c = client();
    const log = observed(c, (g) => (g.range?.startsWith(`bytes=${3 * MiB}-`) ? 'refuse' : undefined));
    const got = await download(request(c, 'refused.bin'));
    const error = await drain(got.body as Readable).then(() => undefined, (e: unknown) => e);
    t.type(error, DownloadError);
    t.match(error, { code: 'InternalError', message: /^Get refused\.bin: InternalError: part 4 of 4 failed 3 times: the store fell over$/ });
    t.equal(log.filter((g) => g.at === 'start' && g.range?.startsWith(`bytes=${3 * MiB}-`)).length, 3, 'three tries');
  });

  t.test('an object replaced during the download fails the stream (ObjectChanged), never mixes versions', async (t) => {
    const before = patterned(3 * MiB, 1);
    await put('changing.bin', before);
    // one part at a time: the second GET starts only once the first part has been read
    const got = await download(request(client(), 'changing.bin', { concurrency: 1 }));
    await put('changing.bin', patterned(3 * MiB, 2));
    const read = await drain(got.body as Readable).then((bytes) => ({ bytes }), (error: unknown) => ({ error }));
    if ('bytes' in read) {
      // Ceph RGW now and then still serves the replaced version right after the PUT (its
      // object cache), ETag and all: then every part is of that version, which is no mix
      t.equal(sha(read.bytes), sha(before), 'the store still served the first version: all of it, nothing of the second');
    } else {
      t.match(read.error, { code: 'ObjectChanged', message: /^Get changing\.bin: ObjectChanged: the object changed while it was downloaded \(part \d of 3/ });
    }
  });

  t.test('a cancel fails the stream with the cancel, and no GET starts after it', async (t) => {
    await put('cancelled.bin', patterned(6 * MiB, 3));
    const c = client();
    const log = observed(c);
    const controller = new AbortController();
    const got = await download(request(c, 'cancelled.bin', { concurrency: 2, signal: controller.signal }));
    const reading = drain(got.body as Readable).then(() => undefined, (e: unknown) => e);
    (got.body as Readable).once('data', () => controller.abort());
    t.match(await reading, { name: 'AbortError' });
    const before = log.length;
    await new Promise((resolve) => setImmediate(resolve));
    t.notOk(log.slice(before).some((g) => g.at === 'start'), 'nothing more is asked for');
    t.ok(log.filter((g) => g.at === 'start').length < 6, 'the remaining parts were not fetched');
  });

  t.test('a positional Get writes every part at its offset; a cancel stops the other parts', async (t) => {
    const bytes = patterned(5 * MiB + 3, 7);
    await put('positional.bin', bytes);
    const c = client();
    const log = observed(c);
    const got = await download(request(c, 'positional.bin', { positional: true }));
    t.equal(got.parts, 6);
    const out = Buffer.alloc(got.size);
    const body = got.body as PositionalBody;
    await body.writeTo({ write: async (chunk, position) => void out.set(chunk, position) });
    t.equal(sha(out), sha(bytes), 'the object byte for byte');
    t.ok(log.filter((g) => g.at === 'start').every((g) => g.ifMatch === got.head.ETag || g.range === `bytes=0-${MiB - 1}`), 'every part pinned to the first answer');

    const controller = new AbortController();
    const cancelled = await download(request(c, 'positional.bin', { positional: true, concurrency: 2, signal: controller.signal }));
    const before = log.length;
    const failed = await (cancelled.body as PositionalBody).writeTo({ write: async () => controller.abort() }).then(() => undefined, (e: unknown) => e);
    t.match(failed, { name: 'AbortError' });
    await new Promise((resolve) => setImmediate(resolve));
    t.ok(log.slice(before).filter((g) => g.at === 'start').length < 4, 'the remaining parts were not fetched');

    const full = await download(request(c, 'positional.bin', { positional: true, concurrency: 1 }));
    const start = log.length;
    const refused = await (full.body as PositionalBody).writeTo({ write: async () => { throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }); } }).then(() => undefined, (e: unknown) => e);
    t.match(refused, { code: 'WriteFailed', message: /^Get positional\.bin: WriteFailed: the download could not be written: no space left on device/ });
    t.equal(log.slice(start).filter((g) => g.at === 'start').length, 0, 'a failed write is not the store\'s: no GET asked again');
  });
});
