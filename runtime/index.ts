/**
 * createRuntime(): the composition root. It wires the parts and returns the facade that
 * the HTTP API and the CLI use; they never reach past it into the store, the pool or
 * plugins.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { messageOf, type FieldProblem, type QuarkError } from './core/errors.js';
import { nowIso } from './core/ids.js';
import { createLogger, type Logger } from './core/logger.js';
import { createMetrics, type Metrics } from './core/metrics.js';
import { builtInConnectorsDir, quarkVersion } from './core/paths.js';
import { createSchemaRegistry, type SchemaRegistry } from './schema/index.js';
import { openHome, lockHome, isolationOf, type RuntimeConfig, type HomePaths } from './home/index.js';
import { describeStore, openStore } from './store/open.js';
import { createSecretBox } from './secrets/secret-box.js';
import { redactPathsFor } from './secrets/secret-fields.js';
import { createAccessControl, type AccessControl, type Caller } from './accounts/access.js';
import { createWorkerPool, type WorkerPool } from './engine/pool.js';
import { createConnectorPools } from './engine/connector-pools.js';
import { createSplitPool } from './engine/split-pool.js';
import { createHostPool, folderRefusal } from './engine/host.js';
import type { LocalFolder } from './engine/pool.js';
import { checkPlugin, loadConnectors, type PluginLocation } from './connectors/loader.js';
import { quarantineView, type ConnectorRegistry, type LoadedConnector, type QuarantinedPlugin } from './connectors/registry.js';
import { createConnectionService, folderProblems, requireConnector, type ConnectionProblem, type ConnectionService, type ConnectionServiceDeps } from './connections/service.js';
import { localFolders } from './connectors/local-paths.js';
import { createTestConnection, type TestConnectionRequest, type TestConnectionResult } from './connections/test-connection.js';
import { createOperations } from './connections/operations.js';
import { createRecovery, type Recovery } from './connections/recovery.js';
import { RUNTIME_API_VERSION } from './sdk/index.js';
import { createWalker } from './engine/walker.js';
import { createDeployments, propertiesUnreadableMessage } from './processes/deployments.js';
import { createExecutions } from './processes/executions.js';
import { createScheduler, type Scheduler } from './processes/scheduler.js';
import { schemaIds } from './schema/index.js';
import type { Store, ScheduledFire, NodeRecord } from './store/types.js';
import { isStoreConflict } from './store/errors.js';
import type { ExecutionQueue } from './processes/queue.js';
import type { Molecule } from './cluster/index.js';

export type { Caller, RuntimeConfig, TestConnectionRequest, TestConnectionResult, Logger, Metrics };
export type { ConnectionView, ConnectionInput, ConnectionUpdate } from './connections/service.js';
export type { TokenView } from './accounts/access.js';
export type { OperationRequest, OperationRun, OperationInput, OperationProgress } from './connections/operations.js';
export type { OperationResultRef, DocumentRef, BodyRef } from './engine/messages.js';
export { defaultHome, defaultPort, homeExists, initHome, joinHome, type RuntimeKind } from './home/index.js';
export { createSchemaRegistry } from './schema/index.js';
export { StoreUnavailableError } from './store/errors.js';
export { describeStore } from './store/open.js';
export { createLogger } from './core/logger.js';
export { presentDocuments, type PresentedDocument } from './engine/present.js';
export type { DeploymentView, DeploymentSummary, DeploymentDetail } from './processes/deployments.js';
export type { ExecutionView, ExecutionRequest, StartOptions } from './processes/executions.js';
export type { OutputStream, StreamedDocument } from './processes/output-stream.js';
export type { ExecutionStatus, ExecutionTrigger, ScheduleRecord, CatchUpPolicy } from './store/types.js';
export type { LoadProblem } from './processes/scheduler.js';
export type { DeployedView } from './processes/deployments.js';
export type { ProcessDefinition } from './processes/definition.js';

export { quarkVersion };

export interface ConnectorView {
  id: string;
  name: string;
  version: string;
  description?: string;
  source: string;
  runtimeApi: string;
  testConnection: boolean;
  operations: { id: string; name: string; kind: string; description?: string }[];
  secretFields: string[];
}

export interface ConnectorDetail extends ConnectorView {
  connectionSchema: Record<string, unknown>;
  operationSchemas: Record<string, Record<string, unknown>>;
}

export interface RuntimeInfo {
  id: string;
  name: string;
  kind: string;
  version: string;
  runtimeApi: string;
  startedAt: string;
  uptimeSeconds: number;
  limits: RuntimeConfig['limits'];
  /** Where the records are: "sqlite (quark.db in the home)" or "postgres at host:port" (never the URL's credentials). */
  store: string;
  /** Present only for the owner account. */
  owner?: { id: string; name: string };
  /** Whether the caller may run Test Connection here, and why not. */
  testConnection: { allowed: boolean; reason?: string };
  /** The runtime's executions now, every account's: running, and waiting in the queue. */
  executions: { running: number; queued: number };
}

export interface CreateRuntimeOptions {
  home: string;
  logger?: Logger;
  /** Override the configured log level (tests run with debug to scan for secrets). */
  logLevel?: string;
}

/** Resources that operations of the previous run held and did not release are released in the background. */
async function recoverResources(recovery: Recovery, logger: Logger): Promise<void> {
  const left = await recovery.recoverLeftBehind();
  if (left === 0) logger.debug('no resource was left behind by the previous run');
}

function connectorView(c: LoadedConnector): ConnectorView {
  return {
    id: c.id,
    name: c.name,
    version: c.version,
    ...(c.description !== undefined ? { description: c.description } : {}),
    source: c.source,
    runtimeApi: c.runtimeApi,
    testConnection: c.testConnection,
    operations: c.operations.map(({ id, name, kind, description }) => ({ id, name, kind, ...(description !== undefined ? { description } : {}) })),
    secretFields: c.secretPointers,
  };
}

/** A `plugins.paths` entry that does not exist: a warning at start and in `connectors list`. */
export interface PluginPathWarning {
  /** JSON pointer into config.json. */
  path: string;
  message: string;
}

function missingPluginPaths(config: Readonly<RuntimeConfig>, configFile: string): PluginPathWarning[] {
  return (config.plugins?.paths ?? []).flatMap((dir, i) =>
    existsSync(dir) ? [] : [{ path: `/plugins/paths/${i}`, message: `${dir} does not exist: no plugins are loaded from it (fix plugins.paths in ${configFile})` }],
  );
}

interface LoadCheck {
  store: Store;
  registry: ConnectorRegistry;
  deployments: ReturnType<typeof createDeployments>;
  scheduler: Scheduler;
  /** Isolation "process": why the plugin host may not be given a folder. */
  checkFolders?: ConnectionServiceDeps['checkFolders'];
}

/** Active deployments whose stored definition cannot be read. */
async function unreadableDeployments(check: LoadCheck): Promise<{ account: string; process: string; message: string }[]> {
  const found: { account: string; process: string; message: string }[] = [];
  for (const p of await check.store.processes.list()) {
    if (p.activeVersion === null) continue;
    try {
      await check.deployments.active(p.accountId, p.processId);
    } catch (error) {
      found.push({ account: p.accountId, process: p.processId, message: messageOf(error) });
    }
  }
  return found;
}

/** Processes whose stored persisted properties cannot be read. */
async function unreadableProperties(check: LoadCheck): Promise<{ account: string; process: string }[]> {
  return (await check.store.processes.list()).filter((p) => p.propertiesUnreadable).map((p) => ({ account: p.accountId, process: p.processId }));
}

/** Saved connections whose connector is not loaded (removed, or quarantined). */
async function orphanConnections(check: LoadCheck): Promise<{ account: string; connection: string; name: string; connector: string }[]> {
  const found: { account: string; connection: string; name: string; connector: string }[] = [];
  for (const account of await check.store.accounts.list()) {
    for (const c of await check.store.connections.list(account.id)) {
      if (check.registry.get(c.connectorId) === undefined) found.push({ account: account.id, connection: c.id, name: c.name, connector: c.connectorId });
    }
  }
  return found;
}

/** Saved connections whose local folder today's rules refuse (saved before the rule): each of their tasks fails. */
async function refusedFolderConnections(check: LoadCheck): Promise<{ account: string; connection: string; name: string; problem: ConnectionProblem }[]> {
  const found: { account: string; connection: string; name: string; problem: ConnectionProblem }[] = [];
  if (!check.checkFolders) return found;
  for (const account of await check.store.accounts.list()) {
    for (const c of await check.store.connections.list(account.id)) {
      const folders = localFolders(check.registry.get(c.connectorId)?.localPaths ?? [], c.config);
      for (const problem of folderProblems(folders, check.checkFolders)) found.push({ account: account.id, connection: c.id, name: c.name, problem });
    }
  }
  return found;
}

/** Why a saved connection cannot run: its connector is not loaded (removed or quarantined). */
async function connectionProblem(store: Store, registry: ConnectorRegistry, accountId: string, ref: string): Promise<string | undefined> {
  const connection = (await store.connections.get(accountId, ref)) ?? (await store.connections.findByName(accountId, ref));
  if (!connection || registry.get(connection.connectorId)) return undefined;
  const quarantined = registry.quarantined().some((q) => q.id === connection.connectorId);
  return `connection "${connection.name}" uses connector "${connection.connectorId}", which is ${quarantined ? 'quarantined' : 'not loaded'}; its tests, operations and process steps fail until the connector is back`;
}

/**
 * A start never fails because of one bad stored record: what cannot be loaded is said
 * at error level here (schedules by the scheduler), shown by `deployments show`, and
 * counted by quark_load_problems; the rest of the runtime starts.
 */
async function reportLoadProblems(check: LoadCheck, logger: Logger, metrics: Metrics): Promise<void> {
  for (const d of await unreadableDeployments(check)) logger.error({ account: d.account, process: d.process, code: 'QUARK_ERR_PROCESS_UNREADABLE' }, d.message);
  for (const p of await unreadableProperties(check)) logger.error({ ...p, code: 'QUARK_ERR_PROCESS_PROPERTIES_UNREADABLE' }, propertiesUnreadableMessage(p.process));
  for (const c of await orphanConnections(check)) {
    logger.error({ ...c, code: 'QUARK_ERR_CONNECTOR_NOT_FOUND' }, (await connectionProblem(check.store, check.registry, c.account, c.connection))!);
  }
  for (const { problem, ...c } of await refusedFolderConnections(check)) {
    logger.error({ ...c, code: problem.code, path: problem.path }, `connection "${c.name}" was saved with a folder that is refused now; its tests and operations fail until it is changed: ${problem.message}`);
  }
  const connection = async () => (await orphanConnections(check)).length + new Set((await refusedFolderConnections(check)).map((c) => c.connection)).size;
  metrics.watchLoadProblems(async () => ({ schedule: check.scheduler.problemCount(), deployment: (await unreadableDeployments(check)).length + (await unreadableProperties(check)).length, connection: await connection() }));
}

/** What startup has opened so far, closed in reverse order when a later step throws. */
type Closers = (() => unknown)[];

async function closeAll(closers: Closers, logger: Logger): Promise<void> {
  for (const close of closers.reverse()) {
    try {
      await close();
    } catch (error) {
      logger.warn({ err: error }, 'a part opened at startup could not be closed');
    }
  }
}

type Home = ReturnType<typeof openHome>;

function emptyWorkFolder(work: string): void {
  mkdirSync(work, { recursive: true, mode: 0o700 });
  for (const entry of readdirSync(work)) if (entry !== 'queued') rmSync(join(work, entry), { recursive: true, force: true });
}

/**
 * The store and the worker pool, with the scratch folder of an earlier run emptied. A
 * PostgreSQL store that does not answer is waited for (openStore logs each retry).
 */
async function openParts(home: Home, bootLogger: Logger, metrics: Metrics, closers: Closers) {
  const { config, paths } = home;
  // scratch files of a previous run (killed or crashed) are of no use now; the input
  // files of queued executions (work/queued/) are kept: those executions run after the start
  emptyWorkFolder(paths.work);
  const store = await openStore(config.store, { file: paths.store, quarkVersion, logger: bootLogger });
  closers.push(() => store.close());
  const pool = createPluginPool(home, bootLogger);
  closers.push(() => pool.close());
  metrics.watchPool(pool);
  return { store, pool };
}

/**
 * Where plugin code and pure steps run (README, "Security model"): `threads`, plugin code
 * in worker threads of this process (one connector per worker) and pure steps in a plugin
 * host process, where a runaway expression that makes V8 abort ends only the host;
 * `threads-only`, both in worker threads of this process; `process`, both in a plugin host
 * process under Node's permission model, which may read the plugin folders, the work
 * folder and the connections' local folders but not the master key or the store.
 */
function createPluginPool(home: Home, logger: Logger): WorkerPool {
  const { config, paths } = home;
  const { workerThreads: threads, workerHeapMb: heapMb, workerExternalMb: externalMb, taskCpuMs: cpuMs } = config.limits;
  const limits = { threads, heapMb, limits: { externalMb, cpuMs }, logger };
  const { reads, protect } = hostRules(home);
  const mode = isolationOf(config);
  if (mode === 'threads-only') return createConnectorPools(limits);
  // pure steps read and write bodies in the work folder only
  // bounded steps chunks (engine/bounded-steps.ts) in the runtime's threads, with slots of their own as in the host
  if (mode === 'threads') return createSplitPool({ steps: createHostPool({ ...limits, reads: [], work: paths.work, protect }), local: createConnectorPools(limits), plugins: createConnectorPools(limits) });
  return createHostPool({ ...limits, reads, work: paths.work, protect });
}

/** What the plugin host may read (the plugin locations) and must never read (the master key, the store, the configuration). */
function hostRules(home: Home): { reads: string[]; protect: string[] } {
  const { paths } = home;
  return { reads: pluginLocations(home).map((location) => location.path), protect: [paths.masterKey, paths.store, paths.config] };
}

/** In isolation "process", a connection whose local folder the host may not be given is refused when it is saved. */
function folderCheck(home: Home): ((folders: readonly LocalFolder[]) => QuarkError | undefined) | undefined {
  if (isolationOf(home.config) !== 'process') return undefined;
  const rules = hostRules(home);
  return (folders) => folders.map((folder) => folderRefusal(folder, rules)).find((refusal) => refusal !== undefined);
}

function pluginLocations(home: Home): PluginLocation[] {
  return [
    { path: builtInConnectorsDir, source: 'built-in' },
    { path: home.paths.connectors, source: 'home' },
    ...(home.config.plugins?.paths ?? []).map((path) => ({ path, source: 'config' as const })),
  ];
}

type Pool = WorkerPool;

/**
 * A molecule node's cluster part, when config.json has a queue: imported only then, so an
 * atom loads neither BullMQ nor ioredis. Refuses the start when the node is not the
 * cluster's (QUARK_ERR_CLUSTER_*) or Redis is unsafe (QUARK_ERR_QUEUE_*).
 */
async function openMoleculeOf(home: Home, store: Store, logger: Logger, closers: Closers): Promise<Molecule | undefined> {
  const { config } = home;
  if (!config.queue) return undefined;
  const { openMolecule } = await import('./cluster/index.js');
  const molecule = await openMolecule({ config: config as typeof config & { queue: NonNullable<typeof config.queue> }, store, masterKey: home.masterKey, nodeId: home.nodeId, version: quarkVersion, logger });
  closers.push(() => molecule.close());
  logger.info({ node: home.nodeId }, 'molecule node: joined the cluster, dispatching through the queue');
  return molecule;
}

/** Connections, Test Connection, operations, deployments and executions over the parts. */
function createServices(home: Home, parts: { store: Store; pool: Pool; registry: ConnectorRegistry; schemas: SchemaRegistry; metrics: Metrics; logger: Logger; logLevel: string; queue?: ExecutionQueue }) {
  const { config, masterKey, paths } = home;
  const { store, pool, registry, schemas, metrics, logger } = parts;
  const access: AccessControl = createAccessControl({ store, kind: config.kind, ownerId: config.owner.id });
  const checkFolders = folderCheck(home);
  const releaseFolders = pool.revoke ? (folders: readonly LocalFolder[]) => void pool.revoke!(folders) : undefined;
  const connections: ConnectionService = createConnectionService({ store, registry, box: createSecretBox(masterKey), access, ...(checkFolders ? { checkFolders } : {}), ...(releaseFolders ? { releaseFolders } : {}) });
  const runtime = config.proxy ? { proxy: { host: config.proxy.host, port: config.proxy.port } } : {};
  const testConnection = createTestConnection({ access, connections, pool, schemas, metrics, logger, runtime, timeoutMs: config.limits.testConnectionTimeoutMs });
  const recovery = createRecovery({ store, connections, pool, logger, metrics, runtime, timeoutMs: config.limits.operationTimeoutMs });
  const operations = createOperations({
    access,
    connections,
    pool,
    logger,
    runtime,
    workRoot: paths.work,
    spillBytes: config.limits.spillBytes,
    timeoutMs: config.limits.operationTimeoutMs,
    recovery,
    ...(checkFolders ? { checkFolders } : {}),
  });
  const schedule: { scheduler?: Scheduler } = {};
  const deployments = createDeployments({
    store,
    access,
    validateSchema: schemas.validator(schemaIds.process),
    operation: async (caller, ref) => (await operations.prepare(caller, ref)).operation,
    onChange: async (accountId, processId) => schedule.scheduler?.refresh(accountId, processId),
    scheduleProblems: (accountId, processId) => schedule.scheduler?.problems(accountId, processId) ?? [],
    connectionProblem: (accountId, ref) => connectionProblem(store, registry, accountId, ref),
    maxNestingDepth: config.limits.maxNestingDepth,
  });
  const walker = createWalker({
    pool,
    threads: config.limits.workerThreads,
    spillBytes: config.limits.spillBytes,
    stepTimeoutMs: config.limits.stepTimeoutMs,
    maxNestingDepth: config.limits.maxNestingDepth,
  });
  const redact = redactPathsFor(registry.list().flatMap((c) => c.secretPointers));
  const executions = createExecutions({ store, access, deployments, operations, walker, metrics, logger, logLevel: parts.logLevel, redact, workRoot: paths.work, nodeId: home.nodeId, limits: config.limits, ...(parts.queue ? { queue: parts.queue } : {}) });
  return { access, connections, testConnection, recovery, operations, deployments, executions, schedule };
}

type Executions = ReturnType<typeof createExecutions>;

/**
 * A schedule fired: nothing it does may escape into croner's timer. Every node sharing the
 * store fires it; the one whose insert of the fire's execution wins runs it, the others
 * find the fire taken and do nothing.
 */
function fireSchedule(store: Store, executions: Executions, logger: Logger, accountId: string, processId: string, fire: ScheduledFire): void {
  const start = async () => {
    const account = await store.accounts.get(accountId);
    if (!account) return;
    await executions.start({ account, tokenId: 'schedule' }, { process: processId, trigger: 'schedule', schedule: fire });
  };
  start().catch((error: unknown) => {
    if (isStoreConflict(error, 'schedule-fire')) logger.debug({ process: processId, at: fire.at }, 'another node started this schedule fire');
    // refused (queue full, undeployed meanwhile) or a store failure: said loudly in the runtime log and in metrics
    else logger.error({ process: processId, at: fire.at, err: error }, 'a scheduled execution could not start');
  });
}

/** Recovery of what a killed runtime left, the purge, and the schedules armed. */
async function startBackground(store: Store, executions: Executions, recovery: Recovery, logger: Logger, closers: Closers, nodeId: string) {
  // executions a killed runtime left behind are accounted for before anything new starts
  const { aborted, queued } = await executions.recover();
  if (aborted.length > 0) logger.warn({ executions: aborted }, 'executions the previous stop interrupted while they ran were marked aborted');
  if (queued > 0) logger.info({ queued }, 'executions queued before the previous stop wait again and run');
  await recoverResources(recovery, logger);
  const purge = async () => {
    try {
      await executions.purge();
    } catch (error) {
      logger.error({ err: error }, 'purging old executions failed');
    }
  };
  await purge();
  const purgeTimer = setInterval(() => void purge(), 3_600_000);
  purgeTimer.unref();
  closers.push(() => clearInterval(purgeTimer));
  const scheduler = createScheduler({ store, logger, nodeId, fire: (accountId, processId, fire) => fireSchedule(store, executions, logger, accountId, processId, fire) });
  closers.push(() => scheduler.stop());
  await scheduler.start();
  return { scheduler, purgeTimer };
}

export async function createRuntime(options: CreateRuntimeOptions) {
  const schemas: SchemaRegistry = createSchemaRegistry();
  const home = openHome(options.home, schemas);
  const { config } = home;
  const bootLogger = options.logger ?? createLogger({ level: options.logLevel ?? config.log?.level ?? 'info' });
  const metrics = createMetrics();
  // one process per home, before anything in it is touched (work/, interrupted executions)
  const lock = lockHome(home.paths.home, 'start');
  const closers: Closers = [() => lock.release()];
  try {
    return await wire(home, { schemas, bootLogger, metrics, logLevel: options.logLevel ?? config.log?.level ?? 'info', closers, lock });
  } catch (error) {
    // whatever step threw, what the earlier ones opened is closed
    await closeAll(closers, bootLogger);
    throw error;
  }
}

interface Boot {
  schemas: SchemaRegistry;
  bootLogger: Logger;
  metrics: Metrics;
  logLevel: string;
  closers: Closers;
  lock: ReturnType<typeof lockHome>;
}

/** Every step of startup after the home is open, and the facade over what it made. */
async function wire(home: Home, boot: Boot) {
  const { config, paths } = home;
  const { schemas, bootLogger, metrics, closers } = boot;
  const { store, pool } = await openParts(home, bootLogger, metrics, closers);
  const molecule = await openMoleculeOf(home, store, bootLogger, closers);
  const pluginWarnings = missingPluginPaths(config, paths.config);
  for (const w of pluginWarnings) bootLogger.warn({ path: w.path }, w.message);
  const registry = await loadConnectors({ locations: pluginLocations(home), schemas, pool, importTimeoutMs: config.limits.pluginImportTimeoutMs, threads: config.limits.workerThreads, logger: bootLogger });
  // Redaction paths come from the loaded schemas' secret marks, compiled once here.
  const redact = { paths: redactPathsFor(registry.list().flatMap((c) => c.secretPointers)), censor: '[redacted]' };
  const logger = bootLogger.child({ runtime: config.id }, { redact });
  const services = createServices(home, { store, pool, registry, schemas, metrics, logger, logLevel: boot.logLevel, ...(molecule ? { queue: molecule.queue } : {}) });
  const { access, connections, testConnection, recovery, operations, deployments, executions } = services;
  closers.push(() => recovery.close());
  metrics.watchExecutions(executions.counts);
  const { scheduler, purgeTimer } = await startBackground(store, executions, recovery, logger, closers, home.nodeId);
  services.schedule.scheduler = scheduler;
  molecule?.start(() => executions.counts().running, () => executions.applyRequestedCancels());
  const checkFolders = folderCheck(home);
  await reportLoadProblems({ store, registry, deployments, scheduler, ...(checkFolders ? { checkFolders } : {}) }, logger, metrics);
  const startedAt = new Date();
  let closed = false;
  let address: string | null = null;

  return {
    config,
    paths: paths as Readonly<HomePaths>,
    /** Configuration problems that did not stop the start (missing plugin paths). */
    warnings: pluginWarnings,
    logger,
    metrics,
    authenticate: access.authenticate,
    info(caller: Caller): RuntimeInfo {
      const owner = access.isOwner(caller);
      return {
        id: config.id,
        name: config.name,
        kind: config.kind,
        version: quarkVersion,
        runtimeApi: RUNTIME_API_VERSION,
        startedAt: startedAt.toISOString(),
        uptimeSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
        limits: config.limits,
        store: describeStore(config.store),
        ...(owner ? { owner: { ...config.owner } } : {}),
        testConnection: owner ? { allowed: true } : { allowed: false, reason: 'this runtime is not associated with your account' },
        executions: executions.counts(),
      };
    },
    whoami(caller: Caller) {
      const associated = access.isOwner(caller);
      return {
        account: { id: caller.account.id, name: caller.account.name, relation: caller.account.relation },
        runtime: { id: config.id, name: config.name, kind: config.kind },
        associated,
        testConnectionAllowed: associated,
      };
    },
    accounts: {
      list: access.listAccounts,
      add: access.addAccount,
    },
    tokens: {
      list: access.listTokens,
      create: access.createToken,
      revoke: access.revokeToken,
    },
    connectors: {
      list(caller: Caller): { loaded: ConnectorView[]; quarantined: QuarantinedPlugin[]; warnings: PluginPathWarning[] } {
        const owner = access.isOwner(caller);
        const quarantined = registry.quarantined().map((q) => quarantineView(q, owner));
        const warnings = owner ? pluginWarnings : pluginWarnings.map(({ path }) => ({ path, message: 'a folder named in plugins.paths does not exist: no plugins are loaded from it' }));
        return { loaded: registry.list().map(connectorView), quarantined, warnings };
      },
      get(id: string): ConnectorDetail {
        const c = requireConnector(registry, id);
        return {
          ...connectorView(c),
          connectionSchema: c.connectionSchema,
          operationSchemas: Object.fromEntries(c.operations.map((o) => [o.id, o.parametersSchema])),
        };
      },
    },
    connections,
    /** Runs one connector operation over documents (what a process step does). */
    runOperation: operations.run,
    /** Test Connection; `authorize` applies the container rule alone, before anything else is read. */
    testConnection,
    deployments: {
      deploy: deployments.deploy,
      list: deployments.list,
      async get(caller: Caller, processId: string, version?: number) {
        return { ...(await deployments.get(caller, processId, version)), nextRuns: scheduler.next(caller.account.id, processId) };
      },
      rollback: deployments.rollback,
      undeploy: deployments.undeploy,
      setSchedules: deployments.setSchedules,
    },
    executions: {
      start: executions.start,
      get: executions.get,
      list: executions.list,
      cancel: executions.cancel,
      log: executions.log,
      subscribe: executions.subscribe,
      recordedSteps: executions.recordedSteps,
      stepDocuments: executions.stepDocuments,
    },
    /** Names the API's address in the home's holder file (runtime.pid) and, in a molecule, in its node row. */
    announce(url: string): void {
      address = url;
      boot.lock.announce(url);
      molecule?.announce(url);
    },
    /** The nodes of the runtime (owner only): a molecule's from PostgreSQL; an atom's one, as it is now. */
    async nodes(caller: Caller): Promise<NodeRecord[]> {
      access.requireOwner(caller, 'list the nodes of the runtime');
      if (molecule) return molecule.nodes();
      const now = nowIso();
      return [{ id: home.nodeId, address, version: quarkVersion, pid: process.pid, startedAt: startedAt.toISOString(), heartbeatAt: now, running: executions.counts().running, draining: false }];
    },
    /** False once closed, when the store is gone, or after a store write the executions cannot do without failed. */
    ready(): boolean {
      return !closed && store.healthy() && executions.failure() === undefined;
    },
    /**
     * ready(), after asking the store (a PostgreSQL that went away, or came back, is
     * noticed here), and not while a molecule node drains (load balancers stop sending it
     * work; its API still answers); why not, when not.
     */
    async checkReady(): Promise<Readiness> {
      if (closed) return notReady('the runtime is shut down');
      if (executions.draining()) return notReady(drainingReason);
      await store.ping().catch(() => undefined);
      if (store.healthy()) await executions.writeUnwritten();
      return readiness(closed, store.healthy(), executions.failure());
    },
    /**
     * A molecule node's graceful drain (SIGTERM, before the API closes): it claims nothing
     * more, its running executions finish within cluster.drainMs or are handed back; reads,
     * cancels and waits are still answered meanwhile. Resolves at once on one node.
     */
    drain: (): Promise<void> => executions.drain(),
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      clearInterval(purgeTimer);
      scheduler.stop();
      await executions.close();
      await molecule?.close();
      await recovery.close();
      await pool.close();
      await store.close();
      boot.lock.release();
    },
  };
}

export type Runtime = Awaited<ReturnType<typeof wire>>;

/** GET /readyz's answer: ready, or not and why. */
export type Readiness = { ready: true } | { ready: false; reason: string };

const notReady = (reason: string): Readiness => ({ ready: false, reason });

const drainingReason = 'this node is draining (it was sent SIGTERM): it takes no new executions and its running ones finish within cluster.drainMs; its API still answers';

/**
 * The runtime's readiness from its parts: open, its store answering, no store write the
 * executions needed failed. The reasons name no detail (the endpoint has no auth): the
 * runtime log has them.
 */
function readiness(closed: boolean, storeHealthy: boolean, failure: string | undefined): Readiness {
  if (closed) return notReady('the runtime is shut down');
  if (!storeHealthy) return notReady('the store cannot be reached');
  if (failure !== undefined) return notReady('a store write the executions needed failed (the runtime log says which)');
  return { ready: true };
}
export { toProblems } from './schema/index.js';
export { scaffoldConnector, connectorIdPattern, type ScaffoldOptions, type ScaffoldResult } from './connectors/scaffold.js';
import type { SpecProblem } from './sdk/testing/spec-rules.js';
export { lintConnector, formatProblems, CannotLintError, type SpecProblem, type LintResult } from './sdk/testing/spec-rules.js';

/**
 * One of the loader's problems as the spec rules show theirs: the file under `dir` as the
 * caller named it, the message without the file it repeats, the runtime's code at the end.
 */
function loaderProblem(dir: string, problem: FieldProblem, code: string): SpecProblem {
  const absolute = problem.file ?? resolve(dir);
  const file = join(dir, relative(resolve(dir), absolute));
  const message = problem.message.startsWith(`${absolute}: `) ? problem.message.slice(absolute.length + 2) : problem.message;
  return { file, path: problem.path, rule: 'loader', message: `${message} [${code}]` };
}

/**
 * The loader's verdict on one connector folder, for `quark connector validate`: the folder
 * is read, validated and version-gated as a runtime's loader does, and its module imported
 * in a worker thread by the loader's own probe. Each reason the runtime would quarantine it
 * becomes a problem with the rule `loader`; none when a runtime would load it.
 */
export async function probeConnectorFolder(dir: string): Promise<SpecProblem[]> {
  // a worker as a runtime with the documented defaults has: there is no home to read limits from
  const schemas = createSchemaRegistry();
  const limits = schemas.limitDefaults();
  const pool = createWorkerPool({ threads: 1, heapMb: limits.workerHeapMb!, logger: createLogger({ level: 'silent' }) });
  try {
    const reason = await checkPlugin(dir, { schemas, pool, importTimeoutMs: limits.pluginImportTimeoutMs! });
    if (reason === undefined) return [];
    const problems = reason.details?.problems ?? [];
    if (problems.length === 0) return [{ file: dir, path: '', rule: 'loader', message: `${reason.message} [${reason.code}]` }];
    return problems.map((p) => loaderProblem(dir, p, reason.code));
  } finally {
    await pool.close();
  }
}
