/**
 * Node loss: the in-process executions of a node that died (kill -9, a crash, a machine
 * gone) or whose heartbeat stopped reaching PostgreSQL for `cluster.nodeLostMs`. Any node's
 * reconciler finds them (sweep) and accounts for each in one conditional write on its
 * lease epoch, so exactly one node wins and the lost node, if it is alive after all, can
 * write nothing more of the run (its next write is fenced): aborted with
 * QUARK_ERR_EXECUTION_NODE_LOST, or, for a process with `options.retryOnNodeLoss`, queued
 * again as its next attempt with the inputs kept in `execution_inputs`. A node's own
 * restart accounts for the runs it left behind the same way (accountOwn).
 */
import { nowIso } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { ClusterStore, ExecutionRecord, ExecutionStatus, Store } from '../store/types.js';
import type { ProcessDefinition } from '../processes/definition.js';

export interface NodeLossDeps {
  store: Store;
  cluster: ClusterStore;
  /** This node: never lost to itself. */
  nodeId: string;
  logger: Logger;
  /** A requeued execution's job goes back on the queue. */
  requeued(id: string): Promise<void>;
}

export interface Accounted {
  id: string;
  status: ExecutionStatus;
  attempt: number;
}

/** How many lost runs one sweep accounts for (the next sweep goes on). */
const sweepBatch = 200;

/** Why a lost run is not run again; undefined when it is (the process opts in and its inputs are all stored). */
async function notRetried(store: Store, record: ExecutionRecord): Promise<string | undefined> {
  if (record.version === null) return 'a test-mode run is not run again';
  if (record.cancelRequestedAt) return `it was cancelled (at ${record.cancelRequestedAt}) while it ran`;
  const deployment = await store.processes.version(record.accountId, record.processId, record.version);
  const definition = deployment?.definition as ProcessDefinition | null | undefined;
  if (definition?.options?.retryOnNodeLoss !== true) return `process "${record.processId}" does not set options.retryOnNodeLoss`;
  const inputs = await store.executions.inputs(record.id);
  if (inputs.length !== record.documentsIn) return `its input documents are not all stored (${inputs.length} of ${record.documentsIn})`;
  return undefined;
}

/** A line in the execution's log, in the shape of its own lines. */
const logLine = (store: Store, id: string, level: number, msg: string) => store.executions.appendLog(id, JSON.stringify({ level, time: Date.now(), execution: id, msg }) + '\n');

/** Accounts for one lost run: requeued as its next attempt or abandoned; undefined when another node did first. */
async function account(deps: NodeLossDeps, record: ExecutionRecord, code: string, why: string): Promise<Accounted | undefined> {
  const { store, cluster, logger } = deps;
  const refusal = await notRetried(store, record);
  if (refusal === undefined) {
    const requeued = await cluster.requeue(record.id, record.leaseEpoch);
    if (!requeued) return undefined;
    const message = `attempt ${record.attempt} ${why}; it runs again from the beginning as attempt ${requeued.attempt} (options.retryOnNodeLoss)`;
    await logLine(store, record.id, 40, message);
    logger.warn({ execution: record.id, node: record.owner, attempt: requeued.attempt }, message);
    await deps.requeued(record.id).catch((error: unknown) => logger.warn({ err: error, execution: record.id }, 'the job of a requeued execution could not be added now; the reconciler adds it'));
    return { id: record.id, status: 'queued', attempt: requeued.attempt };
  }
  const message = `attempt ${record.attempt} ${why}; it is not run again: ${refusal}`;
  if (!(await cluster.abandon(record.id, record.leaseEpoch, nowIso(), code, message))) return undefined;
  await logLine(store, record.id, 50, `aborted: ${message}`);
  logger.warn({ execution: record.id, node: record.owner, code }, `an execution was aborted: ${message}`);
  return { id: record.id, status: 'aborted', attempt: record.attempt };
}

/** Every in-process execution of a node whose heartbeat is older than nodeLostMs, accounted for; what this node accounted for. */
export async function sweepLostNodes(deps: NodeLossDeps, nodeLostMs: number): Promise<Accounted[]> {
  const staleBefore = new Date(Date.now() - nodeLostMs).toISOString();
  const lost = await deps.cluster.lostRuns({ staleBefore, except: deps.nodeId, limit: sweepBatch });
  const accounted: Accounted[] = [];
  for (const record of lost) {
    const why = `was lost with node ${record.owner ?? '(none)'} (no heartbeat for more than ${nodeLostMs} ms: killed, crashed or cut off)`;
    const done = await account(deps, record, 'QUARK_ERR_EXECUTION_NODE_LOST', why);
    if (done) accounted.push(done);
  }
  return accounted;
}

/**
 * This node's in-process runs (only `id`, when given) accounted for as a lost node's,
 * with `code`: at its start, the runs it left when it stopped; at the end of its drain,
 * the ones still running (they are handed back).
 */
export async function accountOwn(deps: NodeLossDeps, code: string, message: string, id?: string): Promise<Accounted[]> {
  const left = await deps.cluster.lostRuns({ owner: deps.nodeId, limit: 100_000 });
  const accounted: Accounted[] = [];
  for (const record of left) {
    if (id !== undefined && record.id !== id) continue;
    const done = await account(deps, record, code, `was running when ${message}`);
    if (done) accounted.push(done);
  }
  return accounted;
}
