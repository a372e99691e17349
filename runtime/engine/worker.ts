/**
 * The piscina worker entry. Plugin code is imported and run only here, never in the main
 * thread. Everything that comes back is plain data: errors as {code, message, details}.
 * A control port carries 'started' and progress to the main thread and 'abort' from it.
 */
import { register } from 'node:module';
import { heldResources, installGuards, takeTaint } from './guards.js';
import { watchLimits } from './limits.js';
import { pathToFileURL } from 'node:url';
import type { MessagePort } from 'node:worker_threads';
import { isConnector, isPositionalBody, type Connector, type ConnectorLogger, type HeldResource, type OperationResult, type ResourceDescription, type Resources } from '../sdk/index.js';
import { describeProblems, messageOf, type ErrorCode } from '../core/errors.js';
import { bodyOf, refOf } from './bodies.js';
import { createEvaluator, expressionFailure } from './expressions.js';
import { packOutcome, runSteps } from './steps.js';
import { packExits, unpackTask } from './packed.js';
import { fromCrossing, toCrossing } from './crossing.js';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { isExpression } from '../processes/definition.js';
import { createSchemaRegistry, type SchemaRegistry, type Validator } from '../schema/index.js';
import { stepsFlagViews, stopCodes } from './messages.js';
import type { StepsOutcome, StepsTask, AbortReason, DocumentRef, MainEvent, OperationResultRef, OperationTask, PostedTask, ProbeTask, RecoverTask, ResourceAnswer, ResourceRequest, TestTask, WorkerEvent, WorkerLogRecord, WorkerReply } from './messages.js';

// before any plugin code runs: no process.kill/exit/abort, no workers, late failures taint
installGuards();

// A plugin imports `quark/sdk` wherever its folder is (built-in, the home, a configured
// path): this resolve hook maps that one specifier to this runtime's SDK.
register(new URL('./sdk-resolver.js', import.meta.url), { data: { sdkUrl: new URL('../sdk/index.js', import.meta.url).href } });

// Per worker: compiled expressions, and parameter validators built on first use.
const evaluate = createEvaluator();
let schemas: SchemaRegistry | undefined;
const parameterValidators = new Map<string, Validator>();

function parameterValidator(schema: Record<string, unknown>): Validator {
  const key = JSON.stringify(schema);
  let validate = parameterValidators.get(key);
  if (!validate) {
    schemas ??= createSchemaRegistry();
    validate = schemas.compile(schema, 'parameters');
    parameterValidators.set(key, validate);
  }
  return validate;
}

/** Parameters with {"$expr"} values evaluated for one document, then validated. */
async function parametersFor(task: OperationTask, document: DocumentRef): Promise<Record<string, unknown>> {
  if (!task.dynamic) return task.parameters;
  const body = bodyOf(document.body);
  let input: unknown;
  if (document.body.kind === 'inline' && body.size > 0) {
    const text = await body.text();
    try {
      input = JSON.parse(text);
    } catch {
      input = text;
    }
  }
  const parameters: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(task.parameters)) {
    if (!isExpression(value)) {
      parameters[name] = value;
      continue;
    }
    let computed: unknown;
    try {
      computed = await evaluate(value.$expr, input, { properties: document.properties, process: task.dynamic.process, execution: task.dynamic.execution, body: { size: body.size, spilled: document.body.kind === 'file' } });
    } catch (error) {
      throw new TaskFailure('QUARK_ERR_EXPRESSION_FAILED', `the expression of parameter ${name} failed: ${expressionFailure(error)}`);
    }
    if (computed !== undefined) parameters[name] = computed;
  }
  const problems = parameterValidator(task.dynamic.parametersSchema)(parameters);
  if (problems.length > 0) {
    throw new TaskFailure('QUARK_ERR_OPERATION_INVALID_PARAMETERS', `the parameters computed for this document are not valid: ${describeProblems(problems)}`);
  }
  return parameters;
}

/** A steps task that crossed from another process: its crossing bodies read back into memory here. */
async function crossedIn(task: StepsTask): Promise<StepsTask> {
  return task.crossAbove === undefined ? task : { ...task, documents: await fromCrossing(task.documents, task.workDir) };
}

/** Its outcome, going back across: large output bodies in crossing files of the work directory. */
async function crossedBack(task: StepsTask, outcome: StepsOutcome): Promise<StepsOutcome> {
  if (task.crossAbove === undefined) return outcome;
  const exits = [];
  for (const exit of outcome.exits) exits.push({ next: exit.next, documents: await toCrossing(exit.documents, task.workDir, task.crossAbove) });
  return { ...outcome, exits };
}

class TaskFailure extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

const abortCodes: Record<AbortReason, ErrorCode> = { timeout: 'QUARK_ERR_PLUGIN_TIMEOUT', cancelled: 'QUARK_ERR_OPERATION_CANCELLED' };
const abortWords: Record<AbortReason, string> = { timeout: 'reached its time limit and was stopped', cancelled: 'was cancelled' };

async function load(entry: string): Promise<Connector<unknown>> {
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(entry).href)) as Record<string, unknown>;
  } catch (error) {
    throw new TaskFailure('QUARK_ERR_PLUGIN_IMPORT_FAILED', `importing ${entry} failed: ${messageOf(error)}`);
  }
  const connector = module.default;
  if (!isConnector(connector)) {
    throw new TaskFailure('QUARK_ERR_PLUGIN_MODULE_INVALID', `${entry} has no default export made with defineConnector from quark/sdk`);
  }
  return connector;
}

function probe(connector: Connector<unknown>, task: ProbeTask): unknown {
  if (task.testConnection && typeof connector.testConnection !== 'function') {
    throw new TaskFailure('QUARK_ERR_PLUGIN_MODULE_INVALID', `${task.entry}: connector.json declares testConnection but the module has no testConnection function`);
  }
  const missing = task.operations.filter((id) => typeof connector.operations?.[id] !== 'function');
  if (missing.length > 0) {
    throw new TaskFailure('QUARK_ERR_PLUGIN_MODULE_INVALID', `${task.entry}: no handler for operation(s) ${missing.join(', ')} declared in connector.json`);
  }
  return { ok: true };
}

function loggerInto(logs: WorkerLogRecord[]): ConnectorLogger {
  const record = (level: WorkerLogRecord['level']) => (message: string, fields?: Record<string, unknown>) => {
    if (logs.length < 500) logs.push({ level, message: String(message), ...(fields ? { fields } : {}) });
  };
  return { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') };
}

interface Control {
  signal: AbortSignal;
  reason(): AbortReason | undefined;
  post(event: WorkerEvent): void;
  /** Posts a resource request and resolves to the main thread's answer. */
  ask(request: DistributiveOmit<ResourceRequest, 'request'>): Promise<ResourceAnswer>;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** An error a plugin can read the code of (`error.code`), as hold() and release() reject with. */
function resourceError(code: ErrorCode, message: string): Error {
  return Object.assign(new Error(message), { name: 'QuarkResourceError', code });
}

function answerError(answer: ResourceAnswer): Error | undefined {
  return answer.ok ? undefined : resourceError(answer.error.code, answer.error.message);
}

/** context.resources of an operation: every hold and release is a round trip to the main thread. */
function resourcesFor(connector: Connector<unknown>, control: Control): Resources {
  async function release(id: string): Promise<void> {
    const failed = answerError(await control.ask({ type: 'release', id }));
    if (failed) throw failed;
  }
  async function hold(resource: ResourceDescription): Promise<HeldResource> {
    if (typeof connector.recover !== 'function') {
      throw resourceError('QUARK_ERR_RESOURCE_INVALID', 'the connector has no recover handler (defineConnector({ recover })), so the runtime could not release this resource after a crash');
    }
    let answer: ResourceAnswer;
    try {
      answer = await control.ask({ type: 'hold', kind: resource?.kind, data: resource?.data });
    } catch (error) {
      throw resourceError('QUARK_ERR_RESOURCE_INVALID', `the resource's data is not plain data: ${messageOf(error)}`);
    }
    if (!answer.ok) throw answerError(answer)!;
    const id = answer.id;
    let released: Promise<void> | undefined;
    return { id, release: () => (released ??= release(id)) };
  }
  return { hold };
}

async function test(connector: Connector<unknown>, task: TestTask, control: Control, logs: WorkerLogRecord[]): Promise<unknown> {
  if (typeof connector.testConnection !== 'function') {
    throw new TaskFailure('QUARK_ERR_CONNECTOR_NO_TEST', 'the connector module has no testConnection function');
  }
  try {
    return await connector.testConnection({ config: task.config, signal: control.signal, runtime: task.runtime, log: loggerInto(logs) });
  } catch (error) {
    const reason = control.reason();
    if (reason) throw new TaskFailure(abortCodes[reason], `Test Connection ${abortWords[reason]}`);
    throw new TaskFailure('QUARK_ERR_PLUGIN_THREW', `testConnection threw: ${messageOf(error)}`);
  }
}

/** Runs the handler for each document; each gets exactly one result, whatever happens. */
async function operate(connector: Connector<unknown>, task: OperationTask, control: Control, logs: WorkerLogRecord[]): Promise<OperationResultRef[]> {
  const handler = connector.operations?.[task.operation];
  if (typeof handler !== 'function') throw new TaskFailure('QUARK_ERR_PLUGIN_MODULE_INVALID', `no handler for operation ${task.operation}`);
  const log = loggerInto(logs);
  const resources = resourcesFor(connector, control);
  const results: OperationResultRef[] = [];
  for (const [index, document] of task.documents.entries()) {
    // at most one progress message per 100 ms (and the last one): a plugin may report
    // every chunk, and a message per 64 KiB chunk costs more than the transfer
    let lastPost = 0;
    const progress = (bytesDone: number, bytesTotal?: number) => {
      const now = performance.now();
      if (now - lastPost < 100 && bytesDone !== bytesTotal) return;
      lastPost = now;
      control.post({ type: 'progress', document: index, bytesDone, ...(bytesTotal !== undefined ? { bytesTotal } : {}) });
    };
    const reason = control.reason();
    if (reason) {
      results.push({ status: 'failure', code: abortCodes[reason], message: `the operation ${abortWords[reason]} before this document` });
      continue;
    }
    let parameters: Record<string, unknown>;
    try {
      parameters = await parametersFor(task, document);
    } catch (error) {
      const failure = error instanceof TaskFailure ? error : new TaskFailure('QUARK_ERR_PLUGIN_THREW', messageOf(error));
      results.push({ status: 'failure', code: failure.code, message: failure.message });
      continue;
    }
    let answer: OperationResult;
    try {
      answer = await handler(
        {
          config: task.config,
          parameters,
          signal: control.signal,
          runtime: task.runtime,
          log,
          progress,
          resources,
        },
        { properties: document.properties, body: bodyOf(document.body) },
      );
    } catch (error) {
      const aborted = control.reason();
      results.push(aborted
        ? { status: 'failure', code: abortCodes[aborted], message: `the operation ${abortWords[aborted]}` }
        : { status: 'failure', code: 'QUARK_ERR_PLUGIN_THREW', message: `the operation threw: ${messageOf(error)}` });
      continue;
    }
    const aborted = control.reason();
    if (aborted && answer?.status === 'failure') answer = { ...answer, code: abortCodes[aborted], message: `the operation ${abortWords[aborted]}: ${answer.message}` };
    results.push(await toRef(answer, task, control.signal, progress));
  }
  return results;
}

/** Runs the connector's recover handler for one resource an operation left behind. */
async function recover(connector: Connector<unknown>, task: RecoverTask, control: Control, logs: WorkerLogRecord[]): Promise<unknown> {
  if (typeof connector.recover !== 'function') {
    throw new TaskFailure('QUARK_ERR_PLUGIN_MODULE_INVALID', `${task.entry} has no recover handler, yet an operation held a resource of kind "${task.resource.kind}"`);
  }
  try {
    await connector.recover({ ...task.resource }, { config: task.config, signal: control.signal, runtime: task.runtime, log: loggerInto(logs) });
  } catch (error) {
    const reason = control.reason();
    if (reason) throw new TaskFailure(abortCodes[reason], `recovering the resource ${abortWords[reason]}`);
    throw new TaskFailure('QUARK_ERR_RESOURCE_RECOVERY_FAILED', `recover threw: ${messageOf(error)}`);
  }
  return { released: task.resource.id };
}

async function toRef(answer: OperationResult, task: OperationTask, signal: AbortSignal, progress: (bytesDone: number, bytesTotal?: number) => void): Promise<OperationResultRef> {
  if (answer === null || typeof answer !== 'object' || !['success', 'application-error', 'failure'].includes(answer.status)) {
    return { status: 'failure', code: 'QUARK_ERR_PLUGIN_RESULT_INVALID', message: 'the operation returned something that is not a result (use result.success, result.applicationError or result.failure)' };
  }
  if (answer.status !== 'success') {
    return { status: answer.status, message: String(answer.message), ...(answer.code ? { code: String(answer.code) } : {}), ...('properties' in answer && answer.properties ? { properties: answer.properties } : {}) };
  }
  if (!Array.isArray(answer.documents)) return { status: 'failure', code: 'QUARK_ERR_PLUGIN_RESULT_INVALID', message: 'a success result needs a documents array' };
  const documents = [];
  try {
    for (const out of answer.documents) {
      const size = typeof out.size === 'number' ? out.size : isPositionalBody(out.body) ? out.body.size : undefined;
      const onBytes = out.body !== undefined && typeof out.body === 'object' && !Buffer.isBuffer(out.body) ? (done: number) => progress(done, size) : undefined;
      documents.push({ properties: stringProperties(out.properties ?? {}), body: await refOf(out.body, task.workDir, task.spillBytes, signal, onBytes) });
    }
  } catch (error) {
    return { status: 'failure', code: 'QUARK_ERR_PLUGIN_THREW', message: `reading the operation's output failed: ${messageOf(error)}` };
  }
  return { status: 'success', documents };
}

function stringProperties(properties: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(properties).filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => [k, String(v)]));
}

/** The same reasons as AbortSignal.timeout() and a plain abort(), so plugins can tell them apart. */
function abortError(reason: AbortReason): DOMException {
  return new DOMException(`quark: ${reason}`, reason === 'timeout' ? 'TimeoutError' : 'AbortError');
}

/**
 * A steps task's control (messages.ts stepsFlags): marks the start with this thread's clock,
 * and `poll` turns a stop the pool wrote into the signal. The steps poll before each
 * document: a port's abort message would wait for the event loop, which a chunk of
 * in-memory documents never yields to.
 */
function stepsControlOf(flags: SharedArrayBuffer): { signal: AbortSignal; poll(): void } {
  const { words, startedAt } = stepsFlagViews(flags);
  startedAt[0] = Date.now();
  Atomics.store(words, 1, 1);
  const controller = new AbortController();
  return {
    signal: controller.signal,
    poll() {
      const stop = Atomics.load(words, 0);
      if (stop !== 0 && !controller.signal.aborted) controller.abort(abortError(stopCodes[stop - 1]));
    },
  };
}

function controlOf(port: MessagePort): Control {
  const controller = new AbortController();
  let reason: AbortReason | undefined;
  const waiting = new Map<number, (answer: ResourceAnswer) => void>();
  let requests = 0;
  port.on('message', (event: MainEvent) => {
    if (event.type === 'resource') {
      waiting.get(event.request)?.(event);
      waiting.delete(event.request);
    } else if (event.type === 'abort' && !reason) {
      reason = event.reason;
      controller.abort(abortError(event.reason));
    }
  });
  return {
    signal: controller.signal,
    reason: () => reason,
    post: (event) => port.postMessage(event),
    ask: (request) =>
      new Promise<ResourceAnswer>((resolve) => {
        const number = ++requests;
        // postMessage throws (DataCloneError) for data that is not plain: the caller's rejection
        port.postMessage({ ...request, request: number } as WorkerEvent);
        waiting.set(number, resolve);
      }),
  };
}

function failureReply(error: unknown, logs: WorkerLogRecord[]): WorkerReply {
  if (error instanceof TaskFailure) return { ok: false, error: { code: error.code, message: error.message }, logs };
  if (error instanceof DOMException && error.name === 'DataCloneError') {
    return { ok: false, error: { code: 'QUARK_ERR_PLUGIN_RESULT_INVALID', message: `the plugin's result cannot be passed back: ${messageOf(error)}` }, logs };
  }
  // anything else is quark's own failure in the worker, not the plugin's
  return { ok: false, error: { code: 'QUARK_ERR_API_INTERNAL', message: `the runtime's worker failed: ${messageOf(error)}` }, logs };
}

/** A reply that tells the pool to retire this worker, when plugin code left it tainted. */
function withTaint(reply: WorkerReply, held: number): WorkerReply {
  const recycle = takeTaint(held);
  return recycle ? { ...reply, recycle } : reply;
}

/**
 * Pure steps: our own plain data, passed back without the defensive clone of a plugin's
 * result. The output bodies go back in buffers that move instead of being copied (a task
 * that came packed through the plugin host goes back packed: packed.ts; across a process
 * boundary its large bodies come and go in crossing files: crossing.ts). Pure steps run no
 * plugin code, so they leak no handle: not counted (≈ 50 µs a task).
 */
async function runStepsTask(posted: StepsTask & { flags: SharedArrayBuffer }): Promise<WorkerReply> {
  const { flags, ...task } = posted;
  const control = stepsControlOf(flags);
  const logs: WorkerLogRecord[] = [];
  try {
    const done = await crossedBack(task, await runSteps(await crossedIn(unpackTask(task)), evaluate, control.signal, control.poll));
    const { outcome, buffers } = task.packed ? packExits(done) : packOutcome(done);
    const reply: WorkerReply = { ok: true, value: outcome, logs };
    return move({ get [transferableSymbol]() { return buffers; }, get [valueSymbol]() { return reply; } } as never) as unknown as WorkerReply;
  } catch (error) {
    // a failed steps task is still checked for a late failure
    return withTaint(failureReply(error, logs), Infinity);
  }
}

export default async function run(posted: PostedTask): Promise<WorkerReply> {
  if ('flags' in posted) return runStepsTask(posted);
  const { control: port, limits, ...task } = posted;
  const control = controlOf(port);
  control.post({ type: 'started' });
  const logs: WorkerLogRecord[] = [];
  const held = heldResources();
  try {
    const stopWatching = watchLimits(limits, control.post);
    let value: unknown;
    try {
      const connector = await load(task.entry);
      if (task.kind === 'probe') value = probe(connector, task);
      else if (task.kind === 'test') value = await test(connector, task, control, logs);
      else if (task.kind === 'recover') value = await recover(connector, task, control, logs);
      else value = await operate(connector, task, control, logs);
    } finally {
      stopWatching();
    }
    // structuredClone rejects functions and the like: make that a result-shape error here
    // rather than a DataCloneError in piscina.
    return withTaint({ ok: true, value: structuredClone(value), logs }, held);
  } catch (error) {
    return withTaint(failureReply(error, logs), held);
  } finally {
    port.close();
  }
}
