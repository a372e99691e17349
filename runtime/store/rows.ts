/**
 * The rows both stores read, turned into the records of types.ts: one mapper a table,
 * shared by the SQLite store (sqlite-store.ts) and the PostgreSQL one (postgres-store.ts).
 * The dialects differ in how their drivers hand some columns over: a JSON column is text
 * in SQLite and already parsed (jsonb) in PostgreSQL, an inline input body base64 text or
 * bytes, a BIGINT size a number or a string. Each store takes the mappers made for its
 * dialect (`sqliteRows`, `postgresRows`); a damaged stored value reads as the records say
 * (none, flagged, or null), never as a throw that would break a list.
 */
import type {
  CancelRequest,
  ConnectionRecord,
  DeploymentRecord,
  ExecutionRecord,
  ExecutionStatus,
  ExecutionTrigger,
  HeldResourceRecord,
  ProcessRecord,
  QueuedInputRecord,
  ScheduleRecord,
  StepDocumentRecord,
  TokenRecord,
} from './types.js';

/** A JSON column's value as the driver hands it: text (SQLite) or parsed jsonb (PostgreSQL). */
type Json = unknown;

export interface TokenRow {
  id: string;
  account_id: string;
  name: string;
  hash: string;
  created_at: string;
  revoked_at: string | null;
}

export interface ConnectionRow {
  id: string;
  account_id: string;
  connector_id: string;
  name: string;
  config: Json;
  secrets: Json;
  created_at: string;
  updated_at: string;
  revision: number;
}

export interface DeploymentRow {
  account_id: string;
  process_id: string;
  version: number;
  name: string;
  /** TEXT in both dialects. */
  definition: string;
  deployed_at: string;
  deployed_by: string;
  note: string | null;
}

export interface ProcessRow {
  account_id: string;
  process_id: string;
  active_version: number | null;
  /** TEXT in both dialects. */
  schedules: string;
  properties: Json;
  updated_at: string;
}

export interface ExecutionRow {
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
  steps: Json;
  documents_in: number;
  documents_out: number;
  documents_failed: number;
  warnings: number;
  owner: string | null;
  attempt: number;
  schedule_key: string | null;
  scheduled_at: string | null;
  lease_epoch: number;
  /** From migration 10. */
  cancel_requested_at?: string | null;
}

export interface CancelRow {
  id: string;
  account_id: string;
  cancel_requested_by: string | null;
  cancel_requested_at: string;
}

export interface HeldResourceRow {
  id: string;
  account_id: string;
  connection_id: string;
  connector_id: string;
  kind: string;
  data: Json;
  created_at: string;
  attempts: number;
  last_error: string | null;
}

export interface InputRow {
  seq: number;
  properties: Json;
  body_kind: 'inline' | 'file';
  /** An inline body: base64 text (SQLite) or bytes (PostgreSQL's BYTEA). */
  body: string | Buffer | null;
  path: string | null;
  /** A BIGINT: a string in PostgreSQL. */
  size: number | string | null;
}

export interface StepDocumentRow {
  seq: number;
  step: string;
  /** TEXT in both dialects (jsonb would reorder the keys). */
  properties: string;
  input_properties: string | null;
  body: Buffer;
  size: number | string;
}

export const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

/** A stored JSON object, or null when the text is not one (a damaged record must not break a list). */
export function parseObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : null;
  } catch {
    return null;
  }
}

/** A stored test-mode definition; one that is not a JSON object reads as null, as a deployment's does. */
export const storedDefinition = (text: string): Record<string, unknown> | null => parseObject(text);

/** The schedules column: a damaged one reads as none, flagged, so the scheduler reports it. */
function storedSchedules(text: string): { schedules: ScheduleRecord[]; schedulesUnreadable?: true } {
  try {
    const value: unknown = JSON.parse(text);
    const valid = Array.isArray(value) && value.every((s) => isObject(s) && typeof s.cron === 'string');
    return valid ? { schedules: value as ScheduleRecord[] } : { schedules: [], schedulesUnreadable: true };
  } catch {
    return { schedules: [], schedulesUnreadable: true };
  }
}

/** Stored step-data properties: the string-valued entries of a JSON object; anything else (a damaged row) reads as none. */
function stringProperties(text: string): Record<string, string> {
  return Object.fromEntries(Object.entries(parseObject(text) ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/** An inline input body as base64, whichever way the driver handed it over. */
const base64Of = (body: string | Buffer | null): string => (typeof body === 'string' ? body : (body ?? Buffer.alloc(0)).toString('base64'));

/** How a dialect's driver hands over a JSON column: its value, parsed. */
export type JsonColumn = (value: Json) => unknown;

/** The mappers of one dialect, over how its JSON columns come. */
export function rowMappers(json: JsonColumn) {
  /** A JSON column that holds an object, or null when it does not (damaged). */
  const storedObject = (value: Json): Record<string, unknown> | null => {
    try {
      const parsed = json(value);
      return isObject(parsed) ? parsed : null;
    } catch {
      return null;
    }
  };
  /** The properties column: a damaged one reads as none, flagged, so deployments and executions report it. */
  const storedProperties = (value: Json): { properties: Record<string, unknown>; propertiesUnreadable?: true } => {
    const properties = storedObject(value);
    return properties === null ? { properties: {}, propertiesUnreadable: true } : { properties };
  };
  return {
    toToken: (row: TokenRow): TokenRecord => ({ id: row.id, accountId: row.account_id, name: row.name, hash: row.hash, createdAt: row.created_at, revokedAt: row.revoked_at }),
    toConnection: (row: ConnectionRow): ConnectionRecord => ({
      id: row.id,
      accountId: row.account_id,
      connectorId: row.connector_id,
      name: row.name,
      config: json(row.config) as Record<string, unknown>,
      secrets: json(row.secrets) as Record<string, string>,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      revision: row.revision,
    }),
    toDeployment: (row: DeploymentRow): DeploymentRecord => ({
      accountId: row.account_id,
      processId: row.process_id,
      version: row.version,
      name: row.name,
      definition: parseObject(row.definition),
      deployedAt: row.deployed_at,
      deployedBy: row.deployed_by,
      note: row.note,
    }),
    toProcess: (row: ProcessRow): ProcessRecord => ({
      accountId: row.account_id,
      processId: row.process_id,
      activeVersion: row.active_version,
      ...storedSchedules(row.schedules),
      ...storedProperties(row.properties),
      updatedAt: row.updated_at,
    }),
    toExecution: (row: ExecutionRow): ExecutionRecord => ({
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
      steps: json(row.steps) as ExecutionRecord['steps'],
      documentsIn: row.documents_in,
      documentsOut: row.documents_out,
      documentsFailed: row.documents_failed,
      warnings: row.warnings,
      owner: row.owner,
      attempt: row.attempt,
      ...(row.schedule_key !== null && row.scheduled_at !== null ? { schedule: { key: row.schedule_key, at: row.scheduled_at } } : {}),
      leaseEpoch: row.lease_epoch,
      ...(row.cancel_requested_at ? { cancelRequestedAt: row.cancel_requested_at } : {}),
    }),
    toCancel: (row: CancelRow): CancelRequest => ({ id: row.id, accountId: row.account_id, by: row.cancel_requested_by ?? '', at: row.cancel_requested_at }),
    toHeldResource: (row: HeldResourceRow): HeldResourceRecord => ({
      id: row.id,
      accountId: row.account_id,
      connectionId: row.connection_id,
      connectorId: row.connector_id,
      kind: row.kind,
      data: json(row.data) as Record<string, unknown>,
      createdAt: row.created_at,
      attempts: row.attempts,
      lastError: row.last_error,
    }),
    toInput: (row: InputRow): QueuedInputRecord => ({
      seq: row.seq,
      properties: storedObject(row.properties) ?? {},
      body: row.body_kind === 'inline' ? { kind: 'inline', base64: base64Of(row.body) } : { kind: 'file', path: row.path ?? '', size: Number(row.size ?? 0) },
    }),
    toStepDocument: (row: StepDocumentRow): StepDocumentRecord => ({
      seq: row.seq,
      step: row.step,
      properties: stringProperties(row.properties),
      ...(row.input_properties === null ? {} : { input: stringProperties(row.input_properties) }),
      body: new Uint8Array(row.body),
      size: Number(row.size),
    }),
  };
}

export type RowMappers = ReturnType<typeof rowMappers>;

/** SQLite's rows: JSON columns are text. */
export const sqliteRows: RowMappers = rowMappers((value) => JSON.parse(value as string));

/** PostgreSQL's rows: JSON columns are jsonb, parsed by the driver. */
export const postgresRows: RowMappers = rowMappers((value) => value);
