/**
 * Get of one object in parallel ranged GETs. The first GET asks for the first part only
 * (`Range: bytes=0-<part size − 1>`): an object that fits in it is that one GET. A larger
 * one is fetched `concurrency` parts at a time, each pinned to the first answer's ETag
 * (`If-Match`, and the version when the store names one), and handed on in order as one
 * stream: the part at the head streams straight through at its reader's pace (its body is
 * read only while the reader wants more), and each part after it reads ahead at most
 * `readAhead` bytes into memory and then waits, its socket paused (the rest stays in the
 * kernel's buffers and on the server), until it is at the head. Memory is therefore bounded
 * by about (concurrency − 1) × read-ahead + 512 KiB whatever the object's and the part's size,
 * and a slow reader slows the sockets instead of piling bytes up in memory. A part
 * whose transfer breaks is asked for again from the byte it had reached (3 tries); a store
 * that answers 412, or another ETag, fails the stream: the object changed mid-download, and
 * its bytes would mix two versions.
 */
import { finished, Readable } from 'node:stream';
import { GetObjectCommand, type GetObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import type { PositionalBody, PositionalSink } from 'quark/sdk';
import { MiB } from './multipart.js';
import { RawBody } from './raw-get.js';

/** Tries per part (the SDK's own retries of a request that did not start come on top). */
const partTries = 3;

/** The default read-ahead of a part behind the head, in bytes. */
export const defaultReadAhead = 4 * MiB;

/** The head part's bytes held beyond what the reader has taken (the stream's own buffer comes on top). */
const headBuffer = 256 * 1024;

export interface DownloadRequest {
  client: S3Client;
  bucket: string;
  key: string;
  /** Bytes per ranged GET; also the largest object fetched in one GET. */
  partSize: number;
  /** Ranged GETs in flight at once. */
  concurrency: number;
  /** Bytes a part behind the head holds in memory before it waits (default 4 MiB). */
  readAhead?: number;
  /**
   * Whether a download of more than one part is a PositionalBody: each part written to its
   * place in the output as it comes, in parallel, nothing held in order (no read-ahead).
   */
  positional?: boolean;
  signal: AbortSignal;
}

export interface Download {
  /** The first answer: its metadata, content type, ETag and version are the object's. */
  head: GetObjectCommandOutput;
  /** The object's size in bytes. */
  size: number;
  /** The object's bytes: in order, or (`positional`, more than one part) written to their places. */
  body: Readable | PositionalBody;
  /** How many GETs the download takes. */
  parts: number;
}

/** A failure of a download that already answered: `code` says which (`ObjectChanged`, or the store's). */
export class DownloadError extends Error {
  constructor(
    message: string,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DownloadError';
  }
}

/** How much of its part a broken try had received (receive() records it on the error). */
function receivedBefore(error: unknown, before: number): number {
  const got = (error as { received?: unknown }).received;
  return typeof got === 'number' ? got : before;
}

const statusOf = (error: unknown) => (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

/** The total size from a Content-Range (`bytes 0-15/1234`), or undefined. */
function totalOf(contentRange: string | undefined): number | undefined {
  const match = /\/(\d+)$/.exec(contentRange ?? '');
  return match ? Number(match[1]) : undefined;
}

/**
 * Starts the download: resolves once the first GET answered (its failure rejects, as a
 * plain Get's would), with the body stream that fetches the rest.
 */
export async function download(request: DownloadRequest): Promise<Download> {
  const { client, bucket, key, partSize, signal } = request;
  let head: GetObjectCommandOutput;
  try {
    head = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=0-${partSize - 1}` }), { abortSignal: signal });
  } catch (error) {
    // an empty object has no byte 0: 416 InvalidRange; it is then one plain GET
    if (statusOf(error) !== 416) throw error;
    head = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
  }
  const first = head.ContentLength ?? 0;
  // a store that ignores Range answers 200 with the whole object
  const size = totalOf(head.ContentRange) ?? first;
  let body = head.Body as Readable;
  if (size === 0 && first > 0) {
    // s3rver answers a Range on an empty object with "bytes 0-0/0", a length of 1 and no byte
    body.destroy();
    body = Readable.from([]);
  }
  if (size <= first) return { head, size, body, parts: 1 };
  const parts = Math.ceil(size / partSize);
  if (request.positional) return { head, size, body: new PartWriter(request, head, body, size, parts), parts };
  return { head, size, body: new PartStream(request, head, body, size, parts), parts };
}

/**
 * Writes a body to `write` from `position` on and resolves to its bytes: a RawBody from its
 * connection's buffer, any other stream chunk by chunk. A failure carries `received`.
 */
async function writeBody(body: Readable, write: (bytes: Uint8Array, position: number) => Promise<void>, position: number): Promise<number> {
  if (body instanceof RawBody) return body.writeInto(write, position);
  let received = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      await write(chunk, position + received);
      received += chunk.length;
    }
  } catch (error) {
    throw Object.assign(error as Error, { received });
  }
  return received;
}

/** What the ranged GETs of one download share: the object's version, its size in parts, the errors. */
class Parts {
  readonly etag: string | undefined;
  readonly versionId: string | undefined;

  constructor(
    readonly request: DownloadRequest,
    head: GetObjectCommandOutput,
    readonly size: number,
    readonly count: number,
  ) {
    this.etag = head.ETag;
    this.versionId = head.VersionId;
  }

  range(index: number): { start: number; end: number } {
    const start = index * this.request.partSize;
    return { start, end: Math.min(this.size, start + this.request.partSize) - 1 };
  }

  /** A ranged GET of the same version of the object. */
  async get(index: number, range: string, signal: AbortSignal): Promise<Readable> {
    const response = await this.request.client.send(
      new GetObjectCommand({
        Bucket: this.request.bucket,
        Key: this.request.key,
        Range: range,
        ...(this.etag ? { IfMatch: this.etag } : {}),
        ...(this.versionId ? { VersionId: this.versionId } : {}),
      }),
      { abortSignal: signal },
    );
    // a store that ignores If-Match still names the object's ETag
    if (this.etag && response.ETag && response.ETag !== this.etag) {
      (response.Body as Readable).destroy();
      throw this.changed(index, `its ETag is now ${response.ETag}, was ${this.etag}`);
    }
    return response.Body as Readable;
  }

  /**
   * One part by ranged GETs, asked for again from where it broke, up to 3 tries, each
   * body read by `receive` (from the byte given, resolving to the part's bytes so far);
   * part 0 starts from the first GET's body.
   */
  async fetch(index: number, signal: AbortSignal, receive: (body: Readable, from: number) => Promise<number>, firstBody?: Readable): Promise<void> {
    const { start, end } = this.range(index);
    let received = 0;
    let body = firstBody;
    for (let attempt = 1; ; attempt++) {
      try {
        body ??= await this.get(index, `bytes=${start + received}-${end}`, signal);
        received = await receive(body, received);
        return;
      } catch (error) {
        if (error instanceof DownloadError || signal.aborted) throw error;
        if (statusOf(error) === 412) throw this.changed(index, `the store refused If-Match ${this.etag}`, error);
        received = receivedBefore(error, received);
        if (attempt >= partTries) throw this.partFailed(index, attempt, error);
        body = undefined;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  }

  changed(index: number, why: string, cause?: unknown): DownloadError {
    return new DownloadError(`Get ${this.request.key}: ObjectChanged: the object changed while it was downloaded (part ${index + 1} of ${this.count}: ${why}); its parts would mix two versions, so the Get failed: run it again`, 'ObjectChanged', { cause });
  }

  partFailed(index: number, tries: number, error: unknown): DownloadError {
    const code = (error as { name?: string; code?: string }).code ?? (error as { name?: string }).name ?? 'Error';
    const named = code === 'Error' ? 'PartFailed' : code;
    return new DownloadError(`Get ${this.request.key}: ${named}: part ${index + 1} of ${this.count} failed ${tries} times: ${(error as Error).message}`, named, { cause: error });
  }
}

/**
 * The object as a PositionalBody: `concurrency` lanes take the next part each, and write
 * its bytes to their place as they come (a RawBody from its socket's buffer, without a
 * copy). Memory: the lanes' socket buffers, whatever the part size. The first failure
 * stops the other lanes (their GETs aborted) and fails the body once they have stopped.
 */
class PartWriter implements PositionalBody {
  private readonly parts: Parts;

  constructor(
    private readonly request: DownloadRequest,
    head: GetObjectCommandOutput,
    private firstBody: Readable | undefined,
    readonly size: number,
    count: number,
  ) {
    this.parts = new Parts(request, head, size, count);
  }

  async writeTo(sink: PositionalSink): Promise<void> {
    const stop = new AbortController();
    const onAbort = () => stop.abort(this.request.signal.reason);
    this.request.signal.addEventListener('abort', onAbort, { once: true });
    if (this.request.signal.aborted) onAbort();
    let next = 0;
    let failure: unknown;
    const lane = async () => {
      while (next < this.parts.count && !stop.signal.aborted) {
        const index = next++;
        const first = index === 0 ? this.firstBody : undefined;
        this.firstBody = undefined;
        try {
          await this.part(index, sink, stop.signal, first);
        } catch (error) {
          failure ??= error;
          stop.abort(error);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.request.concurrency, this.parts.count) }, lane));
    } finally {
      this.request.signal.removeEventListener('abort', onAbort);
      this.firstBody?.destroy();
    }
    if (failure !== undefined || stop.signal.aborted) throw (failure ?? stop.signal.reason) as Error;
  }

  /**
   * A write to the runtime's sink; its failure (a full disk) is not the store's and is not
   * retried: a DownloadError `WriteFailed` (a cancel stays the cancel).
   */
  private async write(sink: PositionalSink, bytes: Uint8Array, position: number): Promise<void> {
    try {
      await sink.write(bytes, position);
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw error;
      throw new DownloadError(`Get ${this.request.key}: WriteFailed: the download could not be written: ${(error as Error).message}`, 'WriteFailed', { cause: error });
    }
  }

  /** One part's bytes to their place; its body is destroyed if the download stops meanwhile. */
  private part(index: number, sink: PositionalSink, signal: AbortSignal, firstBody?: Readable): Promise<void> {
    const { start, end } = this.parts.range(index);
    const length = end - start + 1;
    return this.parts.fetch(
      index,
      signal,
      async (body, from) => {
        const onAbort = () => body.destroy(signal.reason as Error);
        signal.addEventListener('abort', onAbort, { once: true });
        try {
          const received = from + (await writeBody(body, (bytes, position) => this.write(sink, bytes, position), start + from).catch((error: unknown) => {
            throw Object.assign(error as Error, { received: from + (receivedBefore(error, 0)) });
          }));
          if (received !== length) throw Object.assign(new Error(`part ${index + 1} ended after ${received} of its ${length} bytes`), { received });
          return received;
        } finally {
          signal.removeEventListener('abort', onAbort);
        }
      },
      firstBody,
    );
  }
}

interface Part {
  chunks: Buffer[];
  /** Bytes in `chunks`. */
  held: number;
  done: boolean;
  /** Set while the part's body is paused for want of room; called when there is. */
  wake?: () => void;
}

const newPart = (): Part => ({ chunks: [], held: 0, done: false });

/**
 * The object's bytes in order from parts fetched in parallel. Part i covers bytes
 * [i × part size, (i + 1) × part size); parts i + 1 … i + concurrency − 1 are fetched
 * while part i streams.
 */
class PartStream extends Readable {
  private readonly parts = new Map<number, Part>();
  private readonly stop = new AbortController();
  private readonly source: Parts;
  private readonly onAbort: () => void;
  /** The part being handed on. */
  private current = 0;
  /** The next part to start. */
  private next = 1;
  /**
   * Whether the reader asked for more (_read) since push() last said its buffer is full: a
   * chunk that arrives meanwhile stays with its part, which pauses its body, rather than
   * being pushed past the stream's limit.
   */
  private wanted = false;

  constructor(
    private readonly request: DownloadRequest,
    head: GetObjectCommandOutput,
    firstBody: Readable,
    private readonly size: number,
    private readonly count: number,
  ) {
    super({ highWaterMark: 256 * 1024 });
    this.source = new Parts(request, head, size, count);
    this.onAbort = () => this.destroy(request.signal.reason as Error);
    request.signal.addEventListener('abort', this.onAbort, { once: true });
    const part = newPart();
    this.parts.set(0, part);
    void this.fetch(0, part, firstBody).catch((error: unknown) => this.fail(error));
    this.startParts();
  }

  override _read(): void {
    this.wanted = true;
    this.handOn();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.request.signal.removeEventListener('abort', this.onAbort);
    this.stop.abort(error ?? new Error('the download was closed'));
    for (const part of this.parts.values()) this.wake(part);
    this.parts.clear();
    callback(error);
  }

  /** Starts parts up to `concurrency` ahead of the one being handed on. */
  private startParts(): void {
    while (this.next < this.count && this.next < this.current + this.request.concurrency && !this.destroyed) {
      const index = this.next++;
      const part = newPart();
      this.parts.set(index, part);
      void this.fetch(index, part).catch((error: unknown) => this.fail(error));
    }
  }

  /** Pushes what the head part has; moves on to the next part when it is done. */
  private handOn(): void {
    while (!this.destroyed) {
      const part = this.parts.get(this.current);
      if (!part) return;
      while (part.chunks.length > 0 && this.wanted) {
        const chunk = part.chunks.shift()!;
        part.held -= chunk.length;
        this.wanted = this.push(chunk);
      }
      if (part.held < headBuffer) this.wake(part);
      if (part.chunks.length > 0 || !part.done) return;
      this.parts.delete(this.current);
      this.current++;
      if (this.current === this.count) {
        this.request.signal.removeEventListener('abort', this.onAbort);
        this.push(null);
        return;
      }
      this.startParts();
    }
  }

  /** One part into its chunks (Parts.fetch: tries, If-Match); part 0 starts from the first GET's body. */
  private fetch(index: number, part: Part, firstBody?: Readable): Promise<void> {
    return this.source.fetch(index, this.stop.signal, (body, from) => this.receive(index, part, body, from), firstBody);
  }

  /**
   * Reads one response body into the part; resolves to the part's bytes received so far.
   * Its 'data' events are taken as they come (no async iterator: its read() joins what the
   * body has buffered into new Buffers, garbage that grows the process by tens of MiB per
   * GiB), and the body is paused while the part holds its limit: its socket then stops.
   */
  private receive(index: number, part: Part, body: Readable, from: number): Promise<number> {
    const { start, end } = this.source.range(index);
    const length = end - start + 1;
    let received = from;
    const onData = (chunk: Buffer) => {
      if (this.destroyed) {
        body.destroy();
        return;
      }
      part.chunks.push(chunk);
      part.held += chunk.length;
      received += chunk.length;
      if (index === this.current) this.handOn();
      if (part.held >= this.limit(index) && !this.destroyed) {
        body.pause();
        part.wake = () => body.resume();
      }
    };
    return new Promise((resolve, reject) => {
      body.on('data', onData);
      finished(body, (error) => {
        body.off('data', onData);
        if (error) return reject(Object.assign(error, { received }));
        if (received !== length) return reject(Object.assign(new Error(`part ${index + 1} ended after ${received} of its ${length} bytes`), { received }));
        part.done = true;
        if (index === this.current) this.handOn();
        resolve(received);
      });
    });
  }

  /** How many bytes the part may hold: its read-ahead behind the head, less at the head. */
  private limit(index: number): number {
    return index === this.current ? headBuffer : (this.request.readAhead ?? defaultReadAhead);
  }

  /** Resumes a part's paused body: it is at the head now, or its reader took what it held. */
  private wake(part: Part): void {
    const wake = part.wake;
    part.wake = undefined;
    wake?.();
  }

  private fail(error: unknown): void {
    if (!this.destroyed) this.destroy(error as Error);
  }
}
