import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { quarkError, messageOf, type QuarkError } from '../core/errors.js';
import type { PostedTask, WorkerTask, WorkerReply } from './messages.js';

export interface WorkerPoolOptions {
  threads: number;
  heapMb: number;
}

export interface PoolStats {
  threads: number;
  idleThreads: number;
  queueSize: number;
  completed: number;
  utilization: number;
}

export interface WorkerPool {
  /**
   * Runs a task in a worker. The time limit counts from the moment a worker starts the
   * task (not while it waits in the queue) and is hard: past it the worker is terminated,
   * whatever the plugin is doing, and the call fails with QUARK_ERR_PLUGIN_TIMEOUT. A
   * worker that dies (heap exhausted, process.exit) fails the call with
   * QUARK_ERR_PLUGIN_WORKER_DIED. Never rejects with anything but a QuarkError.
   */
  run(task: WorkerTask, options: { timeoutMs: number; graceMs?: number; what: string }): Promise<WorkerReply>;
  stats(): PoolStats;
  close(): Promise<void>;
}

const workerFile = new URL('./worker.js', import.meta.url).href;

export function createWorkerPool(options: WorkerPoolOptions): WorkerPool {
  const piscina = new Piscina<PostedTask, WorkerReply>({
    filename: workerFile,
    minThreads: 0,
    maxThreads: options.threads,
    idleTimeout: 30_000,
    resourceLimits: { maxOldGenerationSizeMb: options.heapMb },
  });

  function convert(error: unknown, what: string, timeoutMs: number, timedOut: boolean): QuarkError {
    if (timedOut) {
      return quarkError('QUARK_ERR_PLUGIN_TIMEOUT', `${what} did not finish within ${timeoutMs} ms and was stopped`, { timeoutMs }, error);
    }
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'ERR_WORKER_OUT_OF_MEMORY') {
      return quarkError('QUARK_ERR_PLUGIN_WORKER_DIED', `${what} ran out of memory (worker heap limit ${options.heapMb} MB); its worker was replaced`, { heapMb: options.heapMb }, error);
    }
    return quarkError('QUARK_ERR_PLUGIN_WORKER_DIED', `${what} stopped its worker: ${messageOf(error)}`, undefined, error);
  }

  return {
    async run(task, { timeoutMs, graceMs = 0, what }) {
      const controller = new AbortController();
      let timedOut = false;
      let timer: NodeJS.Timeout | undefined;
      // the worker says when it starts the task; the clock starts then
      const { port1, port2 } = new MessageChannel();
      port1.once('message', () => {
        timer = setTimeout(() => {
          timedOut = true;
          controller.abort();
        }, timeoutMs + graceMs);
      });
      try {
        return await piscina.run({ ...task, started: port2 }, { signal: controller.signal, transferList: [port2] });
      } catch (error) {
        throw convert(error, what, timeoutMs, timedOut);
      } finally {
        clearTimeout(timer);
        port1.close();
      }
    },
    stats() {
      return {
        threads: piscina.threads.length,
        idleThreads: piscina.idleThreads,
        queueSize: piscina.queueSize,
        completed: piscina.completed,
        utilization: piscina.utilization,
      };
    },
    async close() {
      await piscina.close({ force: true });
    },
  };
}
