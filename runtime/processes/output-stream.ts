/**
 * The streamed answer of an execution (POST /executions with `Accept: application/x-ndjson`):
 * the sink the walker hands the documents that end the execution to as they end
 * (engine/walker.ts OutputSink), and the queue the API's writer takes them from, one at a
 * time, at the pace of its client.
 *
 * Backpressure: past `maxDocuments` documents or `maxBytes` bytes of in-memory bodies
 * waiting, `ready()` holds the walker back (it pauses before its next chunk or batch) until
 * the writer took enough; so a slow client slows the execution down, and what waits is
 * bounded by the mark plus the chunks in flight. A client that disconnects (`abandon`), or
 * an execution that stops (its signal), lets the walker go on at once: what waits is
 * dropped, and the execution ends as it would unstreamed.
 *
 * A spilled body is opened when the writer takes its document, so the execution may
 * remove its work files (which it does once `settled()`) while the writer still streams
 * the body from the open file. Property names and values are scrubbed of the secret
 * values of the connections the execution used.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { scrubText } from '../secrets/secret-fields.js';
import type { DocumentRef } from '../engine/messages.js';
import type { OutputSink } from '../engine/walker.js';

/** One document as the writer takes it: its body in memory, or its spilled file open for reading. */
export interface StreamedDocument {
  properties: Record<string, string>;
  size: number;
  bytes?: Uint8Array;
  file?: FileHandle;
  /** The spilled body could not be opened (the execution stopped and removed it meanwhile). */
  bodyOmitted?: string;
}

export interface OutputStreamOptions {
  /** The walk's signal: once it fires, nothing waits for the writer any more. */
  signal?: AbortSignal;
  /** The secret values of the connections the execution used so far. */
  secrets?: () => Iterable<string>;
  maxDocuments?: number;
  maxBytes?: number;
}

export interface OutputStream extends OutputSink {
  /** The next document, once there is one; undefined after the last (end() was called and all were taken) or once abandoned. */
  next(): Promise<StreamedDocument | undefined>;
  /** No more documents will come (the walk ended, whatever way); `reason`: why none came at all. */
  end(reason?: string): void;
  /** Set by end(reason): why this stream carries no documents. */
  readonly notStreamed?: string;
  /** The reader is gone (its client disconnected): what waits is dropped, and so is whatever comes. */
  abandon(): void;
  /** Resolves once every document handed over was taken (its file opened) or dropped: the work files may go. */
  settled(): Promise<void>;
  /** A text (an error message) with the secret values of the execution's connections replaced. */
  scrub(text: string): string;
  readonly counts: { pushed: number; taken: number; dropped: number };
}

export const streamMarks = { documents: 1000, bytes: 16 * 1024 * 1024 };

const bytesOf = (d: DocumentRef) => (d.body.kind === 'inline' ? d.body.bytes.byteLength : 0);

export function createOutputStream(options: OutputStreamOptions = {}): OutputStream {
  const maxDocuments = options.maxDocuments ?? streamMarks.documents;
  const maxBytes = options.maxBytes ?? streamMarks.bytes;
  const queue: DocumentRef[] = [];
  let head = 0;
  let held = 0;
  let ended = false;
  let gone = false;
  /** A document whose file is being opened: settled() waits for it. */
  let opening: Promise<unknown> | undefined;
  const counts = { pushed: 0, taken: 0, dropped: 0 };
  let wakeReader: (() => void) | undefined;
  const roomWaiters = new Set<() => void>();
  const settleWaiters = new Set<() => void>();

  const waiting = () => queue.length - head;
  const free = () => gone || options.signal?.aborted === true || (waiting() < maxDocuments && held < maxBytes);

  function notify(): void {
    wakeReader?.();
    wakeReader = undefined;
    if (free()) for (const resolve of [...roomWaiters]) resolve();
    if (waiting() === 0 && opening === undefined) for (const resolve of [...settleWaiters]) resolve();
  }

  function drop(): void {
    counts.dropped += waiting();
    queue.length = 0;
    head = 0;
    held = 0;
  }

  options.signal?.addEventListener('abort', () => {
    drop();
    notify();
  }, { once: true });

  function shift(): DocumentRef | undefined {
    if (waiting() === 0) return undefined;
    const d = queue[head]!;
    queue[head++] = undefined as unknown as DocumentRef;
    // compact now and then, so a long stream does not keep every slot it ever used
    if (head > 1024 && head * 2 > queue.length) {
      queue.splice(0, head);
      head = 0;
    }
    held -= bytesOf(d);
    counts.taken++;
    return d;
  }

  const secrets = () => [...(options.secrets?.() ?? [])];

  function scrubbed(properties: Record<string, string>): Record<string, string> {
    const known = secrets();
    if (known.length === 0) return properties;
    return Object.fromEntries(Object.entries(properties).map(([name, value]) => [scrubText(name, known), scrubText(value, known)]));
  }

  async function streamed(d: DocumentRef): Promise<StreamedDocument> {
    const properties = scrubbed(d.properties);
    if (d.body.kind === 'inline') return { properties, size: d.body.bytes.byteLength, bytes: d.body.bytes };
    try {
      return { properties, size: d.body.size, file: await open(d.body.path, 'r') };
    } catch (error) {
      return { properties, size: d.body.size, bodyOmitted: `its spilled body could not be read: ${(error as Error).message}` };
    }
  }

  const stream: OutputStream = {
    counts,
    scrub: (text) => scrubText(text, secrets()),
    push(documents) {
      counts.pushed += documents.length;
      if (gone || options.signal?.aborted) {
        counts.dropped += documents.length;
        return;
      }
      for (const d of documents) {
        queue.push(d);
        held += bytesOf(d);
      }
      notify();
    },
    ready() {
      if (free()) return undefined;
      return new Promise<void>((resolve) => {
        const done = () => {
          roomWaiters.delete(done);
          resolve();
        };
        roomWaiters.add(done);
      });
    },
    async next() {
      for (;;) {
        if (gone) return undefined;
        const d = shift();
        if (d) {
          const taking = streamed(d);
          opening = taking;
          try {
            return await taking;
          } finally {
            opening = undefined;
            notify();
          }
        }
        if (ended || options.signal?.aborted) return undefined;
        await new Promise<void>((resolve) => (wakeReader = resolve));
      }
    },
    end(reason) {
      ended = true;
      if (reason !== undefined) (stream as { notStreamed?: string }).notStreamed = reason;
      notify();
    },
    abandon() {
      gone = true;
      drop();
      notify();
    },
    settled() {
      if (waiting() === 0 && opening === undefined) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          settleWaiters.delete(done);
          resolve();
        };
        settleWaiters.add(done);
      });
    },
  };
  return stream;
}
