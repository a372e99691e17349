import { boundedSteps } from './bounded-steps.js';
import type { WorkerTask } from './messages.js';
import type { PoolStats, WorkerPool } from './pool.js';

/**
 * Isolation "threads": plugin code in worker threads of the runtime (one connector per
 * worker), pure steps in the worker threads of a plugin host process. A pure step runs
 * expressions that whoever deploys a process writes, and one allocation past a worker's
 * heap limit (an array grown by copies) makes V8 abort the whole process that holds the
 * worker (nodejs/node#47224): in the host that ends only the host, its chunk fails with
 * QUARK_ERR_STEP_MEMORY_LIMIT and the next task starts a new host (README, "Security model").
 * A steps task that cannot grow past a small bound (bounded-steps.ts: bounded expressions
 * over small in-memory documents) runs in the runtime's own threads, in `local`: a pool of
 * its own, so that it waits for plugin tasks no more than it did in the host.
 */
export function createSplitPool(parts: { steps: WorkerPool; local: WorkerPool; plugins: WorkerPool }): WorkerPool {
  const all = [parts.steps, parts.local, parts.plugins];
  const poolFor = (task: WorkerTask) => (task.kind !== 'steps' ? parts.plugins : boundedSteps(task) ? parts.local : parts.steps);
  return {
    run: (task, options) => poolFor(task).run(task, options),
    ...(parts.steps.packsSteps ? { packsSteps: true } : {}),
    ...(parts.steps.stepsCrossProcess ? { stepsCrossProcess: true } : {}),
    stats: () => sumStats(all.map((pool) => pool.stats())),
    async close() {
      await Promise.all(all.map((pool) => pool.close()));
    },
  };
}

function sumStats(all: PoolStats[]): PoolStats {
  const sum = (pick: (s: PoolStats) => number) => all.reduce((total, s) => total + pick(s), 0);
  return {
    threads: sum((s) => s.threads),
    idleThreads: sum((s) => s.idleThreads),
    queueSize: sum((s) => s.queueSize),
    completed: sum((s) => s.completed),
    utilization: sum((s) => s.utilization) / all.length,
  };
}
