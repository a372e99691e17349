/**
 * The pure-step interpreter, run in a worker: it walks each document through a run of
 * steps that only compute (map, set properties, decision, route, split, notify,
 * exception, stop) until the document reaches a step that needs the main thread (an
 * operation, a barrier, a process call) or the end of its path. A body is parsed once on
 * the way and serialised once at the exit, whatever the number of steps.
 *
 * A failure belongs to the document that caused it: whatever one document does (an
 * expression error, a value nested too deep to serialise, a body that cannot be
 * written), it fails alone and the others of its chunk go on.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { messageOf, type ErrorCode } from '../core/errors.js';
import { findTooDeep, jsonTextNestsDeeper, tooDeepMessage } from '../core/json-depth.js';
import type { PureStep } from '../processes/definition.js';
import { isExpression } from '../processes/definition.js';
import { emptyBody, fileHead, inlineRef, packOwnBodies, refOf, releaseBytes } from './bodies.js';
import { BodyTooDeep, jsonBody, writesInPieces } from './json-body.js';
import { expressionFailure, plainValue, propertyText, truthy, type Evaluate, type ExpressionBindings } from './expressions.js';
import { withOrigins, type BodyRef, type DocumentRef, type StepCount, type StepsOutcome, type StepsTask } from './messages.js';

const unparsed = Symbol('unparsed');

interface DocState {
  properties: Record<string, string>;
  body: BodyRef;
  /** $body: the body as it entered this run of steps. */
  entered: { size: number; spilled: boolean };
  value: unknown;
  changed: boolean;
  /** It entered with a body of at least largeBodyBytes (its own, not a split parent's): a computed body is written in pieces. */
  large?: boolean;
  origins?: number[];
}

/** A document that enters with a body this large has a computed body written as bytes in pieces (json-body.ts), not as one string. */
const largeBodyBytes = 1024 * 1024;

class DocumentFailure extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

class ExecutionStop extends Error {}

/** One task's run: what every function below works on. */
interface Run {
  task: StepsTask;
  evaluate: Evaluate;
  signal: AbortSignal;
  /** The process properties as this task sees them (its own writes included). */
  process: Record<string, unknown>;
  outcome: StepsOutcome;
  exits: Map<string, DocumentRef[]>;
  /** With task.record: how many documents of each step were recorded. */
  sampled?: Map<string, number>;
}

const maxNotes = 1000;

/**
 * The body as a value, parsed on first use. `replacing`: the caller replaces the body (a
 * map), so a large input's bytes are freed once decoded, before the parse builds its value.
 */
function valueOf(state: DocState, replacing = false): unknown {
  if (state.value !== unparsed) return state.value;
  let text: string | undefined;
  if (state.body.kind === 'inline') {
    const bytes = state.body.bytes;
    text = bytes.byteLength === 0 ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    if (replacing) {
      releaseBytes(bytes);
      state.body = emptyBody;
    }
  }
  // a spilled body is not loaded whole for an expression: $ is absent
  if (text === undefined) state.value = undefined;
  else {
    try {
      state.value = JSON.parse(text);
    } catch {
      state.value = text;
    }
  }
  return state.value;
}

/** The document as it leaves `step`, for step data: its properties and the head of its body as it is now. */
async function sample(run: Run, step: string, state: DocState, input: Record<string, string> | undefined): Promise<void> {
  const limits = run.task.record;
  if (!limits) return;
  const taken = (run.sampled ??= new Map<string, number>());
  const n = taken.get(step) ?? 0;
  if (n >= limits.perStep) return;
  taken.set(step, n + 1);
  try {
    let body: Uint8Array;
    let size: number;
    if (state.changed || state.body.kind === 'inline') {
      const bytes = state.changed ? Buffer.from(await textOf(state), 'utf8') : state.body.kind === 'inline' ? state.body.bytes : new Uint8Array();
      size = bytes.byteLength;
      body = new Uint8Array(bytes.subarray(0, limits.bodyBytes));
    } else {
      size = state.body.size;
      body = await fileHead(state.body.path, limits.bodyBytes);
    }
    (run.outcome.samples ??= []).push({ step, properties: { ...state.properties }, ...(input ? { input } : {}), body, size });
  } catch {
    // recording is an aid: a body that cannot be read for it does not fail the document
  }
}

async function textOf(state: DocState): Promise<string> {
  if (state.changed || state.body.kind === 'inline') {
    const value = valueOf(state);
    return value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  }
  return readFile(state.body.path, 'utf8');
}

function count(run: Run, id: string): StepCount {
  return (run.outcome.counts[id] ??= { in: 0, out: 0, errors: 0 });
}

/** Refuses a value nested deeper than limits.maxNestingDepth before anything serialises or posts it. */
function checkDepth(run: Run, step: string, what: string, value: unknown): void {
  if (value === null || typeof value !== 'object') return;
  const found = findTooDeep(value, run.task.maxNestingDepth);
  if (found) throw new DocumentFailure('QUARK_ERR_STEP_NESTING_TOO_DEEP', `step ${step}: ${what} ${tooDeepMessage(found)} (at ${found.path.slice(0, 80)}${found.path.length > 80 ? '…' : ''})`);
}

/** A computed value as a property string, refused when it nests too deep to serialise. */
function textFor(run: Run, step: PureStep, what: string, value: unknown): string {
  checkDepth(run, step.id, what, value);
  return propertyText(value);
}

function bindings(run: Run, state: DocState): ExpressionBindings {
  return { properties: state.properties, process: run.process, execution: run.task.execution, body: state.entered };
}

function expressionFailed(step: PureStep, error: unknown): DocumentFailure {
  return new DocumentFailure('QUARK_ERR_EXPRESSION_FAILED', `step ${step.id}: the expression failed: ${expressionFailure(error)}`);
}

/** An expression's value for the document: at once when evaluated directly, else a promise (awaited by the caller either way). */
function evalIn(run: Run, step: PureStep, text: string, state: DocState): unknown {
  let result: unknown;
  try {
    result = run.evaluate(text, valueOf(state), bindings(run, state));
  } catch (error) {
    throw expressionFailed(step, error);
  }
  return result instanceof Promise ? result.catch((error: unknown) => { throw expressionFailed(step, error); }) : result;
}

function dynamic(run: Run, step: PureStep, value: unknown, state: DocState): unknown {
  return isExpression(value) ? evalIn(run, step, value.$expr, state) : value;
}

/**
 * A computed body as text, refused when it nests deeper than limits.maxNestingDepth. The
 * depth is read off the serialised text (a scan of its brackets), not by walking the value
 * before it: the walk cost more than the serialising; only a value found too deep (or one
 * too deep for JSON.stringify's stack) is walked, for the place to name.
 */
function bodyText(run: Run, step: string, value: unknown): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    if (error instanceof RangeError) checkDepth(run, step, 'the body', value);
    throw error;
  }
  if (typeof text === 'string' && jsonTextNestsDeeper(text, run.task.maxNestingDepth)) checkDepth(run, step, 'the body', value);
  return text;
}

/** A large computed body as bytes, written in pieces (never one string); refused, with its place, when it nests too deep. */
function largeBody(run: Run, step: string, value: Record<string, unknown> | unknown[]): BodyRef {
  try {
    return jsonBody(value, { spillBytes: run.task.spillBytes, workDir: run.task.workDir, maxDepth: run.task.maxNestingDepth, ...(run.task.crossAbove !== undefined ? { crossAbove: run.task.crossAbove } : {}) });
  } catch (error) {
    if (!(error instanceof BodyTooDeep)) throw error;
    checkDepth(run, step, 'the body', value);
    throw new DocumentFailure('QUARK_ERR_STEP_NESTING_TOO_DEEP', `step ${step}: the body nests deeper than ${run.task.maxNestingDepth} levels of objects and arrays (limits.maxNestingDepth); flatten the value`);
  }
}

/** The document leaves the run towards `next` (null: the end of its path), its body serialised once. */
function exit(run: Run, next: string | null, state: DocState, last: string): void | Promise<void> {
  const add = (body: BodyRef) => {
    const key = next ?? '';
    let group = run.exits.get(key);
    if (!group) run.exits.set(key, (group = []));
    group.push(withOrigins({ properties: state.properties, body }, state));
  };
  if (!state.changed) return add(state.body);
  if (state.large && writesInPieces(state.value)) return add(largeBody(run, last, state.value));
  const text = bodyText(run, last, state.value);
  // small bodies (nearly all) stay in memory without a detour through a stream
  if (text.length * 3 <= run.task.spillBytes) return add(inlineRef(text));
  return refOf(text, run.task.workDir, run.task.spillBytes, run.signal).then(add);
}

function fail(run: Run, step: string, state: DocState, error: unknown): void {
  count(run, step).errors++;
  const failure = error instanceof DocumentFailure ? error : new DocumentFailure('QUARK_ERR_STEP_FAILED', `step ${step}: ${messageOf(error)}`);
  const failed = { step, code: failure.code, message: failure.message };
  run.outcome.failed.push(withOrigins(failed, state));
}

/**
 * `f` of a value that is there at once or later: at once when it is (no promise made, as
 * for directly evaluated expressions), else when the promise settles.
 */
function then<T, R>(value: unknown, f: (value: T) => R): R | Promise<Awaited<R>> {
  return value instanceof Promise ? (value.then((v: T) => f(v)) as Promise<Awaited<R>>) : f(value as T);
}

/** `f` for each item in order, each waited for only when it answers with a promise. */
function inOrder<T>(items: readonly T[], f: (item: T) => unknown, from = 0): void | Promise<void> {
  for (let i = from; i < items.length; i++) {
    const done = f(items[i]!);
    if (done instanceof Promise) return done.then(() => inOrder(items, f, i + 1));
  }
}

/** The document's path ended inside the step (stop, split): a symbol, as any string may be a step id. */
const ended = Symbol('ended');

/** What happens to a document at one step: the id of the step it goes to next (undefined: the end of its path), or ended. */
type Next = string | undefined | typeof ended;

/** The steps that only evaluate expressions answer at once when those are evaluated directly. */
function apply(run: Run, step: PureStep, state: DocState, counts: StepCount): Next | Promise<Next> {
  switch (step.kind) {
    case 'map':
      return map(run, step, state);
    case 'set-properties':
      return setProperties(run, step, state);
    case 'decision':
      return then(evalIn(run, step, step.condition, state), (value: unknown) => (truthy(value) ? step.ifTrue : step.ifFalse));
    default:
      return applyOther(run, step, state, counts);
  }
}

async function applyOther(run: Run, step: Exclude<PureStep, { kind: 'map' | 'set-properties' | 'decision' }>, state: DocState, counts: StepCount): Promise<Next> {
  switch (step.kind) {
    case 'route': {
      const value = await evalIn(run, step, step.value, state);
      const text = value === undefined ? undefined : textFor(run, step, 'the route value', value);
      const match = step.routes.find((r) => String(r.equals) === text);
      return match ? match.next : step.default;
    }
    case 'split': {
      const children = await split(run, step, state);
      counts.out += children.length;
      // many children leave here, to be chunked across the pool by the walker, rather than all walked in this worker
      const handBack = run.task.handBackAbove !== undefined && children.length > run.task.handBackAbove;
      for (const child of children) {
        await sample(run, step.id, child, state.properties);
        if (handBack) await leave(run, step.next ?? null, child, step.id);
        else await walk(run, step.next, child, step.id);
      }
      return ended;
    }
    case 'notify': {
      const message = textFor(run, step, 'the message', await dynamic(run, step, step.message, state));
      if (run.outcome.notes.length < maxNotes) run.outcome.notes.push({ step: step.id, level: step.level ?? 'info', message });
      return step.next;
    }
    case 'exception': {
      const message = textFor(run, step, 'the message', await dynamic(run, step, step.message, state));
      if (step.scope === 'execution') {
        run.outcome.stop = { step: step.id, message };
        throw new ExecutionStop(message);
      }
      throw new DocumentFailure('QUARK_ERR_PROCESS_EXCEPTION', message);
    }
    case 'stop':
      return ended;
  }
}

function map(run: Run, step: Extract<PureStep, { kind: 'map' }>, state: DocState): Next | Promise<Next> {
  // replacing a body the expression cannot see would lose it without a word
  if (!state.changed && state.body.kind === 'file') {
    throw new DocumentFailure('QUARK_ERR_EXPRESSION_FAILED', `step ${step.id}: the body (${state.body.size} bytes) is larger than limits.spillBytes and was spilled to disk; a map cannot read it. Route such documents around the map (for example a decision on $body.spilled) or raise limits.spillBytes`);
  }
  // the map replaces the body (or fails the document): its input bytes are not read again
  valueOf(state, true);
  return then(evalIn(run, step, step.expression, state), (value: unknown) => {
    if (value === undefined) throw new DocumentFailure('QUARK_ERR_EXPRESSION_FAILED', `step ${step.id}: the map expression produced no value for this document`);
    state.value = value;
    state.changed = true;
    return step.next;
  });
}

function setProperties(run: Run, step: Extract<PureStep, { kind: 'set-properties' }>, state: DocState): Next | Promise<Next> {
  const setDocument = ([name, raw]: [string, unknown]) =>
    then(dynamic(run, step, raw, state), (value: unknown) => {
      if (value === undefined || value === null) delete state.properties[name];
      else state.properties[name] = textFor(run, step, `document property ${name}`, value);
    });
  const setProcess = ([name, raw]: [string, unknown]) =>
    then(dynamic(run, step, raw, state), (computed: unknown) => {
      // process properties travel to every later task of the execution: nothing too deep to post
      checkDepth(run, step.id, `process property ${name}`, computed);
      const value = plainValue(computed);
      run.process[name] = value;
      run.outcome.processUpdates.push([name, value]);
    });
  return then(inOrder(Object.entries(step.document ?? {}), setDocument), () => then(inOrder(Object.entries(step.process ?? {}), setProcess), () => step.next));
}

async function split(run: Run, step: Extract<PureStep, { kind: 'split' }>, state: DocState): Promise<DocState[]> {
  const child = (value: unknown): DocState => withOrigins({ properties: { ...state.properties }, body: state.body, entered: state.entered, value, changed: true }, state);
  if (step.mode === 'lines') {
    if (!state.changed && state.body.kind === 'file') {
      const children: DocState[] = [];
      for await (const line of linesOfFile(state.body.path)) children.push(child(line));
      return children;
    }
    const text = await textOf(state);
    return text.split(/\r?\n/).filter((line) => line.length > 0).map(child);
  }
  const array = step.path === undefined ? valueOf(state) : await evalIn(run, step, step.path, state);
  if (!Array.isArray(array)) throw new DocumentFailure('QUARK_ERR_PROCESS_SPLIT_FAILED', `step ${step.id}: ${step.path === undefined ? 'the body' : 'the path expression'} is not a JSON array`);
  return array.map(child);
}

/**
 * The non-empty lines of a spilled body, read as a stream (never the whole file in one
 * string), split as a body in memory is: at \n or \r\n.
 */
async function* linesOfFile(path: string): AsyncGenerator<string> {
  let pending: string[] = [];
  for await (const chunk of createReadStream(path, { encoding: 'utf8', highWaterMark: 1024 * 1024 }) as AsyncIterable<string>) {
    pending.push(chunk);
    if (!chunk.includes('\n')) continue;
    const lines = pending.join('').split(/\r?\n/);
    pending = [lines.pop()!];
    for (const line of lines) if (line.length > 0) yield line;
  }
  const last = pending.join('');
  if (last.length > 0) yield last;
}

/** The document leaves the run towards `next`; a failure to serialise its body fails it alone. */
function leave(run: Run, next: string | null, state: DocState, last: string): void | Promise<void> {
  try {
    const done = exit(run, next, state, last);
    if (done instanceof Promise) return done.catch((error: unknown) => fail(run, last, state, error));
  } catch (error) {
    fail(run, last, state, error);
  }
}

/** Walks one document from `first` until it leaves the run, ends or fails (only it). */
async function walk(run: Run, first: string | undefined, state: DocState, from: string): Promise<void> {
  let id = first;
  let last = from;
  while (id !== undefined) {
    const step = run.task.steps[id];
    if (!step) break; // not a pure step: the main thread takes it from here
    const counts = count(run, id);
    counts.in++;
    const input = run.task.record ? { ...state.properties } : undefined;
    let next: Next;
    try {
      const applied = apply(run, step, state, counts);
      next = applied instanceof Promise ? await applied : applied;
    } catch (error) {
      if (error instanceof ExecutionStop) throw error;
      return fail(run, step.id, state, error);
    }
    if (next === ended) return;
    counts.out++;
    if (run.task.record) await sample(run, step.id, state, input);
    last = step.id;
    id = next;
  }
  const left = leave(run, id ?? null, state, last);
  if (left instanceof Promise) await left;
}

function entering(document: DocumentRef): DocState {
  const entered = document.body.kind === 'inline' ? { size: document.body.bytes.byteLength, spilled: false } : { size: document.body.size, spilled: true };
  return withOrigins({ properties: { ...document.properties }, body: document.body, entered, value: unparsed, changed: false, ...(entered.size >= largeBodyBytes ? { large: true } : {}) }, document);
}

/** Documents not walked because the task was stopped fail with the reason, rather than vanish. */
function failUnwalked(run: Run, documents: readonly DocumentRef[]): void {
  if (documents.length === 0) return;
  const timeout = (run.signal.reason as { name?: unknown } | undefined)?.name === 'TimeoutError';
  const code: ErrorCode = timeout ? 'QUARK_ERR_STEP_TIMEOUT' : 'QUARK_ERR_EXECUTION_CANCELLED';
  const message = timeout ? `step ${run.task.first}: the chunk reached its time limit (the steps' timeoutMs, else limits.stepTimeoutMs) before this document` : `step ${run.task.first}: the execution was cancelled before this document`;
  const counts = count(run, run.task.first);
  for (const document of documents) {
    counts.in++;
    counts.errors++;
    run.outcome.failed.push(withOrigins({ step: run.task.first, code, message }, document));
  }
}

/** `poll` turns a stop asked for since into `signal` (worker.ts); it is called before each document. */
export async function runSteps(task: StepsTask, evaluate: Evaluate, signal: AbortSignal, poll: () => void = () => undefined): Promise<StepsOutcome> {
  const outcome: StepsOutcome = { exits: [], failed: [], counts: {}, processUpdates: [], notes: [] };
  const run: Run = { task, evaluate, signal, process: { ...task.process }, outcome, exits: new Map() };
  let walked = 0;
  try {
    for (const document of task.documents) {
      poll();
      if (signal.aborted) break;
      await walk(run, task.first, entering(document), task.first);
      walked++;
    }
  } catch (error) {
    if (!(error instanceof ExecutionStop)) throw error;
  }
  if (!outcome.stop) failUnwalked(run, task.documents.slice(walked));
  outcome.exits = [...run.exits].map(([key, documents]) => ({ next: key === '' ? null : key, documents }));
  return outcome;
}

/** The outcome with its output bodies packed in one buffer, to be transferred to the main thread. */
export function packOutcome(outcome: StepsOutcome): { outcome: StepsOutcome; buffers: ArrayBuffer[] } {
  const all = packOwnBodies(outcome.exits.flatMap((e) => e.documents));
  let at = 0;
  const exits = outcome.exits.map((e) => ({ next: e.next, documents: all.documents.slice(at, (at += e.documents.length)) }));
  return { outcome: { ...outcome, exits }, buffers: all.buffers };
}
