/**
 * Worker-side hardening, installed once per worker before any plugin code is imported
 * (worker.ts). Plugin code cannot end or signal a process from here (`process.kill`,
 * `process.exit`, `process.abort`: each throws, so the plugin's task fails and nothing
 * else), cannot start worker threads of its own, and a late failure (an exception or a
 * rejection nobody handles, from a timer of an earlier task) no longer kills the worker
 * and the unrelated task it runs: it taints the worker, the reply of the task running then
 * (or of the next one) says so, and the pool retires the worker's pool.
 *
 * These are JavaScript guards in the plugin's own realm. In the default isolation mode they
 * stop mistakes, not an attacker (`process.binding` reaches the originals); in the plugin
 * host process, Node's permission model closes that door (README, "Security model").
 */
import { syncBuiltinESMExports } from 'node:module';
import workerThreads from 'node:worker_threads';
import { messageOf } from '../core/errors.js';

/** Thrown by a guarded call; plugins see it as an ordinary error. */
export class GuardError extends Error {
  constructor(what: string) {
    super(`plugin code cannot ${what} (refused by the runtime)`);
    this.name = 'QuarkGuardError';
  }
}

let taint: string | undefined;

function refuse(what: string): () => never {
  return () => {
    throw new GuardError(what);
  };
}

/** Replaces the process-ending calls and the Worker constructor with refusals. */
function guardProcess(): void {
  const proc = process as unknown as Record<string, unknown>;
  proc.kill = refuse('signal a process (process.kill)');
  proc.exit = refuse('end the process (process.exit)');
  proc.reallyExit = refuse('end the process (process.reallyExit)');
  proc.abort = refuse('abort the process (process.abort)');
  proc._kill = refuse('signal a process (process._kill)');
  const threads = workerThreads as unknown as Record<string, unknown>;
  threads.Worker = class RefusedWorker {
    constructor() {
      throw new GuardError('start worker threads');
    }
  };
  // `import { Worker } from 'node:worker_threads'` reads the ESM facade: bring it in line
  syncBuiltinESMExports();
}

/** A failure that escaped every plugin's handler taints this worker instead of ending it. */
function watchLateFailures(): void {
  const record = (kind: string) => (error: unknown) => {
    taint ??= `${kind}: ${messageOf(error)}`;
  };
  process.on('uncaughtException', record('an uncaught exception'));
  process.on('unhandledRejection', record('an unhandled rejection'));
}

export function installGuards(): void {
  watchLateFailures();
  guardProcess();
}

/** Resource kinds that keep a worker busy after its task: a timer, a child, a server. */
const leakKinds = new Set(['Timeout', 'Immediate', 'ChildProcess', 'TCPServerWrap', 'PipeServerWrap', 'UDPWrap', 'FSWatcher', 'StatWatcher', 'SignalWrap']);

/** How many resources of the leak kinds keep this worker's event loop alive. */
export function heldResources(): number {
  return process.getActiveResourcesInfo().filter((kind) => leakKinds.has(kind)).length;
}

/**
 * Why this worker must not run another task, if it must not: a late failure since the
 * last call, or more resources held than when the task began (`before`, from heldResources).
 */
export function takeTaint(before: number): string | undefined {
  const reason = taint;
  taint = undefined;
  if (reason) return reason;
  const after = heldResources();
  return after > before ? `a leaked handle (${after - before} timer, child or server left running after the task)` : undefined;
}
