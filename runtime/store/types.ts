/**
 * The store interface, async: every method returns a promise, so an implementation may
 * talk to a server (PostgreSQL) without blocking the event loop. The embedded SQLite
 * implementation (sqlite-store.ts) is the default. Unique constraints decide clashes
 * (StoreConflictError), revisions decide lost updates (StoreRaceError), and a store that
 * cannot be reached says so (StoreUnavailableError); see errors.ts.
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
  /** Set when the stored properties could not be read (then `properties` is empty; the next merge starts them again). */
  propertiesUnreadable?: true;
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
  /** The node id that runs or ran it (on one node: the runtime's, kept in the home); null while queued and not yet taken. */
  owner: string | null;
  /** 1 for the first run. */
  attempt: number;
  /**
   * The fencing token of the run: raised by every claim (executions.claim), and every
   * later write of the run carries it; a write whose epoch moved on is refused
   * (StoreFencedError), so a node that lost its claim cannot overwrite the record.
   */
  leaseEpoch: number;
  /** In a molecule: when a cancel of it was requested while another node ran it (executions.requestCancel). */
  cancelRequestedAt?: string;
  /** Set on a run a schedule started: which fire it is. Unique per process, so of the nodes that fire it only one inserts it. */
  schedule?: ScheduledFire;
}

/** A cancel kept in the record of an in-process execution (executions.requestCancel). */
export interface CancelRequest {
  id: string;
  accountId: string;
  /** Who cancelled it (an account name). */
  by: string;
  at: string;
}

/** One fire of a schedule: its nominal time (from the cron expression and time zone, not the clock at the firing) and the key that makes it unique. */
export interface ScheduledFire {
  /** The nominal fire time, ISO 8601 UTC. */
  at: string;
  /** The fire's identity within its process: the nominal time with the schedule's cron and time zone. */
  key: string;
}

/** One input document of a queued execution, stored with it so that a restart can run it. */
export interface QueuedInputRecord {
  seq: number;
  properties: Record<string, unknown>;
  /** Small bodies inline; larger ones as files under `<home>/work/queued/<executionId>/`. */
  body: { kind: 'inline'; base64: string } | { kind: 'file'; path: string; size: number };
}

export interface ExecutionListFilter {
  processId?: string;
  status?: ExecutionStatus;
  /** The execution id or the process id holds it, ignoring case. */
  search?: string;
  /** Keyset paging: only the executions after this one in the list's order. */
  before?: { queuedAt: string; id: string };
  limit: number;
}

export interface ExecutionErrorRecord {
  step: string;
  code: string;
  message: string;
}

/** A document that left a step, as recorded: its properties and the head of its body. */
export interface StepDocumentRecord {
  /** Its place among the step's recorded documents, from 0. */
  seq: number;
  step: string;
  properties: Record<string, string>;
  /** The properties it had when it entered the step, when known. */
  input?: Record<string, string>;
  /** The first bytes of the body (limits.stepDataBodyBytes). */
  body: Uint8Array;
  /** The whole body's size in bytes. */
  size: number;
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

/** The identity of a molecule, one row in its PostgreSQL database (written by `quark init --kind molecule`). */
export interface ClusterRecord {
  /** The runtime id every node of the cluster shares. */
  id: string;
  name: string;
  kind: string;
  ownerId: string;
  ownerName: string;
  /** HMAC-SHA256(master key, "quark"), hex: proves a node's key without the key ever leaving its home. */
  keyFingerprint: string;
  /** The queue URL (it may hold a password), sealed with the master key; what `quark init --join` reads. */
  queueSealed: string;
  createdAt: string;
}

/** One node of a molecule, as it reports itself (heartbeats). */
export interface NodeRecord {
  id: string;
  /** The API address it listens on; null until it listens. */
  address: string | null;
  version: string;
  pid: number;
  startedAt: string;
  heartbeatAt: string;
  /** Executions running on it at its last heartbeat. */
  running: number;
  draining: boolean;
}

/** The cluster tables (PostgreSQL only: a molecule needs a shared database). */
export interface ClusterStore {
  get(): Promise<ClusterRecord | undefined>;
  /** StoreConflictError('id') when the database holds a cluster already. */
  create(cluster: ClusterRecord): Promise<void>;
  /** Registers a node at its start (a restart of the same node replaces its row). */
  upsertNode(node: NodeRecord): Promise<void>;
  /** A heartbeat: the time, the running count, draining; the address once known. */
  heartbeat(id: string, at: string, running: number, draining: boolean, address: string | null): Promise<void>;
  /** By start time. */
  nodes(): Promise<NodeRecord[]>;
  /**
   * The in-process executions of lost nodes: owned by a node whose heartbeat is older than
   * `staleBefore`, or that has no row; never `except`'s (the asking node is alive). With
   * `owner`, only that node's in-process ones, whatever its heartbeat (a node's own
   * restart). Oldest first.
   */
  lostRuns(query: { staleBefore: string; except: string; limit: number } | { owner: string; limit: number }): Promise<ExecutionRecord[]>;
  /**
   * Node loss, retried: an in-process execution still at `leaseEpoch` goes back to
   * queued as its next attempt (owner and start cleared, counts and errors of the lost
   * attempt dropped, its stored inputs kept), the epoch raised so the lost node can write
   * nothing more; the requeued record, or undefined when another node accounted for it first.
   */
  requeue(id: string, leaseEpoch: number): Promise<ExecutionRecord | undefined>;
  /** Node loss, not retried: in-process at `leaseEpoch` → aborted with the reason, the epoch raised, its stored inputs dropped; false when another node accounted for it first. */
  abandon(id: string, leaseEpoch: number, at: string, code: string, message: string): Promise<boolean>;
  /** Draining, or not: the node stops claiming (nodes list shows it). */
  setDraining(id: string, draining: boolean): Promise<void>;
}

export interface Store {
  /** Present on a store that can hold a molecule (PostgreSQL). */
  cluster?: ClusterStore;
  accounts: {
    /** StoreConflictError('account-name') when the name is taken, ('id') when the id is. */
    insert(account: AccountRecord): Promise<void>;
    get(id: string): Promise<AccountRecord | undefined>;
    findByName(name: string): Promise<AccountRecord | undefined>;
    /** Oldest first. */
    list(): Promise<AccountRecord[]>;
  };
  tokens: {
    /** StoreConflictError('token-hash') when the hash is taken. */
    insert(token: TokenRecord): Promise<void>;
    findByHash(hash: string): Promise<TokenRecord | undefined>;
    get(id: string): Promise<TokenRecord | undefined>;
    /** Oldest first; every account's when accountId is undefined. */
    list(accountId?: string): Promise<TokenRecord[]>;
    /** The first revocation time is kept. */
    revoke(id: string, at: string): Promise<void>;
  };
  connections: {
    /** StoreConflictError('connection-name') when the account has a connection of that name. */
    insert(connection: ConnectionRecord): Promise<void>;
    /**
     * Replaces it if its revision is still expectedRevision and returns true; a revision
     * that moved on rejects with StoreRaceError; no such connection (in that account): false.
     * A new name that is taken: StoreConflictError('connection-name').
     */
    update(connection: ConnectionRecord, expectedRevision: number): Promise<boolean>;
    get(accountId: string, id: string): Promise<ConnectionRecord | undefined>;
    findByName(accountId: string, name: string): Promise<ConnectionRecord | undefined>;
    /** By name. */
    list(accountId: string): Promise<ConnectionRecord[]>;
    delete(accountId: string, id: string): Promise<boolean>;
  };
  processes: {
    /** Allocates the next version atomically (max+1 under the unique key, retried on conflict), records it and makes it active; returns the version. */
    deploy(deployment: Omit<DeploymentRecord, 'version'>): Promise<number>;
    /** 0 when never deployed. */
    latestVersion(accountId: string, processId: string): Promise<number>;
    get(accountId: string, processId: string): Promise<ProcessRecord | undefined>;
    /** Every account's processes when accountId is undefined. */
    list(accountId?: string): Promise<ProcessRecord[]>;
    version(accountId: string, processId: string, version: number): Promise<DeploymentRecord | undefined>;
    versions(accountId: string, processId: string): Promise<DeploymentRecord[]>;
    setActive(accountId: string, processId: string, version: number | null, at: string): Promise<void>;
    /** Replaces the schedules; a schedule kept (same cron and time zone) keeps its last fire time, a new one counts from `at`. */
    setSchedules(accountId: string, processId: string, schedules: ScheduleRecord[], at: string): Promise<void>;
    lastFires(accountId: string, processId: string): Promise<ScheduleFireRecord[]>;
    /** Records a fire at `at`; a fire time earlier than the one recorded leaves it (nodes that fire together may record out of order). */
    recordFire(accountId: string, processId: string, schedule: ScheduleRecord, at: string): Promise<void>;
    /**
     * Sets the named persisted properties, each on its own, atomically, leaving every
     * other property as it is (undefined removes one): overlapping executions never lose
     * each other's updates; the last writer of a property wins.
     */
    mergeProperties(accountId: string, processId: string, updates: ReadonlyMap<string, unknown>): Promise<void>;
  };
  executions: {
    /**
     * The record and (for a queued one) its input documents, in one transaction. StoreConflictError('id') when the id is
     * taken, ('schedule-fire') when the process has an execution of that schedule fire already.
     */
    insert(execution: ExecutionRecord, inputs?: QueuedInputRecord[]): Promise<void>;
    /** Writes the record if its leaseEpoch is still the stored one; StoreFencedError when it moved on (or the record is gone). */
    update(execution: ExecutionRecord): Promise<void>;
    /**
     * A node claims a queued execution: queued → in-process, owner and start time set,
     * lease epoch raised, in one conditional write; the claimed record, or undefined when
     * it was not queued (taken by another node, cancelled, ended).
     */
    claim(id: string, owner: string, at: string): Promise<ExecutionRecord | undefined>;
    /** Takes a queued execution out of the queue (cancel): queued → discarded, conditionally; false when it was not queued. */
    withdraw(id: string, at: string, code: string, message: string): Promise<boolean>;
    /**
     * A cancel of an in-process execution, kept in its record until its owner stops the
     * run (the notification to that node may be lost): true when it is in-process. The
     * first request's time and author are kept.
     */
    requestCancel(id: string, at: string, by: string): Promise<boolean>;
    /** The in-process executions of node `owner` with a cancel requested, oldest request first. */
    cancelsRequested(owner: string): Promise<CancelRequest[]>;
    get(accountId: string, id: string): Promise<ExecutionRecord | undefined>;
    /**
     * Newest first (queued time, then id, both descending). `search`: the id or the process
     * id holds it, ignoring case. `before`: only executions after that one in this order
     * (keyset paging: a page goes on from the last row of the previous one).
     */
    list(accountId: string, filter: ExecutionListFilter): Promise<ExecutionRecord[]>;
    /** The queued executions (of every account), oldest first — what a restart runs. */
    queued(limit: number): Promise<ExecutionRecord[]>;
    /** The stored input documents of an execution, by seq. */
    inputs(id: string): Promise<QueuedInputRecord[]>;
    /** Deletes the stored inputs once the run has taken them. */
    dropInputs(id: string): Promise<void>;
    /** After a crash of node `owner`: its in-process executions → aborted with the reason; queued ones stay queued. Returns the ids touched. */
    interrupt(owner: string, at: string, code: string, message: string): Promise<{ id: string; status: ExecutionStatus }[]>;
    /**
     * Deletes finished executions that ended before `before` (with their errors, logs, inputs, step data and kept
     * definition); returns their ids. On a store shared by several nodes one purges at a time: a purge that finds
     * another under way returns [] at once.
     */
    purge(before: string): Promise<string[]>;
    /**
     * With `leaseEpoch` (a run's writes), inserted only while the execution is still at that
     * epoch, in the same statement; StoreFencedError otherwise (another node holds it now).
     */
    insertErrors(id: string, errors: ExecutionErrorRecord[], leaseEpoch?: number): Promise<void>;
    /** The first `limit` errors, in order. */
    errors(id: string, limit: number): Promise<ExecutionErrorRecord[]>;
    /**
     * Appends NDJSON lines (each ending with a newline) to the execution's log. With
     * `leaseEpoch` (a run's lines), appended only while the execution is still at that
     * epoch, in the same statement; StoreFencedError otherwise (another node holds it now).
     */
    appendLog(id: string, lines: string, leaseEpoch?: number): Promise<void>;
    /** The execution's log, in chunks of NDJSON lines, in order. */
    log(id: string): Promise<string[]>;
    /** Keeps the definition a test-mode run ran (it has no deployed version to read it from); replaces one kept before. */
    saveDefinition(id: string, definition: unknown): Promise<void>;
    /** The kept definition: undefined when none was kept, null when it is not a JSON object (damaged). */
    definition(id: string): Promise<Record<string, unknown> | null | undefined>;
  };
  resources: {
    /** Durable when it resolves: a process crash cannot lose it. */
    insert(resource: HeldResourceRecord): Promise<void>;
    /** Resolves to whether there was such a record. */
    delete(id: string): Promise<boolean>;
    get(id: string): Promise<HeldResourceRecord | undefined>;
    /** Every record, oldest first. */
    list(): Promise<HeldResourceRecord[]>;
    /** Counts a failed recover attempt, with its error. */
    failed(id: string, error: string): Promise<void>;
  };
  /**
   * The documents that left each step of executions that record step data, deleted with
   * their execution.
   */
  stepData: {
    /** Appends documents; each step's get the next `seq` numbers of that step, in order. */
    insert(executionId: string, documents: Omit<StepDocumentRecord, 'seq'>[]): Promise<void>;
    /** One page of a step's documents: `seq` above `after` (-1 for the first page), in order. */
    list(executionId: string, step: string, page: { after: number; limit: number }): Promise<StepDocumentRecord[]>;
    /** The steps with recorded documents and how many each has, by step. */
    steps(executionId: string): Promise<{ step: string; count: number }[]>;
  };
  /**
   * Runs `work` in one transaction with a transaction-scoped store; commits when it
   * resolves, rolls back when it rejects. Other callers' writes never interleave into it
   * (they wait). `work` must use `tx`, never the store itself (that would wait for the
   * transaction to end).
   */
  transaction<T>(work: (tx: StoreTx) => Promise<T>): Promise<T>;
  /** Resolves when the store answers a trivial query; rejects with StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  /** Open, and its last operation did not find it unreachable. */
  healthy(): boolean;
  /** Waits for what is queued, then closes. */
  close(): Promise<void>;
  /** Messages to every node that shares the store (PostgreSQL LISTEN/NOTIFY); absent on a store only one node opens (SQLite). */
  notifications?: StoreNotifications;
}

export interface NotificationHandlers {
  /** A message on the channel, from any node (this one's included). */
  message(payload: string): void;
  /** The listening connection was lost: messages sent from now until `resumed` do not arrive. */
  dropped?(): void;
  /** Listening again after a loss: what the lost messages would have said must be read again from the store. */
  resumed(): void;
}

export interface StoreNotifications {
  /** Sends a message (at most 7,999 bytes) to the listeners of `channel` on every node; resolves once the server has it. */
  notify(channel: string, payload: string): Promise<void>;
  /** Listens to `channel` (a short name of letters, digits and _) until the returned function is called; resolves once listening. */
  listen(channel: string, handlers: NotificationHandlers): Promise<() => void>;
}

export type StoreTx = Omit<Store, 'transaction' | 'close' | 'healthy' | 'ping' | 'notifications'>;
