/**
 * The store interface. The embedded SQLite implementation (sqlite-store.ts) is the
 * default; a clustered store for molecules implements the same interface.
 */

export type AccountRelation = 'owner' | 'tenant' | 'guest';

export interface AccountRecord {
  id: string;
  name: string;
  relation: AccountRelation;
  createdAt: string;
}

export interface TokenRecord {
  id: string;
  accountId: string;
  name: string;
  /** sha256 of the token; the token itself is never stored. */
  hash: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface ConnectionRecord {
  id: string;
  accountId: string;
  connectorId: string;
  name: string;
  /** The configuration without its secret fields. */
  config: Record<string, unknown>;
  /** Sealed secret values by JSON pointer. */
  secrets: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  revision: number;
}

export interface DeploymentRecord {
  accountId: string;
  processId: string;
  version: number;
  name: string;
  /** The process definition as deployed (JSON); null when the stored text cannot be read as one. */
  definition: Record<string, unknown> | null;
  deployedAt: string;
  /** The account name that deployed it. */
  deployedBy: string;
  /** For example "rollback to version 2". */
  note: string | null;
}

export type CatchUpPolicy = 'skip' | 'once';

export interface ScheduleRecord {
  cron: string;
  timezone?: string;
  /** Fires missed while the runtime was stopped: skipped (default) or caught up by one run at start. */
  catchUp?: CatchUpPolicy;
}

/** When a schedule last fired, or was set if it never fired. */
export interface ScheduleFireRecord {
  cron: string;
  timezone?: string;
  lastFiredAt: string;
}

export interface ProcessRecord {
  accountId: string;
  processId: string;
  /** null once undeployed. */
  activeVersion: number | null;
  schedules: ScheduleRecord[];
  /** Set when the stored schedules could not be read (then `schedules` is empty). */
  schedulesUnreadable?: true;
  /** Persisted process properties. */
  properties: Record<string, unknown>;
  updatedAt: string;
}

export type ExecutionStatus = 'queued' | 'in-process' | 'complete' | 'complete-with-warnings' | 'error' | 'aborted' | 'discarded';
export type ExecutionTrigger = 'manual' | 'api' | 'schedule' | 'test';

export interface ExecutionRecord {
  id: string;
  accountId: string;
  processId: string;
  /** null for a test-mode run of an undeployed definition. */
  version: number | null;
  trigger: ExecutionTrigger;
  status: ExecutionStatus;
  queuedAt: string;
  startedAt: string | null;
  endedAt: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  /** Per step id: documents in, out, errored. */
  steps: Record<string, { in: number; out: number; errors: number }>;
  documentsIn: number;
  documentsOut: number;
  documentsFailed: number;
  warnings: number;
}

export interface ExecutionListFilter {
  processId?: string;
  status?: ExecutionStatus;
  search?: string;
  before?: { queuedAt: string; id: string };
  limit: number;
}

export interface ExecutionErrorRecord {
  step: string;
  code: string;
  message: string;
}

/**
 * A resource an operation holds outside the runtime until it releases it (an S3
 * multipart upload): what recovery needs to release it if the runtime dies first.
 */
export interface HeldResourceRecord {
  id: string;
  accountId: string;
  connectionId: string;
  connectorId: string;
  kind: string;
  /** The connector's description of the resource; never secrets (checked when held). */
  data: Record<string, unknown>;
  createdAt: string;
  /** Recover attempts that failed, and the last one's error. */
  attempts: number;
  lastError: string | null;
}

export interface Store {
  accounts: {
    insert(account: AccountRecord): void;
    get(id: string): AccountRecord | undefined;
    findByName(name: string): AccountRecord | undefined;
    list(): AccountRecord[];
  };
  tokens: {
    insert(token: TokenRecord): void;
    findByHash(hash: string): TokenRecord | undefined;
    get(id: string): TokenRecord | undefined;
    list(accountId?: string): TokenRecord[];
    revoke(id: string, at: string): void;
  };
  connections: {
    insert(connection: ConnectionRecord): void;
    /** Replaces a connection if its revision is still `expectedRevision`; returns whether it did. */
    update(connection: ConnectionRecord, expectedRevision: number): boolean;
    get(accountId: string, id: string): ConnectionRecord | undefined;
    findByName(accountId: string, name: string): ConnectionRecord | undefined;
    list(accountId: string): ConnectionRecord[];
    delete(accountId: string, id: string): boolean;
  };
  processes: {
    /** Records a new version and makes it the active one, in one transaction. */
    deploy(deployment: DeploymentRecord): void;
    latestVersion(accountId: string, processId: string): number;
    get(accountId: string, processId: string): ProcessRecord | undefined;
    /** Every account's processes when accountId is undefined. */
    list(accountId?: string): ProcessRecord[];
    version(accountId: string, processId: string, version: number): DeploymentRecord | undefined;
    versions(accountId: string, processId: string): DeploymentRecord[];
    setActive(accountId: string, processId: string, version: number | null, at: string): void;
    /** Replaces the schedules; a schedule kept (same cron and time zone) keeps its last fire time, a new one counts from `at`. */
    setSchedules(accountId: string, processId: string, schedules: ScheduleRecord[], at: string): void;
    lastFires(accountId: string, processId: string): ScheduleFireRecord[];
    recordFire(accountId: string, processId: string, schedule: ScheduleRecord, at: string): void;
    setProperties(accountId: string, processId: string, properties: Record<string, unknown>): void;
    /**
     * Sets the named persisted properties, each on its own, atomically, leaving every
     * other property as it is (undefined removes one): overlapping executions never lose
     * each other's updates; the last writer of a property wins.
     */
    mergeProperties(accountId: string, processId: string, updates: ReadonlyMap<string, unknown>): void;
  };
  executions: {
    insert(execution: ExecutionRecord): void;
    update(execution: ExecutionRecord): void;
    get(accountId: string, id: string): ExecutionRecord | undefined;
    /**
     * Newest first (queued time, then id, both descending). `search`: the id or the process
     * id holds it, ignoring case. `before`: only executions after that one in this order
     * (keyset paging: a page goes on from the last row of the previous one).
     */
    list(accountId: string, filter: ExecutionListFilter): ExecutionRecord[];
    /** After a crash: running → aborted, queued → discarded, with the reason. Returns the ids touched. */
    interrupt(at: string, code: string, message: string): { id: string; status: ExecutionStatus }[];
    /** Deletes finished executions that ended before `before`; returns their ids. */
    purge(before: string): string[];
    insertErrors(id: string, errors: ExecutionErrorRecord[]): void;
    errors(id: string, limit: number): ExecutionErrorRecord[];
    /** Appends NDJSON lines (each ending with a newline) to the execution's log. */
    appendLog(id: string, lines: string): void;
    /** The execution's log, in chunks of NDJSON lines, in order. */
    log(id: string): string[];
  };
  resources: {
    /** Durable when it returns: a process crash cannot lose it. */
    insert(resource: HeldResourceRecord): void;
    /** Returns whether there was such a record. */
    delete(id: string): boolean;
    get(id: string): HeldResourceRecord | undefined;
    /** Every record, oldest first. */
    list(): HeldResourceRecord[];
    /** Counts a failed recover attempt, with its error. */
    failed(id: string, error: string): void;
  };
  /** Runs `work` in one transaction. */
  transaction<T>(work: () => T): T;
  healthy(): boolean;
  close(): void;
}
