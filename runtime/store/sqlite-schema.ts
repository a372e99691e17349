/**
 * The SQLite store's schema: its migrations (PRAGMA user_version counts those applied),
 * and the named parameters its statements take. The rows it reads become records in
 * rows.ts (`sqliteRows`), shared with the PostgreSQL store.
 */
import type { ExecutionRecord, ExecutionListFilter, QueuedInputRecord, StepDocumentRecord } from './types.js';

/** The SQLite JSON path of a top-level key (process property names never hold a double quote). */
export function propertyPath(name: string): string {
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
  // 6: durable queued executions: the node that runs one, its attempt, and the input
  // documents of a queued one. Queued rows of an earlier quark had their inputs in memory
  // only; they cannot run, so they are discarded, as that quark did at its next start.
  `ALTER TABLE executions ADD COLUMN owner TEXT;
   ALTER TABLE executions ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
   CREATE INDEX executions_queued ON executions (status, queued_at, id);
   CREATE TABLE execution_inputs (
     execution_id TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
     seq INTEGER NOT NULL,
     properties TEXT NOT NULL,
     body_kind TEXT NOT NULL CHECK (body_kind IN ('inline', 'file')),
     body TEXT,
     path TEXT,
     size INTEGER,
     PRIMARY KEY (execution_id, seq)
   );
   UPDATE executions SET status = 'discarded', ended_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), error_code = 'QUARK_ERR_EXECUTION_INTERRUPTED',
     error_message = 'queued by an earlier quark version, which kept the inputs of queued executions in memory only'
   WHERE status = 'queued';`,
  // 7: the schedule fire a scheduled run is (nominal time and key), unique per process:
  // nodes sharing a store that fire together insert it once (older rows have none)
  `ALTER TABLE executions ADD COLUMN schedule_key TEXT;
   ALTER TABLE executions ADD COLUMN scheduled_at TEXT;
   CREATE UNIQUE INDEX executions_schedule_key ON executions (account_id, process_id, schedule_key);`,
  // 8: the lease epoch of a run (fencing: every write of the run carries it). The cluster
  // tables of the same PostgreSQL migration are not here: a molecule needs PostgreSQL.
  `ALTER TABLE executions ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;`,
  // 9: step data, the documents that left each step of an execution that records it (test
  // mode, options.recordStepData, or the request's recordStepData): properties, the ones
  // it entered the step with, the head of the body and its whole size; and the definition
  // a test-mode run ran (it has no deployed version to read it from); both deleted with the
  // execution (purge)
  `CREATE TABLE execution_step_documents (
     execution_id TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
     step TEXT NOT NULL,
     seq INTEGER NOT NULL,
     properties TEXT NOT NULL,
     input_properties TEXT,
     body BLOB NOT NULL,
     size INTEGER NOT NULL,
     PRIMARY KEY (execution_id, step, seq)
   );
   CREATE TABLE execution_definitions (
     execution_id TEXT PRIMARY KEY REFERENCES executions(id) ON DELETE CASCADE,
     definition TEXT NOT NULL
   );`,
  // 10: a cancel of an in-process execution, kept until the node that runs it stops the
  // run: its notification to that node may be lost (a LISTEN reconnect), the record is not
  `ALTER TABLE executions ADD COLUMN cancel_requested_at TEXT;
   ALTER TABLE executions ADD COLUMN cancel_requested_by TEXT;
   CREATE INDEX executions_cancel_requested ON executions (owner) WHERE cancel_requested_at IS NOT NULL AND status = 'in-process';`,
  // 11: executions_by_status (status) is covered by executions_queued (status, queued_at,
  // id) of migration 6: every lookup by status alone uses that one (EXPLAIN QUERY PLAN),
  // and each write of an execution kept both up to date
  `DROP INDEX IF EXISTS executions_by_status;`,
  // 12: executions_schedule_key holds only the scheduled runs (a partial index): every
  // other execution has no key (NULL, never a clash) and cost an entry in it at its insert
  `DROP INDEX IF EXISTS executions_schedule_key;
   CREATE UNIQUE INDEX executions_schedule_key ON executions (account_id, process_id, schedule_key) WHERE schedule_key IS NOT NULL;`,
];

export const executionParams = (e: ExecutionRecord) => ({ ...e, steps: JSON.stringify(e.steps), schedule: undefined, scheduleKey: e.schedule?.key ?? null, scheduledAt: e.schedule?.at ?? null });

/** The named parameters of the executions list query (null: no such condition; the search in lower case, as the query compares it). */
export const executionListParams = (accountId: string, filter: ExecutionListFilter) => ({
  accountId,
  processId: filter.processId ?? null,
  status: filter.status ?? null,
  search: filter.search ? filter.search.toLowerCase() : null,
  beforeAt: filter.before?.queuedAt ?? null,
  beforeId: filter.before?.id ?? null,
  limit: filter.limit,
});

export const inputParams = (executionId: string, input: QueuedInputRecord) => ({
  executionId,
  seq: input.seq,
  properties: JSON.stringify(input.properties),
  bodyKind: input.body.kind,
  body: input.body.kind === 'inline' ? input.body.base64 : null,
  path: input.body.kind === 'file' ? input.body.path : null,
  size: input.body.kind === 'file' ? input.body.size : null,
});

export const stepDocumentParams = (executionId: string, seq: number, d: Omit<StepDocumentRecord, 'seq'>) => ({
  executionId,
  step: d.step,
  seq,
  properties: JSON.stringify(d.properties),
  input: d.input ? JSON.stringify(d.input) : null,
  body: Buffer.from(d.body.buffer, d.body.byteOffset, d.body.byteLength),
  size: d.size,
});
