/**
 * The PostgreSQL implementation of the Store (types.ts): node-postgres with a pool, so the
 * event loop never waits on the store. Plain SQL migrations of its own (the same numbering
 * and meaning as sqlite-store.ts), applied under an advisory lock and recorded in
 * `quark_schema`. Unique violations become StoreConflictError, lost revision checks
 * StoreRaceError, a server that cannot be reached StoreUnavailableError.
 */
import pg from 'pg';
import { quarkError, messageOf } from '../core/errors.js';
import { StoreConflictError, StoreFencedError, StoreRaceError, StoreUnavailableError, fencedWrite, type StoreConstraint } from './errors.js';
import { createPostgresNotifications } from './postgres-notify.js';
import { isObject, postgresRows, storedDefinition, type CancelRow, type ConnectionRow, type DeploymentRow, type ExecutionRow, type HeldResourceRow, type InputRow, type ProcessRow, type StepDocumentRow, type TokenRow } from './rows.js';
import type {
  AccountRecord,
  ClusterStore,
  NodeRecord,
  DeploymentRecord,
  ExecutionRecord,
  QueuedInputRecord,
  ScheduleRecord,
  Store,
  StoreTx,
} from './types.js';

/** Identifiers, names and ISO times sort byte-wise, as in SQLite, whatever the database's collation. */
const T = 'TEXT COLLATE "C"';

/**
 * Schema migrations, applied in order; `quark_schema` records each one by its number
 * (index + 1), the same numbers and meanings as the SQLite store's.
 */
export const migrations: readonly string[] = [
  // 1: accounts, tokens, connections
  `CREATE TABLE accounts (
     id ${T} CONSTRAINT accounts_pkey PRIMARY KEY,
     name ${T} NOT NULL CONSTRAINT accounts_name_key UNIQUE,
     relation TEXT NOT NULL CHECK (relation IN ('owner', 'tenant', 'guest')),
     created_at ${T} NOT NULL
   );
   CREATE TABLE tokens (
     id ${T} CONSTRAINT tokens_pkey PRIMARY KEY,
     account_id ${T} NOT NULL REFERENCES accounts(id),
     name TEXT NOT NULL,
     hash TEXT NOT NULL CONSTRAINT tokens_hash_key UNIQUE,
     created_at ${T} NOT NULL,
     revoked_at ${T}
   );
   CREATE TABLE connections (
     id ${T} CONSTRAINT connections_pkey PRIMARY KEY,
     account_id ${T} NOT NULL REFERENCES accounts(id),
     connector_id TEXT NOT NULL,
     name ${T} NOT NULL,
     config JSONB NOT NULL,
     secrets JSONB NOT NULL,
     created_at ${T} NOT NULL,
     updated_at ${T} NOT NULL,
     revision INTEGER NOT NULL,
     CONSTRAINT connections_name_key UNIQUE (account_id, name)
   );`,
  // 2: deployments, processes, executions, execution_errors
  `CREATE TABLE deployments (
     account_id ${T} NOT NULL REFERENCES accounts(id),
     process_id ${T} NOT NULL,
     version INTEGER NOT NULL,
     name TEXT NOT NULL,
     definition TEXT NOT NULL,
     deployed_at ${T} NOT NULL,
     deployed_by TEXT NOT NULL,
     note TEXT,
     CONSTRAINT deployments_pkey PRIMARY KEY (account_id, process_id, version)
   );
   CREATE TABLE processes (
     account_id ${T} NOT NULL REFERENCES accounts(id),
     process_id ${T} NOT NULL,
     active_version INTEGER,
     schedules TEXT NOT NULL DEFAULT '[]',
     properties JSONB NOT NULL DEFAULT '{}',
     updated_at ${T} NOT NULL,
     CONSTRAINT processes_pkey PRIMARY KEY (account_id, process_id)
   );
   CREATE TABLE executions (
     id ${T} CONSTRAINT executions_pkey PRIMARY KEY,
     account_id ${T} NOT NULL REFERENCES accounts(id),
     process_id ${T} NOT NULL,
     version INTEGER,
     trigger TEXT NOT NULL,
     status TEXT NOT NULL,
     queued_at ${T} NOT NULL,
     started_at ${T},
     ended_at ${T},
     error_code TEXT,
     error_message TEXT,
     steps JSONB NOT NULL DEFAULT '{}',
     documents_in INTEGER NOT NULL DEFAULT 0,
     documents_out INTEGER NOT NULL DEFAULT 0,
     documents_failed INTEGER NOT NULL DEFAULT 0,
     warnings INTEGER NOT NULL DEFAULT 0
   );
   CREATE INDEX executions_by_account ON executions (account_id, queued_at);
   CREATE INDEX executions_by_status ON executions (status);
   CREATE TABLE execution_errors (
     execution_id ${T} NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
     seq INTEGER NOT NULL,
     step TEXT NOT NULL,
     code TEXT NOT NULL,
     message TEXT NOT NULL,
     PRIMARY KEY (execution_id, seq)
   );`,
  // 3: execution_logs
  `CREATE TABLE execution_logs (
     id BIGSERIAL PRIMARY KEY,
     execution_id ${T} NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
     lines TEXT NOT NULL
   );
   CREATE INDEX execution_logs_by_execution ON execution_logs (execution_id, id);`,
  // 4: when each schedule last fired (or was set), for the catch-up policy at start
  `CREATE TABLE schedule_fires (
     account_id ${T} NOT NULL,
     process_id ${T} NOT NULL,
     cron TEXT NOT NULL,
     timezone TEXT NOT NULL DEFAULT '',
     last_fired_at ${T} NOT NULL,
     PRIMARY KEY (account_id, process_id, cron, timezone)
   );`,
  // 5: resources operations hold (an S3 multipart upload) until released
  `CREATE TABLE held_resources (
     id ${T} CONSTRAINT held_resources_pkey PRIMARY KEY,
     account_id ${T} NOT NULL,
     connection_id TEXT NOT NULL,
     connector_id TEXT NOT NULL,
     kind TEXT NOT NULL,
     data JSONB NOT NULL,
     created_at ${T} NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     last_error TEXT
   );`,
  // 6: durable queued executions: the node that runs one, its attempt, and the input
  // documents of a queued one. Queued rows of an earlier quark had their inputs in memory
  // only; they cannot run, so they are discarded, as that quark did at its next start.
  `ALTER TABLE executions ADD COLUMN owner TEXT;
   ALTER TABLE executions ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
   CREATE INDEX executions_queued ON executions (status, queued_at, id);
   CREATE TABLE execution_inputs (
     execution_id ${T} NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
     seq INTEGER NOT NULL,
     properties JSONB NOT NULL,
     body_kind TEXT NOT NULL CHECK (body_kind IN ('inline', 'file')),
     body BYTEA,
     path TEXT,
     size BIGINT,
     PRIMARY KEY (execution_id, seq)
   );
   UPDATE executions SET status = 'discarded', ended_at = to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), error_code = 'QUARK_ERR_EXECUTION_INTERRUPTED',
     error_message = 'queued by an earlier quark version, which kept the inputs of queued executions in memory only'
   WHERE status = 'queued';`,
  // 7: the schedule fire a scheduled run is (nominal time and key), unique per process:
  // nodes that fire together insert it once (older rows have none; NULLs never clash)
  `ALTER TABLE executions ADD COLUMN schedule_key ${T};
   ALTER TABLE executions ADD COLUMN scheduled_at ${T};
   CREATE UNIQUE INDEX executions_schedule_key ON executions (account_id, process_id, schedule_key);`,
  // 8: the lease epoch of a run (fencing: every write of the run carries it), and the
  // cluster tables of a molecule: its identity (one row) and its nodes' heartbeats. The
  // SQLite migration 8 has the lease epoch only (a molecule needs PostgreSQL).
  `ALTER TABLE executions ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE cluster (
     singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
     id ${T} NOT NULL,
     name TEXT NOT NULL,
     kind TEXT NOT NULL,
     owner_id ${T} NOT NULL,
     owner_name TEXT NOT NULL,
     key_fingerprint TEXT NOT NULL,
     queue_sealed TEXT NOT NULL,
     created_at ${T} NOT NULL
   );
   CREATE TABLE nodes (
     id ${T} CONSTRAINT nodes_pkey PRIMARY KEY,
     address TEXT,
     version TEXT NOT NULL,
     pid INTEGER NOT NULL,
     started_at ${T} NOT NULL,
     heartbeat_at ${T} NOT NULL,
     running INTEGER NOT NULL DEFAULT 0,
     draining BOOLEAN NOT NULL DEFAULT FALSE
   );`,
  // 9: step data, the documents that left each step of an execution that records it:
  // properties, the ones it entered the step with, the head of the body and its whole
  // size; and the definition a test-mode run ran; both deleted with the execution (purge).
  // Properties are TEXT, not jsonb: jsonb reorders keys, and they are shown in the order
  // the step left them (as the SQLite store keeps them)
  `CREATE TABLE execution_step_documents (
     execution_id ${T} NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
     step ${T} NOT NULL,
     seq INTEGER NOT NULL,
     properties TEXT NOT NULL,
     input_properties TEXT,
     body BYTEA NOT NULL,
     size BIGINT NOT NULL,
     PRIMARY KEY (execution_id, step, seq)
   );
   CREATE TABLE execution_definitions (
     execution_id ${T} PRIMARY KEY REFERENCES executions(id) ON DELETE CASCADE,
     definition TEXT NOT NULL
   );`,
  // 10: a cancel of an in-process execution, kept until the node that runs it stops the
  // run: its notification to that node may be lost (a LISTEN reconnect), the record is
  // not; each node reads its own on every (re)connect and reconciler tick (the index)
  `ALTER TABLE executions ADD COLUMN cancel_requested_at ${T};
   ALTER TABLE executions ADD COLUMN cancel_requested_by TEXT;
   CREATE INDEX executions_cancel_requested ON executions (owner) WHERE cancel_requested_at IS NOT NULL AND status = 'in-process';`,
  // 11: executions_by_status (status) is covered by executions_queued (status, queued_at,
  // id) of migration 6: every lookup by status alone uses that one (EXPLAIN), and each
  // write of an execution kept both up to date
  `DROP INDEX IF EXISTS executions_by_status;`,
  // 12: executions_schedule_key holds only the scheduled runs (a partial index): every
  // other execution has no key (NULL, never a clash) and cost an entry in it at its insert
  `DROP INDEX IF EXISTS executions_schedule_key;
   CREATE UNIQUE INDEX executions_schedule_key ON executions (account_id, process_id, schedule_key) WHERE schedule_key IS NOT NULL;`,
];

/** The constraint names of the migrations, as the Store's conflict kinds. */
const constraints: Record<string, StoreConstraint> = {
  accounts_name_key: 'account-name',
  connections_name_key: 'connection-name',
  tokens_hash_key: 'token-hash',
  deployments_pkey: 'deployment-version',
  executions_schedule_key: 'schedule-fire',
};

const conflictWords: Record<StoreConstraint, string> = {
  'account-name': 'an account with this name exists already',
  'connection-name': 'a connection with this name exists already in the account',
  'token-hash': 'a token with this hash exists already',
  'deployment-version': 'this version of the process is recorded already',
  'schedule-fire': 'this fire of the schedule has its execution already (another node inserted it)',
  id: 'a record with this id exists already',
};

/** PostgreSQL error classes and Node socket errors that mean "the server is not there". */
const unavailableCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', '57P01', '57P02', '57P03', '53300']);

function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (unavailableCodes.has(code) || code.startsWith('08'))) return true;
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable/i.test(error.message);
}

/** Where the store is, for messages: host and port, never the user or the password. */
export function postgresAddress(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}`;
  } catch {
    return 'the configured address';
  }
}

/** The URL with its password replaced, for `quark info`, logs and errors. */
export function redactPostgresUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    for (const key of [...parsed.searchParams.keys()]) if (/pass|secret|key/i.test(key)) parsed.searchParams.set(key, '***');
    return parsed.toString();
  } catch {
    return '(a URL that cannot be read)';
  }
}

/** The typed Store error for a failed query (the original as its cause). */
function storeError(error: unknown, address: string): unknown {
  if (error instanceof StoreConflictError || error instanceof StoreRaceError || error instanceof StoreUnavailableError || error instanceof StoreFencedError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (code === '23505') {
    const name = (error as { constraint?: unknown }).constraint;
    const constraint = (typeof name === 'string' ? constraints[name] : undefined) ?? 'id';
    return new StoreConflictError(constraint, conflictWords[constraint], { cause: error });
  }
  if (isUnavailable(error)) return new StoreUnavailableError(`PostgreSQL at ${address} is not reachable: ${messageOf(error)}`, { cause: error });
  return error;
}

const { toCancel, toConnection, toDeployment, toExecution, toHeldResource, toInput, toProcess, toStepDocument, toToken } = postgresRows;

const toAccount = (row: AccountRecord): AccountRecord => ({ id: row.id, name: row.name, relation: row.relation, createdAt: row.createdAt });

/**
 * PostgreSQL's text and jsonb refuse U+0000 (NUL), which documents, properties and error
 * messages may hold. Strings are stored with NUL as U+0001 "0" and U+0001 itself as
 * U+0001 "1" (so nothing is ambiguous), and read back decoded (the type parsers below):
 * what goes in comes out, and a string without either character is stored as it is.
 */
const NUL = '\u0000';
const MARK = '\u0001';
const escapable = (text: string): boolean => text.includes(NUL) || text.includes(MARK);
const encodeText = (text: string): string => (escapable(text) ? text.replaceAll(MARK, `${MARK}1`).replaceAll(NUL, `${MARK}0`) : text);
/** Every MARK of an encoded string is followed by "0" (a NUL) or "1" (a MARK). */
function decodeText(text: string): string {
  if (!text.includes(MARK)) return text;
  const [head, ...rest] = text.split(MARK);
  return head + rest.map((part) => (part.startsWith('0') ? NUL : MARK) + part.slice(1)).join('');
}

/** The same for every string (and object key) of a JSON value. */
function rekeyed(value: unknown, code: (text: string) => string, test: (key: string) => boolean): unknown {
  if (typeof value === 'string') return code(value);
  if (isObject(value) && Object.keys(value).some(test)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [code(k), v]));
  return value;
}
const encodingReplacer = (_key: string, value: unknown): unknown => rekeyed(value, encodeText, escapable);
const decodingReviver = (_key: string, value: unknown): unknown => rekeyed(value, decodeText, (k) => k.includes(MARK));

/** A JSON value as a jsonb parameter (node-postgres would send an array as a PostgreSQL array); NUL encoded. */
function json(value: unknown): string {
  const text = JSON.stringify(value);
  // JSON.stringify escapes both characters as \u0000 and \u0001: only then is there anything to encode
  return /\\u000[01]/.test(text) ? JSON.stringify(value, encodingReplacer) : text;
}

/** jsonb as it is stored: parsed, an encoded NUL decoded. */
const parseJson = (text: string): unknown => (text.includes('\\u0001') ? JSON.parse(text, decodingReviver) : JSON.parse(text));

const TEXT_OID = 25;
const JSON_OID = 114;
const JSONB_OID = 3802;

/** node-postgres's type parsers with text and jsonb decoded. */
const storeTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === JSONB_OID || oid === JSON_OID) return parseJson;
    if (oid === TEXT_OID) return decodeText;
    return pg.types.getTypeParser(oid, format) as (text: string) => unknown;
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/** Query parameters with NUL encoded: strings, and the strings of arrays (text[]); JSON text has none (escaped). */
const encodeValues = (values: unknown[] | undefined): unknown[] | undefined =>
  values?.map((v) => (typeof v === 'string' ? encodeText(v) : Array.isArray(v) ? v.map((e: unknown) => (typeof e === 'string' ? encodeText(e) : e)) : v));

const executionValues = (e: ExecutionRecord): unknown[] => [
  e.id,
  e.accountId,
  e.processId,
  e.version,
  e.trigger,
  e.status,
  e.queuedAt,
  e.startedAt,
  e.endedAt,
  e.errorCode,
  e.errorMessage,
  json(e.steps),
  e.documentsIn,
  e.documentsOut,
  e.documentsFailed,
  e.warnings,
  e.owner,
  e.attempt,
  e.schedule?.key ?? null,
  e.schedule?.at ?? null,
  e.leaseEpoch,
];

/** Where the store's queries go: the pool (each query on its own) or one client inside a transaction. */
interface Runner {
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Runs `work` atomically: its own transaction on the pool, a savepoint inside a transaction. */
  atomic<T>(work: (runner: Runner) => Promise<T>): Promise<T>;
}

/** The advisory lock key of a schema's purge (held until the purge's transaction ends). */
export const PURGE_LOCK = 'quark_purge';

/** How many times a deploy tries again after another writer took the version it chose. */
const DEPLOY_ATTEMPTS = 100;

interface ClusterRow {
  id: string;
  name: string;
  kind: string;
  owner_id: string;
  owner_name: string;
  key_fingerprint: string;
  queue_sealed: string;
  created_at: string;
}

interface NodeRow {
  id: string;
  address: string | null;
  version: string;
  pid: number;
  started_at: string;
  heartbeat_at: string;
  running: number;
  draining: boolean;
}

const toNode = (row: NodeRow): NodeRecord => ({
  id: row.id,
  address: row.address,
  version: row.version,
  pid: row.pid,
  startedAt: row.started_at,
  heartbeatAt: row.heartbeat_at,
  running: row.running,
  draining: row.draining,
});

/** The cluster tables of a molecule. */
function clusterMethods(r: Runner): ClusterStore {
  return {
    get: async () => {
      const row = (await r.query<ClusterRow>('SELECT * FROM cluster')).rows[0];
      return (
        row && { id: row.id, name: row.name, kind: row.kind, ownerId: row.owner_id, ownerName: row.owner_name, keyFingerprint: row.key_fingerprint, queueSealed: row.queue_sealed, createdAt: row.created_at }
      );
    },
    create: async (c) =>
      void (await r.query('INSERT INTO cluster (id, name, kind, owner_id, owner_name, key_fingerprint, queue_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
        c.id,
        c.name,
        c.kind,
        c.ownerId,
        c.ownerName,
        c.keyFingerprint,
        c.queueSealed,
        c.createdAt,
      ])),
    upsertNode: async (n) =>
      void (await r.query(
        `INSERT INTO nodes (id, address, version, pid, started_at, heartbeat_at, running, draining) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET address = excluded.address, version = excluded.version, pid = excluded.pid, started_at = excluded.started_at,
           heartbeat_at = excluded.heartbeat_at, running = excluded.running, draining = excluded.draining`,
        [n.id, n.address, n.version, n.pid, n.startedAt, n.heartbeatAt, n.running, n.draining],
      )),
    heartbeat: async (id, at, running, draining, address) =>
      void (await r.query('UPDATE nodes SET heartbeat_at = $2, running = $3, draining = $4, address = COALESCE($5, address) WHERE id = $1', [id, at, running, draining, address])),
    nodes: async () => (await r.query<NodeRow>('SELECT * FROM nodes ORDER BY started_at, id')).rows.map(toNode),
    lostRuns: async (query) => {
      const rows =
        'owner' in query
          ? await r.query<ExecutionRow>("SELECT * FROM executions WHERE status = 'in-process' AND owner = $1 ORDER BY queued_at, id LIMIT $2", [query.owner, query.limit])
          : await r.query<ExecutionRow>(
              `SELECT e.* FROM executions e LEFT JOIN nodes n ON n.id = e.owner
               WHERE e.status = 'in-process' AND e.owner IS NOT NULL AND e.owner <> $2 AND (n.id IS NULL OR n.heartbeat_at < $1)
               ORDER BY e.queued_at, e.id LIMIT $3`,
              [query.staleBefore, query.except, query.limit],
            );
      return rows.rows.map(toExecution);
    },
    requeue: (id, epoch) =>
      r.atomic(async (runner) => {
        const row = (
          await runner.query<ExecutionRow>(
            `UPDATE executions SET status = 'queued', owner = NULL, started_at = NULL, steps = '{}'::jsonb, documents_out = 0, documents_failed = 0, warnings = 0,
             attempt = attempt + 1, lease_epoch = lease_epoch + 1 WHERE id = $1 AND status = 'in-process' AND lease_epoch = $2 RETURNING *`,
            [id, epoch],
          )
        ).rows[0];
        if (!row) return undefined;
        await runner.query('DELETE FROM execution_errors WHERE execution_id = $1', [id]);
        await runner.query('DELETE FROM execution_step_documents WHERE execution_id = $1', [id]);
        return toExecution(row);
      }),
    abandon: (id, epoch, at, code, message) =>
      r.atomic(async (runner) => {
        const done = await runner.query(
          "UPDATE executions SET status = 'aborted', ended_at = $3, error_code = $4, error_message = $5, lease_epoch = lease_epoch + 1 WHERE id = $1 AND status = 'in-process' AND lease_epoch = $2",
          [id, epoch, at, code, message],
        );
        if ((done.rowCount ?? 0) === 0) return false;
        await runner.query('DELETE FROM execution_inputs WHERE execution_id = $1', [id]);
        return true;
      }),
    setDraining: async (id, draining) => void (await r.query('UPDATE nodes SET draining = $2 WHERE id = $1', [id, draining])),
  };
}

/** The store's record methods, on a runner. */
function recordMethods(r: Runner): StoreTx {
  const one = async <R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R | undefined> => (await r.query<R>(text, values)).rows[0];
  const all = async <R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> => (await r.query<R>(text, values)).rows;
  const changed = async (text: string, values: unknown[]): Promise<boolean> => ((await r.query(text, values)).rowCount ?? 0) > 0;
  const accountColumns = 'id, name, relation, created_at AS "createdAt"';

  async function deployOnce(runner: Runner, d: Omit<DeploymentRecord, 'version'>): Promise<number> {
    const inserted = await runner.query<{ version: number }>(
      `INSERT INTO deployments (account_id, process_id, version, name, definition, deployed_at, deployed_by, note)
       SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5, $6, $7 FROM deployments WHERE account_id = $1 AND process_id = $2
       RETURNING version`,
      // a text column: JSON's own escapes keep a NUL (only jsonb refuses \u0000)
      [d.accountId, d.processId, d.name, JSON.stringify(d.definition), d.deployedAt, d.deployedBy, d.note],
    );
    const version = inserted.rows[0]!.version;
    await activate(runner, d.accountId, d.processId, version, d.deployedAt);
    return version;
  }

  async function activate(runner: Runner, accountId: string, processId: string, version: number | null, at: string): Promise<void> {
    await runner.query(
      `INSERT INTO processes (account_id, process_id, active_version, updated_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (account_id, process_id) DO UPDATE SET active_version = excluded.active_version, updated_at = excluded.updated_at`,
      [accountId, processId, version, at],
    );
  }

  /** A schedule that stays keeps its last fire; a new one counts from `at`; a removed one is forgotten. */
  async function keepFiresOf(runner: Runner, accountId: string, processId: string, schedules: ScheduleRecord[], at: string): Promise<void> {
    const rows = await runner.query<{ cron: string; timezone: string; last_fired_at: string }>('DELETE FROM schedule_fires WHERE account_id = $1 AND process_id = $2 RETURNING cron, timezone, last_fired_at', [accountId, processId]);
    const before = new Map(rows.rows.map((row) => [`${row.cron}\u0000${row.timezone}`, row.last_fired_at]));
    for (const s of schedules) {
      const timezone = s.timezone ?? '';
      await runner.query(
        `INSERT INTO schedule_fires (account_id, process_id, cron, timezone, last_fired_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (account_id, process_id, cron, timezone) DO UPDATE SET last_fired_at = excluded.last_fired_at`,
        [accountId, processId, s.cron, timezone, before.get(`${s.cron}\u0000${timezone}`) ?? at],
      );
    }
  }

  async function insertInputs(runner: Runner, id: string, inputs: QueuedInputRecord[]): Promise<void> {
    for (const input of inputs) {
      const inline = input.body.kind === 'inline';
      await runner.query('INSERT INTO execution_inputs (execution_id, seq, properties, body_kind, body, path, size) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
        id,
        input.seq,
        json(input.properties),
        input.body.kind,
        input.body.kind === 'inline' ? Buffer.from(input.body.base64, 'base64') : null,
        input.body.kind === 'file' ? input.body.path : null,
        inline ? null : (input.body as { size: number }).size,
      ]);
    }
  }

  const executionInsert = `INSERT INTO executions (id, account_id, process_id, version, trigger, status, queued_at, started_at, ended_at, error_code, error_message, steps, documents_in, documents_out, documents_failed, warnings, owner, attempt, schedule_key, scheduled_at, lease_epoch)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`;

  return {
    accounts: {
      insert: async (a) => void (await r.query('INSERT INTO accounts (id, name, relation, created_at) VALUES ($1, $2, $3, $4)', [a.id, a.name, a.relation, a.createdAt])),
      get: async (id) => {
        const row = await one<AccountRecord>(`SELECT ${accountColumns} FROM accounts WHERE id = $1`, [id]);
        return row && toAccount(row);
      },
      findByName: async (name) => {
        const row = await one<AccountRecord>(`SELECT ${accountColumns} FROM accounts WHERE name = $1`, [name]);
        return row && toAccount(row);
      },
      list: async () => (await all<AccountRecord>(`SELECT ${accountColumns} FROM accounts ORDER BY created_at, name`)).map(toAccount),
    },
    tokens: {
      insert: async (k) =>
        void (await r.query('INSERT INTO tokens (id, account_id, name, hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)', [k.id, k.accountId, k.name, k.hash, k.createdAt, k.revokedAt])),
      findByHash: async (hash) => {
        const row = await one<TokenRow>('SELECT * FROM tokens WHERE hash = $1', [hash]);
        return row && toToken(row);
      },
      get: async (id) => {
        const row = await one<TokenRow>('SELECT * FROM tokens WHERE id = $1', [id]);
        return row && toToken(row);
      },
      list: async (accountId) =>
        (accountId === undefined ? await all<TokenRow>('SELECT * FROM tokens ORDER BY created_at, id') : await all<TokenRow>('SELECT * FROM tokens WHERE account_id = $1 ORDER BY created_at, id', [accountId])).map(toToken),
      revoke: async (id, at) => void (await r.query('UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [at, id])),
    },
    connections: {
      insert: async (c) =>
        void (await r.query(
          'INSERT INTO connections (id, account_id, connector_id, name, config, secrets, created_at, updated_at, revision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
          [c.id, c.accountId, c.connectorId, c.name, json(c.config), json(c.secrets), c.createdAt, c.updatedAt, c.revision],
        )),
      update: async (c, expectedRevision) => {
        const replaced = await changed(
          'UPDATE connections SET name = $1, config = $2, secrets = $3, updated_at = $4, revision = $5 WHERE id = $6 AND account_id = $7 AND revision = $8',
          [c.name, json(c.config), json(c.secrets), c.updatedAt, c.revision, c.id, c.accountId, expectedRevision],
        );
        if (replaced) return true;
        const current = await one<{ revision: number }>('SELECT revision FROM connections WHERE id = $1 AND account_id = $2', [c.id, c.accountId]);
        if (current === undefined) return false;
        throw new StoreRaceError(`the connection is at revision ${current.revision}, not ${expectedRevision}: another change came first`);
      },
      get: async (accountId, id) => {
        const row = await one<ConnectionRow>('SELECT * FROM connections WHERE account_id = $1 AND id = $2', [accountId, id]);
        return row && toConnection(row);
      },
      findByName: async (accountId, name) => {
        const row = await one<ConnectionRow>('SELECT * FROM connections WHERE account_id = $1 AND name = $2', [accountId, name]);
        return row && toConnection(row);
      },
      list: async (accountId) => (await all<ConnectionRow>('SELECT * FROM connections WHERE account_id = $1 ORDER BY name', [accountId])).map(toConnection),
      delete: async (accountId, id) => changed('DELETE FROM connections WHERE account_id = $1 AND id = $2', [accountId, id]),
    },
    processes: {
      deploy: async (d) => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await r.atomic((runner) => deployOnce(runner, d));
          } catch (error) {
            const lost = error instanceof StoreConflictError && error.constraint === 'deployment-version';
            if (!lost || attempt >= DEPLOY_ATTEMPTS) throw error;
          }
        }
      },
      latestVersion: async (accountId, processId) => (await one<{ v: number | null }>('SELECT MAX(version) AS v FROM deployments WHERE account_id = $1 AND process_id = $2', [accountId, processId]))?.v ?? 0,
      get: async (accountId, processId) => {
        const row = await one<ProcessRow>('SELECT * FROM processes WHERE account_id = $1 AND process_id = $2', [accountId, processId]);
        return row && toProcess(row);
      },
      list: async (accountId) =>
        (accountId === undefined ? await all<ProcessRow>('SELECT * FROM processes ORDER BY account_id, process_id') : await all<ProcessRow>('SELECT * FROM processes WHERE account_id = $1 ORDER BY process_id', [accountId])).map(toProcess),
      version: async (accountId, processId, version) => {
        const row = await one<DeploymentRow>('SELECT * FROM deployments WHERE account_id = $1 AND process_id = $2 AND version = $3', [accountId, processId, version]);
        return row && toDeployment(row);
      },
      versions: async (accountId, processId) => (await all<DeploymentRow>('SELECT * FROM deployments WHERE account_id = $1 AND process_id = $2 ORDER BY version', [accountId, processId])).map(toDeployment),
      setActive: (accountId, processId, version, at) => activate(r, accountId, processId, version, at),
      setSchedules: (accountId, processId, schedules, at) =>
        r.atomic(async (runner) => {
          await runner.query('UPDATE processes SET schedules = $1, updated_at = $2 WHERE account_id = $3 AND process_id = $4', [JSON.stringify(schedules), at, accountId, processId]);
          await keepFiresOf(runner, accountId, processId, schedules, at);
        }),
      lastFires: async (accountId, processId) =>
        (await all<{ cron: string; timezone: string; last_fired_at: string }>('SELECT cron, timezone, last_fired_at FROM schedule_fires WHERE account_id = $1 AND process_id = $2', [accountId, processId])).map((row) => ({
          cron: row.cron,
          ...(row.timezone ? { timezone: row.timezone } : {}),
          lastFiredAt: row.last_fired_at,
        })),
      recordFire: async (accountId, processId, schedule, at) =>
        void (await r.query(
          `INSERT INTO schedule_fires (account_id, process_id, cron, timezone, last_fired_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (account_id, process_id, cron, timezone) DO UPDATE SET last_fired_at = GREATEST(schedule_fires.last_fired_at, excluded.last_fired_at)`,
          [accountId, processId, schedule.cron, schedule.timezone ?? '', at],
        )),
      mergeProperties: async (accountId, processId, updates) => {
        const removed: string[] = [];
        const set: Record<string, unknown> = {};
        for (const [name, value] of updates) {
          if (value === undefined) removed.push(name);
          else set[name] = value;
        }
        // one statement: the row lock makes concurrent merges apply one after the other, each on the latest properties;
        // damaged ones (reported as propertiesUnreadable) start again from {}
        await r.query(
          `UPDATE processes SET properties = (CASE WHEN jsonb_typeof(properties) = 'object' THEN properties ELSE '{}'::jsonb END - $1::text[]) || $2::jsonb
           WHERE account_id = $3 AND process_id = $4`,
          [removed, json(set), accountId, processId],
        );
      },
    },
    executions: {
      insert: (e, inputs = []) =>
        inputs.length === 0
          ? r.query(executionInsert, executionValues(e)).then(() => undefined)
          : r.atomic(async (runner) => {
              await runner.query(executionInsert, executionValues(e));
              await insertInputs(runner, e.id, inputs);
            }),
      update: async (e) => {
        const written = await changed(
          `UPDATE executions SET status = $2, started_at = $3, ended_at = $4, error_code = $5, error_message = $6, steps = $7,
           documents_in = $8, documents_out = $9, documents_failed = $10, warnings = $11, owner = $12, attempt = $13 WHERE id = $1 AND lease_epoch = $14`,
          [e.id, e.status, e.startedAt, e.endedAt, e.errorCode, e.errorMessage, json(e.steps), e.documentsIn, e.documentsOut, e.documentsFailed, e.warnings, e.owner, e.attempt, e.leaseEpoch],
        );
        if (!written) throw fencedWrite(e.id, e.leaseEpoch);
      },
      claim: async (id, owner, at) => {
        const row = await one<ExecutionRow>("UPDATE executions SET status = 'in-process', owner = $2, started_at = $3, lease_epoch = lease_epoch + 1 WHERE id = $1 AND status = 'queued' RETURNING *", [id, owner, at]);
        return row && toExecution(row);
      },
      withdraw: async (id, at, code, message) => changed("UPDATE executions SET status = 'discarded', ended_at = $2, error_code = $3, error_message = $4 WHERE id = $1 AND status = 'queued'", [id, at, code, message]),
      requestCancel: async (id, at, by) =>
        changed("UPDATE executions SET cancel_requested_at = COALESCE(cancel_requested_at, $2), cancel_requested_by = COALESCE(cancel_requested_by, $3) WHERE id = $1 AND status = 'in-process'", [id, at, by]),
      cancelsRequested: async (owner) =>
        (
          await all<CancelRow>("SELECT id, account_id, cancel_requested_by, cancel_requested_at FROM executions WHERE owner = $1 AND status = 'in-process' AND cancel_requested_at IS NOT NULL ORDER BY cancel_requested_at, id", [owner])
        ).map(toCancel),
      get: async (accountId, id) => {
        const row = await one<ExecutionRow>('SELECT * FROM executions WHERE account_id = $1 AND id = $2', [accountId, id]);
        return row && toExecution(row);
      },
      list: async (accountId, filter) =>
        (
          await all<ExecutionRow>(
            `SELECT * FROM executions WHERE account_id = $1 AND ($2::text IS NULL OR process_id = $2) AND ($3::text IS NULL OR status = $3)
             AND ($5::text IS NULL OR strpos(lower(id), $5) > 0 OR strpos(lower(process_id), $5) > 0)
             AND ($6::text IS NULL OR queued_at < $6 OR (queued_at = $6 AND id < $7))
             ORDER BY queued_at DESC, id DESC LIMIT $4`,
            [accountId, filter.processId ?? null, filter.status ?? null, filter.limit, filter.search ? filter.search.toLowerCase() : null, filter.before?.queuedAt ?? null, filter.before?.id ?? null],
          )
        ).map(toExecution),
      queued: async (limit) => (await all<ExecutionRow>("SELECT * FROM executions WHERE status = 'queued' ORDER BY queued_at, id LIMIT $1", [limit])).map(toExecution),
      inputs: async (id) => (await all<InputRow>('SELECT seq, properties, body_kind, body, path, size FROM execution_inputs WHERE execution_id = $1 ORDER BY seq', [id])).map(toInput),
      dropInputs: async (id) => void (await r.query('DELETE FROM execution_inputs WHERE execution_id = $1', [id])),
      interrupt: async (owner, at, code, message) =>
        (
          await all<{ id: string }>(
            "UPDATE executions SET status = 'aborted', ended_at = $2, error_code = $3, error_message = $4 WHERE status = 'in-process' AND (owner = $1 OR owner IS NULL) RETURNING id",
            [owner, at, code, message],
          )
        ).map((row) => ({ id: row.id, status: 'aborted' as const })),
      // one node purges at a time: the others find the lock taken and leave it to that one
      purge: (before) =>
        r.atomic(async (runner) => {
          const lock = await runner.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock(hashtext($1 || current_schema())) AS locked', [PURGE_LOCK]);
          if (lock.rows[0]?.locked !== true) return [];
          const purged = await runner.query<{ id: string }>("DELETE FROM executions WHERE ended_at IS NOT NULL AND ended_at < $1 AND status NOT IN ('queued', 'in-process') RETURNING id", [before]);
          return purged.rows.map((row) => row.id);
        }),
      insertErrors: async (id, errors, leaseEpoch) => {
        if (errors.length === 0) return;
        // with an epoch, the rows go in only while the run still holds the record (one statement: no window between check and insert)
        const result = await r.query(
          `INSERT INTO execution_errors (execution_id, seq, step, code, message) SELECT $1, s.seq - 1, s.step, s.code, s.message FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS s(step, code, message, seq)
           WHERE $5::integer IS NULL OR EXISTS (SELECT 1 FROM executions WHERE id = $1 AND lease_epoch = $5)`,
          [id, errors.map((e) => e.step), errors.map((e) => e.code), errors.map((e) => e.message), leaseEpoch ?? null],
        );
        if (leaseEpoch !== undefined && result.rowCount === 0) throw fencedWrite(id, leaseEpoch);
      },
      errors: async (id, limit) => all<{ step: string; code: string; message: string }>('SELECT step, code, message FROM execution_errors WHERE execution_id = $1 ORDER BY seq LIMIT $2', [id, limit]),
      appendLog: async (id, lines, leaseEpoch) => {
        if (leaseEpoch === undefined) return void (await r.query('INSERT INTO execution_logs (execution_id, lines) VALUES ($1, $2)', [id, lines]));
        const result = await r.query('INSERT INTO execution_logs (execution_id, lines) SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM executions WHERE id = $1 AND lease_epoch = $3)', [id, lines, leaseEpoch]);
        if (result.rowCount === 0) throw fencedWrite(id, leaseEpoch);
      },
      log: async (id) => (await all<{ lines: string }>('SELECT lines FROM execution_logs WHERE execution_id = $1 ORDER BY id', [id])).map((row) => row.lines),
      saveDefinition: async (id, definition) =>
        void (await r.query('INSERT INTO execution_definitions (execution_id, definition) VALUES ($1, $2) ON CONFLICT (execution_id) DO UPDATE SET definition = excluded.definition', [id, json(definition)])),
      definition: async (id) => {
        const row = await one<{ definition: string }>('SELECT definition FROM execution_definitions WHERE execution_id = $1', [id]);
        return row && storedDefinition(row.definition);
      },
    },
    cluster: clusterMethods(r),
    resources: {
      insert: async (h) =>
        void (await r.query('INSERT INTO held_resources (id, account_id, connection_id, connector_id, kind, data, created_at, attempts, last_error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
          h.id,
          h.accountId,
          h.connectionId,
          h.connectorId,
          h.kind,
          json(h.data),
          h.createdAt,
          h.attempts,
          h.lastError,
        ])),
      delete: async (id) => changed('DELETE FROM held_resources WHERE id = $1', [id]),
      get: async (id) => {
        const row = await one<HeldResourceRow>('SELECT * FROM held_resources WHERE id = $1', [id]);
        return row && toHeldResource(row);
      },
      list: async () => (await all<HeldResourceRow>('SELECT * FROM held_resources ORDER BY created_at, id')).map(toHeldResource),
      failed: async (id, error) => void (await r.query('UPDATE held_resources SET attempts = attempts + 1, last_error = $1 WHERE id = $2', [error, id])),
    },
    stepData: {
      insert: async (executionId, documents) => {
        if (documents.length === 0) return;
        // one statement: each step's documents numbered on from that step's last seq, in the order given
        await r.query(
          `INSERT INTO execution_step_documents (execution_id, step, seq, properties, input_properties, body, size)
           SELECT $1, d.step,
             COALESCE((SELECT MAX(seq) FROM execution_step_documents WHERE execution_id = $1 AND step = d.step), -1) + ROW_NUMBER() OVER (PARTITION BY d.step ORDER BY d.n),
             d.properties, d.input, d.body, d.size
           FROM unnest($2::text[], $3::text[], $4::text[], $5::bytea[], $6::bigint[]) WITH ORDINALITY AS d(step, properties, input, body, size, n)`,
          [
            executionId,
            documents.map((d) => d.step),
            documents.map((d) => json(d.properties)),
            documents.map((d) => (d.input ? json(d.input) : null)),
            documents.map((d) => Buffer.from(d.body.buffer, d.body.byteOffset, d.body.byteLength)),
            documents.map((d) => d.size),
          ],
        );
      },
      list: async (executionId, step, page) =>
        (
          await all<StepDocumentRow>('SELECT seq, step, properties, input_properties, body, size FROM execution_step_documents WHERE execution_id = $1 AND step = $2 AND seq > $3 ORDER BY seq LIMIT $4', [
            executionId,
            step,
            page.after,
            page.limit,
          ])
        ).map(toStepDocument),
      steps: async (executionId) =>
        (await all<{ step: string; count: string }>('SELECT step, COUNT(*) AS count FROM execution_step_documents WHERE execution_id = $1 GROUP BY step ORDER BY step', [executionId])).map((row) => ({
          step: row.step,
          count: Number(row.count),
        })),
    },
  };
}

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  /** Pool size (default 10). */
  poolSize?: number;
  /** The schema the store's tables live in (default: the server's search_path, normally `public`). */
  schema?: string;
  /** Milliseconds to wait for a connection before the store counts as unreachable (default 5000). */
  connectTimeoutMs?: number;
  /** Told about errors of idle pooled connections (the server went away), which have no caller. */
  onIdleError?: (error: StoreUnavailableError) => void;
  /** The first wait before a lost listening connection (notifications) is opened again (default 500 ms, doubling to 10 s). */
  listenRetryMs?: number;
}

/** The advisory lock key of a schema's migrations (one migrator per schema at a time). */
const MIGRATION_LOCK = 'quark_schema';

/** Applies the migrations not yet recorded in `quark_schema`, under an advisory lock. */
async function migrate(client: pg.PoolClient, quarkVersion: string): Promise<void> {
  await client.query('SELECT pg_advisory_lock(hashtext($1 || current_schema()))', [MIGRATION_LOCK]);
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS quark_schema (version INTEGER PRIMARY KEY, applied_at ${T} NOT NULL, quark_version TEXT NOT NULL)`);
    const applied = (await client.query<{ v: number | null }>('SELECT MAX(version) AS v FROM quark_schema')).rows[0]?.v ?? 0;
    if (applied > migrations.length) {
      throw quarkError(
        'QUARK_ERR_STORE_TOO_NEW',
        `the PostgreSQL store is at schema version ${applied}, newer than this quark ${quarkVersion} knows (${migrations.length}); run a quark at least as new as the one that last migrated it`,
      );
    }
    for (let i = applied; i < migrations.length; i++) {
      await client.query('BEGIN');
      try {
        await client.query(migrations[i]!);
        await client.query('INSERT INTO quark_schema (version, applied_at, quark_version) VALUES ($1, $2, $3)', [i + 1, new Date().toISOString(), quarkVersion]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1 || current_schema()))', [MIGRATION_LOCK]);
  }
}

/** node-postgres's options for a schema: every pooled connection starts with it on its search_path. */
function schemaOption(schema: string | undefined): { options?: string } {
  if (schema === undefined) return {};
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`schema name ${JSON.stringify(schema)} must be lower-case letters, digits and underscores`);
  return { options: `-c search_path=${schema}` };
}

/**
 * Opens the store at `url`, creating the schema's tables or migrating them. Rejects with
 * StoreUnavailableError when the server cannot be reached (the caller retries) and
 * QUARK_ERR_STORE_TOO_NEW when a newer quark migrated it.
 */
export async function openPostgresStore(options: PostgresStoreOptions, quarkVersion = 'unknown'): Promise<Store> {
  const address = postgresAddress(options.url);
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    keepAlive: true,
    types: storeTypes,
    ...schemaOption(options.schema),
  });
  const state = { reachable: true, closed: false };
  const toStoreError = (error: unknown): unknown => {
    const mapped = storeError(error, address);
    if (mapped instanceof StoreUnavailableError) state.reachable = false;
    return mapped;
  };
  // an idle pooled connection whose server went away: no caller to tell, and an unheard 'error' would end the process
  pool.on('error', (error) => {
    state.reachable = false;
    options.onIdleError?.(new StoreUnavailableError(`PostgreSQL at ${address} closed a connection: ${messageOf(error)}`, { cause: error }));
  });

  const closedError = (): StoreUnavailableError => new StoreUnavailableError(`the PostgreSQL store (${address}) is closed`);

  const connect = async (): Promise<pg.PoolClient> => {
    if (state.closed) throw closedError();
    try {
      const client = await pool.connect();
      state.reachable = true;
      return client;
    } catch (error) {
      throw toStoreError(error);
    }
  };

  let first: pg.PoolClient;
  let schema: string;
  try {
    first = await connect();
    try {
      await migrate(first, quarkVersion);
      schema = (await first.query<{ schema: string }>('SELECT current_schema() AS schema')).rows[0]!.schema;
    } finally {
      first.release();
    }
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw toStoreError(error);
  }

  /** Runs `work` on one pooled client between BEGIN and COMMIT (ROLLBACK when it rejects). */
  async function inTransaction<T>(work: (runner: Runner) => Promise<T>): Promise<T> {
    const client = await connect();
    // a checked-out client whose server goes away between queries emits 'error': heard here, the next query rejects
    const heard = (): void => {
      state.reachable = false;
    };
    client.on('error', heard);
    let broken: unknown;
    try {
      await client.query('BEGIN');
      const value = await work(clientRunner(client));
      await client.query('COMMIT');
      return value;
    } catch (error) {
      broken = error;
      await client.query('ROLLBACK').catch((rollbackError: unknown) => {
        broken = rollbackError;
      });
      throw toStoreError(error);
    } finally {
      client.off('error', heard);
      // a client that failed to roll back is not given back to the pool
      client.release(isUnavailable(broken) ? (broken as Error) : undefined);
    }
  }

  let savepoints = 0;
  function clientRunner(client: pg.PoolClient): Runner {
    const runner: Runner = {
      query: async (text, values) => {
        try {
          return await client.query(text, encodeValues(values));
        } catch (error) {
          throw toStoreError(error);
        }
      },
      atomic: async (work) => {
        const name = `quark_sp_${++savepoints}`;
        await runner.query(`SAVEPOINT ${name}`);
        try {
          const value = await work(runner);
          await runner.query(`RELEASE SAVEPOINT ${name}`);
          return value;
        } catch (error) {
          await runner.query(`ROLLBACK TO SAVEPOINT ${name}`);
          throw error;
        }
      },
    };
    return runner;
  }

  const poolRunner: Runner = {
    query: async (text, values) => {
      if (state.closed) throw closedError();
      try {
        const result = await pool.query(text, encodeValues(values));
        state.reachable = true;
        return result;
      } catch (error) {
        throw toStoreError(error);
      }
    },
    atomic: inTransaction,
  };

  const notifications = createPostgresNotifications({ url: options.url, schema, address, query: (text, values) => poolRunner.query(text, values), ...(options.listenRetryMs ? { retryMs: options.listenRetryMs } : {}) });

  return {
    ...recordMethods(poolRunner),
    notifications: { notify: notifications.notify, listen: notifications.listen },
    transaction: (work) => inTransaction((runner) => work(recordMethods(runner))),
    ping: async () => {
      await poolRunner.query('SELECT 1');
    },
    healthy: () => !state.closed && state.reachable,
    close: async () => {
      if (state.closed) return;
      state.closed = true;
      await notifications.close();
      await pool.end();
    },
  };
}
