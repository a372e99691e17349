import type { MessagePort } from 'node:worker_threads';
import type { PlainError } from '../core/errors.js';
import type { RuntimeSettings } from '../sdk/index.js';
import type { PureStep } from '../processes/definition.js';
import type { ExecutionInfo } from './expressions.js';

/** Messages between the main thread and the plugin worker. Plain data only. */

export interface ProbeTask {
  kind: 'probe';
  /** Absolute path of the plugin module. */
  entry: string;
  operations: string[];
  testConnection: boolean;
}

export interface TestTask {
  kind: 'test';
  entry: string;
  config: Record<string, unknown>;
  runtime: RuntimeSettings;
}

/**
 * A body crossing the thread boundary: small ones as bytes, large ones as a file. A file
 * marked `crossing` is a body in memory on its way across a process boundary
 * (engine/crossing.ts): its receiver reads it back in and removes the file.
 */
export type BodyRef = { kind: 'inline'; bytes: Uint8Array } | { kind: 'file'; path: string; size: number; crossing?: true };

export interface DocumentRef {
  properties: Record<string, string>;
  body: BodyRef;
  /** Inside try steps: the document's index in each enclosing try's batch, outermost first. */
  origins?: number[];
}

/**
 * Documents as they cross the plugin host's IPC channel (engine/packed.ts): Node's
 * serializer calls back into JavaScript for every Uint8Array, so a chunk travels as one
 * JSON text of properties, body sizes and origins, one buffer of its inline bodies back to
 * back, and the large bodies that own their buffer, each as it is.
 */
export interface PackedDocuments {
  /** JSON: per document `[properties, body, origins?]`, body = its length in `bytes`, `{"own": i}` or `{"path", "size"}`. */
  meta: string;
  bytes: Uint8Array;
  own: Uint8Array[];
}

/** `fields` with the origins of `source` (its indexes in enclosing try steps), when it has any. */
export function withOrigins<T extends object>(fields: T, source: { origins?: number[] }): T & { origins?: number[] } {
  return source.origins ? { ...fields, origins: source.origins } : fields;
}

export interface OperationTask {
  kind: 'operation';
  entry: string;
  operation: string;
  config: Record<string, unknown>;
  parameters: Record<string, unknown>;
  runtime: RuntimeSettings;
  documents: DocumentRef[];
  /** Where output bodies larger than spillBytes are written. */
  workDir: string;
  spillBytes: number;
  /**
   * Present when parameters hold {"$expr"} values: they are evaluated per document with
   * these bindings, then checked against the operation's parameter schema.
   */
  dynamic?: { parametersSchema: Record<string, unknown>; process: Record<string, unknown>; execution: ExecutionInfo };
}

/** A run of pure steps over a batch of documents (engine/steps.ts). */
export interface StepsTask {
  kind: 'steps';
  steps: Record<string, PureStep>;
  /** The step the documents enter at. */
  first: string;
  documents: DocumentRef[];
  process: Record<string, unknown>;
  execution: ExecutionInfo;
  workDir: string;
  spillBytes: number;
  /** limits.maxNestingDepth: a computed value nested deeper fails its document. */
  maxNestingDepth: number;
  /** Step data recording: the documents that leave each step, at most `perStep` per step, bodies cut at `bodyBytes`. */
  record?: StepDataLimits;
  /**
   * A split with more children than this hands them back to the walker (as exits towards
   * its next step), which chunks them across the pool; unset: they are walked here.
   */
  handBackAbove?: number;
  /** Through the plugin host: the documents packed (then `documents` is empty), and the outcome's exits packed too. */
  packed?: PackedDocuments;
  /**
   * Bodies in memory of at least this many bytes: those of a task that crossed a process
   * boundary (the plugin host) came in crossing files, and the task's outputs that large go
   * back in crossing files (a large computed body is written straight into one), in any
   * pool: the walker reads back those a later step needs, a streamed answer reads them from
   * their files, and the file of one nobody reads is removed.
   */
  crossAbove?: number;
}

export interface StepDataLimits {
  bodyBytes: number;
  perStep: number;
}

/** A document as it left a step, recorded for step data: properties and the head of the body. */
export interface StepSample {
  step: string;
  properties: Record<string, string>;
  /** The properties the document had when it entered the step, when known (for a diff). */
  input?: Record<string, string>;
  body: Uint8Array;
  size: number;
}

export interface StepCount {
  in: number;
  out: number;
  errors: number;
}

export interface DocumentFailureRef {
  step: string;
  code: string;
  message: string;
  origins?: number[];
}

export interface StepsOutcome {
  /** Documents by the step they go to next (null: the end of their path), in order of first arrival. */
  exits: { next: string | null; documents: DocumentRef[] }[];
  failed: DocumentFailureRef[];
  counts: Record<string, StepCount>;
  /** Process property writes, in document order. */
  processUpdates: [string, unknown][];
  notes: { step: string; level: 'info' | 'warning' | 'error'; message: string }[];
  /** An exception step with scope execution fired. */
  stop?: { step: string; message: string };
  /** With StepsTask.record: the documents that left each step (at most perStep each). */
  samples?: StepSample[];
  /** For a packed task: the exits' documents, packed (each exit's `documents` empty), `sizes[i]` of them for exit i. */
  packed?: { sizes: number[]; documents: PackedDocuments };
}

/** Releases one resource an operation left behind (runtime/connections/recovery.ts). */
export interface RecoverTask {
  kind: 'recover';
  entry: string;
  config: Record<string, unknown>;
  runtime: RuntimeSettings;
  resource: { id: string; kind: string; data: Record<string, unknown>; createdAt: string; attempts: number };
}

export type WorkerTask = ProbeTask | TestTask | OperationTask | StepsTask | RecoverTask;

export type AbortReason = 'timeout' | 'cancelled';

/**
 * A plugin's request about a resource to release on recovery (context.resources): the
 * main thread answers each with a ResourceAnswer of the same `request` number.
 */
export type ResourceRequest =
  | { type: 'hold'; request: number; kind: string; data: Record<string, unknown> }
  | { type: 'release'; request: number; id: string };
export type ResourceAnswer = { type: 'resource'; request: number; ok: true; id: string } | { type: 'resource'; request: number; ok: false; error: PlainError };

/** A plugin task's resource limits (limits.ts): external memory of its worker, CPU time. */
export interface TaskLimits {
  externalMb: number;
  cpuMs: number;
}

/** A task past one of its limits: the pool stops its worker at once. */
export type LimitEvent = { type: 'limit'; resource: 'external memory' | 'CPU time'; used: number; limit: number; unit: 'MB' | 'ms' };

/** On the control port: worker → main. */
export type WorkerEvent = { type: 'started' } | { type: 'progress'; document: number; bytesDone: number; bytesTotal?: number } | LimitEvent | ResourceRequest;
/** On the control port: main → worker. */
export type MainEvent = { type: 'abort'; reason: AbortReason } | ResourceAnswer;

/**
 * As posted to the worker: the pool adds the control port — or, for a steps task, its flags
 * (stepsFlags): pure steps report no progress, hold no resources and watch no limits, so a
 * shared buffer carries their start and their stop instead of a port per task.
 */
export type PostedTask = (Exclude<WorkerTask, StepsTask> & { control: MessagePort; limits?: TaskLimits }) | (StepsTask & { flags: SharedArrayBuffer });

/**
 * A steps task's flags, shared by the pool and the worker: word 0 the stop (0 none, else
 * `stopCodes`' index + 1), written by the pool; word 1 set to 1 by the worker when it starts,
 * after it wrote its clock (Date.now()) into the float at byte 8.
 */
export const stepsFlagsBytes = 16;
export const stopCodes: readonly AbortReason[] = ['timeout', 'cancelled'];

export function stepsFlagViews(flags: SharedArrayBuffer) {
  return { words: new Int32Array(flags, 0, 2), startedAt: new Float64Array(flags, 8, 1) };
}

export interface WorkerLogRecord {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields?: Record<string, unknown>;
}

export interface OperationResultRef {
  status: 'success' | 'application-error' | 'failure';
  message?: string;
  code?: string;
  properties?: Record<string, string>;
  documents?: DocumentRef[];
}

/**
 * `recycle`: the worker is tainted (a late failure of plugin code, a leaked timer, child or
 * server) and says why; the pool retires it after this task, which is not failed for it.
 */
export type WorkerReply =
  | { ok: true; value: unknown; logs: WorkerLogRecord[]; recycle?: string }
  | { ok: false; error: PlainError; logs: WorkerLogRecord[]; recycle?: string };
