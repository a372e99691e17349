/**
 * The graph walker: the orchestrator of one execution, in the main thread. It moves
 * batches of documents from step to step; the work itself runs in the pool: runs of pure
 * steps as one task per chunk of documents (engine/steps.ts), connector operations as
 * operation tasks. Branch, combine, try and process call are decided here.
 *
 * A path's result is the documents that ended it (the output) and the documents that
 * failed on it; a try step turns failures of its try path into retries, then its catch
 * path. Aborts (cancel, timeout) throw out of the walk.
 *
 * Batches may hold any number of documents (a split of a 500,000-line file): they are
 * appended one by one, never spread into a call's arguments.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { QuarkError, quarkError, messageOf } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { isExpression, isPure, targetsOf, type CombineStep, type OperationStep, type ProcessCallStep, type ProcessDefinition, type PureStep, type Step, type TryStep, type StartDefinition } from '../processes/definition.js';
import { inlineRef, packBodies, samplesOf } from './bodies.js';
import { crossBytes, dropCrossing, fromCrossing } from './crossing.js';
import type { ExecutionInfo } from './expressions.js';
import type { WorkerPool } from './pool.js';
import { withOrigins, type BodyRef, type DocumentFailureRef, type DocumentRef, type OperationResultRef, type StepCount, type StepDataLimits, type StepSample, type StepsOutcome } from './messages.js';

export interface OperationRunner {
  /** Runs a connection's operation over documents; one result per document. */
  run(ref: { connection: string; operation: string }, documents: DocumentRef[], parameters: Record<string, unknown>, options: { step: string; dynamic: boolean; timeoutMs?: number; onProgress?(p: { document: number; bytesDone: number; bytesTotal?: number }): void }): Promise<OperationResultRef[]>;
}

export interface WalkContext {
  info: ExecutionInfo;
  workDir: string;
  signal: AbortSignal;
  /** Process properties of this execution (shared with called processes); updated in document order. */
  process: Record<string, unknown>;
  /**
   * Told of process property writes as soon as the main thread learns them (after each
   * chunk of a run of pure steps), the last value per name: persisted properties are
   * stored there, property by property.
   */
  onProcessUpdates?(updates: Map<string, unknown>): void;
  operations: OperationRunner;
  /** The current deployed definition of a called process. */
  callee(processId: string): Promise<ProcessDefinition>;
  counts: Record<string, StepCount>;
  /**
   * Nobody reads this execution's output documents (it was started without waiting): the
   * ends of its top-level path count them (WalkResult.documentsOut) and keep none.
   */
  discardOutputs?: boolean;
  /**
   * Somebody reads this execution's output documents as they are made (a streamed
   * answer): the ends of its top-level path hand them here, in the order they ended, and
   * keep none (WalkResult.documentsOut counts them). The walker waits for `ready()` before
   * it hands a chunk to the pool and after each batch it hands over, so a slow reader
   * pauses the execution instead of letting documents pile up.
   */
  outputSink?: OutputSink;
  log: Logger;
  /** Caught errors and warning notes: the execution completes with warnings. */
  warnings: number;
  progress?: { step: string; bytesDone: number; bytesTotal?: number };
  /** Step data recording: the documents that leave each step go to `add` (step ids with their call prefix). */
  stepData?: { limits: StepDataLimits; add(samples: StepSample[]): void };
}

/** Where the documents that end an execution go as they end (WalkContext.outputSink). */
export interface OutputSink {
  /** Takes documents that ended the process (it holds them; the walker keeps none). */
  push(documents: readonly DocumentRef[]): void;
  /** Resolves once the reader has taken enough of what the sink holds (at once when it holds little). */
  ready(): Promise<void> | undefined;
}

export interface WalkerOptions {
  pool: WorkerPool;
  threads: number;
  spillBytes: number;
  /** Time limit of one chunk of a run of pure steps (limits.stepTimeoutMs), unless its steps set timeoutMs. */
  stepTimeoutMs: number;
  /** limits.maxNestingDepth: a value a step computes deeper than this fails its document. */
  maxNestingDepth: number;
}

export interface PathResult {
  outputs: DocumentRef[];
  failures: DocumentFailureRef[];
}

export interface WalkResult extends PathResult {
  /** Documents the start handed to the first step. */
  documentsIn: number;
  /** Documents that ended the process: outputs.length, or the count alone with discardOutputs. */
  documentsOut: number;
}

/** An exception step with scope execution: the execution ends with an error. */
export class ExecutionStopped extends Error {
  constructor(readonly step: string, message: string) {
    super(message);
  }
}

interface Scope {
  steps: Map<string, Step>;
  pure: Record<string, PureStep>;
  /** Prefix of counted step ids inside called processes ("call>"). */
  prefix: string;
  /** Enclosing try steps. */
  depth: number;
  /** Processes on the call stack, against runaway recursion. */
  calls: string[];
}

/** One walk: the walker's options and the execution's context, passed to every function. */
interface Walk {
  options: WalkerOptions;
  ctx: WalkContext;
  /** Documents that reached the end of the top-level path (kept in outputs unless discardOutputs). */
  ended: number;
}

/** A failure's code: a catalogue code, or a plugin's own (e.g. an S3 error name). */
type Failure = { code: string; message: string };

const maxChunk = 2000;

/**
 * Chunks of one run of pure steps handed to the pool at a time, per thread: one running
 * and one waiting, so a worker never waits for the main thread between chunks, while the
 * chunks not yet handed over stay unpacked (a chunk is copied into its transfer buffer only
 * when it is handed over, not all of a 100,000-document batch at once).
 */
const chunksInFlightPerThread = 2;

function scopeOf(definition: ProcessDefinition, prefix: string, depth: number, calls: string[]): Scope {
  const steps = new Map(definition.steps.map((s) => [s.id, s]));
  const pure: Record<string, PureStep> = {};
  for (const step of definition.steps) if (isPure(step)) pure[step.id] = step;
  return { steps, pure, prefix, depth, calls };
}

export function chunksOf<T>(items: T[], threads: number): T[][] {
  if (items.length <= 64) return [items];
  const size = Math.min(maxChunk, Math.max(64, Math.ceil(items.length / (threads * 4))));
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

/** Appends items one by one: `target.push(...items)` overflows the stack past ~125,000 items. */
export function append<T>(target: T[], items: readonly T[]): T[] {
  for (const item of items) target.push(item);
  return target;
}

function failEach(documents: readonly DocumentRef[], step: string, failure: Failure): DocumentFailureRef[] {
  return documents.map((d) => withOrigins({ step, code: failure.code, message: failure.message }, d));
}

function joinResults(first: PathResult, second: PathResult): PathResult {
  return { outputs: second.outputs, failures: append(first.failures, second.failures) };
}

const bytesOf = (body: BodyRef) => (body.kind === 'inline' ? Buffer.from(body.bytes.buffer, body.bytes.byteOffset, body.bytes.byteLength) : undefined);

const emptyDocument = (): DocumentRef => ({ properties: {}, body: inlineRef(Buffer.alloc(0)) });

function count(walk: Walk, scope: Scope, id: string): StepCount {
  return (walk.ctx.counts[scope.prefix + id] ??= { in: 0, out: 0, errors: 0 });
}

function checkAborted(ctx: WalkContext): void {
  if (ctx.signal.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : quarkError('QUARK_ERR_EXECUTION_CANCELLED', 'the execution was cancelled');
}

async function walkProcess(walk: Walk, definition: ProcessDefinition, documents: DocumentRef[]): Promise<WalkResult> {
  const scope = scopeOf(definition, '', 0, [definition.id]);
  const started = await start(walk, definition.start, documents);
  const rest = await runPath(walk, definition.start.next, started.outputs, scope);
  return { outputs: rest.outputs, failures: append(started.failures, rest.failures), documentsIn: started.outputs.length, documentsOut: walk.ended };
}

/**
 * Documents at the end of a path: the path's outputs; at the end of the process, counted
 * (and dropped when nobody reads them, or handed to the output sink, which may pause the walk).
 */
async function pathEnd(walk: Walk, documents: DocumentRef[], scope: Scope): Promise<PathResult> {
  if (scope.prefix !== '') return { outputs: documents, failures: [] };
  walk.ended += documents.length;
  const sink = walk.ctx.outputSink;
  if (!sink) return { outputs: walk.ctx.discardOutputs ? [] : documents, failures: [] };
  sink.push(documents);
  await sink.ready();
  return { outputs: [], failures: [] };
}

async function start(walk: Walk, definition: StartDefinition, documents: DocumentRef[]): Promise<PathResult> {
  if (definition.kind === 'none') return { outputs: [emptyDocument()], failures: [] };
  if (definition.kind === 'documents') return { outputs: documents, failures: [] };
  const step: OperationStep = {
    id: 'start',
    kind: 'operation',
    connection: definition.connection,
    operation: definition.operation,
    ...(definition.parameters ? { parameters: definition.parameters } : {}),
    ...(definition.timeoutMs ? { timeoutMs: definition.timeoutMs } : {}),
  };
  return operation(walk, step, [emptyDocument()], { steps: new Map(), pure: {}, prefix: '', depth: 0, calls: [] });
}

async function runPath(walk: Walk, id: string | undefined, documents: DocumentRef[], scope: Scope): Promise<PathResult> {
  if (id === undefined) return pathEnd(walk, documents, scope);
  if (documents.length === 0) return { outputs: [], failures: [] };
  checkAborted(walk.ctx);
  const step = scope.steps.get(id);
  if (!step) throw new Error(`step ${id} is not in the process (deploy validation should have refused it)`);
  if (isPure(step)) return segment(walk, step, documents, scope);
  switch (step.kind) {
    case 'operation':
      return thenNext(walk, step.next, await operation(walk, step, documents, scope), scope);
    case 'branch':
      return branch(walk, step.id, step.paths, documents, scope);
    case 'combine':
      return thenNext(walk, step.next, await combine(walk, step, documents, scope), scope);
    case 'try':
      return tryCatch(walk, step, documents, scope);
    case 'process-call':
      return processCall(walk, step, documents, scope);
  }
  throw new Error(`unhandled step kind ${(step as Step).kind}`);
}

/** A step's result, its outputs continued on the path from `next`. */
async function thenNext(walk: Walk, next: string | undefined, result: PathResult, scope: Scope): Promise<PathResult> {
  return joinResults(result, await runPath(walk, next, result.outputs, scope));
}

async function branch(walk: Walk, id: string, paths: string[], documents: DocumentRef[], scope: Scope): Promise<PathResult> {
  const counts = count(walk, scope, id);
  counts.in += documents.length;
  const all: PathResult = { outputs: [], failures: [] };
  for (const path of paths) {
    counts.out += documents.length;
    const result = await runPath(walk, path, documents, scope);
    append(all.outputs, result.outputs);
    append(all.failures, result.failures);
  }
  return all;
}

async function processCall(walk: Walk, step: ProcessCallStep, documents: DocumentRef[], scope: Scope): Promise<PathResult> {
  const { ctx } = walk;
  const counts = count(walk, scope, step.id);
  counts.in += documents.length;
  if (scope.calls.includes(step.process)) throw quarkError('QUARK_ERR_PROCESS_INVALID', `process ${step.process} calls itself (through ${scope.calls.join(' → ')})`);
  let callee: ProcessDefinition;
  try {
    callee = await ctx.callee(step.process);
  } catch (error) {
    counts.errors += documents.length;
    const code = error instanceof QuarkError ? error.code : 'QUARK_ERR_PROCESS_NOT_FOUND';
    return { outputs: [], failures: failEach(documents, scope.prefix + step.id, { code, message: messageOf(error) }) };
  }
  // process properties are shared with the caller; the callee's own start at their defaults
  for (const [name, spec] of Object.entries(callee.properties ?? {})) if (!(name in ctx.process)) ctx.process[name] = spec.default;
  const inner = scopeOf(callee, `${scope.prefix}${step.id}>`, scope.depth, [...scope.calls, callee.id]);
  const result = await runPath(walk, callee.start.next, documents, inner);
  counts.out += result.outputs.length;
  await record(ctx, scope.prefix + step.id, result.outputs);
  return thenNext(walk, step.next, result, scope);
}

/**
 * The time limit of one chunk of the run of pure steps entered at `first`: the largest
 * timeoutMs set by the pure steps it can reach without leaving the run, else the default.
 */
export function segmentTimeout(first: PureStep, pure: Record<string, PureStep>, defaultMs: number): number {
  let limit: number | undefined;
  const seen = new Set<string>();
  const stack: PureStep[] = [first];
  while (stack.length > 0) {
    const step = stack.pop()!;
    if (seen.has(step.id)) continue;
    seen.add(step.id);
    if ('timeoutMs' in step && step.timeoutMs !== undefined) limit = Math.max(limit ?? 0, step.timeoutMs);
    for (const target of targetsOf(step, '')) {
      const next = pure[target.id];
      if (next) stack.push(next);
    }
  }
  return limit ?? defaultMs;
}

/** A run of pure steps from `first`, in chunks across the pool; then each exit's path. */
async function segment(walk: Walk, first: PureStep, documents: DocumentRef[], scope: Scope): Promise<PathResult> {
  const { ctx } = walk;
  const timeoutMs = segmentTimeout(first, scope.pure, walk.options.stepTimeoutMs);
  // every chunk sees the process properties as the run began, whenever it is handed over
  const process = { ...ctx.process };
  const exits = new Map<string, DocumentRef[]>();
  const failures: DocumentFailureRef[] = [];
  let stop: { step: string; message: string } | undefined;
  const merge = (outcome: StepsOutcome) => {
    mergeOutcome(walk, scope, outcome, exits, failures);
    stop ??= outcome.stop;
  };
  const chunks = chunksOf(documents, walk.options.threads);
  await eachInOrder(chunks, walk.options.threads * chunksInFlightPerThread, (chunk) => runChunk(walk, first, chunk, scope, timeoutMs, process), merge);
  checkAborted(ctx);
  if (stop) throw new ExecutionStopped(scope.prefix + stop.step, stop.message);
  const result: PathResult = { outputs: [], failures };
  for (const [key, group] of exits) {
    // bodies in memory that came back from another process in crossing files: in memory again
    const next = await runPath(walk, key === '' ? undefined : key, await fromCrossing(group, ctx.workDir), scope);
    append(result.outputs, next.outputs);
    append(result.failures, next.failures);
  }
  return result;
}

/**
 * Runs `run` over every item, at most `limit` at a time, and hands each result to
 * `deliver` in the order of the items as soon as it and those before it are in (so a
 * chunk's outcome is merged, and what it holds released, while later chunks still run).
 */
export async function eachInOrder<T, R>(items: readonly T[], limit: number, run: (item: T) => Promise<R>, deliver: (result: R) => void): Promise<void> {
  const done = new Map<number, R>();
  let next = 0;
  let delivered = 0;
  async function lane(): Promise<void> {
    while (next < items.length) {
      const at = next++;
      done.set(at, await run(items[at]!));
      for (; done.has(delivered); delivered++) {
        const result = done.get(delivered)!;
        done.delete(delivered);
        deliver(result);
      }
    }
  }
  const lanes: Promise<void>[] = [];
  for (let i = 0; i < Math.min(limit, items.length); i++) lanes.push(lane());
  await Promise.all(lanes);
}

const crossesInFile = (bytes: Uint8Array) => bytes.byteLength >= crossBytes;

/** With more than one thread, a split's children beyond one chunk come back to be spread over the pool. */
const handBack = (options: WalkerOptions) => (options.threads > 1 ? { handBackAbove: maxChunk } : {});

async function runChunk(walk: Walk, first: PureStep, chunk: DocumentRef[], scope: Scope, timeoutMs: number, process: Record<string, unknown>): Promise<StepsOutcome> {
  const { ctx, options } = walk;
  // a slow reader of the streamed outputs holds the next chunk back
  await ctx.outputSink?.ready();
  try {
    // a pool that packs steps itself (the plugin host) gets the chunk as it is; otherwise large
    // bodies that cross to another process in files are not copied into the transfer buffer;
    // large outputs come back in crossing files, in any pool, so that the worker never holds one while the main thread reads it
    const { documents, buffer } = options.pool.packsSteps ? { documents: chunk, buffer: undefined } : packBodies(chunk, options.pool.stepsCrossProcess ? crossesInFile : undefined);
    const reply = await options.pool.run(
      { kind: 'steps', steps: scope.pure, first: first.id, documents, process, execution: ctx.info, workDir: ctx.workDir, spillBytes: options.spillBytes, maxNestingDepth: options.maxNestingDepth, crossAbove: crossBytes, ...handBack(options), ...(ctx.stepData ? { record: ctx.stepData.limits } : {}) },
      { timeoutMs, what: `step ${first.id}`, signal: ctx.signal, ...(buffer ? { transfer: [buffer] } : {}) },
    );
    if (reply.ok) return reply.value as StepsOutcome;
    return failedChunk(first, chunk, reply.error);
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    return failedChunk(first, chunk, chunkFailure(error, first, chunk.length, timeoutMs));
  }
}

/** What a failed steps task means for its documents, in the words of steps rather than plugins. */
export function chunkFailure(error: unknown, first: PureStep, documents: number, timeoutMs: number): Failure {
  const step = `step ${first.id}`;
  if (!(error instanceof QuarkError)) return { code: 'QUARK_ERR_STEP_FAILED', message: `${step}: ${messageOf(error)}` };
  if (error.code === 'QUARK_ERR_PLUGIN_TIMEOUT') {
    return { code: 'QUARK_ERR_STEP_TIMEOUT', message: `${step}: a chunk of ${documents} document(s) did not finish within ${timeoutMs} ms (the steps' timeoutMs, else limits.stepTimeoutMs); its worker was stopped` };
  }
  // a worker that ran out of heap (details.outOfMemory, from the pool, also through the
  // plugin host), or the plugin host that V8 aborted for memory (isolation "process")
  if (error.code === 'QUARK_ERR_PLUGIN_WORKER_DIED' && error.details?.outOfMemory === true) {
    return { code: 'QUARK_ERR_STEP_MEMORY_LIMIT', message: `${step}: ${error.message.replace(/^step \S+ /, '')}; limits.workerHeapMb bounds the memory of one worker` };
  }
  if (error.code === 'QUARK_ERR_PLUGIN_HOST_DIED' && error.details?.outOfMemory === true) {
    return { code: 'QUARK_ERR_STEP_MEMORY_LIMIT', message: `${step}: the plugin host process ran out of memory while this chunk ran in it (one allocation past a worker's heap limit, limits.workerHeapMb, aborts the whole host); the runtime started a new host and goes on` };
  }
  if (error.code === 'QUARK_ERR_PLUGIN_WORKER_DIED' && error.details?.posted === false) {
    return { code: 'QUARK_ERR_STEP_TASK_UNSENDABLE', message: `${step}: the documents or process properties could not be passed to a worker thread: ${messageOf(error.cause)}` };
  }
  return { code: error.code, message: error.message };
}

function failedChunk(first: PureStep, chunk: DocumentRef[], failure: Failure): StepsOutcome {
  return {
    exits: [],
    failed: failEach(chunk, first.id, failure),
    counts: { [first.id]: { in: chunk.length, out: 0, errors: chunk.length } },
    processUpdates: [],
    notes: [],
  };
}

/** Adds one chunk's outcome to the segment's: counts, process properties, notes, failures, exits. */
function mergeOutcome(walk: Walk, scope: Scope, outcome: StepsOutcome, exits: Map<string, DocumentRef[]>, failures: DocumentFailureRef[]): void {
  const { ctx } = walk;
  for (const [id, c] of Object.entries(outcome.counts)) {
    const counts = count(walk, scope, id);
    counts.in += c.in;
    counts.out += c.out;
    counts.errors += c.errors;
  }
  applyProcessUpdates(ctx, outcome.processUpdates);
  if (outcome.samples) ctx.stepData?.add(outcome.samples.map((x) => ({ ...x, step: scope.prefix + x.step })));
  for (const note of outcome.notes) logNote(ctx, scope.prefix + note.step, note);
  for (const f of outcome.failed) failures.push({ ...f, step: scope.prefix + f.step });
  for (const exit of outcome.exits) {
    const key = exit.next ?? '';
    // the end of the process, and nobody reads its documents (or a sink takes them as they end): count them, keep none
    if (key === '' && scope.prefix === '' && (ctx.discardOutputs || ctx.outputSink)) {
      walk.ended += exit.documents.length;
      // a streamed answer reads a crossing body from its file; a dropped one's file goes now
      if (ctx.outputSink) ctx.outputSink.push(exit.documents);
      else dropCrossing(exit.documents, ctx.workDir);
      continue;
    }
    const group = exits.get(key);
    if (group) append(group, exit.documents);
    else exits.set(key, exit.documents);
  }
}

function applyProcessUpdates(ctx: WalkContext, updates: [string, unknown][]): void {
  if (updates.length === 0) return;
  const last = new Map<string, unknown>();
  for (const [name, value] of updates) {
    ctx.process[name] = value;
    last.set(name, value);
  }
  ctx.onProcessUpdates?.(last);
}

function logNote(ctx: WalkContext, step: string, note: StepsOutcome['notes'][number]): void {
  const fields = { step };
  if (note.level === 'info') return ctx.log.info(fields, note.message);
  if (note.level === 'warning') ctx.log.warn(fields, note.message);
  else ctx.log.error(fields, note.message);
  ctx.warnings++;
}

/** Step data: the documents that left a step run in the main thread (operations, combine, process calls). */
async function record(ctx: WalkContext, step: string, documents: readonly DocumentRef[], inputs?: readonly Record<string, string>[]): Promise<void> {
  if (ctx.stepData && documents.length > 0) ctx.stepData.add(await samplesOf(step, documents, ctx.stepData.limits, inputs));
}

async function operation(walk: Walk, step: OperationStep, documents: DocumentRef[], scope: Scope): Promise<PathResult> {
  const { ctx } = walk;
  const id = scope.prefix + step.id;
  const counts = count(walk, scope, step.id);
  counts.in += documents.length;
  const parameters = step.parameters ?? {};
  const dynamic = Object.values(parameters).some(isExpression);
  const onProgress = (p: { bytesDone: number; bytesTotal?: number }) => {
    ctx.progress = { step: id, bytesDone: p.bytesDone, ...(p.bytesTotal !== undefined ? { bytesTotal: p.bytesTotal } : {}) };
  };
  const options = { step: id, dynamic, onProgress, ...(step.timeoutMs ? { timeoutMs: step.timeoutMs } : {}) };
  const ref = { connection: step.connection, operation: step.operation };
  const chunks = chunksOf(documents, walk.options.threads);
  const answers = await Promise.all(chunks.map((chunk) => ctx.operations.run(ref, chunk, parameters, options)));
  checkAborted(ctx);
  const result: PathResult = { outputs: [], failures: [] };
  const inputs: Record<string, string>[] = [];
  answers.forEach((results, b) => {
    results.forEach((r, i) => {
      const input = chunks[b]![i]!;
      if (r.status === 'success') {
        for (const out of r.documents ?? []) {
          result.outputs.push(withOrigins({ properties: { ...input.properties, ...out.properties }, body: out.body }, input));
          inputs.push(input.properties);
        }
      } else {
        counts.errors++;
        result.failures.push(withOrigins({ step: id, code: r.code ?? r.status, message: r.message ?? r.status }, input));
      }
    });
  });
  counts.out += result.outputs.length;
  await record(ctx, id, result.outputs, inputs);
  return result;
}

/** The bodies of documents as one text, or the reason they cannot be combined. */
function combinedText(step: CombineStep, documents: DocumentRef[], spillBytes: number): string | { failed: string } {
  const texts: string[] = [];
  for (const d of documents) {
    const bytes = bytesOf(d.body);
    if (!bytes) return { failed: `step ${step.id}: a body larger than limits.spillBytes (${spillBytes} bytes) cannot be combined in memory` };
    texts.push(bytes.toString('utf8'));
  }
  if (step.mode === 'lines') return texts.map((t) => t.replace(/\r?\n$/, '')).join('\n') + '\n';
  try {
    return `[${texts.map((t) => JSON.stringify(JSON.parse(t))).join(',')}]`;
  } catch (error) {
    return { failed: `step ${step.id}: a body is not JSON: ${messageOf(error)}` };
  }
}

/** A body's bytes without one final line end (\n or \r\n), as a stream: the last two bytes are held back until the end. */
async function* withoutFinalLineEnd(chunks: Iterable<Buffer> | AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let held: Buffer = Buffer.alloc(0);
  for await (const chunk of chunks) {
    const all = held.length > 0 ? Buffer.concat([held, chunk]) : chunk;
    const keep = Math.min(2, all.length);
    if (all.length > keep) yield all.subarray(0, all.length - keep);
    held = all.subarray(all.length - keep);
  }
  let end = held.length;
  if (end > 0 && held[end - 1] === 0x0a) end -= end > 1 && held[end - 2] === 0x0d ? 2 : 1;
  if (end > 0) yield held.subarray(0, end);
}

/** The lines of every body, each ending in one \n, as they stream: spilled bodies are read as streams, never whole. */
async function* combinedLines(documents: readonly DocumentRef[]): AsyncGenerator<Buffer> {
  const lineEnd = Buffer.from('\n');
  for (const d of documents) {
    yield* withoutFinalLineEnd(d.body.kind === 'inline' ? [bytesOf(d.body)!] : (createReadStream(d.body.path) as AsyncIterable<Buffer>));
    yield lineEnd;
  }
}

/** Combines in lines mode into a new file of the work directory, streamed. */
async function combineLinesToFile(ctx: WalkContext, documents: readonly DocumentRef[]): Promise<BodyRef> {
  const path = join(ctx.workDir, `combined-${randomBytes(8).toString('hex')}`);
  await mkdir(ctx.workDir, { recursive: true, mode: 0o700 });
  let size = 0;
  const counted = async function* () {
    for await (const chunk of combinedLines(documents)) {
      size += chunk.length;
      yield chunk;
    }
  };
  await pipeline(counted, createWriteStream(path, { flags: 'wx', mode: 0o600 }), { signal: ctx.signal });
  return { kind: 'file', path, size };
}

const inlineSize = (documents: readonly DocumentRef[]) => documents.reduce((n, d) => n + (d.body.kind === 'inline' ? d.body.bytes.byteLength : 0), 0);

async function combine(walk: Walk, step: CombineStep, documents: DocumentRef[], scope: Scope): Promise<PathResult> {
  const { ctx, options } = walk;
  const counts = count(walk, scope, step.id);
  counts.in += documents.length;
  // lines with a spilled body, or more than spillBytes of them: streamed to a file, never whole in memory
  if (step.mode === 'lines' && (documents.some((d) => d.body.kind === 'file') || inlineSize(documents) + documents.length > options.spillBytes)) {
    const body = await combineLinesToFile(ctx, documents);
    counts.out++;
    const first = documents[0]!;
    return { outputs: [withOrigins({ properties: { ...first.properties }, body }, first)], failures: [] };
  }
  const text = combinedText(step, documents, options.spillBytes);
  if (typeof text !== 'string') {
    counts.errors += documents.length;
    return { outputs: [], failures: failEach(documents, scope.prefix + step.id, { code: 'QUARK_ERR_PROCESS_COMBINE_FAILED', message: text.failed }) };
  }
  let body: BodyRef = inlineRef(text);
  if (body.kind === 'inline' && body.bytes.byteLength > options.spillBytes) {
    const path = join(ctx.workDir, `combined-${randomBytes(8).toString('hex')}`);
    await mkdir(ctx.workDir, { recursive: true, mode: 0o700 });
    await writeFile(path, text, { flag: 'wx', mode: 0o600 });
    body = { kind: 'file', path, size: Buffer.byteLength(text) };
  }
  counts.out++;
  const first = documents[0]!;
  const combined = withOrigins({ properties: { ...first.properties }, body }, first);
  await record(ctx, scope.prefix + step.id, [combined], [first.properties]);
  return { outputs: [combined], failures: [] };
}

async function tryCatch(walk: Walk, step: TryStep, documents: DocumentRef[], scope: Scope): Promise<PathResult> {
  const { ctx } = walk;
  const counts = count(walk, scope, step.id);
  counts.in += documents.length;
  const depth = scope.depth;
  const inner: Scope = { ...scope, depth: depth + 1 };
  const outputs: DocumentRef[] = [];
  let pending = documents.map((document, index) => ({ document, index }));
  const lastFailure = new Map<number, DocumentFailureRef>();
  const retries = step.retries ?? 0;
  for (let attempt = 0; ; attempt++) {
    const batch = pending.map(({ document, index }) => ({ ...document, origins: [...(document.origins ?? []).slice(0, depth), index] }));
    const result = await runPath(walk, step.try, batch, inner);
    append(outputs, result.outputs);
    const failed = new Set<number>();
    for (const f of result.failures) {
      const index = f.origins?.[depth];
      if (index === undefined) continue;
      failed.add(index);
      lastFailure.set(index, f);
    }
    pending = pending.filter((p) => failed.has(p.index));
    if (pending.length === 0 || attempt >= retries) break;
    ctx.log.warn({ step: scope.prefix + step.id, documents: pending.length, attempt: attempt + 1, retries }, `retrying ${pending.length} failed document(s)`);
    if (step.retryDelayMs) await delay(step.retryDelayMs, ctx.signal);
    checkAborted(ctx);
  }
  counts.out += documents.length - pending.length;
  if (pending.length === 0) return { outputs, failures: [] };
  ctx.warnings += pending.length;
  const caught = pending.map(({ document, index }) => caughtDocument(ctx, scope.prefix + step.id, document, lastFailure.get(index)!, depth));
  const result = await runPath(walk, step.catch, caught, scope);
  return { outputs: append(outputs, result.outputs), failures: result.failures };
}

/** A document caught by a try step, as it goes to the catch path: its error as properties. */
function caughtDocument(ctx: WalkContext, step: string, document: DocumentRef, f: DocumentFailureRef, depth: number): DocumentRef {
  ctx.log.warn({ step, failedStep: f.step, code: f.code }, `caught: ${f.message}`);
  const { origins, ...rest } = document;
  const properties = { ...document.properties, 'quark.error.step': f.step, 'quark.error.code': f.code, 'quark.error.message': f.message };
  return origins ? { ...rest, origins: origins.slice(0, depth), properties } : { ...rest, properties };
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export function createWalker(options: WalkerOptions) {
  return {
    walk: (definition: ProcessDefinition, documents: DocumentRef[], ctx: WalkContext): Promise<WalkResult> => walkProcess({ options, ctx, ended: 0 }, definition, documents),
  };
}

export type Walker = ReturnType<typeof createWalker>;
