import Database from 'better-sqlite3';
import { quarkError, messageOf } from '../core/errors.js';
import { ownerOnlyFile, ownerOnlySidecars } from '../core/files.js';
import type { Store, HeldResourceRecord, AccountRecord, TokenRecord, ConnectionRecord, DeploymentRecord, ProcessRecord, ScheduleRecord, ExecutionRecord, ExecutionListFilter, ExecutionStatus, ExecutionTrigger } from './types.js';

/** The SQLite JSON path of a top-level key (process property names never hold a double quote). */
function propertyPath(name: string): string {
  if (/["\\]/.test(name)) throw new Error(`process property name ${JSON.stringify(name)} cannot be stored`);
  return `$."${name}"`;
}

/** Schema migrations, applied in order; PRAGMA user_version records how many ran. */
export const migrations: readonly string[] = [
  `CREATE TABLE accounts (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     relation TEXT NOT NULL CHECK (relation IN ('owner', 'tenant', 'guest')),
     created_at TEXT NOT NULL
   );
   CREATE TABLE tokens (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     name TEXT NOT NULL,
     hash TEXT NOT NULL UNIQUE,
     created_at TEXT NOT NULL,
     revoked_at TEXT
   );
   CREATE TABLE connections (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     connector_id TEXT NOT NULL,
     name TEXT NOT NULL,
     config TEXT NOT NULL,
     secrets TEXT NOT NULL,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     revision INTEGER NOT NULL,
     UNIQUE (account_id, name)
   );`,
  `CREATE TABLE deployments (
     account_id TEXT NOT NULL REFERENCES accounts(id),
     process_id TEXT NOT NULL,
     version INTEGER NOT NULL,
     name TEXT NOT NULL,
     definition TEXT NOT NULL,
     deployed_at TEXT NOT NULL,
     deployed_by TEXT NOT NULL,
     note TEXT,
     PRIMARY KEY (account_id, process_id, version)
   );
   CREATE TABLE processes (
     account_id TEXT NOT NULL REFERENCES accounts(id),
     process_id TEXT NOT NULL,
     active_version INTEGER,
     schedules TEXT NOT NULL DEFAULT '[]',
     properties TEXT NOT NULL DEFAULT '{}',
     updated_at TEXT NOT NULL,
     PRIMARY KEY (account_id, process_id)
   );
   CREATE TABLE executions (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     process_id TEXT NOT NULL,
     version INTEGER,
     trigger TEXT NOT NULL,
     status TEXT NOT NULL,
     queued_at TEXT NOT NULL,
     started_at TEXT,
     ended_at TEXT,
     error_code TEXT,
     error_message TEXT,
     steps TEXT NOT NULL DEFAULT '{}',
     documents_in INTEGER NOT NULL DEFAULT 0,
     documents_out INTEGER NOT NULL DEFAULT 0,
     documents_failed INTEGER NOT NULL DEFAULT 0,
     warnings INTEGER NOT NULL DEFAULT 0
   );
   CREATE INDEX executions_by_account ON executions (account_id, queued_at);
   CREATE INDEX executions_by_status ON executions (status);
   CREATE TABLE execution_errors (
     execution_id TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
     seq INTEGER NOT NULL,
     step TEXT NOT NULL,
     code TEXT NOT NULL,
     message TEXT NOT NULL,
     PRIMARY KEY (execution_id, seq)
   );`,
  `CREATE TABLE execution_logs (
     id INTEGER PRIMARY KEY,
     execution_id TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
     lines TEXT NOT NULL
   );
   CREATE INDEX execution_logs_by_execution ON execution_logs (execution_id, id);`,
  // 4: when each schedule last fired (or was set), for the catch-up policy at start
  `CREATE TABLE schedule_fires (
     account_id TEXT NOT NULL,
     process_id TEXT NOT NULL,
     cron TEXT NOT NULL,
     timezone TEXT NOT NULL DEFAULT '',
     last_fired_at TEXT NOT NULL,
     PRIMARY KEY (account_id, process_id, cron, timezone)
   );`,
  // 5: resources operations hold (an S3 multipart upload) until released; recovery
  // releases what a crash left. IF NOT EXISTS: a home migrated by a development build
  // that had it as number 4 has the table already.
  `CREATE TABLE IF NOT EXISTS held_resources (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL,
     connection_id TEXT NOT NULL,
     connector_id TEXT NOT NULL,
     kind TEXT NOT NULL,
     data TEXT NOT NULL,
     created_at TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     last_error TEXT
   );`,
];

interface DeploymentRow {
  account_id: string;
  process_id: string;
  version: number;
  name: string;
  definition: string;
  deployed_at: string;
  deployed_by: string;
  note: string | null;
}

interface ProcessRow {
  account_id: string;
  process_id: string;
  active_version: number | null;
  schedules: string;
  properties: string;
  updated_at: string;
}

interface ExecutionRow {
  id: string;
  account_id: string;
  process_id: string;
  version: number | null;
  trigger: ExecutionTrigger;
  status: ExecutionStatus;
  queued_at: string;
  started_at: string | null;
  ended_at: string | null;
  error_code: string | null;
  error_message: string | null;
  steps: string;
  documents_in: number;
  documents_out: number;
  documents_failed: number;
  warnings: number;
}

/** The named parameters of the executions list query (null: no such condition). */
function executionListParams(accountId: string, filter: ExecutionListFilter) {
  return {
    accountId,
    processId: filter.processId ?? null,
    status: filter.status ?? null,
    search: filter.search ? filter.search.toLowerCase() : null,
    beforeAt: filter.before?.queuedAt ?? null,
    beforeId: filter.before?.id ?? null,
    limit: filter.limit,
  };
}

/** A stored JSON object, or null when the text is not one (a damaged record must not break a list). */
function parseObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The schedules column: a damaged one reads as none, flagged, so the scheduler reports it. */
function storedSchedules(text: string): { schedules: ScheduleRecord[]; schedulesUnreadable?: true } {
  try {
    const value: unknown = JSON.parse(text);
    const valid = Array.isArray(value) && value.every((s) => s !== null && typeof s === 'object' && typeof (s as ScheduleRecord).cron === 'string');
    return valid ? { schedules: value as ScheduleRecord[] } : { schedules: [], schedulesUnreadable: true };
  } catch {
    return { schedules: [], schedulesUnreadable: true };
  }
}

const toDeployment = (row: DeploymentRow): DeploymentRecord => ({
  accountId: row.account_id,
  processId: row.process_id,
  version: row.version,
  name: row.name,
  definition: parseObject(row.definition),
  deployedAt: row.deployed_at,
  deployedBy: row.deployed_by,
  note: row.note,
});

const toProcess = (row: ProcessRow): ProcessRecord => ({
  accountId: row.account_id,
  processId: row.process_id,
  activeVersion: row.active_version,
  ...storedSchedules(row.schedules),
  // damaged persisted properties start again from the definition's defaults
  properties: parseObject(row.properties) ?? {},
  updatedAt: row.updated_at,
});

const toExecution = (row: ExecutionRow): ExecutionRecord => ({
  id: row.id,
  accountId: row.account_id,
  processId: row.process_id,
  version: row.version,
  trigger: row.trigger,
  status: row.status,
  queuedAt: row.queued_at,
  startedAt: row.started_at,
  endedAt: row.ended_at,
  errorCode: row.error_code,
  errorMessage: row.error_message,
  steps: JSON.parse(row.steps) as ExecutionRecord['steps'],
  documentsIn: row.documents_in,
  documentsOut: row.documents_out,
  documentsFailed: row.documents_failed,
  warnings: row.warnings,
});

const executionParams = (e: ExecutionRecord) => ({ ...e, steps: JSON.stringify(e.steps) });

interface ConnectionRow {
  id: string;
  account_id: string;
  connector_id: string;
  name: string;
  config: string;
  secrets: string;
  created_at: string;
  updated_at: string;
  revision: number;
}

interface TokenRow {
  id: string;
  account_id: string;
  name: string;
  hash: string;
  created_at: string;
  revoked_at: string | null;
}

const toConnection = (row: ConnectionRow): ConnectionRecord => ({
  id: row.id,
  accountId: row.account_id,
  connectorId: row.connector_id,
  name: row.name,
  config: JSON.parse(row.config) as Record<string, unknown>,
  secrets: JSON.parse(row.secrets) as Record<string, string>,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  revision: row.revision,
});

const toToken = (row: TokenRow): TokenRecord => ({
  id: row.id,
  accountId: row.account_id,
  name: row.name,
  hash: row.hash,
  createdAt: row.created_at,
  revokedAt: row.revoked_at,
});

interface HeldResourceRow {
  id: string;
  account_id: string;
  connection_id: string;
  connector_id: string;
  kind: string;
  data: string;
  created_at: string;
  attempts: number;
  last_error: string | null;
}

const toHeldResource = (row: HeldResourceRow): HeldResourceRecord => ({
  id: row.id,
  accountId: row.account_id,
  connectionId: row.connection_id,
  connectorId: row.connector_id,
  kind: row.kind,
  data: JSON.parse(row.data) as Record<string, unknown>,
  createdAt: row.created_at,
  attempts: row.attempts,
  lastError: row.last_error,
});

const accountColumns = 'id, name, relation, created_at AS createdAt';

export function openSqliteStore(file: string): Store {
  let db: Database.Database;
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
    for (let i = applied; i < migrations.length; i++) {
      db.transaction(() => {
        db.exec(migrations[i]!);
        db.pragma(`user_version = ${i + 1}`);
      })();
    }
  } catch (error) {
    throw quarkError('QUARK_ERR_HOME_STORE_UNREADABLE', `cannot open the store ${file}: ${messageOf(error)}`, undefined, error);
  }

  const q = {
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
    procProperties: db.prepare('UPDATE processes SET properties = ? WHERE account_id = ? AND process_id = ?'),
    fireList: db.prepare('SELECT cron, timezone, last_fired_at AS lastFiredAt FROM schedule_fires WHERE account_id = ? AND process_id = ?'),
    fireClear: db.prepare('DELETE FROM schedule_fires WHERE account_id = ? AND process_id = ?'),
    fireSet: db.prepare(
      `INSERT INTO schedule_fires (account_id, process_id, cron, timezone, last_fired_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (account_id, process_id, cron, timezone) DO UPDATE SET last_fired_at = excluded.last_fired_at`,
    ),
    procPropertySet: db.prepare('UPDATE processes SET properties = json_set(properties, ?, json(?)) WHERE account_id = ? AND process_id = ?'),
    procPropertyRemove: db.prepare('UPDATE processes SET properties = json_remove(properties, ?) WHERE account_id = ? AND process_id = ?'),
    execInsert: db.prepare(
      `INSERT INTO executions (id, account_id, process_id, version, trigger, status, queued_at, started_at, ended_at, error_code, error_message, steps, documents_in, documents_out, documents_failed, warnings)
       VALUES (@id, @accountId, @processId, @version, @trigger, @status, @queuedAt, @startedAt, @endedAt, @errorCode, @errorMessage, @steps, @documentsIn, @documentsOut, @documentsFailed, @warnings)`,
    ),
    execUpdate: db.prepare(
      `UPDATE executions SET status = @status, started_at = @startedAt, ended_at = @endedAt, error_code = @errorCode, error_message = @errorMessage, steps = @steps,
       documents_in = @documentsIn, documents_out = @documentsOut, documents_failed = @documentsFailed, warnings = @warnings WHERE id = @id`,
    ),
    execGet: db.prepare('SELECT * FROM executions WHERE account_id = ? AND id = ?'),
    execList: db.prepare(
      `SELECT * FROM executions WHERE account_id = @accountId AND (@processId IS NULL OR process_id = @processId) AND (@status IS NULL OR status = @status)
       AND (@search IS NULL OR instr(lower(id), @search) > 0 OR instr(lower(process_id), @search) > 0)
       AND (@beforeAt IS NULL OR queued_at < @beforeAt OR (queued_at = @beforeAt AND id < @beforeId))
       ORDER BY queued_at DESC, id DESC LIMIT @limit`,
    ),
    execUnfinished: db.prepare("SELECT id, status FROM executions WHERE status IN ('queued', 'in-process')"),
    execInterrupt: db.prepare(
      "UPDATE executions SET status = CASE status WHEN 'queued' THEN 'discarded' ELSE 'aborted' END, ended_at = ?, error_code = ?, error_message = ? WHERE status IN ('queued', 'in-process')",
    ),
    execPurgeable: db.prepare("SELECT id FROM executions WHERE ended_at IS NOT NULL AND ended_at < ? AND status NOT IN ('queued', 'in-process')"),
    execDelete: db.prepare('DELETE FROM executions WHERE id = ?'),
    errInsert: db.prepare('INSERT INTO execution_errors (execution_id, seq, step, code, message) VALUES (?, ?, ?, ?, ?)'),
    errList: db.prepare('SELECT step, code, message FROM execution_errors WHERE execution_id = ? ORDER BY seq LIMIT ?'),
    logAppend: db.prepare('INSERT INTO execution_logs (execution_id, lines) VALUES (?, ?)'),
    logRead: db.prepare('SELECT lines FROM execution_logs WHERE execution_id = ? ORDER BY id'),
    resInsert: db.prepare(
      'INSERT INTO held_resources (id, account_id, connection_id, connector_id, kind, data, created_at, attempts, last_error) VALUES (@id, @accountId, @connectionId, @connectorId, @kind, @data, @createdAt, @attempts, @lastError)',
    ),
    resDelete: db.prepare('DELETE FROM held_resources WHERE id = ?'),
    resGet: db.prepare('SELECT * FROM held_resources WHERE id = ?'),
    resList: db.prepare('SELECT * FROM held_resources ORDER BY created_at, id'),
    resFailed: db.prepare('UPDATE held_resources SET attempts = attempts + 1, last_error = ? WHERE id = ?'),
  };

  /** A schedule that stays keeps its last fire; a new one counts from `at`; a removed one is forgotten. */
  function keepFiresOf(accountId: string, processId: string, schedules: ScheduleRecord[], at: string): void {
    const before = new Map((q.fireList.all(accountId, processId) as { cron: string; timezone: string; lastFiredAt: string }[]).map((r) => [`${r.cron}\u0000${r.timezone}`, r.lastFiredAt]));
    q.fireClear.run(accountId, processId);
    for (const s of schedules) q.fireSet.run(accountId, processId, s.cron, s.timezone ?? '', before.get(`${s.cron}\u0000${s.timezone ?? ''}`) ?? at);
  }

  const serialise = (c: ConnectionRecord) => ({ ...c, config: JSON.stringify(c.config), secrets: JSON.stringify(c.secrets) });

  return {
    accounts: {
      insert: (account) => void q.accountInsert.run(account),
      get: (id) => q.accountGet.get(id) as AccountRecord | undefined,
      findByName: (name) => q.accountByName.get(name) as AccountRecord | undefined,
      list: () => q.accountList.all() as AccountRecord[],
    },
    tokens: {
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
    },
    connections: {
      insert: (connection) => void q.connInsert.run(serialise(connection)),
      update: (connection, expectedRevision) => q.connUpdate.run({ ...serialise(connection), expectedRevision }).changes === 1,
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
    },
    processes: {
      deploy: (d) =>
        db.transaction(() => {
          q.depInsert.run({ ...d, definition: JSON.stringify(d.definition) });
          q.procActivate.run(d.accountId, d.processId, d.version, d.deployedAt);
        })(),
      latestVersion: (accountId, processId) => (q.depLatest.get(accountId, processId) as { v: number | null }).v ?? 0,
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
          keepFiresOf(accountId, processId, schedules, at);
        })(),
      lastFires: (accountId, processId) => (q.fireList.all(accountId, processId) as { cron: string; timezone: string; lastFiredAt: string }[]).map((r) => ({ cron: r.cron, ...(r.timezone ? { timezone: r.timezone } : {}), lastFiredAt: r.lastFiredAt })),
      recordFire: (accountId, processId, schedule, at) => void q.fireSet.run(accountId, processId, schedule.cron, schedule.timezone ?? '', at),
      setProperties: (accountId, processId, properties) => void q.procProperties.run(JSON.stringify(properties), accountId, processId),
      mergeProperties: (accountId, processId, updates) =>
        db.transaction(() => {
          for (const [name, value] of updates) {
            const path = propertyPath(name);
            if (value === undefined) q.procPropertyRemove.run(path, accountId, processId);
            else q.procPropertySet.run(path, JSON.stringify(value), accountId, processId);
          }
        })(),
    },
    executions: {
      insert: (e) => void q.execInsert.run(executionParams(e)),
      update: (e) => void q.execUpdate.run(executionParams(e)),
      get: (accountId, id) => {
        const row = q.execGet.get(accountId, id) as ExecutionRow | undefined;
        return row && toExecution(row);
      },
      list: (accountId, filter) => (q.execList.all(executionListParams(accountId, filter)) as ExecutionRow[]).map(toExecution),
      interrupt: (at, code, message) =>
        db.transaction(() => {
          const rows = q.execUnfinished.all() as { id: string; status: ExecutionStatus }[];
          q.execInterrupt.run(at, code, message);
          return rows.map((r) => ({ id: r.id, status: r.status === 'queued' ? ('discarded' as const) : ('aborted' as const) }));
        })(),
      purge: (before) =>
        db.transaction(() => {
          const ids = (q.execPurgeable.all(before) as { id: string }[]).map((r) => r.id);
          for (const id of ids) q.execDelete.run(id);
          return ids;
        })(),
      insertErrors: (id, errors) =>
        db.transaction(() => {
          errors.forEach((e, seq) => q.errInsert.run(id, seq, e.step, e.code, e.message));
        })(),
      errors: (id, limit) => q.errList.all(id, limit) as { step: string; code: string; message: string }[],
      appendLog: (id, lines) => void q.logAppend.run(id, lines),
      // read whole: an open iterator would keep the connection busy across event-loop turns
      log: (id) => (q.logRead.all(id) as { lines: string }[]).map((row) => row.lines),
    },
    resources: {
      insert: (r) => void q.resInsert.run({ ...r, data: JSON.stringify(r.data) }),
      delete: (id) => q.resDelete.run(id).changes === 1,
      get: (id) => {
        const row = q.resGet.get(id) as HeldResourceRow | undefined;
        return row && toHeldResource(row);
      },
      list: () => (q.resList.all() as HeldResourceRow[]).map(toHeldResource),
      failed: (id, error) => void q.resFailed.run(error, id),
    },
    transaction: (work) => db.transaction(work)(),
    healthy: () => db.open,
    close: () => db.close(),
  };
}
