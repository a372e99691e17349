import Database from 'better-sqlite3';
import { quarkError, messageOf, isQuarkError } from '../core/errors.js';
import { ownerOnlyFile, ownerOnlySidecars } from '../core/files.js';
import { StoreConflictError, StoreRaceError, StoreUnavailableError, fencedWrite, type StoreConstraint } from './errors.js';
import { migrations, propertyPath, executionListParams, executionParams, inputParams, stepDocumentParams } from './sqlite-schema.js';
import { sqliteRows, storedDefinition, type CancelRow, type ConnectionRow, type DeploymentRow, type ExecutionRow, type HeldResourceRow, type InputRow, type ProcessRow, type StepDocumentRow, type TokenRow } from './rows.js';
import type { Store, StoreTx, AccountRecord, ConnectionRecord, ScheduleRecord, ExecutionStatus } from './types.js';

export { migrations } from './sqlite-schema.js';

const { toCancel, toConnection, toDeployment, toExecution, toHeldResource, toInput, toProcess, toStepDocument, toToken } = sqliteRows;

/** A section of the store with its methods made synchronous: what better-sqlite3 does underneath. */
type Sync<T> = { [K in keyof T]: T[K] extends (...args: infer A) => Promise<infer R> ? (...args: A) => R : never };
type SyncStore = { [S in keyof StoreTx]: Sync<StoreTx[S]> };

const accountColumns = 'id, name, relation, created_at AS createdAt';

function prepareStatements(db: Database.Database) {
  return {
    accountInsert: db.prepare('INSERT INTO accounts (id, name, relation, created_at) VALUES (@id, @name, @relation, @createdAt)'),
    accountGet: db.prepare(`SELECT ${accountColumns} FROM accounts WHERE id = ?`),
    accountByName: db.prepare(`SELECT ${accountColumns} FROM accounts WHERE name = ?`),
    accountList: db.prepare(`SELECT ${accountColumns} FROM accounts ORDER BY created_at, name`),
    tokenInsert: db.prepare('INSERT INTO tokens (id, account_id, name, hash, created_at, revoked_at) VALUES (@id, @accountId, @name, @hash, @createdAt, @revokedAt)'),
    tokenByHash: db.prepare('SELECT * FROM tokens WHERE hash = ?'),
    tokenGet: db.prepare('SELECT * FROM tokens WHERE id = ?'),
    tokenList: db.prepare('SELECT * FROM tokens ORDER BY created_at'),
    tokenListFor: db.prepare('SELECT * FROM tokens WHERE account_id = ? ORDER BY created_at'),
    tokenRevoke: db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
    connInsert: db.prepare(
      'INSERT INTO connections (id, account_id, connector_id, name, config, secrets, created_at, updated_at, revision) VALUES (@id, @accountId, @connectorId, @name, @config, @secrets, @createdAt, @updatedAt, @revision)',
    ),
    connUpdate: db.prepare(
      'UPDATE connections SET name = @name, config = @config, secrets = @secrets, updated_at = @updatedAt, revision = @revision WHERE id = @id AND account_id = @accountId AND revision = @expectedRevision',
    ),
    connGet: db.prepare('SELECT * FROM connections WHERE account_id = ? AND id = ?'),
    connByName: db.prepare('SELECT * FROM connections WHERE account_id = ? AND name = ?'),
    connList: db.prepare('SELECT * FROM connections WHERE account_id = ? ORDER BY name'),
    connDelete: db.prepare('DELETE FROM connections WHERE account_id = ? AND id = ?'),
    depInsert: db.prepare(
      'INSERT INTO deployments (account_id, process_id, version, name, definition, deployed_at, deployed_by, note) VALUES (@accountId, @processId, @version, @name, @definition, @deployedAt, @deployedBy, @note)',
    ),
    depLatest: db.prepare('SELECT MAX(version) AS v FROM deployments WHERE account_id = ? AND process_id = ?'),
    depGet: db.prepare('SELECT * FROM deployments WHERE account_id = ? AND process_id = ? AND version = ?'),
    depList: db.prepare('SELECT * FROM deployments WHERE account_id = ? AND process_id = ? ORDER BY version'),
    procActivate: db.prepare(
      `INSERT INTO processes (account_id, process_id, active_version, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (account_id, process_id) DO UPDATE SET active_version = excluded.active_version, updated_at = excluded.updated_at`,
    ),
    procGet: db.prepare('SELECT * FROM processes WHERE account_id = ? AND process_id = ?'),
    procList: db.prepare('SELECT * FROM processes WHERE account_id = ? ORDER BY process_id'),
    procListAll: db.prepare('SELECT * FROM processes ORDER BY account_id, process_id'),
    procSchedules: db.prepare('UPDATE processes SET schedules = ?, updated_at = ? WHERE account_id = ? AND process_id = ?'),
    fireList: db.prepare('SELECT cron, timezone, last_fired_at AS lastFiredAt FROM schedule_fires WHERE account_id = ? AND process_id = ?'),
    fireClear: db.prepare('DELETE FROM schedule_fires WHERE account_id = ? AND process_id = ?'),
    fireSet: db.prepare(
      `INSERT INTO schedule_fires (account_id, process_id, cron, timezone, last_fired_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (account_id, process_id, cron, timezone) DO UPDATE SET last_fired_at = excluded.last_fired_at`,
    ),
    // a fire recorded late (after a later one) does not move the time back
    fireRecord: db.prepare(
      `INSERT INTO schedule_fires (account_id, process_id, cron, timezone, last_fired_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (account_id, process_id, cron, timezone) DO UPDATE SET last_fired_at = MAX(last_fired_at, excluded.last_fired_at)`,
    ),
    // damaged stored properties (reported as propertiesUnreadable) start again from {} at the next merge
    procPropertySet: db.prepare("UPDATE processes SET properties = json_set(CASE WHEN json_valid(properties) AND json_type(properties) = 'object' THEN properties ELSE '{}' END, ?, json(?)) WHERE account_id = ? AND process_id = ?"),
    procPropertyRemove: db.prepare("UPDATE processes SET properties = json_remove(CASE WHEN json_valid(properties) AND json_type(properties) = 'object' THEN properties ELSE '{}' END, ?) WHERE account_id = ? AND process_id = ?"),
    execInsert: db.prepare(
      `INSERT INTO executions (id, account_id, process_id, version, trigger, status, queued_at, started_at, ended_at, error_code, error_message, steps, documents_in, documents_out, documents_failed, warnings, owner, attempt, schedule_key, scheduled_at, lease_epoch)
       VALUES (@id, @accountId, @processId, @version, @trigger, @status, @queuedAt, @startedAt, @endedAt, @errorCode, @errorMessage, @steps, @documentsIn, @documentsOut, @documentsFailed, @warnings, @owner, @attempt, @scheduleKey, @scheduledAt, @leaseEpoch)`,
    ),
    execUpdate: db.prepare(
      `UPDATE executions SET status = @status, started_at = @startedAt, ended_at = @endedAt, error_code = @errorCode, error_message = @errorMessage, steps = @steps,
       documents_in = @documentsIn, documents_out = @documentsOut, documents_failed = @documentsFailed, warnings = @warnings, owner = @owner, attempt = @attempt WHERE id = @id AND lease_epoch = @leaseEpoch`,
    ),
    execClaim: db.prepare("UPDATE executions SET status = 'in-process', owner = ?, started_at = ?, lease_epoch = lease_epoch + 1 WHERE id = ? AND status = 'queued' RETURNING *"),
    execCancelRequest: db.prepare(
      "UPDATE executions SET cancel_requested_at = COALESCE(cancel_requested_at, ?), cancel_requested_by = COALESCE(cancel_requested_by, ?) WHERE id = ? AND status = 'in-process'",
    ),
    execCancelsRequested: db.prepare(
      "SELECT id, account_id, cancel_requested_by, cancel_requested_at FROM executions WHERE owner = ? AND status = 'in-process' AND cancel_requested_at IS NOT NULL ORDER BY cancel_requested_at, id",
    ),
    execWithdraw: db.prepare("UPDATE executions SET status = 'discarded', ended_at = ?, error_code = ?, error_message = ? WHERE id = ? AND status = 'queued'"),
    execQueued: db.prepare("SELECT * FROM executions WHERE status = 'queued' ORDER BY queued_at, id LIMIT ?"),
    inputInsert: db.prepare('INSERT INTO execution_inputs (execution_id, seq, properties, body_kind, body, path, size) VALUES (@executionId, @seq, @properties, @bodyKind, @body, @path, @size)'),
    inputList: db.prepare('SELECT seq, properties, body_kind, body, path, size FROM execution_inputs WHERE execution_id = ? ORDER BY seq'),
    inputDrop: db.prepare('DELETE FROM execution_inputs WHERE execution_id = ?'),
    execGet: db.prepare('SELECT * FROM executions WHERE account_id = ? AND id = ?'),
    execList: db.prepare(
      `SELECT * FROM executions WHERE account_id = @accountId AND (@processId IS NULL OR process_id = @processId) AND (@status IS NULL OR status = @status)
       AND (@search IS NULL OR instr(lower(id), @search) > 0 OR instr(lower(process_id), @search) > 0)
       AND (@beforeAt IS NULL OR queued_at < @beforeAt OR (queued_at = @beforeAt AND id < @beforeId))
       ORDER BY queued_at DESC, id DESC LIMIT @limit`,
    ),
    // an in-process row without an owner was written by a quark before migration 6: this node's
    execInterrupt: db.prepare(
      "UPDATE executions SET status = 'aborted', ended_at = @at, error_code = @code, error_message = @message WHERE status = 'in-process' AND (owner = @owner OR owner IS NULL) RETURNING id",
    ),
    execPurgeable: db.prepare("SELECT id FROM executions WHERE ended_at IS NOT NULL AND ended_at < ? AND status NOT IN ('queued', 'in-process')"),
    execDelete: db.prepare('DELETE FROM executions WHERE id = ?'),
    errInsert: db.prepare('INSERT INTO execution_errors (execution_id, seq, step, code, message) VALUES (?, ?, ?, ?, ?)'),
    errList: db.prepare('SELECT step, code, message FROM execution_errors WHERE execution_id = ? ORDER BY seq LIMIT ?'),
    logAppend: db.prepare('INSERT INTO execution_logs (execution_id, lines) VALUES (?, ?)'),
    // a run's lines and errors: only while it still holds the record (its lease epoch)
    logAppendFenced: db.prepare('INSERT INTO execution_logs (execution_id, lines) SELECT ?, ? WHERE EXISTS (SELECT 1 FROM executions WHERE id = ? AND lease_epoch = ?)'),
    execAtEpoch: db.prepare('SELECT 1 FROM executions WHERE id = ? AND lease_epoch = ?'),
    logRead: db.prepare('SELECT lines FROM execution_logs WHERE execution_id = ? ORDER BY id'),
    resInsert: db.prepare(
      'INSERT INTO held_resources (id, account_id, connection_id, connector_id, kind, data, created_at, attempts, last_error) VALUES (@id, @accountId, @connectionId, @connectorId, @kind, @data, @createdAt, @attempts, @lastError)',
    ),
    resDelete: db.prepare('DELETE FROM held_resources WHERE id = ?'),
    resGet: db.prepare('SELECT * FROM held_resources WHERE id = ?'),
    resList: db.prepare('SELECT * FROM held_resources ORDER BY created_at, id'),
    ping: db.prepare('SELECT 1'),
    resFailed: db.prepare('UPDATE held_resources SET attempts = attempts + 1, last_error = ? WHERE id = ?'),
    stepInsert: db.prepare(
      'INSERT INTO execution_step_documents (execution_id, step, seq, properties, input_properties, body, size) VALUES (@executionId, @step, @seq, @properties, @input, @body, @size)',
    ),
    stepNext: db.prepare('SELECT COALESCE(MAX(seq), -1) + 1 AS next FROM execution_step_documents WHERE execution_id = ? AND step = ?'),
    stepPage: db.prepare('SELECT seq, step, properties, input_properties, body, size FROM execution_step_documents WHERE execution_id = ? AND step = ? AND seq > ? ORDER BY seq LIMIT ?'),
    defSave: db.prepare('INSERT INTO execution_definitions (execution_id, definition) VALUES (?, ?) ON CONFLICT (execution_id) DO UPDATE SET definition = excluded.definition'),
    defGet: db.prepare('SELECT definition FROM execution_definitions WHERE execution_id = ?'),
    stepCounts: db.prepare('SELECT step, COUNT(*) AS count FROM execution_step_documents WHERE execution_id = ? GROUP BY step ORDER BY step'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** A schedule that stays keeps its last fire; a new one counts from `at`; a removed one is forgotten. */
function keepFiresOf(q: Statements, accountId: string, processId: string, schedules: ScheduleRecord[], at: string): void {
  const before = new Map((q.fireList.all(accountId, processId) as { cron: string; timezone: string; lastFiredAt: string }[]).map((r) => [`${r.cron}\u0000${r.timezone}`, r.lastFiredAt]));
  q.fireClear.run(accountId, processId);
  for (const s of schedules) q.fireSet.run(accountId, processId, s.cron, s.timezone ?? '', before.get(`${s.cron}\u0000${s.timezone ?? ''}`) ?? at);
}

const serialise = (c: ConnectionRecord) => ({ ...c, config: JSON.stringify(c.config), secrets: JSON.stringify(c.secrets) });

function accountOps(q: Statements): SyncStore['accounts'] {
  return {
    insert: (account) => void q.accountInsert.run(account),
    get: (id) => q.accountGet.get(id) as AccountRecord | undefined,
    findByName: (name) => q.accountByName.get(name) as AccountRecord | undefined,
    list: () => q.accountList.all() as AccountRecord[],
  };
}

function tokenOps(q: Statements): SyncStore['tokens'] {
  return {
    insert: (token) => void q.tokenInsert.run(token),
    findByHash: (hash) => {
      const row = q.tokenByHash.get(hash) as TokenRow | undefined;
      return row && toToken(row);
    },
    get: (id) => {
      const row = q.tokenGet.get(id) as TokenRow | undefined;
      return row && toToken(row);
    },
    list: (accountId) => ((accountId === undefined ? q.tokenList.all() : q.tokenListFor.all(accountId)) as TokenRow[]).map(toToken),
    revoke: (id, at) => void q.tokenRevoke.run(at, id),
  };
}

function connectionOps(q: Statements): SyncStore['connections'] {
  return {
    insert: (connection) => void q.connInsert.run(serialise(connection)),
    update: (connection, expectedRevision) => {
      if (q.connUpdate.run({ ...serialise(connection), expectedRevision }).changes === 1) return true;
      const current = q.connGet.get(connection.accountId, connection.id) as ConnectionRow | undefined;
      if (current === undefined) return false;
      throw new StoreRaceError(`connection ${connection.id} is at revision ${current.revision}, not ${expectedRevision}`);
    },
    get: (accountId, id) => {
      const row = q.connGet.get(accountId, id) as ConnectionRow | undefined;
      return row && toConnection(row);
    },
    findByName: (accountId, name) => {
      const row = q.connByName.get(accountId, name) as ConnectionRow | undefined;
      return row && toConnection(row);
    },
    list: (accountId) => (q.connList.all(accountId) as ConnectionRow[]).map(toConnection),
    delete: (accountId, id) => q.connDelete.run(accountId, id).changes === 1,
  };
}

function processOps(db: Database.Database, q: Statements): SyncStore['processes'] {
  const latestVersion = (accountId: string, processId: string) => (q.depLatest.get(accountId, processId) as { v: number | null }).v ?? 0;
  return {
    // one writer at a time (SQLite): max + 1 inside the transaction cannot be taken by another
    deploy: (d) =>
      db.transaction(() => {
        const version = latestVersion(d.accountId, d.processId) + 1;
        q.depInsert.run({ ...d, version, definition: JSON.stringify(d.definition) });
        q.procActivate.run(d.accountId, d.processId, version, d.deployedAt);
        return version;
      })(),
    latestVersion,
    get: (accountId, processId) => {
      const row = q.procGet.get(accountId, processId) as ProcessRow | undefined;
      return row && toProcess(row);
    },
    list: (accountId) => ((accountId === undefined ? q.procListAll.all() : q.procList.all(accountId)) as ProcessRow[]).map(toProcess),
    version: (accountId, processId, version) => {
      const row = q.depGet.get(accountId, processId, version) as DeploymentRow | undefined;
      return row && toDeployment(row);
    },
    versions: (accountId, processId) => (q.depList.all(accountId, processId) as DeploymentRow[]).map(toDeployment),
    setActive: (accountId, processId, version, at) => void q.procActivate.run(accountId, processId, version, at),
    setSchedules: (accountId, processId, schedules, at) =>
      db.transaction(() => {
        q.procSchedules.run(JSON.stringify(schedules), at, accountId, processId);
        keepFiresOf(q, accountId, processId, schedules, at);
      })(),
    lastFires: (accountId, processId) =>
      (q.fireList.all(accountId, processId) as { cron: string; timezone: string; lastFiredAt: string }[]).map((r) => ({ cron: r.cron, ...(r.timezone ? { timezone: r.timezone } : {}), lastFiredAt: r.lastFiredAt })),
    recordFire: (accountId, processId, schedule, at) => void q.fireRecord.run(accountId, processId, schedule.cron, schedule.timezone ?? '', at),
    mergeProperties: (accountId, processId, updates) =>
      db.transaction(() => {
        for (const [name, value] of updates) {
          const path = propertyPath(name);
          if (value === undefined) q.procPropertyRemove.run(path, accountId, processId);
          else q.procPropertySet.run(path, JSON.stringify(value), accountId, processId);
        }
      })(),
  };
}

function executionOps(db: Database.Database, q: Statements): SyncStore['executions'] {
  return {
    // one statement needs no transaction of its own (in a group commit's batch, a savepoint and its release)
    insert: (e, inputs = []) => {
      if (inputs.length === 0) return void q.execInsert.run(executionParams(e));
      db.transaction(() => {
        q.execInsert.run(executionParams(e));
        for (const input of inputs) q.inputInsert.run(inputParams(e.id, input));
      })();
    },
    update: (e) => {
      if (q.execUpdate.run(executionParams(e)).changes === 0) throw fencedWrite(e.id, e.leaseEpoch);
    },
    claim: (id, owner, at) => {
      const row = q.execClaim.get(owner, at, id) as ExecutionRow | undefined;
      return row && toExecution(row);
    },
    withdraw: (id, at, code, message) => q.execWithdraw.run(at, code, message, id).changes === 1,
    requestCancel: (id, at, by) => q.execCancelRequest.run(at, by, id).changes === 1,
    cancelsRequested: (owner) => (q.execCancelsRequested.all(owner) as CancelRow[]).map(toCancel),
    get: (accountId, id) => {
      const row = q.execGet.get(accountId, id) as ExecutionRow | undefined;
      return row && toExecution(row);
    },
    list: (accountId, filter) => (q.execList.all(executionListParams(accountId, filter)) as ExecutionRow[]).map(toExecution),
    queued: (limit) => (q.execQueued.all(limit) as ExecutionRow[]).map(toExecution),
    inputs: (id) => (q.inputList.all(id) as InputRow[]).map(toInput),
    dropInputs: (id) => void q.inputDrop.run(id),
    interrupt: (owner, at, code, message) => (q.execInterrupt.all({ owner, at, code, message }) as { id: string }[]).map((r) => ({ id: r.id, status: 'aborted' as ExecutionStatus })),
    purge: (before) =>
      db.transaction(() => {
        const ids = (q.execPurgeable.all(before) as { id: string }[]).map((r) => r.id);
        for (const id of ids) q.execDelete.run(id);
        return ids;
      })(),
    insertErrors: (id, errors, leaseEpoch) =>
      db.transaction(() => {
        // checked and inserted in one transaction: no other write interleaves
        if (leaseEpoch !== undefined && errors.length > 0 && q.execAtEpoch.get(id, leaseEpoch) === undefined) throw fencedWrite(id, leaseEpoch);
        errors.forEach((e, seq) => q.errInsert.run(id, seq, e.step, e.code, e.message));
      })(),
    errors: (id, limit) => q.errList.all(id, limit) as { step: string; code: string; message: string }[],
    appendLog: (id, lines, leaseEpoch) => {
      if (leaseEpoch === undefined) return void q.logAppend.run(id, lines);
      if (q.logAppendFenced.run(id, lines, id, leaseEpoch).changes === 0) throw fencedWrite(id, leaseEpoch);
    },
    log: (id) => (q.logRead.all(id) as { lines: string }[]).map((row) => row.lines),
    saveDefinition: (id, definition) => void q.defSave.run(id, JSON.stringify(definition)),
    definition: (id) => {
      const row = q.defGet.get(id) as { definition: string } | undefined;
      return row && storedDefinition(row.definition);
    },
  };
}

function resourceOps(q: Statements): SyncStore['resources'] {
  return {
    insert: (r) => void q.resInsert.run({ ...r, data: JSON.stringify(r.data) }),
    delete: (id) => q.resDelete.run(id).changes === 1,
    get: (id) => {
      const row = q.resGet.get(id) as HeldResourceRow | undefined;
      return row && toHeldResource(row);
    },
    list: () => (q.resList.all() as HeldResourceRow[]).map(toHeldResource),
    failed: (id, error) => void q.resFailed.run(error, id),
  };
}

function stepDataOps(db: Database.Database, q: Statements): SyncStore['stepData'] {
  return {
    insert: (executionId, documents) =>
      db.transaction(() => {
        const next = new Map<string, number>();
        for (const d of documents) {
          const seq = next.get(d.step) ?? (q.stepNext.get(executionId, d.step) as { next: number }).next;
          next.set(d.step, seq + 1);
          q.stepInsert.run(stepDocumentParams(executionId, seq, d));
        }
      })(),
    list: (executionId, step, page) => (q.stepPage.all(executionId, step, page.after, page.limit) as StepDocumentRow[]).map(toStepDocument),
    steps: (executionId) => q.stepCounts.all(executionId) as { step: string; count: number }[],
  };
}

/** Which unique constraint an SQLite message names ("UNIQUE constraint failed: connections.account_id, connections.name"). */
function constraintOf(message: string): StoreConstraint {
  const columns = message.slice(message.indexOf(':') + 1).trim();
  if (columns === 'accounts.name') return 'account-name';
  if (columns === 'tokens.hash') return 'token-hash';
  if (columns === 'connections.account_id, connections.name') return 'connection-name';
  if (columns.startsWith('deployments.')) return 'deployment-version';
  if (columns.endsWith('executions.schedule_key')) return 'schedule-fire';
  return 'id';
}

const unavailableCodes = /^SQLITE_(IOERR|FULL|CANTOPEN|CORRUPT|NOTADB|BUSY|LOCKED|READONLY|PROTOCOL)/;

/** SQLite's failures as the store's typed errors (the original as cause); anything else as it is. */
function storeError(error: unknown): unknown {
  if (error instanceof Database.SqliteError) {
    if (error.code === 'SQLITE_CONSTRAINT_UNIQUE' || error.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
      const constraint = constraintOf(error.message);
      return new StoreConflictError(constraint, `the store refused a duplicate (${constraint})`, { cause: error });
    }
    if (unavailableCodes.test(error.code)) return new StoreUnavailableError(`the SQLite store failed: ${error.message}`, { cause: error });
  }
  if (error instanceof TypeError && /database connection is not open/.test(error.message)) return new StoreUnavailableError('the store is closed', { cause: error });
  return error;
}

/** Opens the file, owner-only, and applies the migrations it lacks; refuses a schema newer than this code. */
function openDatabase(file: string): Database.Database {
  let db: Database.Database | undefined;
  try {
    // the store holds sealed secrets and token hashes: owner-only, with its -wal and -shm
    ownerOnlyFile(file);
    ownerOnlySidecars(file);
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    const applied = db.pragma('user_version', { simple: true }) as number;
    if (applied > migrations.length) {
      throw quarkError(
        'QUARK_ERR_STORE_TOO_NEW',
        `the store ${file} has schema version ${applied}, newer than this quark knows (${migrations.length}): a newer quark wrote it; run that version, or restore a backup`,
        { schemaVersion: applied, known: migrations.length },
      );
    }
    const database = db;
    for (let i = applied; i < migrations.length; i++) {
      database.transaction(() => {
        database.exec(migrations[i]!);
        database.pragma(`user_version = ${i + 1}`);
      })();
    }
    return database;
  } catch (error) {
    db?.close();
    if (isQuarkError(error)) throw error;
    throw quarkError('QUARK_ERR_HOME_STORE_UNREADABLE', `cannot open the store ${file}: ${messageOf(error)}`, undefined, error);
  }
}

/**
 * One caller at a time: a transaction or a batch of writes (createBatches) holds the lock,
 * and calls made meanwhile wait, in order. When nothing waits, a read runs at once
 * (better-sqlite3 is synchronous), so it costs no extra turn of the event loop.
 */
function createLock() {
  let tail: Promise<unknown> = Promise.resolve();
  let waiting = 0;
  const settle = () => {
    waiting -= 1;
  };
  return {
    idle: () => waiting === 0,
    enqueue<T>(work: () => Promise<T>): Promise<T> {
      waiting += 1;
      const result = tail.then(work);
      tail = result.then(settle, settle);
      return result;
    },
    drained: () => tail.then(() => undefined),
  };
}

/** The methods that only read: run at once when nothing waits; every other method writes. */
const readMethods = new Set([
  'accounts.get', 'accounts.findByName', 'accounts.list',
  'tokens.findByHash', 'tokens.get', 'tokens.list',
  'connections.get', 'connections.findByName', 'connections.list',
  'processes.latestVersion', 'processes.get', 'processes.list', 'processes.version', 'processes.versions', 'processes.lastFires',
  'executions.get', 'executions.list', 'executions.queued', 'executions.inputs', 'executions.errors', 'executions.log', 'executions.definition',
  'resources.get', 'resources.list',
  'stepData.list', 'stepData.steps',
]);

/** Every method of `ops` through `call`, which runs it and turns its result into a promise; `reads` says whether it only reads. */
function asyncStore(ops: SyncStore, call: <T>(op: () => T, reads: boolean) => Promise<T>): StoreTx {
  const sections = {} as Record<string, Record<string, (...args: unknown[]) => Promise<unknown>>>;
  for (const [section, methods] of Object.entries(ops) as [string, Record<string, (...args: unknown[]) => unknown>][]) {
    sections[section] = Object.fromEntries(
      Object.entries(methods).map(([name, method]) => {
        const reads = readMethods.has(`${section}.${name}`);
        return [name, (...args: unknown[]) => call(() => method(...args), reads)];
      }),
    );
  }
  return sections as unknown as StoreTx;
}

interface BatchEntry {
  op: () => unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * Group commit. A write does not commit on its own: the calls made until the event loop's
 * next check phase (setImmediate) join it, and run in order in one transaction, committed
 * once; each call's promise settles after that commit (an answered write is committed, as
 * before). Under load (50 callers' executions starting and ending) one commit carries
 * dozens of writes: SQLite writes each changed page to the WAL once per commit, not once
 * per write. A call that fails in the batch fails alone (a multi-statement method is a
 * savepoint, a refused statement is undone by SQLite without ending the transaction);
 * when SQLite ends the transaction itself (an I/O error, a full disk) or the commit
 * fails, every call of the batch fails with that error. A batch of one runs as before,
 * without BEGIN.
 */
function createBatches(db: Database.Database, attempt: <T>(op: () => T) => T, lock: ReturnType<typeof createLock>) {
  let open: BatchEntry[] | undefined;
  // prepared once: db.exec would compile them again for every batch
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const rollback = db.prepare('ROLLBACK');
  const failAll = (entries: BatchEntry[], error: unknown) => {
    for (const entry of entries) entry.reject(error);
  };
  function runSeveral(entries: BatchEntry[]): void {
    try {
      attempt(() => begin.run());
    } catch (error) {
      failAll(entries, error);
      return;
    }
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    for (const entry of entries) {
      try {
        outcomes.push({ ok: true, value: attempt(entry.op) });
      } catch (error) {
        if (!db.inTransaction) return failAll(entries, error);
        outcomes.push({ ok: false, error });
      }
    }
    try {
      attempt(() => commit.run());
    } catch (error) {
      if (db.inTransaction) rollback.run();
      failAll(entries, error);
      return;
    }
    outcomes.forEach((outcome, i) => (outcome.ok ? entries[i]!.resolve(outcome.value) : entries[i]!.reject(outcome.error)));
  }
  function run(entries: BatchEntry[]): void {
    if (entries.length > 1) return runSeveral(entries);
    const [entry] = entries as [BatchEntry];
    try {
      entry.resolve(attempt(entry.op));
    } catch (error) {
      entry.reject(error);
    }
  }
  return {
    /** Whether a batch takes calls now. */
    open: () => open !== undefined,
    /** Adds a call to the open batch, or opens one (next in line on the lock). */
    join<T>(op: () => T): Promise<T> {
      if (!open) {
        const entries: BatchEntry[] = [];
        open = entries;
        void lock.enqueue(
          () =>
            new Promise<void>((resolve) =>
              setImmediate(() => {
                if (open === entries) open = undefined;
                run(entries);
                resolve();
              }),
            ),
        );
      }
      const entries = open;
      return new Promise<T>((resolve, reject) => entries.push({ op, resolve: resolve as (value: unknown) => void, reject }));
    },
    /** Something else takes its turn on the lock (a transaction): later calls go after it. */
    seal: () => {
      open = undefined;
    },
  };
}

export function openSqliteStore(file: string): Store {
  const db = openDatabase(file);
  const q = prepareStatements(db);
  const ops: SyncStore = {
    accounts: accountOps(q),
    tokens: tokenOps(q),
    connections: connectionOps(q),
    processes: processOps(db, q),
    executions: executionOps(db, q),
    resources: resourceOps(q),
    stepData: stepDataOps(db, q),
  };
  const lock = createLock();
  let unreachable = false;
  let closing = false;

  /** Runs one operation now; its SQLite failure as a typed error, an I/O one marking the store unhealthy until a call succeeds. */
  function attempt<T>(op: () => T): T {
    try {
      const value = op();
      unreachable = false;
      return value;
    } catch (error) {
      const mapped = storeError(error);
      if (mapped instanceof StoreUnavailableError) unreachable = true;
      throw mapped;
    }
  }

  const batches = createBatches(db, attempt, lock);

  /** A read runs at once when nothing waits; a write, or any call while something waits, joins the next batch (in order). */
  function call<T>(op: () => T, reads: boolean): Promise<T> {
    if (closing) return Promise.reject(new StoreUnavailableError('the store is closed'));
    if (!reads || batches.open() || !lock.idle()) return batches.join(op);
    try {
      return Promise.resolve(attempt(op));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async function inTransaction<T>(work: (tx: StoreTx) => Promise<T>): Promise<T> {
    let open = true;
    const tx = asyncStore(ops, (op) => {
      if (!open) return Promise.reject(new Error('a transaction-scoped store was used after its transaction ended'));
      try {
        return Promise.resolve(attempt(op));
      } catch (error) {
        return Promise.reject(error);
      }
    });
    attempt(() => db.exec('BEGIN IMMEDIATE'));
    try {
      const value = await work(tx);
      open = false;
      attempt(() => db.exec('COMMIT'));
      return value;
    } catch (error) {
      open = false;
      if (db.inTransaction) db.exec('ROLLBACK');
      throw error;
    }
  }

  return {
    ...asyncStore(ops, call),
    transaction: (work) => {
      if (closing) return Promise.reject(new StoreUnavailableError('the store is closed'));
      batches.seal();
      return lock.enqueue(() => inTransaction(work));
    },
    ping: () => call(() => void q.ping.get(), true),
    healthy: () => db.open && !unreachable && !closing,
    close: async () => {
      if (closing) return;
      closing = true;
      await lock.drained();
      db.close();
    },
  };
}
