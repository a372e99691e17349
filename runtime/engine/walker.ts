/**
 * The graph walker: the orchestrator of one execution, in the main thread. It moves
 * batches of documents from step to step; the work itself runs in the pool: runs of pure
 * steps as one task per chunk of documents (engine/steps.ts), connector operations as
 * operation tasks. Branch, combine, try and process call are decided here.
 *
 * A path's result is the documents that ended it (the output) and the documents that
 * failed on it; a try step turns failures of its try path into retries, then its catch
 * path. Aborts (cancel, timeout) throw out of the walk.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { QuarkError, quarkError, messageOf } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { isPure, type CombineStep, type OperationStep, type ProcessDefinition, type PureStep, type Step, type TryStep, type StartDefinition } from '../processes/definition.js';
import { isExpression } from '../processes/definition.js';
import { inlineRef, packBodies } from './bodies.js';
import type { ExecutionInfo } from './expressions.js';
import type { WorkerPool } from './pool.js';
import type { BodyRef, DocumentFailureRef, DocumentRef, OperationResultRef, StepCount, StepsOutcome } from './messages.js';

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
  operations: OperationRunner;
  /** The current deployed definition of a called process. */
  callee(processId: string): ProcessDefinition;
  counts: Record<string, StepCount>;
  log: Logger;
  /** Caught errors and warning notes: the execution completes with warnings. */
  warnings: number;
  progress?: { step: string; bytesDone: number; bytesTotal?: number };
}

export interface WalkerOptions {
  pool: WorkerPool;
  threads: number;
  spillBytes: number;
  stepTimeoutMs: number;
}

export interface PathResult {
  outputs: DocumentRef[];
  failures: DocumentFailureRef[];
}

export interface WalkResult extends PathResult {
  /** Documents the start handed to the first step. */
  documentsIn: number;
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

const maxChunk = 2000;

function scopeOf(definition: ProcessDefinition, prefix: string, depth: number, calls: string[]): Scope {
  const steps = new Map(definition.steps.map((s) => [s.id, s]));
  const pure: Record<string, PureStep> = {};
  for (const step of definition.steps) if (isPure(step)) pure[step.id] = step;
  return { steps, pure, prefix, depth, calls };
}

const chunksOf = <T>(items: T[], threads: number): T[][] => {
  if (items.length <= 64) return [items];
  const size = Math.min(maxChunk, Math.max(64, Math.ceil(items.length / (threads * 4))));
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
};

const bytesOf = (body: BodyRef) => (body.kind === 'inline' ? Buffer.from(body.bytes.buffer, body.bytes.byteOffset, body.bytes.byteLength) : undefined);

export function createWalker(options: WalkerOptions) {
  const { pool } = options;

  async function walk(definition: ProcessDefinition, documents: DocumentRef[], ctx: WalkContext): Promise<WalkResult> {
    const scope = scopeOf(definition, '', 0, [definition.id]);
    const started = await start(definition.start, documents, ctx);
    const rest = await runPath(definition.start.next, started.outputs, scope, ctx);
    return { outputs: rest.outputs, failures: [...started.failures, ...rest.failures], documentsIn: started.outputs.length };
  }

  async function start(definition: StartDefinition, documents: DocumentRef[], ctx: WalkContext): Promise<PathResult> {
    if (definition.kind === 'none') return { outputs: [{ properties: {}, body: inlineRef(Buffer.alloc(0)) }], failures: [] };
    if (definition.kind === 'documents') return { outputs: documents, failures: [] };
    const step: OperationStep = { id: 'start', kind: 'operation', connection: definition.connection, operation: definition.operation, ...(definition.parameters ? { parameters: definition.parameters } : {}), ...(definition.timeoutMs ? { timeoutMs: definition.timeoutMs } : {}) };
    return operation(step, [{ properties: {}, body: inlineRef(Buffer.alloc(0)) }], { steps: new Map(), pure: {}, prefix: '', depth: 0, calls: [] }, ctx);
  }

  function count(ctx: WalkContext, scope: Scope, id: string): StepCount {
    return (ctx.counts[scope.prefix + id] ??= { in: 0, out: 0, errors: 0 });
  }

  function checkAborted(ctx: WalkContext): void {
    if (ctx.signal.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : quarkError('QUARK_ERR_EXECUTION_CANCELLED', 'the execution was cancelled');
  }

  async function runPath(id: string | undefined, documents: DocumentRef[], scope: Scope, ctx: WalkContext): Promise<PathResult> {
    if (id === undefined || documents.length === 0) return { outputs: id === undefined ? documents : [], failures: [] };
    checkAborted(ctx);
    const step = scope.steps.get(id);
    if (!step) throw new Error(`step ${id} is not in the process (deploy validation should have refused it)`);
    if (isPure(step)) return segment(step, documents, scope, ctx);
    switch (step.kind) {
      case 'operation': {
        const result = await operation(step, documents, scope, ctx);
        const next = await runPath(step.next, result.outputs, scope, ctx);
        return { outputs: next.outputs, failures: [...result.failures, ...next.failures] };
      }
      case 'branch': {
        const counts = count(ctx, scope, step.id);
        counts.in += documents.length;
        const all: PathResult = { outputs: [], failures: [] };
        for (const path of step.paths) {
          counts.out += documents.length;
          const result = await runPath(path, documents, scope, ctx);
          all.outputs.push(...result.outputs);
          all.failures.push(...result.failures);
        }
        return all;
      }
      case 'combine': {
        const result = await combine(step, documents, scope, ctx);
        const next = await runPath(step.next, result.outputs, scope, ctx);
        return { outputs: next.outputs, failures: [...result.failures, ...next.failures] };
      }
      case 'try':
        return tryCatch(step, documents, scope, ctx);
      case 'process-call': {
        const counts = count(ctx, scope, step.id);
        counts.in += documents.length;
        if (scope.calls.includes(step.process)) throw quarkError('QUARK_ERR_PROCESS_INVALID', `process ${step.process} calls itself (through ${scope.calls.join(' → ')})`);
        let callee: ProcessDefinition;
        try {
          callee = ctx.callee(step.process);
        } catch (error) {
          counts.errors += documents.length;
          const failure = { step: scope.prefix + step.id, code: error instanceof QuarkError ? error.code : 'QUARK_ERR_PROCESS_NOT_FOUND', message: messageOf(error) };
          return { outputs: [], failures: documents.map((d) => ({ ...failure, ...(d.origins ? { origins: d.origins } : {}) })) };
        }
        // process properties are shared with the caller; the callee's own start at their defaults
        for (const [name, spec] of Object.entries(callee.properties ?? {})) if (!(name in ctx.process)) ctx.process[name] = spec.default;
        const inner = scopeOf(callee, `${scope.prefix}${step.id}>`, scope.depth, [...scope.calls, callee.id]);
        const result = await runPath(callee.start.next, documents, inner, ctx);
        counts.out += result.outputs.length;
        const next = await runPath(step.next, result.outputs, scope, ctx);
        return { outputs: next.outputs, failures: [...result.failures, ...next.failures] };
      }
    }
    throw new Error(`unhandled step kind ${(step as Step).kind}`);
  }

  /** A run of pure steps from `first`, in chunks across the pool; then each exit's path. */
  async function segment(first: PureStep, documents: DocumentRef[], scope: Scope, ctx: WalkContext): Promise<PathResult> {
    const chunks = chunksOf(documents, options.threads);
    const outcomes = await Promise.all(chunks.map(async (chunk): Promise<StepsOutcome> => {
      try {
        const { documents: packed, buffer } = packBodies(chunk);
        const reply = await pool.run(
          { kind: 'steps', steps: scope.pure, first: first.id, documents: packed, process: ctx.process, execution: ctx.info, workDir: ctx.workDir, spillBytes: options.spillBytes },
          { timeoutMs: options.stepTimeoutMs, what: `step ${first.id}`, signal: ctx.signal, transfer: [buffer] },
        );
        if (reply.ok) return reply.value as StepsOutcome;
        return failedChunk(first, chunk, reply.error);
      } catch (error) {
        if (ctx.signal.aborted) throw error;
        return failedChunk(first, chunk, error instanceof QuarkError ? error : { code: 'QUARK_ERR_PLUGIN_WORKER_DIED', message: messageOf(error) });
      }
    }));
    checkAborted(ctx);
    const exits = new Map<string, DocumentRef[]>();
    const failures: DocumentFailureRef[] = [];
    let stop: { step: string; message: string } | undefined;
    for (const outcome of outcomes) {
      for (const [id, c] of Object.entries(outcome.counts)) {
        const counts = count(ctx, scope, id);
        counts.in += c.in;
        counts.out += c.out;
        counts.errors += c.errors;
      }
      for (const [name, value] of outcome.processUpdates) ctx.process[name] = value;
      for (const note of outcome.notes) {
        const fields = { step: scope.prefix + note.step };
        if (note.level === 'info') ctx.log.info(fields, note.message);
        else {
          if (note.level === 'warning') ctx.log.warn(fields, note.message);
          else ctx.log.error(fields, note.message);
          ctx.warnings++;
        }
      }
      for (const f of outcome.failed) failures.push({ ...f, step: scope.prefix + f.step });
      for (const exit of outcome.exits) {
        const key = exit.next ?? '';
        const group = exits.get(key);
        if (group) group.push(...exit.documents);
        else exits.set(key, [...exit.documents]);
      }
      stop ??= outcome.stop;
    }
    if (stop) throw new ExecutionStopped(scope.prefix + stop.step, stop.message);
    const result: PathResult = { outputs: [], failures };
    for (const [key, group] of exits) {
      const next = await runPath(key === '' ? undefined : key, group, scope, ctx);
      result.outputs.push(...next.outputs);
      result.failures.push(...next.failures);
    }
    return result;
  }

  function failedChunk(first: PureStep, chunk: DocumentRef[], error: { code: string; message: string }): StepsOutcome {
    return {
      exits: [],
      failed: chunk.map((d) => ({ step: first.id, code: error.code, message: error.message, ...(d.origins ? { origins: d.origins } : {}) })),
      counts: { [first.id]: { in: chunk.length, out: 0, errors: chunk.length } },
      processUpdates: [],
      notes: [],
    };
  }

  async function operation(step: OperationStep, documents: DocumentRef[], scope: Scope, ctx: WalkContext): Promise<PathResult> {
    const counts = count(ctx, scope, step.id);
    counts.in += documents.length;
    const parameters = step.parameters ?? {};
    const dynamic = Object.values(parameters).some(isExpression);
    const chunks = chunksOf(documents, options.threads);
    const answers = await Promise.all(chunks.map((chunk) =>
      ctx.operations.run({ connection: step.connection, operation: step.operation }, chunk, parameters, {
        step: scope.prefix + step.id,
        dynamic,
        ...(step.timeoutMs ? { timeoutMs: step.timeoutMs } : {}),
        onProgress: (p) => {
          ctx.progress = { step: scope.prefix + step.id, bytesDone: p.bytesDone, ...(p.bytesTotal !== undefined ? { bytesTotal: p.bytesTotal } : {}) };
        },
      }),
    ));
    checkAborted(ctx);
    const result: PathResult = { outputs: [], failures: [] };
    answers.forEach((results, b) => {
      results.forEach((r, i) => {
        const input = chunks[b]![i]!;
        if (r.status === 'success') {
          for (const out of r.documents ?? []) result.outputs.push({ properties: { ...input.properties, ...out.properties }, body: out.body, ...(input.origins ? { origins: input.origins } : {}) });
        } else {
          counts.errors++;
          result.failures.push({ step: scope.prefix + step.id, code: r.code ?? r.status, message: r.message ?? r.status, ...(input.origins ? { origins: input.origins } : {}) });
        }
      });
    });
    counts.out += result.outputs.length;
    return result;
  }

  async function combine(step: CombineStep, documents: DocumentRef[], scope: Scope, ctx: WalkContext): Promise<PathResult> {
    const counts = count(ctx, scope, step.id);
    counts.in += documents.length;
    const fail = (message: string): PathResult => {
      counts.errors += documents.length;
      return { outputs: [], failures: documents.map((d) => ({ step: scope.prefix + step.id, code: 'QUARK_ERR_PROCESS_COMBINE_FAILED', message, ...(d.origins ? { origins: d.origins } : {}) })) };
    };
    const texts: string[] = [];
    for (const d of documents) {
      const bytes = bytesOf(d.body);
      if (!bytes) return fail(`step ${step.id}: a body larger than limits.spillBytes (${options.spillBytes} bytes) cannot be combined in memory`);
      texts.push(bytes.toString('utf8'));
    }
    let text: string;
    if (step.mode === 'lines') text = texts.map((t) => t.replace(/\r?\n$/, '')).join('\n') + '\n';
    else {
      try {
        text = `[${texts.map((t) => JSON.stringify(JSON.parse(t))).join(',')}]`;
      } catch (error) {
        return fail(`step ${step.id}: a body is not JSON: ${messageOf(error)}`);
      }
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
    return { outputs: [{ properties: { ...first.properties }, body, ...(first.origins ? { origins: first.origins } : {}) }], failures: [] };
  }

  async function tryCatch(step: TryStep, documents: DocumentRef[], scope: Scope, ctx: WalkContext): Promise<PathResult> {
    const counts = count(ctx, scope, step.id);
    counts.in += documents.length;
    const depth = scope.depth;
    const inner: Scope = { ...scope, depth: depth + 1 };
    const outputs: DocumentRef[] = [];
    let pending = documents.map((document, index) => ({ document, index }));
    const lastFailure = new Map<number, DocumentFailureRef>();
    const retries = step.retries ?? 0;
    for (let attempt = 0; ; attempt++) {
      const batch = pending.map(({ document, index }) => ({ ...document, origins: [...(document.origins ?? []).slice(0, depth), index] }));
      const result = await runPath(step.try, batch, inner, ctx);
      outputs.push(...result.outputs);
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
    const caught = pending.map(({ document, index }) => {
      const f = lastFailure.get(index)!;
      ctx.log.warn({ step: scope.prefix + step.id, failedStep: f.step, code: f.code }, `caught: ${f.message}`);
      const { origins: _o, ...rest } = document;
      return {
        ...rest,
        ...(document.origins ? { origins: document.origins.slice(0, depth) } : {}),
        properties: { ...document.properties, 'quark.error.step': f.step, 'quark.error.code': f.code, 'quark.error.message': f.message },
      };
    });
    const result = await runPath(step.catch, caught, scope, ctx);
    return { outputs: [...outputs, ...result.outputs], failures: result.failures };
  }

  return { walk };
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

export type Walker = ReturnType<typeof createWalker>;
