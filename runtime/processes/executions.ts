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
import { createWriteBehind, type WriteBehind } from './write-behind.js';
import { createStoreQueue, inlineInputs, type ExecutionQueue } from './queue.js';
import { QuarkError, quarkError, messageOf, describeProblems } from '../core/errors.js';
import { newId, nowIso } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { AccessControl, Caller } from '../accounts/access.js';
import { StoreFencedError, StoreUnavailableError } from '../store/errors.js';
import type { Store, ExecutionRecord, ExecutionStatus, ExecutionTrigger, ExecutionErrorRecord, ScheduledFire, StepDocumentRecord } from '../store/types.js';
import type { DocumentFailureRef, DocumentRef, OperationResultRef } from '../engine/messages.js';
import { presentDocuments, type PresentedDocument } from '../engine/present.js';
import { ExecutionStopped, type Walker, type WalkContext } from '../engine/walker.js';
import { inputDocuments, type Operations, type PreparedOperation, type OperationInput } from '../connections/operations.js';
import type { ProcessDefinition } from './definition.js';
import { propertiesUnreadableMessage, type Deployments } from './deployments.js';
import { createStepRecorder, scrubSample, type StepRecorder } from './step-data.js';
import { openAcross, type Across } from './across-nodes.js';
import { createOutputStream, type OutputStream } from './output-stream.js';

export interface ExecutionRequest {
  /** A deployed process of the caller's account… */
  process?: string;
  /** …or a definition to run without deploying it (test mode). */
  definition?: unknown;
  documents?: OperationInput[];
  trigger: Exclude<ExecutionTrigger, 'test'>;
  /** The schedule fire a scheduled run is (the scheduler's; never from the API): unique per process in the store. */
  schedule?: ScheduledFire;
  /** Record step data for this run (test-mode runs and processes with options.recordStepData always do). */
  recordStepData?: boolean;
}

export interface ExecutionView extends ExecutionRecord {
  durationMs: number | null;
  /** While running: the latest bytes progress of a large transfer. */
  progress?: { step: string; bytesDone: number; bytesTotal?: number };
  /**
   * While running: grows with each event of the execution (status changes and step-count
   * pushes), so a reader can tell which of two views of the same stage is newer.
   */
  seq?: number;
  errors?: ExecutionErrorRecord[];
  /** GET of one test-mode run: the definition it ran, kept with it (null when it cannot be read, absent when none was kept). */
  definition?: Record<string, unknown> | null;
}

/** The executions list: filters, a search in the ids, a keyset position (see Store). */
export interface ExecutionQuery {
  process?: string;
  status?: ExecutionStatus;
  search?: string;
  before?: { queuedAt: string; id: string };
  limit?: number;
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
  /** This runtime's node id (the owner of the executions it runs). */
  nodeId: string;
  /** Between start and run; the store-backed in-process queue by default. */
  queue?: ExecutionQueue;
  limits: { maxRunningExecutions: number; maxQueuedExecutions: number; executionTimeoutMs: number; purgeDays: number; stepDataBodyBytes?: number; stepDataDocuments?: number };
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
  /** A streamed answer: the documents that end the run go there as they end (output-stream.ts). */
  stream?: OutputStream;
  /** Persisted process properties set by its steps, written behind it (awaited before it ends). */
  properties?: WriteBehind<Map<string, unknown>>;
  /** Events emitted for this execution so far (ExecutionView.seq). */
  seq: number;
  /** When the run records step data. */
  recorder?: StepRecorder;
  /** Secret values of the connections the run used: scrubbed from its step data. */
  secrets: Set<string>;
  /** A draining node handed it back (its record requeued or aborted in the store): nothing more of this run is written. */
  handedBack?: boolean;
}

/** How often a running execution's step counts are pushed when they changed: at most 4 a second. */
const countPushMs = 250;

/** Errors kept per execution in the store (the log has them all). */
const maxStoredErrors = 1000;

const terminal = (status: ExecutionStatus) => status !== 'queued' && status !== 'in-process';

type Listener = (view: ExecutionView) => void;
type EndError = { code: string; message: string };

/** The state of the executions service, passed explicitly to its functions. */
interface Context {
  deps: ExecutionsDeps;
  running: Map<string, Active>;
  /** Executions that wait (the order and the inputs live in the queue). */
  queue: ExecutionQueue;
  /** The waiting executions started in this process, with their callers and documents in memory. */
  local: Map<string, Active>;
  /** Slots promised but not yet in `running` (a take or a start in flight), and enqueues not yet committed. */
  reserved: { slots: number; enqueues: number };
  pumping: boolean;
  /** The take in flight: from the queue's take to the execution in `running` (or discarded); a cancel meanwhile waits for it. */
  taking?: Promise<void>;
  /** Listeners of status changes, per account (the console's live list). */
  listeners: Map<string, Set<Listener>>;
  logs: ExecutionLogs;
  /** In a molecule: events and cancels to and from the other nodes (across-nodes.ts). */
  across?: Across;
  /** Called each time a run left `running` (a drain waits for none to be left). */
  runEnded: Set<() => void>;
  /**
   * storeFailure: why the runtime is not ready until restarted; unwritten: execution ends
   * kept while the store was unreachable; draining: a molecule node's drain, once begun.
   */
  state: { closing: boolean; storeFailure?: string; unwritten: Map<string, ExecutionRecord>; draining?: Promise<void> };
}

function createContext(deps: ExecutionsDeps): Context {
  const state: Context['state'] = { closing: false, unwritten: new Map() };
  const running = new Map<string, Active>();
  const ctx: Context = { deps, running, queue: deps.queue ?? createStoreQueue({ store: deps.store, workRoot: deps.workRoot }), local: new Map(), reserved: { slots: 0, enqueues: 0 }, pumping: false, listeners: new Map(), logs: undefined as unknown as ExecutionLogs, runEnded: new Set(), state };
  ctx.logs = createExecutionLogs({
    level: deps.logLevel,
    redact: deps.redact,
    // a run's lines carry its lease epoch: once another node holds the record they are refused
    append: (id, lines) => deps.store.executions.appendLog(id, lines, running.get(id)?.record.leaseEpoch),
    onError: (id, error) => (error instanceof StoreFencedError ? void heldElsewhere(ctx, id, 'its log lines are not written') : storeFailed(ctx, id, error, 'an execution log could not be written')),
  });
  return ctx;
}

/**
 * The store refused a write the runtime cannot do without, said in the runtime log. When
 * it could not be reached (StoreUnavailableError: the store reports itself unhealthy, so
 * GET /readyz is 503 meanwhile), the execution end it could not write (`final`) is kept
 * and written once the store answers again (writeUnwritten), and the runtime is ready
 * again without a restart. Any other refusal keeps it not ready until it is restarted.
 */
function storeFailed(ctx: Pick<Context, 'deps' | 'state'>, execution: string, error: unknown, what: string, final?: ExecutionRecord): void {
  if (error instanceof StoreUnavailableError) {
    if (final) ctx.state.unwritten.set(final.id, final);
    ctx.deps.logger.error({ err: error, execution }, `${what}; the runtime is not ready until the store answers again`);
    return;
  }
  ctx.state.storeFailure ??= `${what}: ${messageOf(error)}`;
  ctx.deps.logger.error({ err: error, execution }, `${what}; the runtime is not ready until it is restarted`);
}

/**
 * A write of execution `id` was fenced (StoreFencedError: its lease epoch moved on):
 * another node holds or finalised the record now, and its writes stand. Said in the
 * runtime log (the execution's own log is fenced too); the node is not unhealthy for it.
 * This node's run of it, if it still runs, stops: nothing more of it is written.
 */
function heldElsewhere(ctx: Pick<Context, 'deps' | 'running'>, id: string, what: string, level: 'warn' | 'info' = 'warn'): QuarkError {
  const error = leaseLostError();
  const active = ctx.running.get(id);
  const stopping = active !== undefined && !active.controller.signal.aborted;
  if (stopping) active.controller.abort(error);
  // one line per run: later refusals of a run that already stopped say nothing more
  if (stopping || active === undefined) ctx.deps.logger[level]({ execution: id, code: error.code }, `${what}: ${error.message}`);
  return error;
}

/**
 * Writes the execution ends kept while the store was unreachable, oldest first; stops at
 * the first the store still refuses. One refused as fenced is dropped: another node holds
 * (or finalised) that record now, and its write stands.
 */
async function writeUnwritten(ctx: Pick<Context, 'deps' | 'state' | 'running'>): Promise<void> {
  for (const [id, final] of [...ctx.state.unwritten]) {
    try {
      await ctx.deps.store.executions.update(final);
      ctx.deps.logger.info({ execution: id, status: final.status }, 'the end of an execution, kept while the store was unreachable, is written');
    } catch (error) {
      if (!(error instanceof StoreFencedError)) return;
      heldElsewhere(ctx, id, 'the end of an execution, kept while the store was unreachable, is not written');
    }
    ctx.state.unwritten.delete(id);
  }
}

/** Why the runtime is not ready because of the executions, if it is not. */
function notReady(state: Context['state']): string | undefined {
  if (state.storeFailure !== undefined) return state.storeFailure;
  return state.unwritten.size > 0 ? `${state.unwritten.size} execution end(s) wait for the store to answer` : undefined;
}

/** A line written outside an execution's logger (recovery, discard), in the same NDJSON shape. */
function appendLine(ctx: Context, id: string, level: number, msg: string): Promise<void> {
  return ctx.deps.store.executions.appendLog(id, JSON.stringify({ level, time: Date.now(), execution: id, msg }) + '\n');
}

function emit(ctx: Context, record: ExecutionRecord): void {
  const set = ctx.listeners.get(record.accountId);
  const local = set !== undefined && set.size > 0;
  if (!local && !ctx.across) return;
  const active = ctx.running.get(record.id);
  if (active) active.seq++;
  const v = view(ctx, record);
  ctx.across?.publish(record.accountId, record.id, v as unknown as Record<string, unknown>);
  if (local) tell(ctx, set, v);
}

/** Calls the listeners with a view; one that throws is logged, the others still hear it. */
function tell(ctx: Context, set: Set<Listener>, v: ExecutionView): void {
  for (const listener of set) {
    try {
      listener(v);
    } catch (error) {
      ctx.deps.logger.warn({ err: error, execution: v.id }, 'an execution listener threw');
    }
  }
}

function view(ctx: Context, record: ExecutionRecord, extra: Partial<ExecutionView> = {}): ExecutionView {
  const active = ctx.running.get(record.id);
  const live = active?.ctx ? { ...record, steps: active.ctx.counts, warnings: active.ctx.warnings } : record;
  const end = record.endedAt ? Date.parse(record.endedAt) : Date.now();
  const durationMs = record.startedAt ? end - Date.parse(record.startedAt) : null;
  const progress = active?.ctx?.progress ? { progress: active.ctx.progress } : {};
  const seq = active ? { seq: active.seq } : {};
  return { ...live, durationMs, ...progress, ...seq, ...extra };
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

async function end(ctx: Context, active: Active, status: ExecutionStatus, error?: EndError): Promise<ExecutionRecord> {
  const record = ended(active, status, error);
  await ctx.deps.store.executions.update(record);
  // until run() lets go of it, a GET finds it in `running`: with its end
  active.record = record;
  emit(ctx, record);
  ctx.deps.metrics.executionsFinished.inc({ status });
  if (record.startedAt) {
    const seconds = (Date.parse(record.endedAt!) - Date.parse(record.startedAt)) / 1000;
    ctx.deps.metrics.executionDuration.observe({ status }, seconds);
  }
  return record;
}

/** Ends a queued execution as discarded, with a line in its log saying why. */
async function discard(ctx: Context, active: Active, reason: QuarkError): Promise<ExecutionRecord> {
  let final: ExecutionRecord;
  try {
    final = await end(ctx, active, 'discarded', reason);
    await appendLine(ctx, active.record.id, 40, `discarded before it started: ${reason.message}`);
  } catch (error) {
    final = ended(active, 'discarded', reason);
    storeFailed(ctx, active.record.id, error, 'a discarded execution could not be recorded', final);
  }
  active.finish(final);
  return final;
}

const freeSlots = (ctx: Context) => ctx.deps.limits.maxRunningExecutions - ctx.running.size - ctx.reserved.slots;

/** Starts queued executions while slots are free, one take at a time; runs again if work came meanwhile. */
function pump(ctx: Context): void {
  // a distributed queue delivers (attach), nothing is taken here
  if (ctx.pumping || ctx.queue.distributed) return;
  ctx.pumping = true;
  void pumpQueue(ctx).finally(() => {
    ctx.pumping = false;
    if (!ctx.state.closing && freeSlots(ctx) > 0 && ctx.queue.size() > 0) pump(ctx);
  });
}

async function pumpQueue(ctx: Context): Promise<void> {
  while (!ctx.state.closing && freeSlots(ctx) > 0 && ctx.queue.size() > 0) {
    ctx.reserved.slots += 1;
    let next: Active | undefined;
    try {
      next = await takeNext(ctx);
    } finally {
      ctx.reserved.slots -= 1;
    }
    if (!next) continue;
    const active = next;
    run(ctx, active).catch((error: unknown) => lastResort(ctx, active, error));
  }
}

/** One take, known to cancel (ctx.taking) until the execution it took is in `running` (or gone). */
async function takeNext(ctx: Context): Promise<Active | undefined> {
  const taking = takeFromQueue(ctx).then((active) => {
    if (active) ctx.running.set(active.record.id, active);
    return active;
  });
  ctx.taking = taking.then(() => undefined);
  try {
    return await taking;
  } finally {
    ctx.taking = undefined;
  }
}

/** The next queued execution, ready to run; undefined when none, or when it cannot run (then it is discarded, saying why). */
async function takeFromQueue(ctx: Context): Promise<Active | undefined> {
  let record: ExecutionRecord | undefined;
  try {
    record = await ctx.queue.take();
    if (!record) return undefined;
    const local = ctx.local.get(record.id);
    ctx.local.delete(record.id);
    return local ?? (await revive(ctx, record));
  } catch (error) {
    ctx.deps.logger.error({ err: error, execution: record?.id }, 'the next queued execution could not be taken');
    if (record) await discard(ctx, detached(record), quarkError('QUARK_ERR_EXECUTION_RECORD_FAILED', `it could not be taken from the queue: ${messageOf(error)}`));
    return undefined;
  }
}

/** Why a queued test-mode run does not outlive the runtime: nobody waits for it any more, and its definition was never deployed. */
const testModeNotKept = 'a test-mode run of an undeployed definition is not kept across a restart (it answers whoever tried the definition; after a restart nobody waits for it): run it again';

/** An execution that waited in the store across a restart, made runnable again; undefined (and discarded) when it cannot run. */
async function revive(ctx: Context, record: ExecutionRecord, when = 'queued before the runtime restarted'): Promise<Active | undefined> {
  const { store } = ctx.deps;
  const active = detached(record);
  const account = await store.accounts.get(record.accountId);
  const deployment = record.version === null ? undefined : await store.processes.version(record.accountId, record.processId, record.version);
  let why: string | undefined;
  if (!account) why = `its account ${record.accountId} is gone`;
  else if (record.version === null) why = testModeNotKept;
  else if (!deployment?.definition) why = `version ${record.version} of process "${record.processId}" cannot be read`;
  if (why !== undefined || !account || !deployment?.definition) {
    await discard(ctx, active, quarkError('QUARK_ERR_EXECUTION_INTERRUPTED', `${when}, but it cannot run: ${why ?? 'unknown'}`));
    await ctx.queue.release(record.id);
    return undefined;
  }
  active.caller = { account, tokenId: 'queued-before-restart' };
  active.definition = deployment.definition as unknown as ProcessDefinition;
  // a request's recordStepData is not kept with the queued record; the process's option is
  if (active.definition.options?.recordStepData === true) active.recorder = stepRecorder(ctx);
  active.documents = await ctx.queue.documents(record.id, join(ctx.deps.workRoot, record.id));
  return active;
}

/** An Active for a record nobody in this process waits for (recovered, or cancelled while it waited in the store). */
function detached(record: ExecutionRecord): Active {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return {
    record,
    caller: { account: { id: record.accountId, name: '', relation: 'owner', createdAt: record.queuedAt }, tokenId: 'none' },
    definition: { id: record.processId, name: record.processId, start: { kind: 'none', next: '' }, steps: [] } as unknown as ProcessDefinition,
    documents: [],
    controller,
    done: Promise.resolve(record),
    finish: () => undefined,
    wantOutputs: false,
    seq: 0,
    secrets: new Set(),
  };
}

/** What run() could not account for: the execution still ends, so nothing waits for it forever. */
function lastResort(ctx: Context, active: Active, error: unknown): void {
  const final = ended(active, 'error', { code: 'QUARK_ERR_EXECUTION_RECORD_FAILED', message: messageOf(error) });
  storeFailed(ctx, active.record.id, error, 'an execution could not be accounted for', final);
  ctx.running.delete(active.record.id);
  active.finish(final);
  pump(ctx);
}

type RunOptions = { step: string; dynamic: boolean; timeoutMs?: number; onProgress?(p: { document: number; bytesDone: number; bytesTotal?: number }): void };
type StepRef = { connection: string; operation: string };

async function prepareOnce(ctx: Context, active: Active, cache: Map<string, PreparedOperation | QuarkError>, key: string, ref: StepRef): Promise<PreparedOperation | QuarkError> {
  let p = cache.get(key);
  if (!p) {
    try {
      p = await ctx.deps.operations.prepare(active.caller, ref);
      for (const secret of p.secrets) active.secrets.add(secret);
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
      const p = await prepareOnce(ctx, active, prepared, key, ref);
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
  const { definition, controller } = active;
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
  await recordFailures(ctx, active.record, result.failures, walkCtx.log);
  let status: ExecutionStatus = walkCtx.warnings > 0 ? 'complete-with-warnings' : 'complete';
  let error: EndError | undefined;
  if (result.failures.length > 0) {
    status = 'error';
    const first = result.failures[0]!;
    error = { code: first.code, message: `${result.failures.length} document(s) failed; the first at step ${first.step}: ${first.message}` };
  }
  if (active.wantOutputs && !active.stream) active.presented = await presentDocuments(result.outputs);
  metrics.executionDocuments.inc({ outcome: 'out' }, result.documentsOut);
  metrics.executionDocuments.inc({ outcome: 'failed' }, result.failures.length);
  return { status, ...(error ? { error } : {}) };
}

/** Marks the record in-process and builds the walk's context. */
async function begin(ctx: Context, active: Active, log: Logger, persisted: Record<string, unknown>): Promise<WalkContext> {
  const { record, definition, controller } = active;
  const { store, metrics } = ctx.deps;
  if (record.status !== 'in-process') {
    active.record = { ...record, status: 'in-process', startedAt: nowIso(), owner: ctx.deps.nodeId };
    await store.executions.update(active.record);
    emit(ctx, active.record);
    // the run holds its documents now: the stored inputs are of no more use
    await ctx.queue.release(record.id);
  }
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
    ...(record.version !== null && persists ? { onProcessUpdates: (updates: Map<string, unknown>) => persistProperties(ctx, active, updates) } : {}),
    operations: operationRunner(ctx, active, () => walkCtx),
    callee: async (id) => (await ctx.deps.deployments.requireActive(record.accountId, id)).definition,
    counts: {},
    // an execution started without waiting presents no documents: they are counted, not kept
    discardOutputs: !active.wantOutputs,
    log,
    warnings: 0,
    ...(active.recorder ? { stepData: active.recorder } : {}),
    ...(active.stream ? { outputSink: active.stream } : {}),
  };
  active.ctx = walkCtx;
  return walkCtx;
}

/** The process's persisted properties, read before the run. */
async function persistedOf(ctx: Context, active: Active, log: Logger): Promise<Record<string, unknown>> {
  const { record, definition } = active;
  const persists = Object.values(definition.properties ?? {}).some((spec) => spec.persist);
  if (record.version === null || !persists) return {};
  const stored = await ctx.deps.store.processes.get(record.accountId, record.processId);
  if (stored?.propertiesUnreadable) log.warn({ code: 'QUARK_ERR_PROCESS_PROPERTIES_UNREADABLE' }, propertiesUnreadableMessage(record.processId));
  return stored?.properties ?? {};
}

/**
 * Persisted process properties are stored as soon as a step sets them, each on its own
 * (the walker reports them after each chunk): overlapping executions of a process never
 * lose each other's updates, and the last writer of a property wins.
 */
function persistProperties(ctx: Context, active: Active, updates: Map<string, unknown>): void {
  const { record, definition } = active;
  const persisted = new Map([...updates].filter(([name]) => definition.properties?.[name]?.persist === true));
  if (persisted.size === 0) return;
  active.properties ??= createWriteBehind(
    (merged: Map<string, unknown>) => ctx.deps.store.processes.mergeProperties(record.accountId, record.processId, merged),
    (pending, next) => new Map([...pending, ...next]),
    (error) => storeFailed(ctx, record.id, error, 'persisted process properties could not be written'),
  );
  active.properties.push(persisted);
}

/**
 * A long execution's counts reach the store as it goes, so a crash leaves them behind:
 * every 5 s, one write in flight at most (a slow store skips a beat, never piles up);
 * `stop()` resolves once the last one landed, so the end is written after it.
 */
function startCheckpoints(ctx: Context, active: Active, walkCtx: WalkContext): { stop(): Promise<void> } {
  const counts = createWriteBehind(
    (record: ExecutionRecord) => ctx.deps.store.executions.update(record),
    (_pending, next) => next,
    (error) => {
      if (error instanceof StoreFencedError) heldElsewhere(ctx, active.record.id, 'the counts of a running execution are not written');
      else ctx.deps.logger.warn({ err: error, execution: active.record.id }, 'the counts of a running execution could not be written');
    },
  );
  const timer = setInterval(() => counts.push({ ...active.record, steps: { ...walkCtx.counts }, warnings: walkCtx.warnings }), 5000);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      return counts.settled();
    },
  };
}

/** A value that changes whenever a count changes (counts only grow). */
function countsSignature(counts: WalkContext['counts']): string {
  let steps = 0;
  let total = 0;
  for (const c of Object.values(counts)) {
    steps++;
    total += c.in + c.out + c.errors;
  }
  return `${steps}:${total}`;
}

/**
 * Pushes the execution's view to the listeners when its step counts changed, at most
 * every countPushMs: the console draws them on the diagram while the execution runs.
 */
function startCountPushes(ctx: Context, active: Active, walkCtx: WalkContext): NodeJS.Timeout {
  let last = countsSignature(walkCtx.counts);
  const timer = setInterval(() => {
    const now = countsSignature(walkCtx.counts);
    if (now === last) return;
    last = now;
    emit(ctx, active.record);
  }, countPushMs);
  timer.unref();
  return timer;
}

function logEnd(log: Logger, final: ExecutionRecord, durationMs: number | null, error?: EndError): void {
  const level = final.status === 'complete' ? 'info' : final.status === 'complete-with-warnings' ? 'warn' : 'error';
  const message = error ? `execution ended ${final.status}: ${error.message}` : `execution ended ${final.status}`;
  log[level]({ status: final.status, code: error?.code, steps: final.steps, durationMs }, message);
}

/** Runs one execution from queue to end; resolves with its final record, never rejects for a store failure. */
async function runAndRecord(ctx: Context, active: Active, log: Logger): Promise<ExecutionRecord> {
  const persisted = await persistedOf(ctx, active, log);
  const walkCtx = await begin(ctx, active, log, persisted);
  const checkpoint = startCheckpoints(ctx, active, walkCtx);
  const pushes = startCountPushes(ctx, active, walkCtx);
  let outcome: Awaited<ReturnType<typeof walk>>;
  try {
    log.info({ trigger: active.record.trigger, passedIn: active.documents.length }, 'execution started');
    // cancelled between the take and here: it ends aborted, no step runs
    const { signal } = active.controller;
    outcome = signal.aborted ? outcomeOf(ctx, active, signal.reason) : await walk(ctx, active, walkCtx);
  } finally {
    clearInterval(pushes);
    // the end is written after the last checkpoint and the last persisted properties
    await checkpoint.stop();
    await active.properties?.settled();
  }
  await saveStepData(ctx, active, log);
  const final = await end(ctx, active, outcome.status, outcome.error);
  logEnd(log, final, view(ctx, final).durationMs, outcome.error);
  return final;
}

const leaseLostError = () => quarkError('QUARK_ERR_EXECUTION_LEASE_LOST', 'another node claimed or finalised this execution while this node ran it; this node stopped its run and writes nothing more of it');

/** A write of the run was fenced (heldElsewhere): the run ends here, unwritten. */
function leaseLost(ctx: Context, active: Active): ExecutionRecord {
  const error = active.handedBack
    ? heldElsewhere(ctx, active.record.id, 'this node handed the execution back at the end of its drain', 'info')
    : heldElsewhere(ctx, active.record.id, 'a write of a run was refused');
  return ended(active, 'aborted', { code: error.code, message: error.message });
}

/** The recorded step data, scrubbed, into the store; a failure is logged, the execution goes on to its end. */
async function saveStepData(ctx: Context, active: Active, log: Logger): Promise<void> {
  const samples = active.recorder?.samples() ?? [];
  if (samples.length === 0) return;
  const secrets = [...active.secrets];
  try {
    await ctx.deps.store.stepData.insert(active.record.id, samples.map((s) => scrubSample(s, secrets)));
  } catch (error) {
    log.warn({ err: error }, 'the step data of this execution could not be stored');
  }
}

/** A recorder of step data within the configured limits. */
function stepRecorder(ctx: Context): StepRecorder {
  const { limits } = ctx.deps;
  return createStepRecorder({ bodyBytes: limits.stepDataBodyBytes ?? 4096, perStep: limits.stepDataDocuments ?? 100 });
}

/** Whether a run records step data: test mode, the process's options.recordStepData, or the request. */
function recordsStepData(resolved: { version: number | null; definition: ProcessDefinition }, request: ExecutionRequest): boolean {
  return resolved.version === null || resolved.definition.options?.recordStepData === true || request.recordStepData === true;
}

/** The store or the file system failed: the execution still ends, as error with a code. */
async function endAfterFailure(ctx: Context, active: Active, failure: unknown): Promise<ExecutionRecord> {
  const id = active.record.id;
  ctx.deps.logger.error({ err: failure, execution: id }, 'execution bookkeeping failed');
  const error = { code: 'QUARK_ERR_EXECUTION_RECORD_FAILED', message: `the execution's record could not be kept: ${messageOf(failure)}` };
  try {
    return await end(ctx, active, 'error', error);
  } catch (again) {
    const final = ended(active, 'error', error);
    storeFailed(ctx, id, again, 'the end of an execution could not be written', final);
    return final;
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
  let lost = false;
  try {
    final = await runAndRecord(ctx, active, log);
  } catch (unexpected) {
    lost = unexpected instanceof StoreFencedError;
    final = lost ? leaseLost(ctx, active) : await endAfterFailure(ctx, active, unexpected);
  } finally {
    await settleStream(active);
    clearTimeout(timer);
  }
  if (!lost) await ctx.queue.finished?.(record.id).catch((error: unknown) => ctx.deps.logger.warn({ err: error, execution: record.id }, 'the stored inputs of an ended execution could not be dropped'));
  // its log is complete when it is reported ended
  await endLog();
  await removeWorkDir(ctx, record.id);
  ctx.running.delete(record.id);
  for (const ended of ctx.runEnded) ended();
  pump(ctx);
  ctx.deps.logger.debug({ execution: record.id, process: record.processId, status: final.status }, 'execution finished');
  active.finish(final);
}

/**
 * A streamed answer's reader takes the last documents (their spilled files opened) before
 * the work files go; within the execution's time limit, whose abort drops what is left.
 */
async function settleStream(active: Active): Promise<void> {
  if (!active.stream) return;
  active.stream.end();
  await active.stream.settled();
}

/** The run's document failures into the store, at its lease epoch: StoreFencedError once another node holds the record. */
async function recordFailures(ctx: Context, record: ExecutionRecord, failures: DocumentFailureRef[], log: Logger): Promise<void> {
  if (failures.length === 0) return;
  const kept = failures.slice(0, maxStoredErrors);
  for (const f of kept) log.error({ step: f.step, code: f.code }, f.message);
  await ctx.deps.store.executions.insertErrors(record.id, kept.map((f) => ({ step: f.step, code: f.code, message: f.message })), record.leaseEpoch);
}

async function find(ctx: Context, caller: Caller, id: string): Promise<ExecutionRecord> {
  const record = ctx.running.get(id)?.record ?? ctx.local.get(id)?.record ?? (await ctx.deps.store.executions.get(caller.account.id, id));
  if (!record || record.accountId !== caller.account.id) throw quarkError('QUARK_ERR_EXECUTION_NOT_FOUND', `no execution "${id}" in your account`);
  return record;
}

/** The definition and version an execution request runs. */
async function resolveRequest(ctx: Context, caller: Caller, request: ExecutionRequest): Promise<{ definition: ProcessDefinition; version: number | null; trigger: ExecutionTrigger; schedule?: ScheduledFire }> {
  const { deployments, access } = ctx.deps;
  if (request.definition !== undefined) {
    return { definition: await deployments.validate(caller, request.definition), version: null, trigger: 'test' };
  }
  access.requireMember(caller, 'run processes');
  const { definition, version } = await deployments.requireActive(caller.account.id, request.process ?? '');
  return { definition, version, trigger: request.trigger, ...(request.trigger === 'schedule' && request.schedule ? { schedule: request.schedule } : {}) };
}

function refuseWhenFull(ctx: Context, definition: ProcessDefinition): void {
  const { running, deps } = ctx;
  const queued = ctx.queue.size() + ctx.reserved.enqueues;
  if (freeSlots(ctx) > 0 || queued < deps.limits.maxQueuedExecutions) return;
  deps.metrics.executionsRefused.inc();
  throw quarkError('QUARK_ERR_EXECUTION_QUEUE_FULL', `the runtime already runs ${running.size} execution(s) (limits.maxRunningExecutions) and ${queued} wait (limits.maxQueuedExecutions); this execution of "${definition.id}" was refused, not queued`, { running: running.size, queued });
}

function newRecord(caller: Caller, resolved: Awaited<ReturnType<typeof resolveRequest>>, documentsIn: number): ExecutionRecord {
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
    owner: null,
    attempt: 1,
    ...(resolved.schedule ? { schedule: resolved.schedule } : {}),
    leaseEpoch: 0,
  };
}

export interface StartOptions {
  wait?: boolean;
  /**
   * With `wait`: the output documents are streamed rather than presented at the end.
   * Called once the record is written (nothing refused the start), with the execution as
   * it starts and the stream its documents come through as they end.
   */
  stream?: (started: ExecutionView, outputs: OutputStream) => void;
}

/** Why a waiting caller's answer carries no documents (`what`: none are streamed, or in it): the execution went through the molecule's queue. */
const ranElsewhere = (what: string, owner: string) =>
  `the execution went through the molecule's queue, which any node may take it from (the ${owner} says which did): only the run itself holds its output documents, and nothing relays them between nodes, so none are ${what}; write them somewhere with a connector step`;

/** A wait start's answer: its end, with errors, and its output documents, or why it has none. */
export type WaitedView = ExecutionView & { output?: PresentedDocument[]; noOutput?: string };

/**
 * Starts (or queues) an execution. Refuses at once when the queue is full. The record
 * is written before any work starts. With `wait`, resolves when it has ended, with
 * the output documents (or, with `stream`, once they all went through the stream).
 */
async function start(ctx: Context, caller: Caller, request: ExecutionRequest, options: StartOptions = {}): Promise<WaitedView> {
  if (ctx.state.closing) throw quarkError('QUARK_ERR_API_SHUTTING_DOWN', 'the runtime is shutting down');
  const resolved = await resolveRequest(ctx, caller, request);
  refuseWhenFull(ctx, resolved.definition);
  const documents = inputDocuments(request.documents ?? []);
  let finish!: (r: ExecutionRecord) => void;
  const done = new Promise<ExecutionRecord>((resolve) => (finish = resolve));
  const controller = new AbortController();
  // every task of the execution listens to its signal (a 100k-document step runs 50)
  setMaxListeners(0, controller.signal);
  const record = newRecord(caller, resolved, documents.length);
  const recorder = recordsStepData(resolved, request) ? stepRecorder(ctx) : undefined;
  const active: Active = { record, caller, definition: resolved.definition, documents, controller, done, finish, wantOutputs: options.wait === true, seq: 0, secrets: new Set(), ...(recorder ? { recorder } : {}) };
  const streamed = options.wait === true && options.stream !== undefined;
  if (streamed) active.stream = createOutputStream({ signal: controller.signal, secrets: () => active.secrets });
  const atOnce = runsHere(ctx, active);
  if (atOnce) await runAtOnce(ctx, active);
  else await enqueue(ctx, active);
  if (resolved.version === null) await keepDefinition(ctx, active);
  ctx.deps.metrics.executionDocuments.inc({ outcome: 'in' }, documents.length);
  if (!options.wait) return view(ctx, active.record);
  // run here at once, or from this node's own queue: its end (and documents) come from the run itself
  const here = atOnce || ctx.running.has(record.id) || !ctx.queue.distributed;
  if (streamed) {
    if (!here) active.stream!.end(ranElsewhere('streamed', "end's owner"));
    options.stream!(view(ctx, active.record), active.stream!);
  }
  const final = here ? await done : await endedInStore(ctx, active.record);
  const errors = final.documentsFailed > 0 ? await ctx.deps.store.executions.errors(final.id, 100) : [];
  // a streamed answer's documents went through the stream (its end line says why none did)
  return { ...view(ctx, final), errors, ...(streamed ? {} : outputOf(active, here)) };
}

/** The output documents a wait start presents, or, when it went through the molecule's queue, why there are none. */
function outputOf(active: Active, here: boolean): Pick<WaitedView, 'output' | 'noOutput'> {
  if (active.presented) return { output: active.presented };
  return here ? {} : { noOutput: ranElsewhere('in this answer', "answer's owner") };
}

/** A test-mode run's definition, kept with it for its diagram; a failure is logged, the run goes on. */
async function keepDefinition(ctx: Context, active: Active): Promise<void> {
  try {
    await ctx.deps.store.executions.saveDefinition(active.record.id, active.definition);
  } catch (error) {
    ctx.deps.logger.warn({ err: error, execution: active.record.id }, 'the definition of a test-mode run could not be kept; its page has no diagram');
  }
}

/**
 * Whether a start runs at once on this node. Alone: a free slot and nobody waiting. In a
 * molecule every start goes through the queue (any node may run it), except a `wait`
 * or test-mode run, which this node runs when it has a free slot (its caller waits here,
 * and a test-mode definition is not in the store for another node); with a cluster-wide
 * running cap (a capped queue) a `wait` start goes through the queue too, so it counts.
 */
function runsHere(ctx: Context, active: Active): boolean {
  if (freeSlots(ctx) <= 0) return false;
  // a draining node takes no new run: a wait start is queued for the other nodes
  if (ctx.state.draining && ctx.queue.distributed) return active.record.version === null;
  if (!ctx.queue.distributed) return ctx.queue.size() + ctx.reserved.enqueues === 0;
  if (active.record.version === null) return true;
  return active.wantOutputs && !ctx.queue.capped;
}

/** A `wait` start that another node runs: its end as the store shows it (no output documents). */
async function endedInStore(ctx: Context, record: ExecutionRecord): Promise<ExecutionRecord> {
  for (;;) {
    const current = await ctx.deps.store.executions.get(record.accountId, record.id);
    if (!current || terminal(current.status)) return current ?? record;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * A free slot and nobody waiting: the record is written already taken by this node
 * (in-process, its owner), so a crash marks it aborted; its documents stay in memory.
 */
async function runAtOnce(ctx: Context, active: Active): Promise<void> {
  active.record = { ...active.record, status: 'in-process', startedAt: nowIso(), owner: ctx.deps.nodeId };
  ctx.running.set(active.record.id, active);
  try {
    await ctx.deps.store.executions.insert(active.record, await retryInputs(ctx, active));
  } catch (error) {
    ctx.running.delete(active.record.id);
    pump(ctx);
    throw error;
  }
  emit(ctx, active.record);
  run(ctx, active).catch((error: unknown) => lastResort(ctx, active, error));
}

/**
 * A run at once in a molecule of a process that is retried on node loss keeps its input
 * documents in the store (inline) until it ended, as a queued one does: another node
 * runs it again from them if this node is lost.
 */
async function retryInputs(ctx: Context, active: Active) {
  const retried = ctx.queue.distributed === true && active.record.version !== null && active.definition.options?.retryOnNodeLoss === true;
  return retried ? inlineInputs(active.documents) : undefined;
}

/** It has to wait: the record and its input documents are committed before the answer. */
async function enqueue(ctx: Context, active: Active): Promise<void> {
  ctx.reserved.enqueues += 1;
  try {
    await ctx.queue.enqueue(active.record, active.documents);
    // a distributed queue's execution may run on any node: it is revived from the store where it runs
    if (!ctx.queue.distributed) ctx.local.set(active.record.id, active);
  } finally {
    ctx.reserved.enqueues -= 1;
  }
  emit(ctx, active.record);
  pump(ctx);
}

/** Cancels a queued (→ discarded) or running (→ aborted) execution. */
async function cancel(ctx: Context, caller: Caller, id: string): Promise<ExecutionView> {
  ctx.deps.access.requireMember(caller, 'cancel executions');
  const record = await find(ctx, caller, id);
  if (terminal(record.status)) throw quarkError('QUARK_ERR_EXECUTION_FINISHED', `execution ${id} already ended (${record.status})`);
  const reason = quarkError('QUARK_ERR_EXECUTION_CANCELLED', `cancelled by ${caller.account.name}`);
  // a take in flight may hold it, out of the queue and not yet running: wait for the take, then look again
  for (;;) {
    if (await ctx.queue.withdraw(id)) {
      const active = ctx.local.get(id) ?? detached(record);
      ctx.local.delete(id);
      const final = await discard(ctx, active, reason);
      await ctx.queue.release(id);
      return view(ctx, final);
    }
    const running = ctx.running.get(id);
    if (running) {
      // a run that has not walked yet ends aborted without walking (runAndRecord)
      running.controller.abort(reason);
      return view(ctx, running.record);
    }
    if (!ctx.taking) break;
    await ctx.taking;
  }
  const current = await find(ctx, caller, id);
  if (current.status === 'in-process' && ctx.queue.distributed) await cancelElsewhere(ctx, current, caller.account.name);
  return view(ctx, current);
}

/**
 * Another node runs it: the cancel is kept in its record first (durable: the owner reads
 * it again after a lost LISTEN connection, and on its reconciler tick), then sent to every
 * node, and the one that runs it stops it at once.
 */
async function cancelElsewhere(ctx: Context, record: ExecutionRecord, by: string): Promise<void> {
  await ctx.deps.store.executions.requestCancel(record.id, nowIso(), by);
  await ctx.across?.cancel(record.accountId, record.id, by).catch((error: unknown) =>
    ctx.deps.logger.warn({ err: messageOf(error), execution: record.id }, 'a cancel could not be sent to the other nodes now; the node that runs the execution reads it from the store'),
  );
}

/** Stops this node's run of an execution cancelled from another node, if it runs it (and it is not stopping already). */
function stopCancelled(ctx: Context, account: string, id: string, by: string, how = 'a cancel sent by another node'): boolean {
  const running = ctx.running.get(id);
  if (!running || running.record.accountId !== account || running.controller.signal.aborted) return false;
  ctx.deps.logger.info({ execution: id }, `${how}: this node runs the execution and stops it`);
  running.controller.abort(quarkError('QUARK_ERR_EXECUTION_CANCELLED', `cancelled by ${by}`));
  return true;
}

/** The cancels kept in the store for this node's runs (a notification of them may have been lost): each run stopped; how many. */
async function applyRequestedCancels(ctx: Context): Promise<number> {
  if (!ctx.queue.distributed || ctx.running.size === 0) return 0;
  const requests = await ctx.deps.store.executions.cancelsRequested(ctx.deps.nodeId);
  return requests.filter((r) => stopCancelled(ctx, r.accountId, r.id, r.by, 'a cancel kept in the store (its notification did not reach this node)')).length;
}

/** In a molecule: listens to the other nodes' execution events (fed to this node's listeners) and cancels. */
async function listenAcross(ctx: Context): Promise<void> {
  const notifications = ctx.deps.store.notifications;
  if (!ctx.queue.distributed || !notifications) return;
  ctx.across = await openAcross(notifications, ctx.deps.nodeId, ctx.deps.logger, {
    event(account, id, remote) {
      const set = ctx.listeners.get(account);
      if (!set || set.size === 0) return;
      if (remote) return tell(ctx, set, remote as unknown as ExecutionView);
      void ctx.deps.store.executions.get(account, id).then(
        (record) => record && tell(ctx, set, view(ctx, record)),
        (error: unknown) => ctx.deps.logger.debug({ err: error, execution: id }, 'an execution another node changed could not be read'),
      );
    },
    cancel: (account, id, by) => void stopCancelled(ctx, account, id, by),
    resumed: () => void readRequestedCancels(ctx, 'listening to the other nodes again'),
  });
}

/** applyRequestedCancels, its failure logged (the reconciler tick reads them again). */
async function readRequestedCancels(ctx: Context, when: string): Promise<void> {
  try {
    const stopped = await applyRequestedCancels(ctx);
    if (stopped > 0) ctx.deps.logger.info({ stopped }, `${when}: cancels kept in the store stopped this node's runs`);
  } catch (error) {
    ctx.deps.logger.warn({ err: messageOf(error) }, `${when}: the cancels kept in the store could not be read; the reconciler reads them again`);
  }
}

/**
 * At start: the executions this node left running when it stopped are marked aborted,
 * with the reason; the queued ones (of every account) wait again, oldest first, and run.
 */
async function recover(ctx: Context): Promise<{ aborted: { id: string; status: ExecutionStatus }[]; queued: number }> {
  const message = 'the runtime stopped (killed, crashed or shut down) while this execution was running; it did not finish';
  const at = nowIso();
  let aborted: { id: string; status: ExecutionStatus }[];
  if (ctx.queue.interrupted) {
    // a molecule node: retried elsewhere when the process allows it (node-loss policy), each with its log line
    aborted = await ctx.queue.interrupted(ctx.deps.nodeId, 'QUARK_ERR_EXECUTION_INTERRUPTED', 'this node stopped (killed, crashed or shut down)');
  } else {
    aborted = await ctx.deps.store.executions.interrupt(ctx.deps.nodeId, at, 'QUARK_ERR_EXECUTION_INTERRUPTED', message);
    for (const t of aborted) await appendLine(ctx, t.id, 50, `${t.status}: ${message}`);
  }
  await listenAcross(ctx);
  // a distributed queue delivers from now on: after this node's interrupted runs were accounted for
  ctx.queue.attach?.((id, lost) => deliver(ctx, id, lost));
  const queued = await ctx.queue.restore();
  pump(ctx);
  return { aborted, queued };
}

/**
 * Calls `listener` with the execution's view on every status change (queued,
 * in-process, and the end) of the caller's account's executions, and while one runs,
 * when its step counts changed (at most 4 times a second); returns the unsubscribe.
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

/** Shutdown with a test-mode run waiting: discarded now, saying why, rather than left for a restart that would discard it. */
async function discardTestRun(ctx: Context, active: Active): Promise<void> {
  await ctx.queue.withdraw(active.record.id);
  await discard(ctx, active, quarkError('QUARK_ERR_EXECUTION_INTERRUPTED', `the runtime shut down before it started; ${testModeNotKept}`));
  await ctx.queue.release(active.record.id).catch((error: unknown) => ctx.deps.logger.warn({ err: error, execution: active.record.id }, 'the stored inputs of a discarded test-mode run could not be removed'));
}

export interface StepDocumentView {
  seq: number;
  properties: Record<string, string>;
  /** The properties it had when it entered the step, when known. */
  input?: Record<string, string>;
  /** The recorded head of the body: UTF-8 text as it is, anything else in base64. */
  body: string;
  encoding: 'utf8' | 'base64';
  /** The whole body's size; `truncated` when the head is shorter. */
  size: number;
  truncated: boolean;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function presentStepDocument(d: StepDocumentRecord): StepDocumentView {
  let body: string;
  let encoding: StepDocumentView['encoding'] = 'utf8';
  try {
    body = strictUtf8.decode(d.body);
  } catch {
    body = Buffer.from(d.body.buffer, d.body.byteOffset, d.body.byteLength).toString('base64');
    encoding = 'base64';
  }
  return { seq: d.seq, properties: d.properties, ...(d.input ? { input: d.input } : {}), body, encoding, size: d.size, truncated: d.body.byteLength < d.size };
}

async function stepDocuments(ctx: Context, caller: Caller, id: string, step: string, page: { cursor?: string; limit: number }): Promise<{ documents: StepDocumentView[]; next: string | null }> {
  await find(ctx, caller, id);
  const after = page.cursor === undefined ? -1 : Number(page.cursor);
  if (!Number.isSafeInteger(after) || after < -1) throw quarkError('QUARK_ERR_API_CURSOR_INVALID', `cursor: "${page.cursor}" is not a cursor this list gave; use the "next" of the previous page`);
  const rows = await ctx.deps.store.stepData.list(id, step, { after, limit: page.limit + 1 });
  const documents = rows.slice(0, page.limit).map(presentStepDocument);
  return { documents, next: rows.length > page.limit ? String(documents[documents.length - 1]!.seq) : null };
}

/**
 * Shutdown: running executions are aborted; queued ones stay queued in the store (with a
 * line in their log) and run after the restart, except test-mode runs (discarded, saying why). Resolves when the running ones have ended.
 */
async function close(ctx: Context): Promise<void> {
  ctx.state.closing = true;
  await drainOnce(ctx);
  // no more deliveries; the queue closes once the running ones (aborted below) ended
  const queueClosed = ctx.queue.close?.();
  const reason = quarkError('QUARK_ERR_EXECUTION_INTERRUPTED', 'the runtime shut down');
  for (const active of [...ctx.local.values()]) {
    ctx.local.delete(active.record.id);
    if (active.record.version === null) {
      await discardTestRun(ctx, active);
      continue;
    }
    try {
      await appendLine(ctx, active.record.id, 40, 'the runtime shut down before this execution started: it stays queued and runs when the runtime starts again');
    } catch (error) {
      ctx.deps.logger.warn({ err: error, execution: active.record.id }, 'the log of a queued execution could not be written at shutdown');
    }
    active.finish(active.record);
  }
  const ends = [...ctx.running.values()].map((a) => {
    a.controller.abort(reason);
    return a.done;
  });
  await Promise.all(ends);
  await writeUnwritten(ctx);
  await queueClosed;
  ctx.across?.close();
  await ctx.logs.drain();
}

/**
 * A molecule node's drain, begun once (by the CLI's SIGTERM before the API closes, so the
 * node answers reads, cancels and waits meanwhile; else by close), awaited by every caller.
 */
function drainOnce(ctx: Context): Promise<void> {
  const start = ctx.queue.drain;
  if (!start) return Promise.resolve();
  ctx.state.draining ??= drain(ctx, start.bind(ctx.queue));
  return ctx.state.draining;
}

/**
 * A molecule node's graceful shutdown: it stops claiming (its row says draining), lets
 * its running executions finish within the grace, then hands back the ones still
 * running: each is accounted for in the store first (requeued as its next attempt when
 * the process is retried on node loss, else aborted), which fences this node's writes,
 * then its run here is stopped.
 */
async function drain(ctx: Context, start: () => Promise<{ graceMs: number }>): Promise<void> {
  const { graceMs } = await start();
  const running = [...ctx.running.values()];
  if (running.length === 0) return;
  ctx.deps.logger.info({ running: running.length, graceMs }, 'draining: this node claims nothing more and lets its running executions finish');
  let timer: NodeJS.Timeout | undefined;
  let check: (() => void) | undefined;
  const finished = await new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), graceMs);
    check = () => {
      if (ctx.running.size === 0) resolve(true);
    };
    ctx.runEnded.add(check);
  });
  clearTimeout(timer);
  ctx.runEnded.delete(check!);
  if (finished) return;
  for (const active of [...ctx.running.values()]) await handBack(ctx, active);
}

/** One run still going when the drain grace ended: accounted for in the store, then stopped here. */
async function handBack(ctx: Context, active: Active): Promise<void> {
  try {
    active.handedBack = true;
    const requeued = await ctx.queue.handBack!(active.record);
    ctx.deps.logger.warn({ execution: active.record.id, requeued }, requeued ? 'the drain grace ended: the execution is handed back, queued again for another node' : 'the drain grace ended: the execution is aborted');
  } catch (error) {
    active.handedBack = false;
    ctx.deps.logger.warn({ err: error, execution: active.record.id }, 'a running execution could not be handed back; it is aborted here');
  }
  active.controller.abort(quarkError('QUARK_ERR_EXECUTION_INTERRUPTED', 'the runtime shut down: its drain grace ended'));
}

/**
 * A distributed queue delivered execution `id` to this node: claimed in the store (queued
 * → in-process, this node its owner, the lease epoch raised), then run; resolves when the
 * run ended. Not queued any more (a duplicate delivery, cancelled, taken): nothing runs.
 */
async function deliver(ctx: Context, id: string, lost: AbortSignal): Promise<void> {
  // a job a draining worker had already fetched when it paused: refused, the reconciler adds it for the others
  if (ctx.state.closing || ctx.state.draining) throw quarkError('QUARK_ERR_API_SHUTTING_DOWN', 'the node is draining or shutting down; another node runs it');
  const claimed = await ctx.deps.store.executions.claim(id, ctx.deps.nodeId, nowIso());
  if (!claimed) {
    ctx.deps.logger.debug({ execution: id }, 'a delivered execution is not queued any more (a duplicate delivery, cancelled, or claimed elsewhere); nothing runs');
    return;
  }
  ctx.reserved.slots += 1;
  let active: Active | undefined;
  try {
    active = await revive(ctx, claimed, 'queued in the molecule');
  } finally {
    ctx.reserved.slots -= 1;
  }
  if (!active) return;
  const running = active;
  lost.addEventListener('abort', () => running.controller.abort(lost.reason), { once: true });
  ctx.running.set(id, running);
  emit(ctx, running.record);
  await run(ctx, running).catch((error: unknown) => lastResort(ctx, running, error));
}

export function createExecutions(deps: ExecutionsDeps) {
  const ctx = createContext(deps);
  const purgeBefore = (now: number) => new Date(now - deps.limits.purgeDays * 86_400_000).toISOString();
  return {
    start: (caller: Caller, request: ExecutionRequest, options: StartOptions = {}) => start(ctx, caller, request, options),
    async get(caller: Caller, id: string): Promise<ExecutionView> {
      const record = await find(ctx, caller, id);
      const definition = record.version === null ? await deps.store.executions.definition(id) : undefined;
      return view(ctx, record, { errors: await deps.store.executions.errors(id, 100), ...(definition !== undefined ? { definition } : {}) });
    },
    async list(caller: Caller, filter: ExecutionQuery = {}): Promise<ExecutionView[]> {
      const { process, limit, ...rest } = filter;
      const query = { ...rest, ...(process ? { processId: process } : {}), limit: limit ?? 50 };
      const records = await deps.store.executions.list(caller.account.id, query);
      const live = new Map([...ctx.running.values(), ...ctx.local.values()].map((a) => [a.record.id, a.record]));
      return records.map((r) => view(ctx, live.get(r.id) ?? r));
    },
    cancel: (caller: Caller, id: string) => cancel(ctx, caller, id),
    /** In a molecule (the reconciler tick): stops this node's runs whose cancel is kept in the store; how many. */
    applyRequestedCancels: () => applyRequestedCancels(ctx),
    /** The steps of the execution with recorded step data, and how many documents each has. */
    recordedSteps: async (caller: Caller, id: string) => {
      await find(ctx, caller, id);
      return deps.store.stepData.steps(id);
    },
    /** One page of the documents recorded for a step: `cursor` from the previous page's `next`. */
    stepDocuments: (caller: Caller, id: string, step: string, page: { cursor?: string; limit: number }) => stepDocuments(ctx, caller, id, step, page),
    /** The execution's log: NDJSON lines, in chunks, in order. */
    async log(caller: Caller, id: string): Promise<string[]> {
      await find(ctx, caller, id);
      return deps.store.executions.log(id);
    },
    recover: () => recover(ctx),
    /** Deletes the history (with errors and logs) of executions that ended more than purgeDays ago. */
    purge: async (now = Date.now()): Promise<number> => (await deps.store.executions.purge(purgeBefore(now))).length,
    subscribe: (caller: Caller, listener: Listener) => subscribe(ctx, caller, listener),
    counts: () => ({ running: ctx.running.size, queued: ctx.queue.size() }),
    /** Why the runtime is not ready, if a store write it cannot do without failed. */
    failure: (): string | undefined => notReady(ctx.state),
    /** Writes the execution ends kept while the store was unreachable (readiness asks, once the store answers). */
    writeUnwritten: () => writeUnwritten(ctx),
    /**
     * A molecule node's SIGTERM: it stops claiming, lets its runs finish within
     * cluster.drainMs and hands back the rest; the API still answers meanwhile. Nothing on one node.
     */
    drain: () => drainOnce(ctx),
    /** Whether this node's drain has begun (GET /readyz answers 503 from then on). */
    draining: (): boolean => ctx.state.draining !== undefined,
    close: () => close(ctx),
  };
}

export type Executions = ReturnType<typeof createExecutions>;
