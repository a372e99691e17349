/**
 * A molecule node: loaded (lazily, by index.ts) only when config.json has a queue. At
 * start it proves its membership (the cluster row in PostgreSQL names this runtime id and
 * the fingerprint of this node's master key), checks Redis, registers itself in `nodes`,
 * then keeps its heartbeat and runs the reconciler (lost nodes' runs accounted for, see
 * node-loss.ts, then the jobs of queued rows re-added). An atom never loads this file, nor
 * BullMQ or ioredis.
 */
import { quarkError, messageOf } from '../core/errors.js';
import { nowIso } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import { keyFingerprint } from '../secrets/secret-box.js';
import type { ClusterStore, NodeRecord, Store } from '../store/types.js';
import type { ClusterTimings, QueueConfig, RuntimeConfig } from '../home/index.js';
import { checkRedis } from './redis.js';
import { createBullQueue, type BullQueue } from './bull-queue.js';

export interface MoleculeDeps {
  config: Readonly<RuntimeConfig> & { queue: QueueConfig };
  store: Store;
  masterKey: Buffer;
  nodeId: string;
  version: string;
  logger: Logger;
}

/** The cluster row must name this runtime, and this node's key must be the cluster's. */
async function verifyMembership(cluster: ClusterStore, config: Readonly<RuntimeConfig>, masterKey: Buffer): Promise<void> {
  const row = await cluster.get();
  if (!row) throw quarkError('QUARK_ERR_CLUSTER_NOT_FOUND', `the PostgreSQL database holds no molecule, but config.json names molecule ${config.id}: give the store of the cluster that quark init --kind molecule created`);
  if (row.id !== config.id) throw quarkError('QUARK_ERR_CLUSTER_NOT_FOUND', `the PostgreSQL database holds molecule ${row.id}, not ${config.id} of this home's config.json`);
  if (row.keyFingerprint !== keyFingerprint(masterKey)) {
    throw quarkError('QUARK_ERR_CLUSTER_KEY_MISMATCH', `this node's master.key is not the master key of molecule "${row.name}" (${row.id}): its fingerprint differs; copy the cluster's master.key into the home`);
  }
}

export interface Molecule {
  queue: BullQueue;
  /** Every node, as last reported. */
  nodes(): Promise<NodeRecord[]>;
  /** The API address of this node, once it listens (written with the next heartbeat). */
  announce(address: string): void;
  /**
   * Starts the heartbeat and reconciler timers; `running` counts this node's executions,
   * `tick` runs with each reconciler pass (the cancels kept in the store for this node's runs).
   */
  start(running: () => number, tick?: () => Promise<unknown>): void;
  close(): Promise<void>;
}

/**
 * Test hook: QUARK_TEST_FAULT=stop-heartbeat-when-running stops the heartbeat once the
 * node runs an execution — a node cut off from the others but alive, whose writes the
 * lease epoch must refuse once another node accounted for its runs.
 */
function stopsBeating(running: number, state: { beatsStopped: boolean }): boolean {
  if (process.env.QUARK_TEST_FAULT === 'stop-heartbeat-when-running' && running > 0) state.beatsStopped = true;
  return state.beatsStopped;
}

/** A timer whose work never overlaps itself and whose failures are logged, never thrown. */
function every(ms: number, what: string, logger: Logger, work: () => Promise<unknown>): () => void {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    work()
      .catch((error: unknown) => logger.warn({ err: messageOf(error) }, `${what} failed; it runs again in ${ms} ms`))
      .finally(() => {
        busy = false;
      });
  }, ms);
  timer.unref();
  return () => clearInterval(timer);
}

export async function openMolecule(deps: MoleculeDeps): Promise<Molecule> {
  const { config, store, nodeId, logger } = deps;
  const cluster = store.cluster;
  if (!cluster) throw quarkError('QUARK_ERR_CONFIG_INVALID', 'a molecule with a queue needs a PostgreSQL store', { problems: [{ path: '/store', message: 'must be a PostgreSQL store (kind "postgres") in a molecule with a queue' }] });
  await verifyMembership(cluster, config, deps.masterKey);
  await checkRedis(config.queue.url);
  const timings = config.cluster as ClusterTimings;
  const startedAt = nowIso();
  await cluster.upsertNode({ id: nodeId, address: null, version: deps.version, pid: process.pid, startedAt, heartbeatAt: startedAt, running: 0, draining: false });
  const state: { address: string | null; stops: (() => void)[]; lastBeat: number; beatsStopped: boolean } = { address: null, stops: [], lastBeat: Date.now(), beatsStopped: false };
  // a node whose heartbeat has not landed for nearly nodeLostMs may be found lost by now: it claims nothing
  const fresh = () => Date.now() - state.lastBeat < timings.nodeLostMs - timings.heartbeatMs;
  const queue = createBullQueue({ store, queue: config.queue, timings, logger, concurrency: config.limits.maxRunningExecutions, nodeId, fresh });
  await queue.applyCap();
  return {
    queue,
    nodes: () => cluster.nodes(),
    announce(address) {
      state.address = address;
    },
    start(running, tick) {
      const beat = async () => {
        if (stopsBeating(running(), state)) return;
        await cluster.heartbeat(nodeId, nowIso(), running(), queue.draining(), state.address);
        state.lastBeat = Date.now();
      };
      void beat().catch((error: unknown) => logger.warn({ err: messageOf(error) }, 'the first heartbeat failed'));
      state.stops.push(every(timings.heartbeatMs, 'the heartbeat', logger, beat));
      // lost nodes' runs first: a requeued one is then re-added with the queued ones
      state.stops.push(every(timings.reconcileMs, 'the reconciler', logger, async () => (await queue.sweep(), await queue.reconcile(), await tick?.())));
    },
    async close() {
      for (const stop of state.stops) stop();
      await queue.close?.();
    },
  };
}
