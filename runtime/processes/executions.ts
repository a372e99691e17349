/**
 * Executions: the queue and its limits, the execution record (written before any work
 * starts), the per-execution log, cancel and timeouts, crash recovery and purge. The
 * graph itself is walked by engine/walker.ts.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setMaxListeners } from 'node:events';
import { createExecutionLogs, type ExecutionLogs } from './log-sink.js';
import { QuarkError, quarkError, messageOf, describeProblems } from '../core/errors.js';
import { newId, nowIso } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { AccessControl, Caller } from '../accounts/access.js';
import type { Store, ExecutionRecord, ExecutionStatus, ExecutionTrigger, ExecutionErrorRecord } from '../store/types.js';
import type { DocumentFailureRef, DocumentRef, OperationResultRef } from '../engine/messages.js';
import { presentDocuments, type PresentedDocument } from '../engine/present.js';
import { ExecutionStopped, type Walker, type WalkContext } from '../engine/walker.js';
import { inputDocuments, type Operations, type PreparedOperation, type OperationInput } from '../connections/operations.js';
import type { ProcessDefinition } from './definition.js';
import type { Deployments } from './deployments.js';

export interface ExecutionRequest {
  /** A deployed process of the caller's account… */
  process?: string;
  /** …or a definition to run without deploying it (test mode). */
  definition?: unknown;
  documents?: OperationInput[];
  trigger: Exclude<ExecutionTrigger, 'test'>;
}

export interface ExecutionView extends ExecutionRecord {
  durationMs: number | null;
  /** While running: the latest bytes progress of a large transfer. */
  progress?: { step: string; bytesDone: number; bytesTotal?: number };
  errors?: ExecutionErrorRecord[];
}

export interface ExecutionsDeps {
  store: Store;
  access: AccessControl;
  deployments: Deployments;
  operations: Operations;
  walker: Walker;
  metrics: Metrics;
  logger: Logger;
  logLevel: string;
  redact: readonly string[];
  workRoot: string;
  limits: { maxRunningExecutions: number; maxQueuedExecutions: number; executionTimeoutMs: number; purgeDays: number };
}

interface Active {
  record: ExecutionRecord;
  caller: Caller;
  definition: ProcessDefinition;
  documents: DocumentRef[];
  controller: AbortController;
  ctx?: WalkContext;
  done: Promise<ExecutionRecord>;
  finish(record: ExecutionRecord): void;
  outputs?: DocumentRef[];
  presented?: PresentedDocument[];
  wantOutputs: boolean;
}

/** Errors kept per execution in the store (the log has them all). */
const maxStoredErrors = 1000;

const terminal = (status: ExecutionStatus) => status !== 'queued' && status !== 'in-process';

type Listener = (view: ExecutionView) => void;
type EndError = { code: string; message: string };

/** The state of the executions service, passed explicitly to its functions. */
interface Context {
  deps: ExecutionsDeps;
  running: Map<string, Active>;
  queue: Active[];
  /** Listeners of status changes, per account (the console's live list). */
  listeners: Map<string, Set<Listener>>;
  logs: ExecutionLogs;
  state: { closing: boolean; storeFailure?: string };
}

function createContext(deps: ExecutionsDeps): Context {
  const state: Context['state'] = { closing: false };
  const logs = createExecutionLogs({
    level: deps.logLevel,
    redact: deps.redact,
    append: (id, lines) => deps.store.executions.appendLog(id, lines),
    onError: (id, error) => storeFailed({ deps, state }, id, error, 'an execution log could not be written'),
  });
  return { deps, running: new Map(), queue: [], listeners: new Map(), logs, state };
}

/**
 * The store refused a write the runtime cannot do without: said in the runtime log, and
 * the runtime reports itself not ready (GET /readyz) until it is restarted.
 */
function storeFailed(ctx: Pick<Context, 'deps' | 'state'>, execution: string, error: unknown, what: string): void {
  ctx.state.storeFailure ??= `${what}: ${messageOf(error)}`;
  ctx.deps.logger.error({ err: error, execution }, `${what}; the runtime is not ready until it is restarted`);
}

/** A line written outside an execution's logger (recovery, discard), in the same NDJSON shape. */
function appendLine(ctx: Context, id: string, level: number, msg: string): void {
  ctx.deps.store.executions.appendLog(id, JSON.stringify({ level, time: Date.now(), execution: id, msg }) + '\n');
}

function emit(ctx: Context, record: ExecutionRecord): void {
  const set = ctx.listeners.get(record.accountId);
  if (!set || set.size === 0) return;
  const v = view(ctx, record);
  for (const listener of set) {
    try {
      listener(v);
    } catch (error) {
      ctx.deps.logger.warn({ err: error, execution: record.id }, 'an execution listener threw');
    }
  }
}

function view(ctx: Context, record: ExecutionRecord, extra: Partial<ExecutionView> = {}): ExecutionView {
  const active = ctx.running.get(record.id);
  const live = active?.ctx ? { ...record, steps: active.ctx.counts, warnings: active.ctx.warnings } : record;
  const end = record.endedAt ? Date.parse(record.endedAt) : Date.now();
  const durationMs = record.startedAt ? end - Date.parse(record.startedAt) : null;
  const progress = active?.ctx?.progress ? { progress: active.ctx.progress } : {};
  return { ...live, durationMs, ...progress, ...extra };
}

/** The ended record, without writing it. */
function ended(active: Active, status: ExecutionStatus, error?: EndError): ExecutionRecord {
  return {
    ...active.record,
    status,
    endedAt: nowIso(),
    errorCode: error?.code ?? null,
    errorMessage: error?.message ?? null,
    ...(active.ctx ? { steps: active.ctx.counts, warnings: active.ctx.warnings } : {}),
  };
}

function end(ctx: Context, active: Active, status: ExecutionStatus, error?: EndError): ExecutionRecord {
  const record = ended(active, status, error);
  ctx.deps.store.executions.update(record);
  emit(ctx, record);
  ctx.deps.metrics.executionsFinished.inc({ status });
  if (record.startedAt) {
    const seconds = (Date.parse(record.endedAt!) - Date.parse(record.startedAt)) / 1000;
    ctx.deps.metrics.executionDuration.observe({ status }, seconds);
  }
  return record;
}

/** Ends a queued execution as discarded, with a line in its log saying why. */
function discard(ctx: Context, active: Active, reason: QuarkError): ExecutionRecord {
  let final: ExecutionRecord;
  try {
    final = end(ctx, active, 'discarded', reason);
    appendLine(ctx, active.record.id, 40, `discarded before it started: ${reason.message}`);
  } catch (error) {
    storeFailed(ctx, active.record.id, error, 'a discarded execution could not be recorded');
    final = ended(active, 'discarded', reason);
  }
  active.finish(final);
  return final;
}

function pump(ctx: Context): void {
  const { running, queue, deps } = ctx;
  while (!ctx.state.closing && running.size < deps.limits.maxRunningExecutions && queue.length > 0) {
    const next = queue.shift()!;
    running.set(next.record.id, next);
    run(ctx, next).catch((error: unknown) => lastResort(ctx, next, error));
  }
}

/** What run() could not account for: the execution still ends, so nothing waits for it forever. */
function lastResort(ctx: Context, active: Active, error: unknown): void {
  storeFailed(ctx, active.record.id, error, 'an execution could not be accounted for');
  ctx.running.delete(active.record.id);
  active.finish(ended(active, 'error', { code: 'QUARK_ERR_EXECUTION_RECORD_FAILED', message: messageOf(error) }));
  pump(ctx);
}

type RunOptions = { step: string; dynamic: boolean; timeoutMs?: number; onProgress?(p: { document: number; bytesDone: number; bytesTotal?: number }): void };
type StepRef = { connection: string; operation: string };

function prepareOnce(ctx: Context, active: Active, cache: Map<string, PreparedOperation | QuarkError>, key: string, ref: StepRef): PreparedOperation | QuarkError {
  let p = cache.get(key);
  if (!p) {
    try {
      p = ctx.deps.operations.prepare(active.caller, ref);
    } catch (error) {
      p = error instanceof QuarkError ? error : quarkError('QUARK_ERR_API_INTERNAL', messageOf(error));
    }
    cache.set(key, p);
  }
  return p;
}

function operationRunner(ctx: Context, active: Active, walk: () => WalkContext) {
  const prepared = new Map<string, PreparedOperation | QuarkError>();
  const literal = new Map<string, Record<string, unknown>>();
  return {
    async run(ref: StepRef, documents: DocumentRef[], parameters: Record<string, unknown>, options: RunOptions): Promise<OperationResultRef[]> {
      const key = `${ref.connection}\u0000${ref.operation}`;
      const p = prepareOnce(ctx, active, prepared, key, ref);
      if (p instanceof QuarkError) return documents.map(() => ({ status: 'failure', code: p.code, message: p.message }));
      let params = parameters;
      if (!options.dynamic) {
        // literal parameters were checked at deploy; this fills the schema's defaults
        const cacheKey = `${key}\u0000${JSON.stringify(parameters)}`;
        params = literal.get(cacheKey) ?? structuredClone(parameters);
        if (!literal.has(cacheKey)) {
          const problems = p.operation.validateParameters(params);
          if (problems.length > 0) return documents.map(() => ({ status: 'failure', code: 'QUARK_ERR_OPERATION_INVALID_PARAMETERS', message: describeProblems(problems) }));
          literal.set(cacheKey, params);
        }
      }
      const c = walk();
      return ctx.deps.operations.execute(p, documents, params, {
        workDir: c.workDir,
        log: c.log.child({ step: options.step, connector: p.connector.id, operation: p.operation.id }),
        signal: c.signal,
        ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        ...(options.dynamic ? { dynamic: { process: c.process, execution: c.info } } : {}),
      });
    },
  };
}

/** How the walk ended: the status and error of the execution. */
function outcomeOf(ctx: Context, active: Active, thrown: unknown): { status: ExecutionStatus; error: EndError } {
  const { controller, record } = active;
  const reason: unknown = controller.signal.aborted ? controller.signal.reason : thrown;
  if (reason instanceof ExecutionStopped) {
    return { status: 'error', error: { code: 'QUARK_ERR_PROCESS_EXCEPTION', message: `step ${reason.step}: ${reason.message}` } };
  }
  if (controller.signal.aborted) {
    const error = reason instanceof QuarkError ? { code: reason.code, message: reason.message } : { code: 'QUARK_ERR_EXECUTION_CANCELLED', message: messageOf(reason) };
    return { status: 'aborted', error };
  }
  if (reason instanceof QuarkError) return { status: 'error', error: { code: reason.code, message: reason.message } };
  ctx.deps.logger.error({ err: reason, execution: record.id }, 'execution failed unexpectedly');
  return { status: 'error', error: { code: 'QUARK_ERR_API_INTERNAL', message: messageOf(reason) } };
}

/** Walks the graph and records what came out; the status it ended with. */
async function walk(ctx: Context, active: Active, walkCtx: WalkContext): Promise<{ status: ExecutionStatus; error?: EndError }> {
  const { metrics } = ctx.deps;
  const { record, definition, controller } = active;
  let result: Awaited<ReturnType<Walker['walk']>>;
  try {
    result = await ctx.deps.walker.walk(definition, active.documents, walkCtx);
    if (controller.signal.aborted) throw controller.signal.reason;
  } catch (thrown) {
    return outcomeOf(ctx, active, thrown);
  }
  active.record.documentsIn = result.documentsIn;
  active.record.documentsOut = result.documentsOut;
  active.record.documentsFailed = result.failures.length;
  recordFailures(ctx, record.id, result.failures, walkCtx.log);
  let status: ExecutionStatus = walkCtx.warnings > 0 ? 'complete-with-warnings' : 'complete';
  let error: EndError | undefined;
  if (result.failures.length > 0) {
    status = 'error';
    const first = result.failures[0]!;
    error = { code: first.code, message: `${result.failures.length} document(s) failed; the first at step ${first.step}: ${first.message}` };
  }
  if (active.wantOutputs) active.presented = await presentDocuments(result.outputs);
  metrics.executionDocuments.inc({ outcome: 'out' }, result.documentsOut);
  metrics.executionDocuments.inc({ outcome: 'failed' }, result.failures.length);
  return { status, ...(error ? { error } : {}) };
}

/** Marks the record in-process and builds the walk's context. */
function begin(ctx: Context, active: Active, log: Logger, persisted: Record<string, unknown>): WalkContext {
  const { record, definition, controller } = active;
  const { store, metrics } = ctx.deps;
  active.record = { ...record, status: 'in-process', startedAt: nowIso() };
  store.executions.update(active.record);
  emit(ctx, active.record);
  metrics.executionsStarted.inc({ trigger: record.trigger });
  const properties: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(definition.properties ?? {})) {
    properties[name] = spec.persist && name in persisted ? persisted[name] : spec.default;
  }
  const persists = Object.values(definition.properties ?? {}).some((spec) => spec.persist);
  const walkCtx: WalkContext = {
    info: { id: record.id, process: record.processId, version: record.version, trigger: record.trigger },
    workDir: join(ctx.deps.workRoot, record.id),
    signal: controller.signal,
    process: properties,
    ...(record.version !== null && persists ? { onProcessUpdates: (updates: Map<string, unknown>) => persistProperties(ctx, record, definition, updates) } : {}),
    operations: operationRunner(ctx, active, () => walkCtx),
    callee: (id) => ctx.deps.deployments.requireActive(record.accountId, id).definition,
    counts: {},
    // an execution started without waiting presents no documents: they are counted, not kept
    discardOutputs: !active.wantOutputs,
    log,
    warnings: 0,
  };
  active.ctx = walkCtx;
  return walkCtx;
}

/** The process's persisted properties, read before the run. */
function persistedOf(ctx: Context, active: Active): Record<string, unknown> {
  const { record, definition } = active;
  const persists = Object.values(definition.properties ?? {}).some((spec) => spec.persist);
  return record.version === null || !persists ? {} : (ctx.deps.store.processes.get(record.accountId, record.processId)?.properties ?? {});
}

/**
 * Persisted process properties are stored as soon as a step sets them, each on its own
 * (the walker reports them after each chunk): overlapping executions of a process never
 * lose each other's updates, and the last writer of a property wins.
 */
function persistProperties(ctx: Context, record: ExecutionRecord, definition: ProcessDefinition, updates: Map<string, unknown>): void {
  const persisted = new Map([...updates].filter(([name]) => definition.properties?.[name]?.persist === true));
  if (persisted.size > 0) ctx.deps.store.processes.mergeProperties(record.accountId, record.processId, persisted);
}

/** A long execution's counts reach the store as it goes, so a crash leaves them behind. */
function startCheckpoints(ctx: Context, active: Active, walkCtx: WalkContext): NodeJS.Timeout {
  const checkpoint = setInterval(() => {
    try {
      ctx.deps.store.executions.update({ ...active.record, steps: walkCtx.counts, warnings: walkCtx.warnings });
    } catch (error) {
      ctx.deps.logger.warn({ err: error, execution: active.record.id }, 'the counts of a running execution could not be written');
    }
  }, 5000);
  checkpoint.unref();
  return checkpoint;
}

function logEnd(log: Logger, final: ExecutionRecord, durationMs: number | null, error?: EndError): void {
  const level = final.status === 'complete' ? 'info' : final.status === 'complete-with-warnings' ? 'warn' : 'error';
  const message = error ? `execution ended ${final.status}: ${error.message}` : `execution ended ${final.status}`;
  log[level]({ status: final.status, code: error?.code, steps: final.steps, durationMs }, message);
}

/** Runs one execution from queue to end; resolves with its final record, never rejects for a store failure. */
async function runAndRecord(ctx: Context, active: Active, log: Logger): Promise<ExecutionRecord> {
  const persisted = persistedOf(ctx, active);
  const walkCtx = begin(ctx, active, log, persisted);
  const checkpoint = startCheckpoints(ctx, active, walkCtx);
  try {
    log.info({ trigger: active.record.trigger, passedIn: active.documents.length }, 'execution started');
    const { status, error } = await walk(ctx, active, walkCtx);
    const final = end(ctx, active, status, error);
    logEnd(log, final, view(ctx, final).durationMs, error);
    return final;
  } finally {
    clearInterval(checkpoint);
  }
}

/** The store or the file system failed: the execution still ends, as error with a code. */
function endAfterFailure(ctx: Context, active: Active, failure: unknown): ExecutionRecord {
  const id = active.record.id;
  ctx.deps.logger.error({ err: failure, execution: id }, 'execution bookkeeping failed');
  const error = { code: 'QUARK_ERR_EXECUTION_RECORD_FAILED', message: `the execution's record could not be kept: ${messageOf(failure)}` };
  try {
    return end(ctx, active, 'error', error);
  } catch (again) {
    storeFailed(ctx, id, again, 'the end of an execution could not be written');
    return ended(active, 'error', error);
  }
}

/** Work files of the execution (made only if a body was spilled), removed at its end. */
async function removeWorkDir(ctx: Context, id: string): Promise<void> {
  const workDir = join(ctx.deps.workRoot, id);
  try {
    if (existsSync(workDir)) await rm(workDir, { recursive: true, force: true });
  } catch (error) {
    ctx.deps.logger.warn({ err: error, execution: id, workDir }, 'the work files of an execution could not be removed');
  }
}

async function run(ctx: Context, active: Active): Promise<void> {
  const { record, definition, controller } = active;
  const { log, end: endLog } = ctx.logs.open(record.id, { process: record.processId, version: record.version });
  const timeoutMs = definition.options?.timeoutMs ?? ctx.deps.limits.executionTimeoutMs;
  const timer = setTimeout(() => controller.abort(quarkError('QUARK_ERR_EXECUTION_TIMEOUT', `the execution ran past its time limit of ${timeoutMs} ms and was aborted`)), timeoutMs);
  let final: ExecutionRecord;
  try {
    final = await runAndRecord(ctx, active, log);
  } catch (unexpected) {
    final = endAfterFailure(ctx, active, unexpected);
  } finally {
    clearTimeout(timer);
  }
  endLog();
  await removeWorkDir(ctx, record.id);
  ctx.running.delete(record.id);
  pump(ctx);
  ctx.deps.logger.debug({ execution: record.id, process: record.processId, status: final.status }, 'execution finished');
  active.finish(final);
}

function recordFailures(ctx: Context, id: string, failures: DocumentFailureRef[], log: Logger): void {
  if (failures.length === 0) return;
  const kept = failures.slice(0, maxStoredErrors);
  for (const f of kept) log.error({ step: f.step, code: f.code }, f.message);
  ctx.deps.store.executions.insertErrors(id, kept.map((f) => ({ step: f.step, code: f.code, message: f.message })));
}

function find(ctx: Context, caller: Caller, id: string): ExecutionRecord {
  const record = ctx.running.get(id)?.record ?? ctx.deps.store.executions.get(caller.account.id, id);
  if (!record || record.accountId !== caller.account.id) throw quarkError('QUARK_ERR_EXECUTION_NOT_FOUND', `no execution "${id}" in your account`);
  return record;
}

/** The definition and version an execution request runs. */
function resolveRequest(ctx: Context, caller: Caller, request: ExecutionRequest): { definition: ProcessDefinition; version: number | null; trigger: ExecutionTrigger } {
  const { deployments, access } = ctx.deps;
  if (request.definition !== undefined) {
    return { definition: deployments.validate(caller, request.definition), version: null, trigger: 'test' };
  }
  access.requireMember(caller, 'run processes');
  const { definition, version } = deployments.requireActive(caller.account.id, request.process ?? '');
  return { definition, version, trigger: request.trigger };
}

function refuseWhenFull(ctx: Context, definition: ProcessDefinition): void {
  const { running, queue, deps } = ctx;
  if (running.size < deps.limits.maxRunningExecutions || queue.length < deps.limits.maxQueuedExecutions) return;
  deps.metrics.executionsRefused.inc();
  throw quarkError('QUARK_ERR_EXECUTION_QUEUE_FULL', `the runtime already runs ${running.size} execution(s) (limits.maxRunningExecutions) and ${queue.length} wait (limits.maxQueuedExecutions); this execution of "${definition.id}" was refused, not queued`, { running: running.size, queued: queue.length });
}

function newRecord(caller: Caller, resolved: ReturnType<typeof resolveRequest>, documentsIn: number): ExecutionRecord {
  return {
    id: newId('exe'),
    accountId: caller.account.id,
    processId: resolved.definition.id,
    version: resolved.version,
    trigger: resolved.trigger,
    status: 'queued',
    queuedAt: nowIso(),
    startedAt: null,
    endedAt: null,
    errorCode: null,
    errorMessage: null,
    steps: {},
    documentsIn,
    documentsOut: 0,
    documentsFailed: 0,
    warnings: 0,
  };
}

/**
 * Starts (or queues) an execution. Refuses at once when the queue is full. The record
 * is written before any work starts. With `wait`, resolves when it has ended, with
 * the output documents.
 */
async function start(ctx: Context, caller: Caller, request: ExecutionRequest, options: { wait?: boolean } = {}): Promise<ExecutionView & { output?: PresentedDocument[] }> {
  if (ctx.state.closing) throw quarkError('QUARK_ERR_API_SHUTTING_DOWN', 'the runtime is shutting down');
  const resolved = resolveRequest(ctx, caller, request);
  refuseWhenFull(ctx, resolved.definition);
  const documents = inputDocuments(request.documents ?? []);
  const record = newRecord(caller, resolved, documents.length);
  ctx.deps.store.executions.insert(record);
  ctx.deps.metrics.executionDocuments.inc({ outcome: 'in' }, documents.length);
  let finish!: (r: ExecutionRecord) => void;
  const done = new Promise<ExecutionRecord>((resolve) => (finish = resolve));
  const controller = new AbortController();
  // every task of the execution listens to its signal (a 100k-document step runs 50)
  setMaxListeners(0, controller.signal);
  const active: Active = { record, caller, definition: resolved.definition, documents, controller, done, finish, wantOutputs: options.wait === true };
  ctx.queue.push(active);
  emit(ctx, record);
  pump(ctx);
  if (!options.wait) return view(ctx, active.record);
  const final = await done;
  const errors = final.documentsFailed > 0 ? ctx.deps.store.executions.errors(final.id, 100) : [];
  return { ...view(ctx, final), errors, ...(active.presented ? { output: active.presented } : {}) };
}

/** Cancels a queued (→ discarded) or running (→ aborted) execution. */
function cancel(ctx: Context, caller: Caller, id: string): ExecutionView {
  ctx.deps.access.requireMember(caller, 'cancel executions');
  const record = find(ctx, caller, id);
  if (terminal(record.status)) throw quarkError('QUARK_ERR_EXECUTION_FINISHED', `execution ${id} already ended (${record.status})`);
  const reason = quarkError('QUARK_ERR_EXECUTION_CANCELLED', `cancelled by ${caller.account.name}`);
  const queued = ctx.queue.findIndex((a) => a.record.id === id);
  if (queued >= 0) {
    const [active] = ctx.queue.splice(queued, 1);
    return view(ctx, discard(ctx, active!, reason));
  }
  ctx.running.get(id)?.controller.abort(reason);
  return view(ctx, ctx.running.get(id)?.record ?? record);
}

/** At start: executions a killed runtime left running are marked aborted (queued: discarded). */
function recover(ctx: Context): { id: string; status: ExecutionStatus }[] {
  const message = 'the runtime stopped (killed, crashed or shut down) while this execution was queued or running; it did not finish';
  const touched = ctx.deps.store.executions.interrupt(nowIso(), 'QUARK_ERR_EXECUTION_INTERRUPTED', message);
  for (const t of touched) appendLine(ctx, t.id, 50, `${t.status}: ${message}`);
  return touched;
}

/**
 * Calls `listener` with the execution's view on every status change (queued,
 * in-process, and the end) of the caller's account's executions; returns the unsubscribe.
 */
function subscribe(ctx: Context, caller: Caller, listener: Listener): () => void {
  ctx.deps.access.requireMember(caller, 'watch executions');
  const id = caller.account.id;
  let set = ctx.listeners.get(id);
  if (!set) ctx.listeners.set(id, (set = new Set()));
  set.add(listener);
  return () => {
    set.delete(listener);
    if (set.size === 0 && ctx.listeners.get(id) === set) ctx.listeners.delete(id);
  };
}

/** Shutdown: queued executions are discarded, running ones aborted; resolves when they have ended. */
async function close(ctx: Context): Promise<void> {
  ctx.state.closing = true;
  const reason = quarkError('QUARK_ERR_EXECUTION_INTERRUPTED', 'the runtime shut down');
  for (const active of ctx.queue.splice(0)) discard(ctx, active, reason);
  const ends = [...ctx.running.values()].map((a) => {
    a.controller.abort(reason);
    return a.done;
  });
  await Promise.all(ends);
}

export function createExecutions(deps: ExecutionsDeps) {
  const ctx = createContext(deps);
  const purgeBefore = (now: number) => new Date(now - deps.limits.purgeDays * 86_400_000).toISOString();
  return {
    start: (caller: Caller, request: ExecutionRequest, options: { wait?: boolean } = {}) => start(ctx, caller, request, options),
    get(caller: Caller, id: string): ExecutionView {
      const record = find(ctx, caller, id);
      return view(ctx, record, { errors: deps.store.executions.errors(id, 100) });
    },
    list(caller: Caller, filter: { process?: string; status?: ExecutionStatus; limit?: number } = {}): ExecutionView[] {
      const live = new Map([...ctx.running.values(), ...ctx.queue].map((a) => [a.record.id, a.record]));
      const query = { ...(filter.process ? { processId: filter.process } : {}), ...(filter.status ? { status: filter.status } : {}), limit: filter.limit ?? 50 };
      return deps.store.executions.list(caller.account.id, query).map((r) => view(ctx, live.get(r.id) ?? r));
    },
    cancel: (caller: Caller, id: string) => cancel(ctx, caller, id),
    /** The execution's log: NDJSON lines, in chunks, in order. */
    log(caller: Caller, id: string): string[] {
      find(ctx, caller, id);
      return deps.store.executions.log(id);
    },
    recover: () => recover(ctx),
    /** Deletes the history (with errors and logs) of executions that ended more than purgeDays ago. */
    purge: (now = Date.now()): number => deps.store.executions.purge(purgeBefore(now)).length,
    subscribe: (caller: Caller, listener: Listener) => subscribe(ctx, caller, listener),
    counts: () => ({ running: ctx.running.size, queued: ctx.queue.length }),
    /** Why the runtime is not ready, if a store write it cannot do without failed. */
    failure: (): string | undefined => ctx.state.storeFailure,
    close: () => close(ctx),
  };
}

export type Executions = ReturnType<typeof createExecutions>;
