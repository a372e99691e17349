/**
 * Per-task resource limits, measured in the worker (worker.ts) while a plugin task runs:
 * the external memory of this worker's isolate (Buffers and ArrayBuffers, which the heap
 * limit does not count: `process.memoryUsage().arrayBuffers` is per isolate) and the CPU
 * time the task's thread spent (the active time of its event loop). Sampled every 50 ms
 * and at each check; over a limit, the worker tells the pool, which stops it at once and
 * fails the task with QUARK_ERR_PLUGIN_RESOURCE_LIMIT. A loop that never yields is not
 * sampled: the task's time limit stops it.
 */
import { performance } from 'node:perf_hooks';
import type { TaskLimits, WorkerEvent } from './messages.js';

const sampleMs = 50;

export function watchLimits(limits: TaskLimits | undefined, post: (event: WorkerEvent) => void): () => void {
  if (!limits) return () => undefined;
  const start = performance.eventLoopUtilization();
  let told = false;
  const check = () => {
    if (told) return;
    const externalMb = process.memoryUsage().arrayBuffers / (1024 * 1024);
    const cpuMs = performance.eventLoopUtilization(start).active;
    if (externalMb > limits.externalMb) {
      told = true;
      post({ type: 'limit', resource: 'external memory', used: Math.round(externalMb), limit: limits.externalMb, unit: 'MB' });
    } else if (cpuMs > limits.cpuMs) {
      told = true;
      post({ type: 'limit', resource: 'CPU time', used: Math.round(cpuMs), limit: limits.cpuMs, unit: 'ms' });
    }
  };
  const timer = setInterval(check, sampleMs);
  timer.unref();
  return () => {
    check();
    clearInterval(timer);
  };
}
