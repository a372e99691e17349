/**
 * The execution queue of a molecule (processes/queue.ts's interface, distributed): BullMQ
 * on Redis carries only execution ids; the record and its inputs are committed in
 * PostgreSQL first, then the job is added with jobId = executionId. A node's worker
 * takes a job, then claims the record in PostgreSQL (a conditional update queued →
 * in-process that raises the lease epoch); a job whose record is not queued any more (a
 * duplicate, a cancelled one) is acknowledged and nothing runs. The reconciler
 * (reconcile()) re-adds the jobs of rows committed queued but missing from Redis.
 */
import { Queue, Worker, type Job } from 'bullmq';
import { quarkError, messageOf } from '../core/errors.js';
import { nowIso } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { Store, ExecutionRecord } from '../store/types.js';
import type { DocumentRef } from '../engine/messages.js';
import { documentsOf, inlineInputs, type ExecutionQueue } from '../processes/queue.js';
import type { ClusterTimings, QueueConfig } from '../home/index.js';
import { redisConnection } from './redis.js';
import { accountOwn, sweepLostNodes, type Accounted, type NodeLossDeps } from './node-loss.js';

/** The BullMQ queue's name (its keys: `<prefix>:executions:…`). */
export const queueName = 'executions';

/**
 * Test hook: QUARK_TEST_FAULT=exit-after-commit ends the process right after an
 * execution's record is committed and before its job is added — the crash the
 * reconciler exists for.
 */
const exitAfterCommit = () => process.env.QUARK_TEST_FAULT === 'exit-after-commit';

export interface BullQueueDeps {
  store: Store;
  queue: QueueConfig;
  timings: ClusterTimings;
  logger: Logger;
  /** Jobs this node runs at once (its running slots). */
  concurrency: number;
  /** This node's id (the owner of the runs it claims). */
  nodeId: string;
  /** Whether this node's heartbeat is recent enough for it to claim (else a job is refused, for another node). */
  fresh?: () => boolean;
}

/**
 * cluster.maxRunning as BullMQ's global concurrency, kept in Redis for the queue (so for
 * every node's worker: a job becomes active only while fewer than that are active); none
 * configured: the cap is removed. Every node sets it at its start, so the last node to
 * start decides: the same value belongs in every node's config.json.
 */
async function applyCap(producer: Queue<JobData>, maxRunning: number | undefined): Promise<void> {
  if (maxRunning === undefined) await producer.removeGlobalConcurrency();
  else await producer.setGlobalConcurrency(maxRunning);
}

type JobData = { executionId: string };
type Runner = (id: string, lost: AbortSignal) => Promise<void>;

const jobOptions = (id: string) => ({ jobId: id, removeOnComplete: true, removeOnFail: true });

export interface BullQueue extends ExecutionQueue {
  /** Sets (or removes) the cluster-wide running cap in Redis: cluster.maxRunning. */
  applyCap(): Promise<void>;
  /** Re-adds the jobs of rows queued for longer than reconcileMs (idempotent: jobId = executionId); how many it saw queued. */
  reconcile(): Promise<number>;
  /** Accounts for the runs of lost nodes (heartbeat older than nodeLostMs): see node-loss.ts. */
  sweep(): Promise<Accounted[]>;
  /** Whether this node drains (stopped claiming, at shutdown). */
  draining(): boolean;
}

export function createBullQueue(deps: BullQueueDeps): BullQueue {
  const { store, logger, timings } = deps;
  const prefix = deps.queue.prefix ?? 'quark';
  const producer = new Queue<JobData>(queueName, { connection: redisConnection(deps.queue.url), prefix });
  producer.on('error', (error) => logger.warn({ err: error }, 'the queue (Redis) reported an error'));
  let worker: Worker<JobData> | undefined;
  /** Runs of this node, by execution id: aborted when BullMQ says their lock was lost. */
  const claims = new Map<string, AbortController>();
  const state = { queued: 0, closed: false, draining: false };

  /**
   * Adds the job; a Redis that does not answer within the lock time is left to the
   * reconciler (the row is committed), so a start never hangs on a Redis outage.
   */
  async function add(id: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(quarkError('QUARK_ERR_QUEUE_UNAVAILABLE', `Redis did not take the job within ${timings.lockMs} ms`)), timings.lockMs);
    });
    try {
      await Promise.race([producer.add('run', { executionId: id }, jobOptions(id)), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  const lossDeps = (): NodeLossDeps => ({ store, cluster: store.cluster!, nodeId: deps.nodeId, logger, requeued: add });

  async function process(job: Job<JobData>, runner: Runner): Promise<void> {
    const id = job.data.executionId;
    if (deps.fresh && !deps.fresh()) throw new Error(`this node's heartbeat has not reached PostgreSQL for nearly cluster.nodeLostMs (${timings.nodeLostMs} ms): it claims nothing; another node runs execution ${id}`);
    const lost = new AbortController();
    claims.set(id, lost);
    try {
      await runner(id, lost.signal);
    } finally {
      claims.delete(id);
    }
  }

  function attach(runner: Runner): void {
    worker = new Worker<JobData>(queueName, (job) => process(job, runner), {
      connection: redisConnection(deps.queue.url),
      prefix,
      concurrency: deps.concurrency,
      lockDuration: timings.lockMs,
      stalledInterval: timings.stalledCheckMs,
      // a stalled job goes back once (its node died); the claim in PostgreSQL decides what runs
      maxStalledCount: 1,
      removeOnComplete: { count: 0 },
      removeOnFail: { count: 0 },
    });
    worker.on('error', (error) => logger.warn({ err: error }, 'the queue worker (Redis) reported an error'));
    worker.on('failed', (job, error) => logger.warn({ execution: job?.data.executionId, err: error }, 'a queue job failed; the reconciler adds it again while its execution is queued'));
    // the lease in PostgreSQL, not the Redis lock, decides who runs it: a Redis restart or a
    // stall longer than the lock does not stop a run (another node's claim of its job finds
    // it in-process and runs nothing); a node that is lost is accounted for by the sweep
    worker.on('lockRenewalFailed', (ids) => logger.warn({ executions: ids.filter((id) => claims.has(id)) }, 'the queue lock of running executions was lost (Redis restarted or was unreachable); they go on: their lease in PostgreSQL still holds'));
  }

  return {
    distributed: true,
    capped: timings.maxRunning !== undefined,
    applyCap: () => applyCap(producer, timings.maxRunning),
    async enqueue(record: ExecutionRecord, documents: readonly DocumentRef[]) {
      // the record and its inputs are committed before the job exists: a worker never looks for a row that is not there
      await store.executions.insert(record, await inlineInputs(documents));
      state.queued += 1;
      if (exitAfterCommit()) globalThis.process.exit(70);
      try {
        await add(record.id);
      } catch (error) {
        // committed: the reconciler of any node adds the job; the caller's execution is not lost
        logger.warn({ err: error, execution: record.id }, 'the job of a queued execution could not be added to the queue now; the reconciler adds it');
      }
    },
    take: async () => undefined,
    documents: async (id, workDir) => documentsOf(await store.executions.inputs(id), workDir),
    // the inputs stay until the run ended: a retry on another node reads them again
    release: async () => undefined,
    finished: (id) => store.executions.dropInputs(id),
    async withdraw(id) {
      const withdrawn = await store.executions.withdraw(id, nowIso(), 'QUARK_ERR_EXECUTION_CANCELLED', 'cancelled while it waited');
      if (withdrawn) {
        state.queued = Math.max(0, state.queued - 1);
        // a job locked by a worker cannot be removed: that worker's claim finds the row discarded and runs nothing
        await producer.remove(id).catch(() => undefined);
      }
      return withdrawn;
    },
    size: () => state.queued,
    async restore() {
      return this.reconcile();
    },
    attach,
    interrupted: async (_owner, code, message) => accountOwn(lossDeps(), code, message),
    sweep: () => sweepLostNodes(lossDeps(), timings.nodeLostMs),
    draining: () => state.draining,
    async drain() {
      state.draining = true;
      await store.cluster?.setDraining(deps.nodeId, true);
      // no more jobs are taken; the ones running go on (the caller waits for them)
      await worker?.pause(true);
      return { graceMs: timings.drainMs };
    },
    async handBack(record) {
      const done = await accountOwn(lossDeps(), 'QUARK_ERR_EXECUTION_INTERRUPTED', 'this node shut down (its drain grace of ' + timings.drainMs + ' ms ended)', record.id);
      return done.some((a) => a.status === 'queued');
    },
    async reconcile() {
      const queued = await store.executions.queued(10_000);
      state.queued = queued.length;
      const before = Date.now() - timings.reconcileMs;
      for (const record of queued) {
        if (Date.parse(record.queuedAt) > before) continue;
        try {
          await add(record.id);
        } catch (error) {
          logger.warn({ err: error, execution: record.id }, 'the reconciler could not add a queued execution\'s job; it tries again');
          break;
        }
      }
      return queued.length;
    },
    async close() {
      if (state.closed) return;
      state.closed = true;
      try {
        await worker?.close();
      } catch (error) {
        logger.warn({ err: messageOf(error) }, 'the queue worker did not close cleanly');
      }
      await producer.close().catch(() => undefined);
    },
  };
}
