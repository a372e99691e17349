import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { quarkError, messageOf, type QuarkError } from '../core/errors.js';
import { stepsFlagsBytes, stepsFlagViews, stopCodes } from './messages.js';
import type { AbortReason, LimitEvent, TaskLimits, MainEvent, PostedTask, ResourceAnswer, ResourceRequest, StepsTask, WorkerEvent, WorkerTask, WorkerReply } from './messages.js';

export interface WorkerPoolOptions {
  threads: number;
  heapMb: number;
  /** V8's young generation of each worker (resourceLimits.maxYoungGenerationSizeMb); unset: V8's default. */
  youngGenerationMb?: number;
  /** Per plugin task: external memory (Buffers) of its worker and CPU time (limits.ts); none for pure steps. */
  limits?: TaskLimits;
  /** Where a worker that dies with no task of its own is reported. */
  logger: { warn(fields: object, message: string): void };
}

export interface PoolStats {
  threads: number;
  idleThreads: number;
  queueSize: number;
  completed: number;
  utilization: number;
}

/**
 * A folder on the runtime's machine that a task's connection names in a field marked
 * `x-local-path` (connectors/local-paths.ts): the plugin host of isolation "process" must
 * be allowed to read it (and write it, `write`) before the task runs there.
 */
export interface LocalFolder {
  path: string;
  write: boolean;
  /** The field's JSON pointer in the connection's configuration, e.g. `/folder`. */
  field: string;
}

export interface RunOptions {
  /** Counted from the moment a worker starts the task, not while it waits in the queue. */
  timeoutMs: number;
  /** How long a plugin gets to stop by itself after its signal fired, before its worker is terminated. */
  graceMs?: number;
  /** Names the work in error messages. */
  what: string;
  /** Cancels the task: the plugin's signal fires, then the worker is terminated after the grace. */
  signal?: AbortSignal;
  onProgress?(event: Extract<WorkerEvent, { type: 'progress' }>): void;
  /** Buffers the task holds that move to the worker instead of being copied (they are detached here). */
  transfer?: ArrayBuffer[];
  /**
   * Records or releases a resource the plugin holds (context.resources); without it, holds
   * are refused. It may answer later (the plugin host process asks the main process).
   */
  onResource?(request: ResourceRequest): ResourceAnswer | Promise<ResourceAnswer>;
  /** The connection's local folders: granted to the plugin host before the task runs there; worker threads need no grant. */
  folders?: LocalFolder[];
}

/**
 * The main side's answer to a resource request: a handler that throws (the store refused
 * the write) refuses the hold, so the plugin releases what it started at once, instead of
 * an exception escaping the port's listener.
 */
async function answerResource(onResource: NonNullable<RunOptions['onResource']>, request: ResourceRequest): Promise<ResourceAnswer> {
  try {
    return await onResource(request);
  } catch (error) {
    return { type: 'resource', request: request.request, ok: false, error: { code: 'QUARK_ERR_RESOURCE_NOT_RECORDED', message: `the runtime could not record the resource: ${messageOf(error)}` } };
  }
}

/**
 * Posts the answer when the store has written it (the worker matches it by its request
 * number); a port closed by then (the task ended) drops it.
 */
function relayResource(port: MessagePort, onResource: NonNullable<RunOptions['onResource']>, request: ResourceRequest): void {
  void answerResource(onResource, request).then((answer) => port.postMessage(answer satisfies MainEvent));
}

function refuseResource(request: ResourceRequest): ResourceAnswer {
  return { type: 'resource', request: request.request, ok: false, error: { code: 'QUARK_ERR_RESOURCE_NOT_RECORDED', message: 'this task cannot hold resources (only operations on a saved connection can)' } };
}

export interface WorkerPool {
  /**
   * Runs a task in a worker. At the time limit (or on cancel) the plugin's AbortSignal
   * fires; a plugin that does not stop within the grace has its worker terminated,
   * whatever it is doing, and the call fails with QUARK_ERR_PLUGIN_TIMEOUT (or
   * QUARK_ERR_OPERATION_CANCELLED). A worker that dies (heap exhausted, process.exit)
   * fails the call with QUARK_ERR_PLUGIN_WORKER_DIED. Never rejects with anything but a
   * QuarkError.
   */
  run(task: WorkerTask, options: RunOptions): Promise<WorkerReply>;
  /**
   * The pool packs the documents of steps tasks itself (the plugin host's channel,
   * packed.ts): the walker hands a chunk over as it is, not copied into a transfer buffer first.
   */
  packsSteps?: boolean;
  stats(): PoolStats;
  close(): Promise<void>;
  /**
   * The folders are no longer named by the connection that named them (changed or
   * deleted): a plugin host granted any of them is retired, and the promise settles once
   * those hosts have ended (after their tasks in flight). Worker threads hold no grant.
   */
  revoke?(folders: readonly LocalFolder[]): Promise<void>;
  /**
   * Its steps tasks run in another process (the plugin host): their large bodies in memory
   * cross in files (engine/crossing.ts), so the walker leaves them out of the transfer buffer.
   */
  stepsCrossProcess?: boolean;
}

const workerFile = new URL('./worker.js', import.meta.url).href;

function reportIdleDeath(options: WorkerPoolOptions, error: unknown): void {
  const code = (error as { code?: unknown } | null)?.code;
  const heap = code === 'ERR_WORKER_OUT_OF_MEMORY' ? { heapMb: options.heapMb } : {};
  options.logger.warn({ code, reason: messageOf(error), ...heap }, 'a worker died after its task had ended; it was replaced');
}

/** A progress listener that throws must not become an uncaught exception of the pool. */
function relayProgress(options: WorkerPoolOptions, what: string, event: Extract<WorkerEvent, { type: 'progress' }>, onProgress: RunOptions['onProgress']): void {
  try {
    onProgress?.(event);
  } catch (error) {
    options.logger.warn({ reason: messageOf(error), what }, 'a progress listener threw');
  }
}

/** How old the pool's utilization may be when its stats are read. */
export const utilizationMaxAgeMs = 1000;

/**
 * piscina's utilization, read at most once per `utilizationMaxAgeMs`: each read summarises
 * the pool's run-time histogram (its mean, deviation and percentiles, ≈ 0.4 ms), and the
 * plugin host sends its stats with every reply — once per execution of a small process
 * (bench/RESULTS.md, "latency12").
 */
export function createUtilization(piscina: Pick<Piscina, 'utilization'>, now: () => number = Date.now): () => number {
  let value = 0;
  let at = -Infinity;
  return () => {
    if (now() - at >= utilizationMaxAgeMs) {
      value = piscina.utilization;
      at = now();
    }
    return value;
  };
}

interface TaskState {
  stopped: AbortReason | undefined;
  started: boolean;
  over: LimitEvent | undefined;
}

/**
 * How a task is stopped: `ask` tells the worker (the plugin's signal fires), and past the
 * grace `hardStop` terminates the worker, whatever it is doing. `after(ms, remaining)`
 * stops it for the time limit once `remaining()` (default: none) is spent when the timer fires.
 */
function createStopper(graceMs: number, ask: (reason: AbortReason) => void) {
  const hardStop = new AbortController();
  const timers: NodeJS.Timeout[] = [];
  let stopped: AbortReason | undefined;
  let cancelSignal: AbortSignal | undefined;
  const stop = (reason: AbortReason) => {
    if (stopped) return;
    stopped = reason;
    ask(reason);
    timers.push(setTimeout(() => hardStop.abort(), graceMs));
  };
  const onCancel = () => stop('cancelled');
  function after(ms: number, remaining: () => number = () => 0): void {
    timers.push(setTimeout(() => {
      const left = remaining();
      if (left > 0) after(left, remaining);
      else stop('timeout');
    }, ms));
  }
  return {
    hardStop,
    stopped: () => stopped,
    after,
    /** Cancels on the caller's signal; one already aborted refuses the task. */
    listen(signal: AbortSignal | undefined, what: string): void {
      if (signal?.aborted) throw quarkError('QUARK_ERR_OPERATION_CANCELLED', `${what} was cancelled before it started`);
      cancelSignal = signal;
      signal?.addEventListener('abort', onCancel, { once: true });
    },
    end(): void {
      for (const timer of timers) clearTimeout(timer);
      cancelSignal?.removeEventListener('abort', onCancel);
    },
  };
}

export function createWorkerPool(options: WorkerPoolOptions): WorkerPool {
  const piscina = new Piscina<PostedTask, WorkerReply>({
    filename: workerFile,
    // one worker is always kept: piscina starts workers for queued tasks only when a task
    // is added, so with none kept, tasks queued behind a worker that was stopped (a time
    // limit) or died waited for the next call (start hung on its probes; requests stalled)
    minThreads: 1,
    maxThreads: options.threads,
    idleTimeout: 30_000,
    resourceLimits: { maxOldGenerationSizeMb: options.heapMb, ...(options.youngGenerationMb ? { maxYoungGenerationSizeMb: options.youngGenerationMb } : {}) },
  });
  // piscina emits 'error' when a worker dies with no task left to fail: one whose task was
  // already stopped (a timeout, then out of memory before it was terminated) or a plugin's
  // late throw. Unheard, that event would end the process; the task is failed already.
  piscina.on('error', (error: unknown) => reportIdleDeath(options, error));

  function convert(error: unknown, what: string, timeoutMs: number, stopped: AbortReason | undefined, started: boolean, over: LimitEvent | undefined): QuarkError {
    if (over) {
      return quarkError('QUARK_ERR_PLUGIN_RESOURCE_LIMIT', `${what} used ${over.used} ${over.unit} of ${over.resource}, over its limit of ${over.limit} ${over.unit}; its worker was stopped`, { resource: over.resource, used: over.used, limit: over.limit, unit: over.unit }, error);
    }
    if (stopped === 'timeout') {
      return quarkError('QUARK_ERR_PLUGIN_TIMEOUT', `${what} did not finish within ${timeoutMs} ms and was stopped`, { timeoutMs }, error);
    }
    if (stopped === 'cancelled') return quarkError('QUARK_ERR_OPERATION_CANCELLED', `${what} was cancelled and its worker stopped`, undefined, error);
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'ERR_WORKER_OUT_OF_MEMORY') {
      return quarkError('QUARK_ERR_PLUGIN_WORKER_DIED', `${what} ran out of memory (worker heap limit ${options.heapMb} MB); its worker was replaced`, { heapMb: options.heapMb, outOfMemory: true }, error);
    }
    // structured clone refused the task (too deep, a function): no worker ever saw it
    const name = (error as { name?: unknown } | null)?.name;
    if (!started && (name === 'RangeError' || name === 'DataCloneError')) {
      return quarkError('QUARK_ERR_PLUGIN_WORKER_DIED', `${what} could not be passed to a worker thread: ${messageOf(error)}`, { posted: false }, error);
    }
    return quarkError('QUARK_ERR_PLUGIN_WORKER_DIED', `${what} stopped its worker: ${messageOf(error)}`, undefined, error);
  }

  const utilization = createUtilization(piscina);

  /** Runs the posted task; a failure is converted with the task's state then (why it was stopped, whether a worker began it, a limit it passed). */
  async function post(posted: PostedTask, transferList: (ArrayBuffer | MessagePort)[], hardStop: AbortController, what: string, timeoutMs: number, state: () => TaskState): Promise<WorkerReply> {
    try {
      return await piscina.run(posted, { signal: hardStop.signal, transferList });
    } catch (error) {
      const { stopped, started, over } = state();
      throw convert(error, what, timeoutMs, stopped, started, over);
    }
  }

  /**
   * A plugin's task: a control port carries its start (the time limit counts from there),
   * progress, resource requests and limit events, and the stop to the plugin's signal.
   */
  async function runWithPort(task: Exclude<WorkerTask, StepsTask>, { timeoutMs, graceMs = 1000, what, signal, onProgress, transfer = [], onResource = refuseResource }: RunOptions): Promise<WorkerReply> {
    const { port1, port2 } = new MessageChannel();
    const stopper = createStopper(graceMs, (reason) => port1.postMessage({ type: 'abort', reason } satisfies MainEvent));
    let started = false;
    let over: LimitEvent | undefined;
    port1.on('message', (event: WorkerEvent) => {
      if (event.type === 'started') {
        started = true;
        stopper.after(timeoutMs);
      }
      else if (event.type === 'progress') relayProgress(options, what, event, onProgress);
      else if (event.type === 'limit') {
        over ??= event;
        stopper.hardStop.abort();
      }
      else relayResource(port1, onResource, event);
    });
    try {
      stopper.listen(signal, what);
      const posted: PostedTask = { ...task, control: port2, ...(options.limits ? { limits: options.limits } : {}) };
      return await post(posted, [port2, ...transfer], stopper.hardStop, what, timeoutMs, () => ({ stopped: stopper.stopped(), started, over }));
    } finally {
      stopper.end();
      port1.close();
    }
  }

  /**
   * A steps task: its flags (messages.ts) instead of a port — a MessageChannel, its transfer
   * and the worker's "started" message cost about 40 µs of CPU per task, and a small
   * execution is one steps task. The time limit still counts from the worker's start: the
   * timer set at posting is set again for what remains once the worker has started.
   */
  async function runFlagged(task: StepsTask, { timeoutMs, graceMs = 1000, what, signal, transfer = [] }: RunOptions): Promise<WorkerReply> {
    const flags = new SharedArrayBuffer(stepsFlagsBytes);
    const { words, startedAt } = stepsFlagViews(flags);
    const started = () => Atomics.load(words, 1) === 1;
    const stopper = createStopper(graceMs, (reason) => Atomics.store(words, 0, stopCodes.indexOf(reason) + 1));
    const remaining = () => (started() ? startedAt[0] + timeoutMs - Date.now() : timeoutMs);
    try {
      stopper.listen(signal, what);
      stopper.after(timeoutMs, remaining);
      return await post({ ...task, flags }, transfer, stopper.hardStop, what, timeoutMs, () => ({ stopped: stopper.stopped(), started: started(), over: undefined }));
    } finally {
      stopper.end();
    }
  }

  return {
    run(task, runOptions) {
      return task.kind === 'steps' ? runFlagged(task, runOptions) : runWithPort(task, runOptions);
    },
    stats() {
      return {
        threads: piscina.threads.length,
        idleThreads: piscina.idleThreads,
        queueSize: piscina.queueSize,
        completed: piscina.completed,
        utilization: utilization(),
      };
    },
    async close() {
      await piscina.close({ force: true });
    },
  };
}
