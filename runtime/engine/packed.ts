/**
 * Documents packed for the plugin host's IPC channel (isolation "threads" and "process").
 * Node's serializer for that channel (`serialization: 'advanced'`) calls back into
 * JavaScript for every Uint8Array and copies it, so a chunk of 2,000 documents, each with
 * its body view, cost thousands of calls each way, on both sides of the channel and again
 * when the host posted the task to its worker. Packed, a chunk is one JSON text (properties,
 * body sizes, origins), one buffer of its inline bodies back to back, and the few large
 * bodies that own their buffer: the host's main thread only copies the buffers and moves
 * them to its worker, which unpacks them into views, as for a chunk of the threads-only mode.
 */
import { ownsBuffer } from './bodies.js';
import type { BodyRef, DocumentRef, PackedDocuments, StepsOutcome, WorkerTask } from './messages.js';

/** A body in the JSON text: its length in `bytes`, a large body of its own, or a spilled (or crossing, crossing.ts) file. */
type BodyEntry = number | { own: number } | { path: string; size: number; crossing?: true };
type Entry = [Record<string, string>, BodyEntry, number[]?];

/** The bodies back to back; with `reuse`, the buffer they already are when they lie so in one (the walker's packed chunk). */
function joined(parts: readonly Uint8Array[], total: number, reuse: boolean): Uint8Array {
  const first = parts[0];
  if (!first) return new Uint8Array(0);
  if (reuse && contiguous(parts)) return new Uint8Array(first.buffer, first.byteOffset, total);
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

function contiguous(parts: readonly Uint8Array[]): boolean {
  const buffer = parts[0]!.buffer;
  let next = parts[0]!.byteOffset;
  for (const part of parts) {
    if (part.buffer !== buffer || part.byteOffset !== next) return false;
    next += part.byteLength;
  }
  return true;
}

/**
 * Packs documents. `reuse`: the bodies may stay in the buffer they share when they lie back
 * to back there (the channel's serializer copies the view anyway); without it `bytes` is a
 * new buffer of its own, which can be moved to another thread.
 */
export function packDocuments(documents: readonly DocumentRef[], reuse: boolean): PackedDocuments {
  const small: Uint8Array[] = [];
  const own: Uint8Array[] = [];
  const ownIndex = new Map<ArrayBufferLike, number>();
  let total = 0;
  const entries = documents.map((d): Entry => {
    let body: BodyEntry;
    if (d.body.kind === 'file') body = { path: d.body.path, size: d.body.size, ...(d.body.crossing ? { crossing: true as const } : {}) };
    else if (ownsBuffer(d.body.bytes)) {
      // one buffer listed once, however many documents share it
      let index = ownIndex.get(d.body.bytes.buffer);
      if (index === undefined) ownIndex.set(d.body.bytes.buffer, (index = own.push(d.body.bytes) - 1));
      body = { own: index };
    } else {
      body = d.body.bytes.byteLength;
      small.push(d.body.bytes);
      total += body;
    }
    return d.origins ? [d.properties, body, d.origins] : [d.properties, body];
  });
  return { meta: JSON.stringify(entries), bytes: joined(small, total, reuse), own };
}

function bodyOf(entry: BodyEntry, packed: PackedDocuments, at: number): BodyRef {
  if (typeof entry === 'number') return { kind: 'inline', bytes: new Uint8Array(packed.bytes.buffer, packed.bytes.byteOffset + at, entry) };
  if ('own' in entry) return { kind: 'inline', bytes: packed.own[entry.own]! };
  return { kind: 'file', path: entry.path, size: entry.size, ...(entry.crossing ? { crossing: true as const } : {}) };
}

/** The documents again, their inline bodies views into the packed buffers (no copy). */
export function unpackDocuments(packed: PackedDocuments): DocumentRef[] {
  const entries = JSON.parse(packed.meta) as Entry[];
  let at = 0;
  return entries.map(([properties, entry, origins]) => {
    const body = bodyOf(entry, packed, at);
    if (typeof entry === 'number') at += entry;
    return origins ? { properties, body, origins } : { properties, body };
  });
}

/**
 * Packed documents in buffers of their own, and those buffers: what the host's main thread
 * moves to its worker. What the channel delivered are views into its message buffer,
 * which may hold the start of the next message too, so they are copied, not moved.
 */
function ownedCopy(packed: PackedDocuments): { packed: PackedDocuments; transfer: ArrayBuffer[] } {
  const copy = { meta: packed.meta, bytes: new Uint8Array(packed.bytes), own: packed.own.map((bytes) => new Uint8Array(bytes)) };
  return { packed: copy, transfer: [copy.bytes.buffer, ...copy.own.map((bytes) => bytes.buffer)] };
}

/** In the host's main thread: a packed task with its buffers copied, to be moved to the worker. Other tasks as they are. */
export function ownedTask(task: WorkerTask): { task: WorkerTask; transfer: ArrayBuffer[] } {
  if (task.kind !== 'steps' || !task.packed) return { task, transfer: [] };
  const { packed, transfer } = ownedCopy(task.packed);
  return { task: { ...task, packed }, transfer };
}

/** A steps task as the runtime sends it to the plugin host: its documents packed. Other tasks as they are. */
export function packTask(task: WorkerTask): WorkerTask {
  if (task.kind !== 'steps' || task.packed) return task;
  return { ...task, documents: [], packed: packDocuments(task.documents, true) };
}

/** In the worker: a packed task's documents unpacked. */
export function unpackTask<T extends WorkerTask>(task: T): T {
  if (task.kind !== 'steps' || !task.packed) return task;
  return { ...task, documents: unpackDocuments(task.packed) };
}

/**
 * In the worker, for a packed task: the outcome's exit documents packed into buffers of
 * their own, to be moved to the host's main thread (nothing in the worker reads them again).
 */
export function packExits(outcome: StepsOutcome): { outcome: StepsOutcome; buffers: ArrayBuffer[] } {
  const documents = packDocuments(outcome.exits.flatMap((exit) => exit.documents), false);
  const packed = { sizes: outcome.exits.map((exit) => exit.documents.length), documents };
  const exits = outcome.exits.map((exit) => ({ next: exit.next, documents: [] }));
  return { outcome: { ...outcome, exits, packed }, buffers: [documents.bytes.buffer as ArrayBuffer, ...documents.own.map((bytes) => bytes.buffer as ArrayBuffer)] };
}

/** In the runtime: a packed outcome's exits with their documents again. Others as they are. */
export function unpackExits(outcome: StepsOutcome): StepsOutcome {
  if (!outcome.packed) return outcome;
  const all = unpackDocuments(outcome.packed.documents);
  const { sizes } = outcome.packed;
  let at = 0;
  const exits = outcome.exits.map((exit, i) => ({ next: exit.next, documents: all.slice(at, (at += sizes[i]!)) }));
  const { packed: _packed, ...rest } = outcome;
  return { ...rest, exits };
}
