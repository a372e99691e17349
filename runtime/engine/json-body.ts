/**
 * A large computed body written as JSON straight into bytes, piece by piece, never as one
 * string: JSON.stringify of a 50 MB value makes a 50 MB string and then its 50 MB of
 * UTF-8 bytes, both beside the value. Here the value's wide or shallow containers are
 * walked and every other member is JSON.stringify'd on its own, so no piece is larger than
 * one such member, and the pieces go into one growing buffer (a resizable ArrayBuffer,
 * which grows in place, so it is never copied) or, past spillBytes, into a new file of the
 * work directory, as they come. The text is JSON.stringify's, byte for byte.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { jsonTextNestsDeeper } from '../core/json-depth.js';
import type { BodyRef } from './messages.js';

/** Containers with at least this many members are walked rather than stringified whole. */
const wide = 64;
/** Containers this shallow (the value itself is level 1) are walked whatever their width. */
const shallow = 2;
/** Text gathered before it is written out as bytes. */
const pieceChars = 64 * 1024;
/** Growth of the in-memory buffer, at least. */
const growBytes = 1024 * 1024;

/** A resizable ArrayBuffer (ES2024; Node 20 has it, this TypeScript lib does not name it). */
interface ResizableBuffer extends ArrayBuffer {
  resize(length: number): void;
}
const ResizableBuffer = ArrayBuffer as unknown as new (length: number, options: { maxByteLength: number }) => ResizableBuffer;

/** The value nests deeper than allowed (the caller names where, as for JSON.stringify's text). */
export class BodyTooDeep extends Error {}

/** Where the bytes go: memory up to spillBytes, then a file. */
class BodySink {
  private readonly buffer: ResizableBuffer;
  private bytes: Buffer;
  private used = 0;
  private fd: number | undefined;
  private size = 0;
  private path = '';

  /** Past this many bytes the body goes to a file: spillBytes, or less for a body that crosses to another process in a file. */
  private readonly fileAbove: number;

  constructor(
    private readonly spillBytes: number,
    private readonly workDir: string,
    crossAbove?: number,
  ) {
    this.fileAbove = Math.min(spillBytes, crossAbove ?? spillBytes);
    this.buffer = new ResizableBuffer(0, { maxByteLength: this.fileAbove });
    this.bytes = Buffer.from(this.buffer);
  }

  write(text: string): void {
    if (text.length === 0) return;
    if (this.fd !== undefined) {
      this.size += writeSync(this.fd, text);
      return;
    }
    const room = this.buffer.byteLength - this.used;
    // a UTF-16 code unit is at most 3 bytes of UTF-8
    if (room < text.length * 3 && !this.grow(text)) return this.spill(text);
    this.used += this.bytes.write(text, this.used);
  }

  /** Room for `text` in memory, or false when it would pass fileAbove. */
  private grow(text: string): boolean {
    const need = this.used + Buffer.byteLength(text);
    if (need > this.fileAbove) return false;
    const target = Math.min(this.fileAbove, Math.max(need, this.used + text.length * 3, this.buffer.byteLength + growBytes));
    this.buffer.resize(target);
    this.bytes = Buffer.from(this.buffer, 0, target);
    return true;
  }

  private spill(text: string): void {
    mkdirSync(this.workDir, { recursive: true, mode: 0o700 });
    this.path = join(this.workDir, `body-${randomBytes(8).toString('hex')}`);
    this.fd = openSync(this.path, 'wx', 0o600);
    this.size = this.used > 0 ? writeSync(this.fd, this.bytes, 0, this.used) : 0;
    this.buffer.resize(0);
    this.used = 0;
    this.size += writeSync(this.fd, text);
  }

  ref(): BodyRef {
    if (this.fd !== undefined) {
      closeSync(this.fd);
      // not past spillBytes: a body in memory that crosses to another process in its file
      return this.size <= this.spillBytes ? { kind: 'file', path: this.path, size: this.size, crossing: true } : { kind: 'file', path: this.path, size: this.size };
    }
    this.buffer.resize(this.used);
    return { kind: 'inline', bytes: new Uint8Array(this.buffer, 0, this.used) };
  }

  /** A write failed: the file is closed (the work directory goes with the execution). */
  abandon(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Text gathered into pieces for the sink. */
class Pieces {
  private pending = '';
  constructor(private readonly sink: BodySink) {}
  add(text: string): void {
    this.pending += text;
    if (this.pending.length >= pieceChars) this.flush();
  }
  flush(): void {
    this.sink.write(this.pending);
    this.pending = '';
  }
}

const isPlainObject = (value: object) => {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
};

/** Walked member by member: arrays and plain objects without toJSON, when wide or shallow. */
function walked(value: unknown, level: number): value is Record<string, unknown> | unknown[] {
  if (value === null || typeof value !== 'object') return false;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  const array = Array.isArray(value);
  if (!array && !isPlainObject(value)) return false;
  return level <= shallow || (array ? value.length : Object.keys(value).length) >= wide;
}

/** A member stringified whole, its depth checked on its text as bodyText does (`level`: the member's own level). */
function leaf(value: unknown, level: number, maxDepth: number): string | undefined {
  let text: string | undefined;
  try {
    text = JSON.stringify(value) as string | undefined;
  } catch (error) {
    if (error instanceof RangeError) throw new BodyTooDeep();
    throw error;
  }
  // the member's own containers, under the level - 1 that hold it
  if (text !== undefined && jsonTextNestsDeeper(text, maxDepth - (level - 1))) throw new BodyTooDeep();
  return text;
}

function write(out: Pieces, value: Record<string, unknown> | unknown[], level: number, maxDepth: number): void {
  if (level > maxDepth) throw new BodyTooDeep();
  if (Array.isArray(value)) {
    out.add('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.add(',');
      const member = value[i];
      if (walked(member, level + 1)) write(out, member, level + 1, maxDepth);
      else out.add(leaf(member, level + 1, maxDepth) ?? 'null');
    }
    out.add(']');
    return;
  }
  out.add('{');
  let first = true;
  for (const key of Object.keys(value)) {
    const member = value[key];
    if (walked(member, level + 1)) {
      out.add(`${first ? '' : ','}${JSON.stringify(key)}:`);
      write(out, member, level + 1, maxDepth);
    } else {
      const text = leaf(member, level + 1, maxDepth);
      if (text === undefined) continue;
      out.add(`${first ? '' : ','}${JSON.stringify(key)}:${text}`);
    }
    first = false;
  }
  out.add('}');
}

export interface JsonBodyOptions {
  spillBytes: number;
  workDir: string;
  maxDepth: number;
  /** The body goes to another process (StepsTask.crossAbove): past this many bytes it is written to a crossing file. */
  crossAbove?: number;
}

/** Whether `value` is written piece by piece by jsonBody (an array or plain object); anything else is one JSON.stringify. */
export const writesInPieces = (value: unknown): value is Record<string, unknown> | unknown[] => walked(value, 1);

/**
 * The body of `value` as JSON.stringify would write it, as bytes in memory (at most
 * spillBytes) or in a new file of workDir. Throws BodyTooDeep when it nests deeper than
 * maxDepth, and what JSON.stringify throws (a BigInt) as it would.
 */
export function jsonBody(value: Record<string, unknown> | unknown[], options: JsonBodyOptions): BodyRef {
  const sink = new BodySink(options.spillBytes, options.workDir, options.crossAbove);
  try {
    const out = new Pieces(sink);
    write(out, value, 1, options.maxDepth);
    out.flush();
    return sink.ref();
  } catch (error) {
    sink.abandon();
    throw error;
  }
}
