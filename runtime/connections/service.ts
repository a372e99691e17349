import { quarkError, describeProblems, type ErrorCode, type FieldProblem, type QuarkError } from '../core/errors.js';
import { newId, nowIso } from '../core/ids.js';
import { didYouMean } from '../core/suggest.js';
import type { Caller, AccessControl } from '../accounts/access.js';
import { quarantineView, type ConnectorRegistry, type LoadedConnector } from '../connectors/registry.js';
import { localFolders } from '../connectors/local-paths.js';
import type { LocalFolder } from '../engine/pool.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { deleteAt, getAt, setAt } from '../secrets/secret-fields.js';
import { isStoreConflict, StoreRaceError } from '../store/errors.js';
import type { ConnectionRecord, Store } from '../store/types.js';

type Config = Record<string, unknown>;

/** A connection as the API and CLI show it: secret fields only as set / not set. */
export interface ConnectionView {
  id: string;
  name: string;
  connector: string;
  config: Config;
  /** For each secret field (JSON pointer): whether a value is set. Never the value. */
  secrets: Record<string, boolean>;
  createdAt: string;
  updatedAt: string;
  revision: number;
  /**
   * Why the stored connection cannot run as saved (absent when nothing is wrong): a local
   * folder that today's rules refuse (saved before the rule), with its field's pointer.
   */
  problems?: ConnectionProblem[];
}

export interface ConnectionProblem {
  /** JSON pointer into the view, e.g. /config/folder. */
  path: string;
  code: ErrorCode;
  message: string;
}

export interface ConnectionInput {
  name: string;
  connector: string;
  config: Config;
}

export interface ConnectionUpdate {
  name?: string;
  /**
   * The whole non-secret configuration. Secret fields follow "Click to Set": a string
   * replaces the stored value, null clears it, leaving the field out keeps it.
   */
  config: Config;
}

export interface ConnectionService {
  list(caller: Caller): Promise<ConnectionView[]>;
  get(caller: Caller, ref: string): Promise<ConnectionView>;
  /** The name is unique by the store's constraint: a clash (even of two creates at once) is QUARK_ERR_CONNECTION_NAME_TAKEN. */
  create(caller: Caller, input: ConnectionInput): Promise<ConnectionView>;
  /** A change saved meanwhile by someone else: QUARK_ERR_CONNECTION_REVISION_CONFLICT; nothing is written. */
  update(caller: Caller, ref: string, update: ConnectionUpdate): Promise<ConnectionView>;
  delete(caller: Caller, ref: string): Promise<void>;
  /**
   * The configuration a test or an operation runs with: stored values, secrets decrypted,
   * optionally overlaid with unsaved changes (Click to Set rules), validated.
   */
  resolve(caller: Caller, input: { connection?: string; connector?: string; config?: Config }): Promise<{ connector: LoadedConnector; config: Config; record?: ConnectionRecord }>;
}

export function requireConnector(registry: ConnectorRegistry, id: string): LoadedConnector {
  const connector = registry.get(id);
  if (connector) return connector;
  const quarantined = registry.findQuarantined(id);
  if (quarantined) {
    // any account may ask: the reason names files relative to the plugin folder (the owner sees where it is in the connector list)
    const { reason } = quarantineView(quarantined, false);
    throw quarkError('QUARK_ERR_CONNECTOR_QUARANTINED', `connector "${id}" is quarantined: ${reason.message}`, { reason });
  }
  const known = registry.list().map((c) => c.id);
  throw quarkError('QUARK_ERR_CONNECTOR_NOT_FOUND', `no connector "${id}" is loaded on this runtime${didYouMean(id, known)}; quark connectors list shows the loaded ones`);
}

export interface ConnectionServiceDeps {
  store: Store;
  registry: ConnectorRegistry;
  box: SecretBox;
  access: AccessControl;
  /** Why the plugin host may not be given a configuration's local folders (isolation "process"), or undefined. */
  checkFolders?(folders: readonly LocalFolder[]): QuarkError | undefined;
  /** Folders a saved connection no longer names (changed or deleted): the plugin hosts granted them are retired. */
  releaseFolders?(folders: readonly LocalFolder[]): void;
}

/**
 * A stored connection's local folders that today's rules refuse (isolation "process"):
 * saved before the rule, such a connection fails each task until its folder is changed.
 */
export function folderProblems(folders: readonly LocalFolder[], checkFolders: ConnectionServiceDeps['checkFolders']): ConnectionProblem[] {
  if (!checkFolders) return [];
  return folders.flatMap((folder) => {
    const refusal = checkFolders([folder]);
    return refusal ? [{ path: `/config${folder.field}`, code: refusal.code, message: refusal.message }] : [];
  });
}

export function createConnectionService(deps: ConnectionServiceDeps): ConnectionService {
  const { store, registry, box, access } = deps;
  const aad = (connectionId: string, pointer: string) => `${connectionId}#${pointer}`;

  async function find(caller: Caller, ref: string): Promise<ConnectionRecord> {
    const record = (await store.connections.get(caller.account.id, ref)) ?? (await store.connections.findByName(caller.account.id, ref));
    if (!record) throw quarkError('QUARK_ERR_CONNECTION_NOT_FOUND', `no connection "${ref}" in your account`);
    return record;
  }

  function secretPointersOf(record: ConnectionRecord): string[] {
    return registry.get(record.connectorId)?.secretPointers ?? Object.keys(record.secrets);
  }

  function toView(record: ConnectionRecord): ConnectionView {
    const secrets: Record<string, boolean> = {};
    for (const pointer of secretPointersOf(record)) secrets[pointer] = record.secrets[pointer] !== undefined;
    const problems = folderProblems(foldersOf(record), deps.checkFolders);
    return {
      id: record.id,
      name: record.name,
      connector: record.connectorId,
      config: structuredClone(record.config),
      secrets,
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
      revision: record.revision,
      ...(problems.length > 0 ? { problems } : {}),
    };
  }

  function decryptAll(record: ConnectionRecord): Config {
    const full = structuredClone(record.config);
    for (const [pointer, sealed] of Object.entries(record.secrets)) setAt(full, pointer, box.decrypt(sealed, aad(record.id, pointer)));
    return full;
  }

  /** Applies Click to Set: `requested` holds new plain values; secrets come from `stored` unless replaced or cleared. */
  function merge(connector: LoadedConnector, requested: Config, stored: Config | undefined): Config {
    const full = structuredClone(requested);
    for (const pointer of connector.secretPointers) {
      const value = getAt(requested, pointer);
      if (value === null) deleteAt(full, pointer);
      else if (value === undefined && stored !== undefined) {
        const kept = getAt(stored, pointer);
        if (kept !== undefined) setAt(full, pointer, kept);
      }
    }
    return full;
  }

  function validate(connector: LoadedConnector, config: Config): void {
    const problems: FieldProblem[] = connector.validateConnection(config);
    if (problems.length > 0) {
      throw quarkError('QUARK_ERR_CONNECTION_INVALID', `the configuration is not valid for connector "${connector.id}": ${describeProblems(problems)}`, { problems });
    }
  }

  /** What is saved: valid, and with local folders the plugin host may be given. */
  function checkSaved(connector: LoadedConnector, config: Config): void {
    validate(connector, config);
    const refusal = deps.checkFolders?.(localFolders(connector.localPaths, config));
    if (refusal) throw refusal;
  }

  function seal(connector: LoadedConnector, id: string, full: Config): { config: Config; secrets: Record<string, string> } {
    const config = structuredClone(full);
    const secrets: Record<string, string> = {};
    for (const pointer of connector.secretPointers) {
      const value = getAt(full, pointer);
      if (value === undefined) continue;
      secrets[pointer] = box.encrypt(typeof value === 'string' ? value : JSON.stringify(value), aad(id, pointer));
      deleteAt(config, pointer);
    }
    return { config, secrets };
  }

  /** The local folders a stored connection names (its connector may be gone: none then). */
  function foldersOf(record: ConnectionRecord): LocalFolder[] {
    return localFolders(registry.get(record.connectorId)?.localPaths ?? [], record.config);
  }

  /** Tells the plugin hosts which folders `before` named that `after` (if any) does not. */
  function release(before: ConnectionRecord, after?: ConnectionRecord): void {
    const kept = new Set(after ? foldersOf(after).map((f) => `${f.write}:${f.path}`) : []);
    const gone = foldersOf(before).filter((f) => !kept.has(`${f.write}:${f.path}`));
    if (gone.length > 0) deps.releaseFolders?.(gone);
  }

  /** Runs a write; the store's refusals in the words of the API. */
  async function written<T>(name: string, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if (isStoreConflict(error, 'connection-name')) throw quarkError('QUARK_ERR_CONNECTION_NAME_TAKEN', `you already have a connection named "${name}"`, { problems: [{ path: '/name', message: 'is taken' }] }, error);
      if (error instanceof StoreRaceError) throw quarkError('QUARK_ERR_CONNECTION_REVISION_CONFLICT', `connection "${name}" was changed by someone else since it was read; read it again and retry`, undefined, error);
      throw error;
    }
  }

  return {
    async list(caller) {
      access.requireMember(caller, 'use connections');
      return (await store.connections.list(caller.account.id)).map(toView);
    },
    async get(caller, ref) {
      access.requireMember(caller, 'use connections');
      return toView(await find(caller, ref));
    },
    async create(caller, input) {
      access.requireMember(caller, 'create connections');
      const connector = requireConnector(registry, input.connector);
      const full = merge(connector, input.config, undefined);
      checkSaved(connector, full);
      const id = newId('conn');
      const now = nowIso();
      const record: ConnectionRecord = { id, accountId: caller.account.id, connectorId: connector.id, name: input.name, ...seal(connector, id, full), createdAt: now, updatedAt: now, revision: 1 };
      await written(input.name, () => store.connections.insert(record));
      return toView(record);
    },
    async update(caller, ref, update) {
      access.requireMember(caller, 'change connections');
      const current = await find(caller, ref);
      const connector = requireConnector(registry, current.connectorId);
      const full = merge(connector, update.config, decryptAll(current));
      checkSaved(connector, full);
      const name = update.name ?? current.name;
      const record: ConnectionRecord = { ...current, name, ...seal(connector, current.id, full), updatedAt: nowIso(), revision: current.revision + 1 };
      if (!(await written(name, () => store.connections.update(record, current.revision)))) {
        throw quarkError('QUARK_ERR_CONNECTION_NOT_FOUND', `connection "${ref}" was deleted meanwhile`);
      }
      release(current, record);
      return toView(record);
    },
    async delete(caller, ref) {
      access.requireMember(caller, 'delete connections');
      const record = await find(caller, ref);
      await store.connections.delete(caller.account.id, record.id);
      release(record);
    },
    async resolve(caller, input) {
      if (input.connection !== undefined) {
        const record = await find(caller, input.connection);
        if (input.connector !== undefined && input.connector !== record.connectorId) {
          throw quarkError('QUARK_ERR_CONNECTION_INVALID', `connection "${record.name}" is of connector "${record.connectorId}", not "${input.connector}"`, { problems: [{ path: '/connector', message: `must be "${record.connectorId}"` }] });
        }
        const connector = requireConnector(registry, record.connectorId);
        const stored = decryptAll(record);
        const config = input.config === undefined ? stored : merge(connector, input.config, stored);
        validate(connector, config);
        return { connector, config, record };
      }
      if (input.connector === undefined || input.config === undefined) {
        throw quarkError('QUARK_ERR_API_INVALID_REQUEST', 'give a saved connection, or a connector and a configuration', { problems: [{ path: '/connector', message: 'is required without a connection' }] });
      }
      const connector = requireConnector(registry, input.connector);
      const config = merge(connector, input.config, undefined);
      validate(connector, config);
      return { connector, config };
    },
  };
}
