/**
 * The operation contract: the runtime calls an operation's handler once per input
 * document; the handler answers with exactly one result. A thrown error becomes a
 * failure result, so a plugin can never drop a document.
 */
import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ConnectorLogger, RuntimeSettings } from './index.js';

/** A document's body: its length is always known; it can be read more than once. */
export interface Body {
  readonly size: number;
  /** A fresh stream of the bytes, from the start. Large bodies stream from disk. */
  stream(): Readable;
  buffer(): Promise<Buffer>;
  text(): Promise<string>;
  /**
   * Copies the bytes from `position` into `target`, as many as fit, and resolves to how
   * many were copied: `target.length`, or fewer only at the end of the body (0 past it).
   * For filling buffers of one's own (multipart parts, a pool) without allocating per read.
   * Since runtime API 1.1.0.
   */
  read(target: Uint8Array, position: number): Promise<number>;
}

export interface InputDocument {
  readonly properties: Readonly<Record<string, string>>;
  readonly body: Body;
}

/**
 * An output document. A Readable body is streamed to the runtime (spilled to disk when
 * large); the runtime reports its progress as it reads it, against `size` when given.
 */
export interface OutputDocument {
  properties?: Record<string, string>;
  body?: Buffer | string | Readable | PositionalBody;
  /** The body's length in bytes when known in advance (a download's Content-Length). */
  size?: number;
}

/**
 * A body the operation writes itself, its bytes at their positions in any order: parallel
 * ranged downloads land where they belong, from buffers of the operation's own that it
 * reuses, with no stream between (since runtime API 1.3.0). The runtime calls `writeTo`
 * once, with a sink for exactly `size` bytes (in memory up to the spill limit, else a file
 * in the execution's work directory); the body is complete when `writeTo` resolves and
 * every byte of it was written.
 */
export interface PositionalBody {
  readonly size: number;
  writeTo(sink: PositionalSink): Promise<void>;
}

/** Where a PositionalBody writes its bytes. */
export interface PositionalSink {
  /** Writes `bytes` at `position` of the body; `bytes` may be reused once it resolves. */
  write(bytes: Uint8Array, position: number): Promise<void>;
}

/** Whether an output body is a PositionalBody (an object with `size` and `writeTo`, not a stream). */
export function isPositionalBody(body: unknown): body is PositionalBody {
  return body !== null && typeof body === 'object' && !(body instanceof Readable) && typeof (body as PositionalBody).writeTo === 'function' && typeof (body as PositionalBody).size === 'number';
}

export type OperationResult =
  | { status: 'success'; documents: OutputDocument[] }
  | { status: 'application-error'; message: string; code?: string; properties?: Record<string, string> }
  | { status: 'failure'; message: string; code?: string };

export interface OperationContext<Config, Parameters> {
  config: Config;
  /** The step's parameters, validated against the operation's parameter schema. */
  parameters: Parameters;
  /** Aborted when the operation is cancelled or times out; stop, and clean up what you started. */
  signal: AbortSignal;
  runtime: RuntimeSettings;
  log: ConnectorLogger;
  /** Reports bytes done (and the total, when known) to whoever runs the operation. */
  progress(bytesDone: number, bytesTotal?: number): void;
  /** Resources outside the runtime to release if it dies before you do (since runtime API 1.2.0). */
  resources: Resources;
}

/**
 * Something an operation starts outside the runtime that costs or blocks until released
 * (an S3 multipart upload, a lock, a temporary table). Described by plain JSON data that
 * is enough, with the connection's configuration, to release it later; never secrets.
 */
export interface ResourceDescription {
  /** Names the resource's type to the connector's recover handler: 1-64 of a-z, 0-9, dot, dash. */
  kind: string;
  /** JSON-serialisable, at most 16 KiB, without any secret value of the connection. */
  data: Record<string, unknown>;
}

export interface HeldResource {
  /** The record's id in the runtime's store. */
  readonly id: string;
  /** Removes the record: call it once the resource is released (or completed). Idempotent. */
  release(): Promise<void>;
}

export interface Resources {
  /**
   * Records a resource before you start using it, and resolves once the record is stored
   * durably (a process crash cannot lose it). If the runtime dies before release(), it
   * calls the connector's `recover` handler with this description at its next start.
   * Rejects (code QUARK_ERR_RESOURCE_INVALID or QUARK_ERR_RESOURCE_NOT_RECORDED) when
   * the description is not valid or cannot be recorded: then undo what you started.
   */
  hold(resource: ResourceDescription): Promise<HeldResource>;
}

/** A resource recorded by an operation that did not release it, as `recover` gets it. */
export interface RecoveredResource extends ResourceDescription {
  id: string;
  /** When the operation recorded it (ISO 8601). */
  createdAt: string;
  /** Earlier recover attempts that failed. */
  attempts: number;
}

export interface RecoverContext<Config> {
  /** The connection's current configuration, validated, secrets decrypted. */
  config: Config;
  /** Aborted at the time limit or when the runtime stops. */
  signal: AbortSignal;
  runtime: RuntimeSettings;
  log: ConnectorLogger;
}

/**
 * Releases one resource left behind. Resolve when it is gone (or was already gone: it may
 * have been released just before the crash, so be idempotent); throw to have it retried.
 */
export type RecoverHandler<Config = Record<string, unknown>> = (resource: RecoveredResource, context: RecoverContext<Config>) => Promise<void>;

export type OperationHandler<Config = Record<string, unknown>, Parameters = Record<string, unknown>> = (
  context: OperationContext<Config, Parameters>,
  document: InputDocument,
) => Promise<OperationResult>;

const resourceKind = /^[a-z0-9][a-z0-9.-]{0,63}$/;
/** The largest resource description's data, as JSON. */
export const maxResourceDataBytes = 16 * 1024;

/**
 * What is wrong with a resource description, by JSON pointer: an empty list when it can
 * be recorded. `secrets` are the connection's secret values, which the data must not hold.
 */
export function resourceProblems(resource: unknown, secrets: readonly string[]): { path: string; message: string }[] {
  if (resource === null || typeof resource !== 'object') return [{ path: '', message: 'must be an object {kind, data}' }];
  const { kind, data } = resource as Partial<ResourceDescription>;
  const problems: { path: string; message: string }[] = [];
  if (typeof kind !== 'string' || !resourceKind.test(kind)) problems.push({ path: '/kind', message: 'must be 1-64 characters of a-z, 0-9, dot and dash, starting with a letter or digit' });
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return [...problems, { path: '/data', message: 'must be an object' }];
  let json: string;
  try {
    json = JSON.stringify(data);
  } catch {
    return [...problems, { path: '/data', message: 'must be JSON (no cycles, no BigInt)' }];
  }
  if (Buffer.byteLength(json) > maxResourceDataBytes) problems.push({ path: '/data', message: `must be at most ${maxResourceDataBytes} bytes as JSON` });
  if (secrets.some((secret) => secret.length > 0 && json.includes(secret))) problems.push({ path: '/data', message: 'holds a secret of the connection; the runtime passes the configuration to recover, store only what identifies the resource' });
  return problems;
}

/** Builders for results. */
export const result = {
  /** One output document. */
  success(document: OutputDocument = {}): OperationResult {
    return { status: 'success', documents: [document] };
  },
  /** Any number of output documents (a query answers with one per object). */
  documents(documents: OutputDocument[]): OperationResult {
    return { status: 'success', documents };
  },
  /** The endpoint refused this document (a missing key, a denied access): the step's error path. */
  applicationError(message: string, extra: { code?: string; properties?: Record<string, string> } = {}): OperationResult {
    return { status: 'application-error', message, ...extra };
  },
  /** The operation could not be carried out (network, bug): the document failed. */
  failure(message: string, extra: { code?: string } = {}): OperationResult {
    return { status: 'failure', message, ...extra };
  },
};

/** A Body over bytes in memory (the runtime's inline bodies, the kit's test documents). */
export function memoryBody(bytes: Buffer): Body {
  return {
    size: bytes.length,
    stream: () => Readable.from([bytes], { objectMode: false }),
    buffer: async () => bytes,
    text: async () => bytes.toString('utf8'),
    read: async (target, position) => {
      checkPosition(position);
      const count = Math.max(0, Math.min(target.length, bytes.length - position));
      target.set(bytes.subarray(position, position + count));
      return count;
    },
  };
}

/** A Body over a file of known size (spilled bodies, documents given by path). */
export function fileBody(path: string, size: number): Body {
  return {
    size,
    stream: () => createReadStream(path, { highWaterMark: 1024 * 1024 }),
    buffer: () => readFile(path),
    text: () => readFile(path, 'utf8'),
    read: async (target, position) => {
      checkPosition(position);
      const handle = await open(path, 'r');
      try {
        let count = 0;
        while (count < target.length) {
          const { bytesRead } = await handle.read(target, count, target.length - count, position + count);
          if (bytesRead === 0) break;
          count += bytesRead;
        }
        return count;
      } finally {
        await handle.close();
      }
    },
  };
}

function checkPosition(position: number): void {
  if (!Number.isSafeInteger(position) || position < 0) throw new RangeError(`read: position must be a whole number >= 0, got ${position}`);
}
