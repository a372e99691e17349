/**
 * Bodies in the worker: input refs become SDK Bodies; output bodies (Buffer, string or a
 * stream) become refs, spilled to a file in the work directory when they are large, so
 * a multi-GiB object never sits in memory.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import type { Body } from '../sdk/index.js';
import { fileBody, isPositionalBody, memoryBody, type PositionalBody, type PositionalSink } from '../sdk/operations.js';
import { open, rm, type FileHandle } from 'node:fs/promises';
import type { BodyRef, DocumentRef, StepSample } from './messages.js';

export function bodyOf(ref: BodyRef): Body {
  if (ref.kind === 'inline') return memoryBody(Buffer.from(ref.bytes.buffer, ref.bytes.byteOffset, ref.bytes.byteLength));
  return fileBody(ref.path, ref.size);
}

/** Bytes or text as an inline ref (no copy of a Buffer). */
export function inlineRef(body: Buffer | string): BodyRef {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return { kind: 'inline', bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

export const emptyBody: BodyRef = inlineRef(Buffer.alloc(0));

/**
 * A sink that keeps a body in memory up to spillBytes and past that writes it, as it
 * streams, to a new file in workDir. Fed by pipeline(), so backpressure and errors
 * follow Node's own stream machinery.
 */
class SpillSink extends Writable {
  private readonly head: Buffer[] = [];
  private size = 0;
  private file: WriteStream | undefined;
  readonly path: string;

  constructor(
    private readonly spillBytes: number,
    workDir: string,
    private readonly onBytes?: (bytesDone: number) => void,
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.path = join(workDir, `body-${randomBytes(8).toString('hex')}`);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.size += chunk.length;
    this.onBytes?.(this.size);
    if (!this.file) {
      this.head.push(chunk);
      if (this.size <= this.spillBytes) return callback();
      // an execution's work directory is made by the first body that needs it
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      this.file = createWriteStream(this.path, { flags: 'wx', mode: 0o600, highWaterMark: 1024 * 1024 });
      this.file.on('error', (error) => this.destroy(error));
      chunk = Buffer.concat(this.head.splice(0));
    }
    if (this.file.write(chunk)) callback();
    else this.file.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.file) return callback();
    this.file.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.file?.destroy();
    callback(error);
  }

  ref(): BodyRef {
    if (this.file) return { kind: 'file', path: this.path, size: this.size };
    return inlineRef(Buffer.concat(this.head, this.size));
  }
}

const sliceChars = 1024 * 1024;

/** A text in slices of about 1 Mi characters, each cut before a surrogate pair is split, as UTF-8 bytes. */
export function* textSlices(text: string): Generator<Buffer> {
  for (let at = 0; at < text.length; ) {
    let end = Math.min(at + sliceChars, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    yield Buffer.from(text.slice(at, end), 'utf8');
    at = end;
  }
}

/**
 * Turns an output body into a ref: kept in memory up to spillBytes, else written to a new
 * file in workDir as it streams.
 */
export async function refOf(body: Buffer | string | Readable | PositionalBody | undefined, workDir: string, spillBytes: number, signal: AbortSignal, onBytes?: (bytesDone: number) => void): Promise<BodyRef> {
  if (body === undefined) return emptyBody;
  if (isPositionalBody(body)) return positionalRef(body, workDir, spillBytes, signal, onBytes);
  if (typeof body === 'string') {
    if (Buffer.byteLength(body, 'utf8') <= spillBytes) return inlineRef(body);
    // a large text goes to the file in slices: never a second copy of all of it as bytes
    body = Readable.from(textSlices(body), { objectMode: false });
  } else if (Buffer.isBuffer(body)) {
    if (body.byteLength <= spillBytes) return inlineRef(body);
    body = Readable.from([body]);
  }
  const sink = new SpillSink(spillBytes, workDir, onBytes);
  await pipeline(body, sink, { signal });
  return sink.ref();
}

/** A sink's write checked against the body's size and the signal, then counted. */
function countedSink(size: number, signal: AbortSignal, write: (bytes: Uint8Array, position: number) => Promise<void>, onBytes?: (bytesDone: number) => void) {
  let written = 0;
  const sink: PositionalSink = {
    async write(bytes, position) {
      signal.throwIfAborted();
      if (!Number.isSafeInteger(position) || position < 0 || position + bytes.byteLength > size) {
        throw new RangeError(`a positional body of ${size} bytes got a write of ${bytes.byteLength} bytes at ${position}`);
      }
      await write(bytes, position);
      written += bytes.byteLength;
      onBytes?.(written);
    },
  };
  return { sink, written: () => written };
}

/** Writes all of `bytes` at `position` of the file (a write may take fewer). */
async function writeAllAt(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < bytes.byteLength; ) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, position + done);
    done += bytesWritten;
  }
}

/**
 * A PositionalBody as a ref: its writes go into one Buffer of its size up to spillBytes,
 * else straight to their offsets in a new file in workDir (no stream, no copy). It must
 * write exactly `size` bytes (overlapping writes count twice and fail it).
 */
async function positionalRef(body: PositionalBody, workDir: string, spillBytes: number, signal: AbortSignal, onBytes?: (bytesDone: number) => void): Promise<BodyRef> {
  const size = body.size;
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`a positional body's size must be a whole number of bytes, not ${size}`);
  const complete = (written: number) => {
    if (written !== size) throw new Error(`a positional body of ${size} bytes wrote ${written}`);
  };
  if (size <= spillBytes) {
    const bytes = Buffer.alloc(size);
    const { sink, written } = countedSink(size, signal, async (chunk, position) => void bytes.set(chunk, position), onBytes);
    await body.writeTo(sink);
    complete(written());
    return inlineRef(bytes);
  }
  const path = join(workDir, `body-${randomBytes(8).toString('hex')}`);
  mkdirSync(workDir, { recursive: true, mode: 0o700 });
  const handle = await open(path, 'wx', 0o600);
  try {
    const { sink, written } = countedSink(size, signal, (chunk, position) => writeAllAt(handle, chunk, position), onBytes);
    await body.writeTo(sink);
    complete(written());
    await handle.close();
    return { kind: 'file', path, size };
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(path, { force: true });
    throw error;
  }
}

/**
 * Copies the inline bodies of documents into one new ArrayBuffer, to be transferred to
 * another thread instead of copied: posting a Buffer that is a slice of a larger one (a
 * pooled Buffer, a slab of a parsed request) would copy the whole larger buffer. The
 * documents passed in are left as they are.
 */
export function packBodies(documents: readonly DocumentRef[], keep: (bytes: Uint8Array) => boolean = () => false): { documents: DocumentRef[]; buffer: ArrayBuffer } {
  let total = 0;
  for (const d of documents) if (d.body.kind === 'inline' && !keep(d.body.bytes)) total += d.body.bytes.byteLength;
  const buffer = new ArrayBuffer(total);
  const all = new Uint8Array(buffer);
  let offset = 0;
  const packed = documents.map((d) => {
    if (d.body.kind !== 'inline' || keep(d.body.bytes)) return d;
    const length = d.body.bytes.byteLength;
    all.set(d.body.bytes, offset);
    const bytes = new Uint8Array(buffer, offset, length);
    offset += length;
    return { ...d, body: { kind: 'inline' as const, bytes } };
  });
  return { documents: packed, buffer };
}

/** Bodies at least this large that are the whole of their ArrayBuffer move between threads as they are, and are freed as a whole. */
const ownBufferBytes = 64 * 1024;

/** A large body that is all of its own ArrayBuffer (not a view into a slab or a chunk's shared buffer). */
export function ownsBuffer(bytes: Uint8Array): boolean {
  return bytes.byteLength >= ownBufferBytes && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
}

/**
 * The bodies of a worker's own output documents, ready to move to the main thread: large
 * ones that own their buffer move as they are (no second copy of a 50 MB body), the others
 * are copied into one buffer. Only for bodies nothing else will read (the worker's outputs):
 * moving a buffer detaches it here.
 */
export function packOwnBodies(documents: readonly DocumentRef[]): { documents: DocumentRef[]; buffers: ArrayBuffer[] } {
  const { documents: packed, buffer } = packBodies(documents, ownsBuffer);
  const moved = new Set<ArrayBuffer>();
  for (const d of packed) if (d.body.kind === 'inline' && ownsBuffer(d.body.bytes)) moved.add(d.body.bytes.buffer as ArrayBuffer);
  return { documents: packed, buffers: [buffer, ...moved] };
}

/**
 * Frees the memory of a large input body that no step will read again (a map replaces it)
 * at once, rather than when the chunk ends: its buffer is detached (its views read as
 * empty) and what held its bytes is left to the collector. Smaller bodies share their
 * chunk's buffer and are left alone.
 */
export function releaseBytes(bytes: Uint8Array): void {
  if (ownsBuffer(bytes)) structuredClone(bytes.buffer, { transfer: [bytes.buffer as ArrayBuffer] });
}

/** The first `max` bytes of a file (a spilled body), for step data. */
export async function fileHead(path: string, max: number): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(max);
    const { bytesRead } = await handle.read(buffer, 0, max, 0);
    return new Uint8Array(buffer.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

/** Documents as step data records them: properties and the head of the body (read from its file when spilled). */
export async function samplesOf(step: string, documents: readonly DocumentRef[], limits: { bodyBytes: number; perStep: number }, inputs?: readonly (Record<string, string> | undefined)[]): Promise<StepSample[]> {
  const out: StepSample[] = [];
  for (const [i, d] of documents.slice(0, limits.perStep).entries()) {
    try {
      const body = d.body.kind === 'inline' ? new Uint8Array(d.body.bytes.subarray(0, limits.bodyBytes)) : await fileHead(d.body.path, limits.bodyBytes);
      const input = inputs?.[i];
      out.push({ step, properties: { ...d.properties }, ...(input ? { input: { ...input } } : {}), body, size: d.body.kind === 'inline' ? d.body.bytes.byteLength : d.body.size });
    } catch {
      // recording is an aid: a body that cannot be read for it is left out
    }
  }
  return out;
}
