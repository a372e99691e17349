/**
 * Resources that operations hold outside the runtime (an S3 multipart upload) and must
 * release: each hold is a record in the store before the plugin uses the resource, and
 * its release removes it. What is left — by a crash, a kill, a worker terminated at its
 * time limit, or a release the plugin could not make (the store was unreachable) — is
 * handed back to the connector's `recover` handler, in a worker, with the connection's
 * current configuration: at every start, and in the background after the operation that
 * left it ended, retried with a growing delay until it succeeds.
 */
import { QuarkError, messageOf, quarkError, type ErrorCode, type PlainError } from '../core/errors.js';
import { newId, nowIso } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { WorkerPool } from '../engine/pool.js';
import type { ResourceAnswer, ResourceRequest } from '../engine/messages.js';
import { relayPluginLogs, scrubText, secretValues } from '../secrets/secret-fields.js';
import type { RuntimeSettings } from '../sdk/index.js';
import { resourceProblems } from '../sdk/operations.js';
import type { HeldResourceRecord, Store } from '../store/types.js';
import type { ConnectionService } from './service.js';
import { localFolders } from '../connectors/local-paths.js';
import type { LocalFolder } from '../engine/pool.js';

export interface RecoveryDeps {
  store: Store;
  connections: ConnectionService;
  pool: WorkerPool;
  logger: Logger;
  metrics: Metrics;
  runtime: RuntimeSettings;
  /** The time limit of one recover call. */
  timeoutMs: number;
  /** The delay before the first retry in this run (1 s); it doubles up to maxRetryDelayMs (5 min). */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
}

/** Whose resources an operation task holds: its saved connection. */
export interface HoldOwner {
  accountId: string;
  connectionId: string;
  connectorId: string;
  /** The connection's secret values, which a resource's data must not hold. */
  secrets: readonly string[];
}

/** What the recovery of one record came to, as the metric counts it. */
export type RecoveryOutcome = 'released' | 'failed' | 'kept' | 'dropped';

interface RecoveryState {
  deps: RecoveryDeps;
  log: Logger;
  /** Aborted by close(): recover calls in flight stop, no retry is armed. */
  stopping: AbortController;
  retries: Map<string, NodeJS.Timeout>;
  /** Failed attempts per record in this run, for the retry delay. */
  failures: Map<string, number>;
  running: Set<Promise<void>>;
}

export interface Recovery {
  /** The control-port handler of one operation task: `held` collects what it holds. */
  handlerFor(owner: HoldOwner | undefined, held: Set<string>): (request: ResourceRequest) => Promise<ResourceAnswer>;
  /** After the task ended: what it still holds is recovered in the background. */
  settle(held: ReadonlySet<string>): void;
  /** At start: recovers every record left by the previous run; returns how many there were. */
  recoverLeftBehind(): Promise<number>;
  /** Resolves once no recover call runs; nothing is retried afterwards. */
  close(): Promise<void>;
}

function refused(request: ResourceRequest, code: ErrorCode, message: string, details?: PlainError['details']): ResourceAnswer {
  return { type: 'resource', request: request.request, ok: false, error: { code, message, ...(details ? { details } : {}) } };
}

async function hold(state: RecoveryState, owner: HoldOwner | undefined, held: Set<string>, request: Extract<ResourceRequest, { type: 'hold' }>): Promise<ResourceAnswer> {
  if (!owner) return refused(request, 'QUARK_ERR_RESOURCE_NOT_RECORDED', 'this operation runs without a saved connection, so nothing could release the resource after a crash');
  const problems = resourceProblems({ kind: request.kind, data: request.data }, owner.secrets);
  if (problems.length > 0) {
    return refused(request, 'QUARK_ERR_RESOURCE_INVALID', `the resource cannot be recorded: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, { problems });
  }
  const record: HeldResourceRecord = { id: newId('res'), accountId: owner.accountId, connectionId: owner.connectionId, connectorId: owner.connectorId, kind: request.kind, data: request.data, createdAt: nowIso(), attempts: 0, lastError: null };
  try {
    await state.deps.store.resources.insert(record);
  } catch (error) {
    return refused(request, 'QUARK_ERR_RESOURCE_NOT_RECORDED', `the store could not record the resource: ${messageOf(error)}`);
  }
  held.add(record.id);
  state.log.debug({ resource: record.id, kind: record.kind, connector: owner.connectorId, connection: owner.connectionId }, 'resource held');
  return { type: 'resource', request: request.request, ok: true, id: record.id };
}

async function release(state: RecoveryState, held: Set<string>, request: Extract<ResourceRequest, { type: 'release' }>): Promise<ResourceAnswer> {
  if (!held.has(request.id)) return refused(request, 'QUARK_ERR_RESOURCE_INVALID', `the resource ${request.id} is not held by this operation`);
  try {
    await state.deps.store.resources.delete(request.id);
    held.delete(request.id);
    state.log.debug({ resource: request.id }, 'resource released');
  } catch (error) {
    // kept in `held`: recovered once the task ends, which is harmless for a released resource
    state.log.warn({ resource: request.id, err: messageOf(error) }, 'the record of a released resource could not be removed; recovery will release it again');
  }
  return { type: 'resource', request: request.request, ok: true, id: request.id };
}

function outcome(state: RecoveryState, record: HeldResourceRecord, result: RecoveryOutcome): void {
  state.deps.metrics.recoveredResources.inc({ connector: record.connectorId, outcome: result });
}

const describe = (record: HeldResourceRecord) => ({ resource: record.id, kind: record.kind, connector: record.connectorId, connection: record.connectionId, createdAt: record.createdAt });

/** The connection's current configuration, or why the record cannot be recovered now. */
async function configFor(state: RecoveryState, record: HeldResourceRecord): Promise<{ config: Record<string, unknown>; entry: string; secrets: readonly string[]; folders: LocalFolder[] } | { error: QuarkError }> {
  const account = await state.deps.store.accounts.get(record.accountId);
  if (!account) return { error: quarkError('QUARK_ERR_CONNECTION_NOT_FOUND', `the account ${record.accountId} of the connection is gone`) };
  try {
    const { connector, config } = await state.deps.connections.resolve({ account, tokenId: 'recovery' }, { connection: record.connectionId });
    if (connector.id !== record.connectorId) return { error: quarkError('QUARK_ERR_CONNECTION_NOT_FOUND', `the connection is now of connector "${connector.id}"`) };
    return { config, entry: connector.entry, secrets: secretValues(config, connector.secretPointers), folders: localFolders(connector.localPaths, config) };
  } catch (error) {
    if (error instanceof QuarkError) return { error };
    return { error: quarkError('QUARK_ERR_API_INTERNAL', messageOf(error), undefined, error) };
  }
}

/**
 * One attempt at a record. A deleted connection drops it (said loudly, with the data an
 * operator needs to release it by hand); a connector not loaded keeps it for a later start.
 */
async function attempt(state: RecoveryState, id: string): Promise<void> {
  const record = await state.deps.store.resources.get(id);
  if (!record || state.stopping.signal.aborted) return;
  const resolved = await configFor(state, record);
  if ('error' in resolved) {
    if (resolved.error.code === 'QUARK_ERR_CONNECTION_NOT_FOUND') {
      await state.deps.store.resources.delete(id);
      outcome(state, record, 'dropped');
      state.log.error({ ...describe(record), data: record.data, code: resolved.error.code }, `a resource left behind was dropped: its connection is gone (${resolved.error.message}); release it by hand`);
    } else {
      outcome(state, record, 'kept');
      state.log.warn({ ...describe(record), code: resolved.error.code }, `a resource left behind is kept for a later start: ${resolved.error.message}`);
    }
    return;
  }
  let failure: PlainError | undefined;
  try {
    const reply = await state.deps.pool.run(
      { kind: 'recover', entry: resolved.entry, config: resolved.config, runtime: state.deps.runtime, resource: { id, kind: record.kind, data: record.data, createdAt: record.createdAt, attempts: record.attempts } },
      { timeoutMs: state.deps.timeoutMs, graceMs: 30_000, what: `recovering resource ${id} (${record.kind}) of connector ${record.connectorId}`, signal: state.stopping.signal, folders: resolved.folders },
    );
    relayPluginLogs(state.log.child({ ...describe(record) }), reply.logs, resolved.secrets);
    if (!reply.ok) failure = reply.error;
  } catch (error) {
    if (state.stopping.signal.aborted) return;
    failure = error instanceof QuarkError ? error.toJSON() : { code: 'QUARK_ERR_RESOURCE_RECOVERY_FAILED', message: messageOf(error) };
  }
  if (failure === undefined) {
    await state.deps.store.resources.delete(id);
    state.failures.delete(id);
    outcome(state, record, 'released');
    state.log.info({ ...describe(record), attempts: record.attempts + 1 }, 'a resource left behind was released by its connector');
    return;
  }
  await failed(state, record, { ...failure, message: scrubText(failure.message, resolved.secrets) });
}

async function failed(state: RecoveryState, record: HeldResourceRecord, failure: PlainError): Promise<void> {
  await state.deps.store.resources.failed(record.id, `${failure.code}: ${failure.message}`);
  outcome(state, record, 'failed');
  const failures = (state.failures.get(record.id) ?? 0) + 1;
  state.failures.set(record.id, failures);
  const delayMs = Math.min(state.deps.maxRetryDelayMs ?? 300_000, (state.deps.retryDelayMs ?? 1000) * 2 ** (failures - 1));
  state.log.warn({ ...describe(record), attempts: record.attempts + 1, code: failure.code, retryInMs: delayMs }, `releasing a resource left behind failed: ${failure.message}`);
  if (state.stopping.signal.aborted) return;
  const timer = setTimeout(() => {
    state.retries.delete(record.id);
    track(state, record.id);
  }, delayMs);
  timer.unref();
  state.retries.set(record.id, timer);
}

/** Runs an attempt that nothing awaits: its promise is kept until it settles, for close(). */
function track(state: RecoveryState, id: string): void {
  const running: Promise<void> = attempt(state, id)
    .catch((error: unknown) => state.log.error({ resource: id, err: messageOf(error) }, 'recovering a resource failed unexpectedly'))
    .finally(() => state.running.delete(running));
  state.running.add(running);
}

export function createRecovery(deps: RecoveryDeps): Recovery {
  const state: RecoveryState = { deps, log: deps.logger.child({ scope: 'recovery' }), stopping: new AbortController(), retries: new Map(), failures: new Map(), running: new Set() };
  return {
    handlerFor: (owner, held) => (request) => (request.type === 'hold' ? hold(state, owner, held, request) : release(state, held, request)),
    settle(held) {
      for (const id of held) {
        state.log.warn({ resource: id }, 'an operation ended without releasing a resource it held; recovering it');
        track(state, id);
      }
    },
    async recoverLeftBehind() {
      const records = await deps.store.resources.list();
      if (records.length > 0) state.log.warn({ resources: records.map(describe) }, `recovering ${records.length} resource(s) left behind by the previous run`);
      for (const record of records) track(state, record.id);
      return records.length;
    },
    async close() {
      state.stopping.abort(quarkError('QUARK_ERR_API_SHUTTING_DOWN', 'the runtime is stopping'));
      for (const timer of state.retries.values()) clearTimeout(timer);
      state.retries.clear();
      await Promise.all([...state.running]);
    },
  };
}
