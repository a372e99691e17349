/**
 * Bodies in the worker: input refs become SDK Bodies; output bodies (Buffer, string or a
 * stream) become refs, spilled to a file in the work directory when they are large, so
 * a multi-GiB object never sits in memory.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import type { Body } from '../sdk/index.js';
import type { BodyRef } from './messages.js';

export function bodyOf(ref: BodyRef): Body {
  if (ref.kind === 'inline') {
    const bytes = Buffer.from(ref.bytes.buffer, ref.bytes.byteOffset, ref.bytes.byteLength);
    return {
      size: bytes.length,
      stream: () => Readable.from([bytes], { objectMode: false }),
      buffer: async () => bytes,
      text: async () => bytes.toString('utf8'),
    };
  }
  return {
    size: ref.size,
    stream: () => createReadStream(ref.path, { highWaterMark: 1024 * 1024 }),
    buffer: () => readFile(ref.path),
    text: () => readFile(ref.path, 'utf8'),
  };
}

export const emptyBody: BodyRef = { kind: 'inline', bytes: new Uint8Array(0) };

/**
 * Turns an output body into a ref: kept in memory up to spillBytes, else written to a new
 * file in workDir as it streams.
 */
export async function refOf(body: Buffer | string | Readable | undefined, workDir: string, spillBytes: number, signal: AbortSignal): Promise<BodyRef> {
  if (body === undefined) return emptyBody;
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    if (bytes.length <= spillBytes) return { kind: 'inline', bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
    body = Readable.from([bytes]);
  }
  const head: Buffer[] = [];
  let headSize = 0;
  const iterator = (body as Readable)[Symbol.asyncIterator]();
  // read until the body proves small (end) or large (over spillBytes)
  for (;;) {
    const next = await iterator.next();
    if (next.done) {
      const bytes = Buffer.concat(head, headSize);
      return { kind: 'inline', bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array);
    head.push(chunk);
    headSize += chunk.length;
    if (headSize > spillBytes) break;
  }
  const path = join(workDir, `body-${randomBytes(8).toString('hex')}`);
  let size = 0;
  async function* rest(): AsyncGenerator<Buffer> {
    for (const chunk of head) {
      size += chunk.length;
      yield chunk;
    }
    head.length = 0;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array);
      size += chunk.length;
      yield chunk;
    }
  }
  await pipeline(rest(), createWriteStream(path, { flags: 'wx' }), { signal });
  return { kind: 'file', path, size };
}
