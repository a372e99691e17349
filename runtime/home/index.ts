import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { quarkError, messageOf, describeProblems } from '../core/errors.js';
import { newId, nowIso } from '../core/ids.js';
import { schemaIds, type SchemaRegistry } from '../schema/index.js';
import { createSecretBox, generateMasterKey, keyFingerprint } from '../secrets/secret-box.js';
import { openStore, type StoreConfig } from '../store/open.js';
import { StoreConflictError, StoreUnavailableError } from '../store/errors.js';
import { quarkVersion } from '../core/paths.js';
import { issueToken } from '../accounts/tokens.js';
import { lockHome, lockFileName, holderFileName } from './lock.js';

export { lockHome, type HomeLock } from './lock.js';

export type RuntimeKind = 'atom' | 'molecule' | 'cloud';

/**
 * Where plugin code and pure steps run (README, "Security model"): `threads`, plugin code in
 * worker threads of the runtime and pure steps in a plugin host process; `threads-only`,
 * both in worker threads of the runtime; `process`, both in a plugin host process under
 * Node's permission model.
 */
export type IsolationMode = 'threads' | 'threads-only' | 'process';

/**
 * The configured mode, else the kind's default: `process` for `cloud` (tenants keep their
 * own connections, and one tenant's connector must not reach another's secrets), `threads`
 * for `atom` and `molecule`.
 */
export function isolationOf(config: Pick<RuntimeConfig, 'isolation' | 'kind'>): IsolationMode {
  return config.isolation ?? (config.kind === 'cloud' ? 'process' : 'threads');
}

export interface RuntimeLimits {
  workerThreads: number;
  workerHeapMb: number;
  workerExternalMb: number;
  taskCpuMs: number;
  testConnectionTimeoutMs: number;
  pluginImportTimeoutMs: number;
  shutdownGraceMs: number;
  maxRunningExecutions: number;
  maxQueuedExecutions: number;
  executionTimeoutMs: number;
  purgeDays: number;
  operationTimeoutMs: number;
  spillBytes: number;
  stepTimeoutMs: number;
  maxNestingDepth: number;
  stepDataBodyBytes: number;
  stepDataDocuments: number;
}

/** <home>/config.json, as described by schemas/runtime-config.schema.json. */
export interface RuntimeConfig {
  id: string;
  name: string;
  kind: RuntimeKind;
  isolation?: IsolationMode;
  owner: { id: string; name: string };
  listen: { host: string; port: number; tls?: { cert: string; key: string }; insecure?: boolean };
  proxy?: { host: string; port: number };
  plugins?: { paths?: string[] };
  limits: RuntimeLimits;
  log?: { level?: string };
  /** Where the records are: the home's quark.db (default) or PostgreSQL. */
  store?: StoreConfig;
  /** A molecule's dispatch queue (BullMQ on Redis); absent on an atom, which then loads none of it. */
  queue?: QueueConfig;
  /** A molecule's timings (defaults filled by the schema). */
  cluster?: ClusterTimings;
}

export interface QueueConfig {
  kind: 'bullmq';
  url: string;
  prefix?: string;
}

export interface ClusterTimings {
  heartbeatMs: number;
  lockMs: number;
  stalledCheckMs: number;
  reconcileMs: number;
  /** A node whose heartbeat is older than this is lost: its running executions are accounted for (aborted, or retried). */
  nodeLostMs: number;
  /** SIGTERM: how long a draining node lets its running executions finish before it hands them back. */
  drainMs: number;
  /** At most this many executions run at once in the whole molecule (BullMQ global concurrency); absent: only each node's limits.maxRunningExecutions. */
  maxRunning?: number;
}

export interface HomePaths {
  home: string;
  config: string;
  masterKey: string;
  store: string;
  connectors: string;
  /** Scratch space: spilled bodies of operations and executions. */
  work: string;
  /** Held exclusively by the one process running on the home (lock.ts). */
  lock: string;
  /** Names that process: pid, start time, address. */
  holder: string;
  /** This node's id, made once (the owner of the executions it runs; stable across restarts). */
  nodeId: string;
}

export const defaultPort = 7420;

export function defaultHome(): string {
  return process.env.QUARK_HOME || join(homedir(), '.quark');
}

export function homePaths(home: string): HomePaths {
  const root = resolve(home);
  return {
    home: root,
    config: join(root, 'config.json'),
    masterKey: join(root, 'master.key'),
    store: join(root, 'quark.db'),
    connectors: join(root, 'connectors'),
    work: join(root, 'work'),
    lock: join(root, lockFileName),
    holder: join(root, holderFileName),
    nodeId: join(root, 'node-id'),
  };
}

/**
 * The node id kept in the home: made on first use (a home made by an older quark has
 * none yet), then the same on every start, so recovery finds the executions this node ran.
 */
export function nodeIdOf(paths: HomePaths): string {
  try {
    writeFileSync(paths.nodeId, newId('node') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw quarkError('QUARK_ERR_HOME_STORE_UNREADABLE', `cannot write the node id ${paths.nodeId}: ${messageOf(error)}`, undefined, error);
  }
  const id = readFileSync(paths.nodeId, 'utf8').trim();
  if (!/^node_[A-Za-z0-9_-]+$/.test(id)) throw quarkError('QUARK_ERR_CONFIG_INVALID', `${paths.nodeId} does not hold a node id (node_…); remove it to make a new one`, { problems: [{ path: '/', message: 'is not a node id', file: paths.nodeId }] });
  return id;
}

export function homeExists(home: string): boolean {
  return existsSync(homePaths(home).config);
}

export interface InitOptions {
  home: string;
  name?: string;
  kind?: RuntimeKind;
  ownerName?: string;
  host?: string;
  port?: number;
  proxy?: { host: string; port: number };
  /** `quark init --store postgres://…`; default: the home's quark.db. */
  store?: StoreConfig;
  /** `quark init --queue redis://…`: a molecule's queue (a molecule needs it and a PostgreSQL store). */
  queue?: QueueConfig;
}

/**
 * A queue makes a molecule a cluster of nodes: it needs the kind molecule and a shared
 * PostgreSQL store. A molecule without a queue is one node (everything in one process).
 */
function clusterProblems(kind: RuntimeKind, store: StoreConfig | undefined, queue: QueueConfig | undefined): { path: string; message: string }[] {
  if (!queue) return [];
  return [
    ...(kind === 'molecule' ? [] : [{ path: '/queue', message: `only a molecule has a queue; this runtime is a ${kind} (--kind molecule)` }]),
    ...(store?.kind === 'postgres' ? [] : [{ path: '/store', message: 'the nodes of a molecule share their records in PostgreSQL: give --store postgres://… with --queue' }]),
  ];
}

/** A node is lost only after it missed more than two heartbeats: a slow beat is not a death. */
function timingProblems(cluster: ClusterTimings | undefined): { path: string; message: string }[] {
  if (!cluster || cluster.nodeLostMs > 2 * cluster.heartbeatMs) return [];
  return [{ path: '/cluster/nodeLostMs', message: `must be more than twice cluster.heartbeatMs (${cluster.heartbeatMs} ms): a node is lost only after it missed more than two heartbeats` }];
}

/** The sealed queue configuration kept in the cluster row (its URL may hold a password); bound to the cluster id. */
const queueAad = (clusterId: string) => `cluster-queue:${clusterId}`;

/**
 * Creates a runtime home: config.json, an owner-only master key, the store with the
 * owner account, and one owner token, returned here and never again.
 */
export async function initHome(options: InitOptions, schemas: SchemaRegistry): Promise<{ config: RuntimeConfig; ownerToken: string; paths: HomePaths }> {
  const paths = homePaths(options.home);
  // a home in use is refused as such (naming its process), before saying it exists
  if (existsSync(paths.config)) refuseExisting(paths);
  const config: RuntimeConfig & { $schema: string } = {
    $schema: schemaIds.runtimeConfig,
    id: newId('rt'),
    name: options.name ?? 'quark',
    kind: options.kind ?? 'atom',
    owner: { id: newId('acc'), name: options.ownerName ?? 'owner' },
    listen: { host: options.host ?? '127.0.0.1', port: options.port ?? defaultPort },
    ...(options.proxy ? { proxy: options.proxy } : {}),
    plugins: { paths: [] },
    limits: {} as RuntimeLimits,
    log: { level: 'info' },
    ...(options.store ? { store: options.store } : {}),
    ...(options.queue ? { queue: options.queue, cluster: {} as ClusterTimings } : {}),
  };
  // fills the documented defaults of limits, and refuses bad values before anything is written
  const problems = [...schemas.validator(schemaIds.runtimeConfig)(config), ...clusterProblems(config.kind, config.store, config.queue)];
  if (problems.length > 0) {
    throw quarkError('QUARK_ERR_CONFIG_INVALID', `the runtime configuration is not valid: ${describeProblems(problems)}`, { problems });
  }

  mkdirSync(paths.home, { recursive: true, mode: 0o700 });
  chmodSync(paths.home, 0o700);
  const lock = lockHome(paths.home, 'init');
  try {
    if (existsSync(paths.config)) throw homeTaken(paths);
    return { config, ownerToken: await writeHome(paths, config), paths };
  } finally {
    lock.release();
  }
}

const homeTaken = (paths: HomePaths) => quarkError('QUARK_ERR_HOME_EXISTS', `${paths.home} already holds a runtime (config.json exists); choose another --home`);

function refuseExisting(paths: HomePaths): never {
  lockHome(paths.home, 'init').release();
  throw homeTaken(paths);
}

const describeStoreOf = (config: RuntimeConfig): string => (config.store?.kind === 'postgres' ? 'the PostgreSQL database' : 'quark.db');

/** The new home's store; a PostgreSQL that does not answer is an error at init, not waited for. */
async function openInitStore(paths: HomePaths, config: RuntimeConfig) {
  try {
    return await openStore(config.store, { file: paths.store, quarkVersion, wait: false });
  } catch (error) {
    if (error instanceof StoreUnavailableError) throw quarkError('QUARK_ERR_STORE_UNAVAILABLE', `${error.message}; start it, or check the URL given to --store`, undefined, error);
    throw error;
  }
}

/** Writes a new home's files (the caller holds its lock); returns the first owner token. */
async function writeHome(paths: HomePaths, config: RuntimeConfig): Promise<string> {
  mkdirSync(paths.connectors, { recursive: true, mode: 0o700 });
  writeFileSync(paths.masterKey, generateMasterKey().toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  const store = await openInitStore(paths, config);
  let ownerToken: string;
  try {
    ownerToken = await store.transaction(async (tx) => {
      await tx.accounts.insert({ id: config.owner.id, name: config.owner.name, relation: 'owner', createdAt: nowIso() });
      if (config.queue) await tx.cluster!.create(clusterRecord(config, readMasterKey(paths)));
      return (await issueToken(tx, config.owner.id, 'owner (created by init)')).token;
    });
  } catch (error) {
    if (error instanceof StoreConflictError) {
      throw quarkError('QUARK_ERR_ACCOUNT_EXISTS', `${describeStoreOf(config)} already holds the records of a runtime (an account named "${config.owner.name}"); give a new runtime an empty database`, undefined, error);
    }
    throw error;
  } finally {
    await store.close();
  }
  // written last: a home with config.json is a complete home
  writeFileSync(paths.config, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  return ownerToken;
}

/** The identity a molecule keeps in PostgreSQL: never the key, its fingerprint; the queue URL sealed with the key. */
function clusterRecord(config: RuntimeConfig, masterKey: Buffer) {
  const queue = createSecretBox(masterKey).encrypt(JSON.stringify(config.queue), queueAad(config.id));
  return { id: config.id, name: config.name, kind: config.kind, ownerId: config.owner.id, ownerName: config.owner.name, keyFingerprint: keyFingerprint(masterKey), queueSealed: queue, createdAt: nowIso() };
}

function readMasterKey(paths: HomePaths): Buffer {
  return Buffer.from(readFileSync(paths.masterKey, 'utf8').trim(), 'base64');
}

export interface JoinOptions {
  home: string;
  /** The molecule's PostgreSQL database. */
  storeUrl: string;
  /** A copy of the molecule's master.key (copied into the new home, mode 600). */
  keyFile: string;
  host?: string;
  port?: number;
}

/** The master key in a --key-file: a base64 32-byte key, or QUARK_ERR_MASTER_KEY_INVALID. */
function keyFromFile(file: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw quarkError('QUARK_ERR_MASTER_KEY_INVALID', `--key-file ${file} cannot be read: ${messageOf(error)}`, undefined, error);
  }
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== 32) throw quarkError('QUARK_ERR_MASTER_KEY_INVALID', `--key-file ${file} does not hold a 32-byte base64 key (a molecule's master.key)`);
  return key;
}

/**
 * `quark init --join postgres://… --key-file master.key`: a new node of an existing
 * molecule. Its config.json takes the cluster's identity and queue from PostgreSQL (the
 * queue sealed with the key), once the key's fingerprint matches; it has no token of its
 * own (the cluster's accounts and tokens are in PostgreSQL).
 */
export async function joinHome(options: JoinOptions, schemas: SchemaRegistry): Promise<{ config: RuntimeConfig; paths: HomePaths }> {
  const paths = homePaths(options.home);
  if (existsSync(paths.config)) refuseExisting(paths);
  const masterKey = keyFromFile(options.keyFile);
  const storeConfig: StoreConfig = { kind: 'postgres', url: options.storeUrl };
  const store = await openInitStore(paths, { store: storeConfig } as RuntimeConfig);
  let cluster;
  try {
    cluster = await store.cluster?.get();
  } finally {
    await store.close();
  }
  if (!cluster) throw quarkError('QUARK_ERR_CLUSTER_NOT_FOUND', 'that PostgreSQL database holds no molecule: create one with quark init --kind molecule --store … --queue …');
  if (cluster.keyFingerprint !== keyFingerprint(masterKey)) {
    throw quarkError('QUARK_ERR_CLUSTER_KEY_MISMATCH', `--key-file ${options.keyFile} is not the master key of molecule "${cluster.name}" (${cluster.id}): its fingerprint differs; copy the cluster's master.key`);
  }
  const queue = JSON.parse(createSecretBox(masterKey).decrypt(cluster.queueSealed, queueAad(cluster.id))) as QueueConfig;
  const config: RuntimeConfig & { $schema: string } = {
    $schema: schemaIds.runtimeConfig,
    id: cluster.id,
    name: cluster.name,
    kind: 'molecule',
    owner: { id: cluster.ownerId, name: cluster.ownerName },
    listen: { host: options.host ?? '127.0.0.1', port: options.port ?? defaultPort },
    plugins: { paths: [] },
    limits: {} as RuntimeLimits,
    log: { level: 'info' },
    store: storeConfig,
    queue,
    cluster: {} as ClusterTimings,
  };
  const problems = schemas.validator(schemaIds.runtimeConfig)(config);
  if (problems.length > 0) throw quarkError('QUARK_ERR_CONFIG_INVALID', `the runtime configuration is not valid: ${describeProblems(problems)}`, { problems });
  mkdirSync(paths.home, { recursive: true, mode: 0o700 });
  chmodSync(paths.home, 0o700);
  const lock = lockHome(paths.home, 'init');
  try {
    if (existsSync(paths.config)) throw homeTaken(paths);
    mkdirSync(paths.connectors, { recursive: true, mode: 0o700 });
    writeFileSync(paths.masterKey, masterKey.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
    writeFileSync(paths.config, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  } finally {
    lock.release();
  }
  return { config, paths };
}

function assertOwnerOnly(file: string): void {
  const mode = statSync(file).mode;
  if ((mode & 0o077) !== 0) {
    throw quarkError('QUARK_ERR_HOME_UNSAFE', `${file} is readable by other users (mode ${(mode & 0o777).toString(8)}); run chmod 600 ${file}`);
  }
}

/** Reads and validates a home. The configuration comes back frozen, defaults filled. */
export function openHome(home: string, schemas: SchemaRegistry): { config: Readonly<RuntimeConfig>; masterKey: Buffer; paths: HomePaths; nodeId: string } {
  const paths = homePaths(home);
  if (!existsSync(paths.config)) {
    throw quarkError('QUARK_ERR_HOME_NOT_FOUND', `no runtime at ${paths.home}: run quark init --home ${paths.home}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(paths.config, 'utf8'));
  } catch (error) {
    throw quarkError('QUARK_ERR_CONFIG_INVALID', `${paths.config} is not JSON: ${messageOf(error)}`, { problems: [{ file: paths.config, path: '', message: messageOf(error) }] }, error);
  }
  // a molecule's timings get their documented defaults even when config.json has none
  if (raw !== null && typeof raw === 'object' && 'queue' in raw && !('cluster' in raw)) (raw as Record<string, unknown>).cluster = {};
  const problems = schemas.validator(schemaIds.runtimeConfig)(raw).map((p) => ({ ...p, file: paths.config }));
  if (problems.length > 0) {
    throw quarkError('QUARK_ERR_CONFIG_INVALID', `${paths.config} is not valid: ${describeProblems(problems)}`, { problems });
  }
  if (!existsSync(paths.masterKey)) throw quarkError('QUARK_ERR_MASTER_KEY_INVALID', `${paths.masterKey} is missing`);
  assertOwnerOnly(paths.masterKey);
  const masterKey = Buffer.from(readFileSync(paths.masterKey, 'utf8').trim(), 'base64');
  if (masterKey.length !== 32) throw quarkError('QUARK_ERR_MASTER_KEY_INVALID', `${paths.masterKey} does not hold a 32-byte base64 key`);
  const config = raw as RuntimeConfig;
  const cluster = [...clusterProblems(config.kind, config.store, config.queue), ...timingProblems(config.cluster)].map((p) => ({ ...p, file: paths.config }));
  if (cluster.length > 0) throw quarkError('QUARK_ERR_CONFIG_INVALID', `${paths.config} is not valid: ${describeProblems(cluster)}`, { problems: cluster });
  config.plugins = { paths: (config.plugins?.paths ?? []).map((p) => (isAbsolute(p) ? p : resolve(paths.home, p))) };
  return { config: deepFreeze(config), masterKey, paths, nodeId: nodeIdOf(paths) };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
