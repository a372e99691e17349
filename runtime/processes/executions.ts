/**
 * Executions: the queue and its limits, the execution record (written before any work
 * starts), the per-execution log, cancel and timeouts, crash recovery and purge. The
 * graph itself is walked by engine/walker.ts.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setMaxListeners } from 'node:events';
import { createExecutionLogs } from './log-sink.js';
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

export function createExecutions(deps: ExecutionsDeps) {
  const { store, metrics } = deps;
  const running = new Map<string, Active>();
  const queue: Active[] = [];
  let closing = false;
  /** Listeners of status changes, per account (the console's live list). */
  const listeners = new Map<string, Set<(view: ExecutionView) => void>>();
  function emit(record: ExecutionRecord): void {
    const set = listeners.get(record.accountId);
    if (!set || set.size === 0) return;
    const v = view(record);
    for (const listener of set) {
      try {
        listener(v);
      } catch (error) {
        deps.logger.warn({ err: error, execution: record.id }, 'an execution listener threw');
      }
    }
  }
  const logs = createExecutionLogs({ level: deps.logLevel, redact: deps.redact, append: (id, lines) => store.executions.appendLog(id, lines) });
  /** A line written outside an execution's logger (recovery, discard), in the same NDJSON shape. */
  const appendLine = (id: string, level: number, msg: string) => store.executions.appendLog(id, JSON.stringify({ level, time: Date.now(), execution: id, msg }) + '\n');

  function view(record: ExecutionRecord, extra: Partial<ExecutionView> = {}): ExecutionView {
    const active = running.get(record.id);
    const live = active?.ctx ? { ...record, steps: active.ctx.counts, warnings: active.ctx.warnings } : record;
    const durationMs = record.startedAt ? (record.endedAt ? Date.parse(record.endedAt) : Date.now()) - Date.parse(record.startedAt) : null;
    return { ...live, durationMs, ...(active?.ctx?.progress ? { progress: active.ctx.progress } : {}), ...extra };
  }

  function end(active: Active, status: ExecutionStatus, error?: { code: string; message: string }): ExecutionRecord {
    const record: ExecutionRecord = {
      ...active.record,
      status,
      endedAt: nowIso(),
      errorCode: error?.code ?? null,
      errorMessage: error?.message ?? null,
      ...(active.ctx ? { steps: active.ctx.counts, warnings: active.ctx.warnings } : {}),
    };
    store.executions.update(record);
    emit(record);
    metrics.executionsFinished.inc({ status });
    if (record.startedAt) metrics.executionDuration.observe({ status }, (Date.parse(record.endedAt!) - Date.parse(record.startedAt)) / 1000);
    return record;
  }

  function pump(): void {
    while (!closing && running.size < deps.limits.maxRunningExecutions && queue.length > 0) {
      const next = queue.shift()!;
      running.set(next.record.id, next);
      void run(next);
    }
  }

  function operationRunner(active: Active, ctx: () => WalkContext) {
    const prepared = new Map<string, PreparedOperation | QuarkError>();
    const literal = new Map<string, Record<string, unknown>>();
    return {
      async run(ref: { connection: string; operation: string }, documents: DocumentRef[], parameters: Record<string, unknown>, options: { step: string; dynamic: boolean; timeoutMs?: number; onProgress?(p: { document: number; bytesDone: number; bytesTotal?: number }): void }): Promise<OperationResultRef[]> {
        const key = `${ref.connection}\u0000${ref.operation}`;
        let p = prepared.get(key);
        if (!p) {
          try {
            p = deps.operations.prepare(active.caller, ref);
          } catch (error) {
            p = error instanceof QuarkError ? error : quarkError('QUARK_ERR_API_INTERNAL', messageOf(error));
          }
          prepared.set(key, p);
        }
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
        const c = ctx();
        return deps.operations.execute(p, documents, params, {
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

  async function run(active: Active): Promise<void> {
    const { record, definition, controller } = active;
    const workDir = join(deps.workRoot, record.id);
    const { log, end: endLog } = logs.open(record.id, { process: record.processId, version: record.version });
    const timeoutMs = definition.options?.timeoutMs ?? deps.limits.executionTimeoutMs;
    const timer = setTimeout(() => controller.abort(quarkError('QUARK_ERR_EXECUTION_TIMEOUT', `the execution ran past its time limit of ${timeoutMs} ms and was aborted`)), timeoutMs);
    let final: ExecutionRecord;
    let checkpoint: NodeJS.Timeout | undefined;
    try {
      active.record = { ...record, status: 'in-process', startedAt: nowIso() };
      store.executions.update(active.record);
      emit(active.record);
      metrics.executionsStarted.inc({ trigger: record.trigger });
      const properties: Record<string, unknown> = {};
      const persists = Object.values(definition.properties ?? {}).some((spec) => spec.persist);
      const persisted = record.version === null || !persists ? {} : (store.processes.get(record.accountId, record.processId)?.properties ?? {});
      for (const [name, spec] of Object.entries(definition.properties ?? {})) {
        properties[name] = spec.persist && name in persisted ? persisted[name] : spec.default;
      }
      const ctx: WalkContext = {
        info: { id: record.id, process: record.processId, version: record.version, trigger: record.trigger },
        workDir,
        signal: controller.signal,
        process: properties,
        ...(record.version !== null && persists ? { onProcessUpdates: (updates: Map<string, unknown>) => persistProperties(record, definition, updates) } : {}),
        operations: operationRunner(active, () => ctx),
        callee: (id) => deps.deployments.requireActive(record.accountId, id).definition,
        counts: {},
        log,
        warnings: 0,
      };
      active.ctx = ctx;
      // a long execution's counts reach the store as it goes, so a crash leaves them behind
      checkpoint = setInterval(() => store.executions.update({ ...active.record, steps: ctx.counts, warnings: ctx.warnings }), 5000);
      checkpoint.unref();
      log.info({ trigger: record.trigger, passedIn: active.documents.length }, 'execution started');
      let status: ExecutionStatus;
      let error: { code: string; message: string } | undefined;
      try {
        const result = await deps.walker.walk(definition, active.documents, ctx);
        if (controller.signal.aborted) throw controller.signal.reason;
        active.record.documentsIn = result.documentsIn;
        active.record.documentsOut = result.outputs.length;
        active.record.documentsFailed = result.failures.length;
        recordFailures(record.id, result.failures, log);
        if (result.failures.length > 0) {
          status = 'error';
          const first = result.failures[0]!;
          error = { code: first.code, message: `${result.failures.length} document(s) failed; the first at step ${first.step}: ${first.message}` };
        } else status = ctx.warnings > 0 ? 'complete-with-warnings' : 'complete';
        if (active.wantOutputs) active.presented = await presentDocuments(result.outputs);
        metrics.executionDocuments.inc({ outcome: 'out' }, result.outputs.length);
        metrics.executionDocuments.inc({ outcome: 'failed' }, result.failures.length);
      } catch (thrown) {
        const reason = controller.signal.aborted ? controller.signal.reason : thrown;
        if (reason instanceof ExecutionStopped) {
          status = 'error';
          error = { code: 'QUARK_ERR_PROCESS_EXCEPTION', message: `step ${reason.step}: ${reason.message}` };
        } else if (controller.signal.aborted) {
          status = 'aborted';
          error = reason instanceof QuarkError ? { code: reason.code, message: reason.message } : { code: 'QUARK_ERR_EXECUTION_CANCELLED', message: messageOf(reason) };
        } else {
          status = 'error';
          error = reason instanceof QuarkError ? { code: reason.code, message: reason.message } : { code: 'QUARK_ERR_API_INTERNAL', message: messageOf(reason) };
          if (!(reason instanceof QuarkError)) deps.logger.error({ err: reason, execution: record.id }, 'execution failed unexpectedly');
        }
      }
      final = end(active, status, error);
      log[status === 'complete' ? 'info' : status === 'complete-with-warnings' ? 'warn' : 'error']({ status, code: error?.code, steps: final.steps, durationMs: view(final).durationMs }, error ? `execution ended ${status}: ${error.message}` : `execution ended ${status}`);
    } catch (unexpected) {
      // the store or the file system failed: still account for the execution
      deps.logger.error({ err: unexpected, execution: record.id }, 'execution bookkeeping failed');
      final = end(active, 'error', { code: 'QUARK_ERR_API_INTERNAL', message: messageOf(unexpected) });
    } finally {
      clearTimeout(timer);
      clearInterval(checkpoint);
      endLog();
      // made only if a body was spilled
      if (existsSync(workDir)) await rm(workDir, { recursive: true, force: true });
      running.delete(record.id);
      pump();
    }
    deps.logger.debug({ execution: record.id, process: record.processId, status: final.status }, 'execution finished');
    active.finish(final);
  }

  /**
   * Persisted process properties are stored as soon as a step sets them, each on its own
   * (the walker reports them after each chunk): overlapping executions of a process never
   * lose each other's updates, and the last writer of a property wins.
   */
  function persistProperties(record: ExecutionRecord, definition: ProcessDefinition, updates: Map<string, unknown>): void {
    const persisted = new Map([...updates].filter(([name]) => definition.properties?.[name]?.persist === true));
    if (persisted.size > 0) store.processes.mergeProperties(record.accountId, record.processId, persisted);
  }

  function recordFailures(id: string, failures: DocumentFailureRef[], log: Logger): void {
    if (failures.length === 0) return;
    for (const f of failures.slice(0, maxStoredErrors)) log.error({ step: f.step, code: f.code }, f.message);
    store.executions.insertErrors(id, failures.slice(0, maxStoredErrors).map((f) => ({ step: f.step, code: f.code, message: f.message })));
  }

  function find(caller: Caller, id: string): ExecutionRecord {
    const record = running.get(id)?.record ?? store.executions.get(caller.account.id, id);
    if (!record || record.accountId !== caller.account.id) throw quarkError('QUARK_ERR_EXECUTION_NOT_FOUND', `no execution "${id}" in your account`);
    return record;
  }

  return {
    /**
     * Starts (or queues) an execution. Refuses at once when the queue is full. The record
     * is written before any work starts. With `wait`, resolves when it has ended, with
     * the output documents.
     */
    async start(caller: Caller, request: ExecutionRequest, options: { wait?: boolean } = {}): Promise<ExecutionView & { output?: PresentedDocument[] }> {
      if (closing) throw quarkError('QUARK_ERR_API_SHUTTING_DOWN', 'the runtime is shutting down');
      let definition: ProcessDefinition;
      let version: number | null;
      let trigger: ExecutionTrigger = request.trigger;
      if (request.definition !== undefined) {
        definition = deps.deployments.validate(caller, request.definition);
        version = null;
        trigger = 'test';
      } else {
        deps.access.requireMember(caller, 'run processes');
        ({ definition, version } = deps.deployments.requireActive(caller.account.id, request.process ?? ''));
      }
      if (running.size >= deps.limits.maxRunningExecutions && queue.length >= deps.limits.maxQueuedExecutions) {
        metrics.executionsRefused.inc();
        throw quarkError('QUARK_ERR_EXECUTION_QUEUE_FULL', `the runtime already runs ${running.size} execution(s) (limits.maxRunningExecutions) and ${queue.length} wait (limits.maxQueuedExecutions); this execution of "${definition.id}" was refused, not queued`, { running: running.size, queued: queue.length });
      }
      const documents = inputDocuments(request.documents ?? []);
      const record: ExecutionRecord = {
        id: newId('exe'),
        accountId: caller.account.id,
        processId: definition.id,
        version,
        trigger,
        status: 'queued',
        queuedAt: nowIso(),
        startedAt: null,
        endedAt: null,
        errorCode: null,
        errorMessage: null,
        steps: {},
        documentsIn: documents.length,
        documentsOut: 0,
        documentsFailed: 0,
        warnings: 0,
      };
      store.executions.insert(record);
      metrics.executionDocuments.inc({ outcome: 'in' }, documents.length);
      let finish!: (r: ExecutionRecord) => void;
      const done = new Promise<ExecutionRecord>((resolve) => (finish = resolve));
      const controller = new AbortController();
      // every task of the execution listens to its signal (a 100k-document step runs 50)
      setMaxListeners(0, controller.signal);
      const active: Active = { record, caller, definition, documents, controller, done, finish, wantOutputs: options.wait === true };
      queue.push(active);
      emit(record);
      pump();
      if (!options.wait) return view(active.record);
      const final = await done;
      return { ...view(final), errors: final.documentsFailed > 0 ? store.executions.errors(final.id, 100) : [], ...(active.presented ? { output: active.presented } : {}) };
    },
    get(caller: Caller, id: string): ExecutionView {
      const record = find(caller, id);
      return view(record, { errors: store.executions.errors(id, 100) });
    },
    list(caller: Caller, filter: { process?: string; status?: ExecutionStatus; limit?: number } = {}): ExecutionView[] {
      const live = new Map([...running.values(), ...queue].map((a) => [a.record.id, a.record]));
      return store.executions
        .list(caller.account.id, { ...(filter.process ? { processId: filter.process } : {}), ...(filter.status ? { status: filter.status } : {}), limit: filter.limit ?? 50 })
        .map((r) => view(live.get(r.id) ?? r));
    },
    /** Cancels a queued (→ discarded) or running (→ aborted) execution. */
    cancel(caller: Caller, id: string): ExecutionView {
      deps.access.requireMember(caller, 'cancel executions');
      const record = find(caller, id);
      if (terminal(record.status)) throw quarkError('QUARK_ERR_EXECUTION_FINISHED', `execution ${id} already ended (${record.status})`);
      const reason = quarkError('QUARK_ERR_EXECUTION_CANCELLED', `cancelled by ${caller.account.name}`);
      const queued = queue.findIndex((a) => a.record.id === id);
      if (queued >= 0) {
        const [active] = queue.splice(queued, 1);
        const final = end(active!, 'discarded', reason);
        appendLine(id, 40, `discarded before it started: ${reason.message}`);
        active!.finish(final);
        return view(final);
      }
      running.get(id)?.controller.abort(reason);
      return view(running.get(id)?.record ?? record);
    },
    /** The execution's log: NDJSON lines, in chunks, in order. */
    log(caller: Caller, id: string): string[] {
      find(caller, id);
      return store.executions.log(id);
    },
    /** At start: executions a killed runtime left running are marked aborted (queued: discarded). */
    recover(): { id: string; status: ExecutionStatus }[] {
      const message = 'the runtime stopped (killed, crashed or shut down) while this execution was queued or running; it did not finish';
      const touched = store.executions.interrupt(nowIso(), 'QUARK_ERR_EXECUTION_INTERRUPTED', message);
      for (const t of touched) appendLine(t.id, 50, `${t.status}: ${message}`);
      return touched;
    },
    /** Deletes the history (with errors and logs) of executions that ended more than purgeDays ago. */
    purge(now = Date.now()): number {
      return store.executions.purge(new Date(now - deps.limits.purgeDays * 86_400_000).toISOString()).length;
    },
    /**
     * Calls `listener` with the execution's view on every status change (queued,
     * in-process, and the end) of the caller's account's executions; returns the unsubscribe.
     */
    subscribe(caller: Caller, listener: (view: ExecutionView) => void): () => void {
      deps.access.requireMember(caller, 'watch executions');
      const id = caller.account.id;
      let set = listeners.get(id);
      if (!set) listeners.set(id, (set = new Set()));
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0 && listeners.get(id) === set) listeners.delete(id);
      };
    },
    counts: () => ({ running: running.size, queued: queue.length }),
    /** Shutdown: queued executions are discarded, running ones aborted; resolves when they have ended. */
    async close(): Promise<void> {
      closing = true;
      const reason = quarkError('QUARK_ERR_EXECUTION_INTERRUPTED', 'the runtime shut down');
      for (const active of queue.splice(0)) active.finish(end(active, 'discarded', reason));
      const ends = [...running.values()].map((a) => {
        a.controller.abort(reason);
        return a.done;
      });
      await Promise.all(ends);
    },
  };
}

export type Executions = ReturnType<typeof createExecutions>;
