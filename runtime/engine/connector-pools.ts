import { dirname } from 'node:path';
import { quarkError, messageOf } from '../core/errors.js';
import { createWorkerPool, type PoolStats, type RunOptions, type WorkerPool, type WorkerPoolOptions } from './pool.js';
import type { WorkerReply, WorkerTask } from './messages.js';

/**
 * One connector per worker: a piscina pool per plugin folder (and one for pure steps, which
 * run no plugin code), so no worker ever holds the code or the secrets of two connectors.
 * The total stays bounded: at most `threads` tasks run at once over all pools (the others
 * wait here, before their time limit starts), and pools left idle are closed (after
 * `idleMs`, or at once when more than `threads` pools are open). A reply that says its
 * worker is tainted (`recycle`: a late failure, a leaked handle) retires that connector's
 * pool: new tasks go to a fresh one, the old one is closed when its running tasks end.
 * A pool that only ran the loader's probe (the import check at start) is closed when the
 * probe ends: a connector nobody uses then holds no worker (the S3 SDK's ~45 MB).
 */
export interface ConnectorPoolsOptions extends WorkerPoolOptions {
  /** How long a connector's pool is kept with no task (default 60 s). */
  idleMs?: number;
  /** Builds one pool (tests; default createWorkerPool). */
  createPool?(options: WorkerPoolOptions): WorkerPool;
}

export interface ConnectorPools extends WorkerPool {
  /** The pools open now, by key (a plugin folder, or "steps"). */
  keys(): string[];
  /** How many pools were retired because a worker was tainted. */
  recycled(): number;
}

interface Entry {
  key: string;
  pool: WorkerPool;
  running: number;
  retired: boolean;
  idleTimer?: NodeJS.Timeout;
  lastUsed: number;
  /** Only the loader's probe ran here so far: closed as soon as it ends. */
  probedOnly: boolean;
}

/** Pure steps run no plugin code: they have a pool of their own. */
export const stepsKey = 'steps';

/**
 * The young generation of a pure-steps worker: V8's default (up to 48 MB per heap) let
 * each worker's garbage of parsed documents grow to that before a scavenge; 8 MB keeps
 * ~70 MB of RSS off two workers at no measured CPU cost (bench/RESULTS.md, "engine").
 */
export const stepsYoungGenerationMb = 8;

/** The pool a task runs in: its plugin's folder, or the steps pool. */
export function poolKey(task: WorkerTask): string {
  return task.kind === 'steps' ? stepsKey : dirname(task.entry);
}

/** A counter of free slots with a queue of waiters that a signal can take out. */
export function createSlots(total: number) {
  let free = total;
  const waiting: (() => void)[] = [];
  return {
    waiting: () => waiting.length,
    async take(signal: AbortSignal | undefined, what: string): Promise<void> {
      if (free > 0) {
        free--;
        return;
      }
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          waiting.splice(waiting.indexOf(grant), 1);
          reject(quarkError('QUARK_ERR_OPERATION_CANCELLED', `${what} was cancelled before it started`));
        };
        const grant = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        waiting.push(grant);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
    give(): void {
      const next = waiting.shift();
      if (next) next();
      else free++;
    },
  };
}

export function createConnectorPools(options: ConnectorPoolsOptions): ConnectorPools {
  const idleMs = options.idleMs ?? 60_000;
  const build = options.createPool ?? createWorkerPool;
  const slots = createSlots(options.threads);
  const entries = new Map<string, Entry>();
  const closing = new Set<Promise<void>>();
  let recycled = 0;
  let retiredCompleted = 0;

  function closeEntry(entry: Entry): void {
    clearTimeout(entry.idleTimer);
    if (entries.get(entry.key) === entry) entries.delete(entry.key);
    retiredCompleted += entry.pool.stats().completed;
    const closed = entry.pool.close().catch((error: unknown) => options.logger.warn({ reason: messageOf(error), pool: entry.key }, 'a connector pool could not be closed'));
    closing.add(closed);
    void closed.finally(() => closing.delete(closed));
  }

  /** More pools open than threads: the least recently used idle one goes. */
  function trim(): void {
    if (entries.size <= options.threads) return;
    const idle = [...entries.values()].filter((e) => e.running === 0).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const entry of idle.slice(0, entries.size - options.threads)) closeEntry(entry);
  }

  function entryFor(key: string): Entry {
    let entry = entries.get(key);
    if (!entry) {
      entry = { key, pool: build(key === stepsKey ? { ...options, youngGenerationMb: stepsYoungGenerationMb } : options), running: 0, retired: false, lastUsed: Date.now(), probedOnly: true };
      entries.set(key, entry);
    }
    clearTimeout(entry.idleTimer);
    return entry;
  }

  function retire(entry: Entry, reason: string): void {
    if (entry.retired) return;
    entry.retired = true;
    recycled++;
    if (entries.get(entry.key) === entry) entries.delete(entry.key);
    options.logger.warn({ pool: entry.key, reason }, "a worker was left tainted by plugin code; the connector's workers are replaced");
  }

  function settle(entry: Entry): void {
    entry.running--;
    entry.lastUsed = Date.now();
    if (entry.running > 0) return;
    if (entry.retired || entry.probedOnly) return closeEntry(entry);
    entry.idleTimer = setTimeout(() => closeEntry(entry), idleMs);
    entry.idleTimer.unref();
    trim();
  }

  async function run(task: WorkerTask, runOptions: RunOptions): Promise<WorkerReply> {
    await slots.take(runOptions.signal, runOptions.what);
    const entry = entryFor(poolKey(task));
    entry.running++;
    if (task.kind !== 'probe') entry.probedOnly = false;
    trim();
    try {
      const reply = await entry.pool.run(task, runOptions);
      if (reply.recycle) retire(entry, reply.recycle);
      return reply;
    } finally {
      settle(entry);
      slots.give();
    }
  }

  function stats(): PoolStats {
    const all = [...entries.values()].map((e) => e.pool.stats());
    const sum = (pick: (s: PoolStats) => number) => all.reduce((total, s) => total + pick(s), 0);
    return {
      threads: sum((s) => s.threads),
      idleThreads: sum((s) => s.idleThreads),
      queueSize: sum((s) => s.queueSize) + slots.waiting(),
      completed: sum((s) => s.completed) + retiredCompleted,
      utilization: all.length === 0 ? 0 : sum((s) => s.utilization) / all.length,
    };
  }

  return {
    run,
    stats,
    keys: () => [...entries.keys()],
    recycled: () => recycled,
    async close() {
      for (const entry of [...entries.values()]) closeEntry(entry);
      await Promise.all([...closing]);
    },
  };
}
