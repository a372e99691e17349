/**
 * The one catalogue of quark errors. Every error the runtime reports carries a stable
 * code from this table, an HTTP status, and a message written for the person who has to
 * act on it. docs/errors.md documents the same table; test/core/errors.test.ts keeps the
 * two in agreement. A code is never reused for another meaning.
 */

export interface ErrorSpec {
  readonly status: number;
  readonly summary: string;
}

export const errorCatalogue = {
  // home and configuration
  QUARK_ERR_HOME_EXISTS: { status: 409, summary: 'The runtime home already holds a runtime.' },
  QUARK_ERR_HOME_NOT_FOUND: { status: 404, summary: 'No runtime home at the given path.' },
  QUARK_ERR_HOME_UNSAFE: { status: 500, summary: 'A file of the runtime home is readable by other users.' },
  QUARK_ERR_CONFIG_INVALID: { status: 400, summary: 'The runtime configuration does not match schemas/runtime-config.schema.json.' },
  QUARK_ERR_CONFIG_INSECURE_LISTEN: { status: 400, summary: 'Listening on a non-loopback address needs TLS or an explicit insecure flag.' },
  QUARK_ERR_MASTER_KEY_INVALID: { status: 500, summary: 'The master key file is missing or malformed.' },
  QUARK_ERR_HOME_STORE_UNREADABLE: { status: 500, summary: 'The embedded store (quark.db) cannot be opened or migrated.' },
  QUARK_ERR_STORE_TOO_NEW: { status: 500, summary: 'The store was written by a newer quark: its schema version is newer than this quark knows.' },
  QUARK_ERR_STORE_UNAVAILABLE: { status: 503, summary: 'The store cannot be reached (PostgreSQL down, an I/O error of the embedded store); retry later.' },
  QUARK_ERR_HOME_LOCKED: { status: 409, summary: 'Another quark process runs on this runtime home; one process per home.' },
  QUARK_ERR_CLUSTER_KEY_MISMATCH: { status: 500, summary: 'The node\'s master key is not the molecule\'s (its fingerprint differs from the one in PostgreSQL); the node refuses to start.' },
  QUARK_ERR_CLUSTER_NOT_FOUND: { status: 404, summary: 'The PostgreSQL database holds no molecule (quark init --join), or another one than this home\'s.' },
  QUARK_ERR_QUEUE_UNAVAILABLE: { status: 503, summary: 'The molecule\'s queue (Redis) cannot be reached.' },
  QUARK_ERR_QUEUE_UNSAFE: { status: 500, summary: 'Redis does not run with maxmemory-policy noeviction and AOF on, which a molecule needs; the node refuses to start.' },
  QUARK_ERR_CONFIG_ADDRESS_IN_USE: { status: 409, summary: 'Another process already listens on the configured address and port.' },

  // authentication and authorization
  QUARK_ERR_AUTH_MISSING_TOKEN: { status: 401, summary: 'The request carries no bearer token.' },
  QUARK_ERR_AUTH_INVALID_TOKEN: { status: 401, summary: 'The bearer token is unknown or revoked.' },
  QUARK_ERR_AUTH_FORBIDDEN: { status: 403, summary: 'The caller\'s account may not perform this action on this runtime.' },
  QUARK_ERR_RUNTIME_NOT_ASSOCIATED: { status: 403, summary: 'Test Connection refused: the runtime is not associated with the caller\'s account.' },

  // accounts and tokens
  QUARK_ERR_ACCOUNT_NOT_FOUND: { status: 404, summary: 'No such account on this runtime.' },
  QUARK_ERR_ACCOUNT_EXISTS: { status: 409, summary: 'An account with this name already exists on this runtime.' },
  QUARK_ERR_ACCOUNT_TENANTS_UNSUPPORTED: { status: 409, summary: 'Only a cloud runtime has tenant accounts.' },
  QUARK_ERR_TOKEN_NOT_FOUND: { status: 404, summary: 'No such token.' },
  QUARK_ERR_TOKEN_LAST_OWNER: { status: 409, summary: 'The last owner token cannot be revoked.' },

  // HTTP API
  QUARK_ERR_API_INVALID_REQUEST: { status: 400, summary: 'The request does not match the endpoint\'s schema.' },
  QUARK_ERR_API_ROUTE_NOT_FOUND: { status: 404, summary: 'No such endpoint.' },
  QUARK_ERR_API_SHUTTING_DOWN: { status: 503, summary: 'The runtime is shutting down.' },
  QUARK_ERR_API_INTERNAL: { status: 500, summary: 'An unexpected error; the log has the details.' },
  QUARK_ERR_API_NESTING_TOO_DEEP: { status: 400, summary: 'The request body nests objects and arrays deeper than limits.maxNestingDepth.' },
  QUARK_ERR_API_CURSOR_INVALID: { status: 400, summary: 'The paging cursor is not one this list gave out.' },

  // connectors and plugins
  QUARK_ERR_CONNECTOR_NOT_FOUND: { status: 404, summary: 'No loaded connector with this id.' },
  QUARK_ERR_CONNECTOR_QUARANTINED: { status: 409, summary: 'The connector is quarantined; see its reason.' },
  QUARK_ERR_CONNECTOR_NO_TEST: { status: 409, summary: 'The connector does not support Test Connection.' },
  QUARK_ERR_PLUGIN_UNREADABLE: { status: 500, summary: 'A plugin file could not be read or is not JSON.' },
  QUARK_ERR_PLUGIN_MANIFEST_INVALID: { status: 500, summary: 'The plugin manifest does not match schemas/connector-manifest.schema.json.' },
  QUARK_ERR_PLUGIN_SCHEMA_INVALID: { status: 500, summary: 'A connection or operation schema of the plugin is not valid.' },
  QUARK_ERR_PLUGIN_FILE_TOO_LARGE: { status: 500, summary: 'A JSON file of the plugin is larger, deeper or holds more values than the documented limits.' },
  QUARK_ERR_PLUGIN_INCOMPATIBLE: { status: 500, summary: 'The plugin does not support this runtime\'s API version.' },
  QUARK_ERR_PLUGIN_DUPLICATE: { status: 500, summary: 'Another plugin with the same connector id was loaded first.' },
  QUARK_ERR_PLUGIN_IMPORT_FAILED: { status: 500, summary: 'The plugin module threw or failed while being imported.' },
  QUARK_ERR_PLUGIN_MODULE_INVALID: { status: 500, summary: 'The plugin module does not export a connector made with defineConnector.' },
  QUARK_ERR_PLUGIN_THREW: { status: 500, summary: 'The plugin threw while running.' },
  QUARK_ERR_PLUGIN_RESULT_INVALID: { status: 500, summary: 'The plugin returned a result of the wrong shape.' },
  QUARK_ERR_PLUGIN_TIMEOUT: { status: 504, summary: 'The plugin did not finish within its time limit and was stopped.' },
  QUARK_ERR_OPERATION_CANCELLED: { status: 409, summary: 'The operation was cancelled; what it had started was cleaned up.' },
  QUARK_ERR_OPERATION_INVALID_PARAMETERS: { status: 400, summary: 'The operation\'s parameters do not match its parameter schema.' },
  QUARK_ERR_OPERATION_NOT_FOUND: { status: 404, summary: 'The connector has no operation with this id.' },
  QUARK_ERR_PLUGIN_WORKER_DIED: { status: 500, summary: 'The worker running the plugin died (for example out of memory).' },
  QUARK_ERR_PLUGIN_RESOURCE_LIMIT: { status: 500, summary: 'The plugin task went over its external memory (limits.workerExternalMb) or CPU time (limits.taskCpuMs) limit and its worker was stopped.' },
  QUARK_ERR_PLUGIN_HOST_DIED: { status: 500, summary: 'The plugin host process (isolation "process") ended while the task ran in it; a new host runs the next task.' },

  // resources operations hold, released at recovery (runtime/connections/recovery.ts)
  QUARK_ERR_RESOURCE_INVALID: { status: 400, summary: 'A resource an operation asked to hold has a bad kind or data (details.problems), or its connector has no recover handler.' },
  QUARK_ERR_RESOURCE_NOT_RECORDED: { status: 500, summary: 'The runtime could not record a resource an operation asked to hold; the operation must undo what it started.' },
  QUARK_ERR_RESOURCE_RECOVERY_FAILED: { status: 502, summary: 'The connector\'s recover handler failed to release a resource left behind; it is retried.' },

  // connections
  QUARK_ERR_CONNECTION_FOLDER_REFUSED: { status: 400, summary: 'A folder of the connection (a field marked x-local-path) cannot be given to the plugin host of isolation "process": it holds the master key, the store or the configuration, or it is read-write and holds or is inside code the runtime loads.' },
  QUARK_ERR_CONNECTION_INVALID: { status: 400, summary: 'The connection configuration does not match the connector\'s schema.' },
  QUARK_ERR_CONNECTION_NOT_FOUND: { status: 404, summary: 'No such connection for this account.' },
  QUARK_ERR_CONNECTION_NAME_TAKEN: { status: 409, summary: 'The account already has a connection with this name.' },
  QUARK_ERR_CONNECTION_REVISION_CONFLICT: { status: 409, summary: 'The connection was changed by someone else since it was read; read it again and retry.' },
  QUARK_ERR_SECRET_UNREADABLE: { status: 500, summary: 'A stored secret could not be decrypted with this runtime\'s master key.' },

  // processes, deployments, executions
  QUARK_ERR_PROCESS_INVALID: { status: 400, summary: 'The process definition has problems (schema, references, graph); details.problems lists every one with its JSON path. Nothing was deployed.' },
  QUARK_ERR_PROCESS_NOT_FOUND: { status: 404, summary: 'No deployed process (or version) with this id in the account.' },
  QUARK_ERR_PROCESS_IN_USE: { status: 409, summary: 'The process cannot be undeployed: deployed processes call it.' },
  QUARK_ERR_PROCESS_EXCEPTION: { status: 422, summary: 'An exception step failed the document or the execution with its message.' },
  QUARK_ERR_PROCESS_SPLIT_FAILED: { status: 422, summary: 'A split step could not split the document (not a JSON array).' },
  QUARK_ERR_PROCESS_COMBINE_FAILED: { status: 422, summary: 'A combine step could not combine the documents (a body is not JSON, or too large to combine in memory).' },
  QUARK_ERR_EXPRESSION_FAILED: { status: 422, summary: 'A JSONata expression failed or produced no value for a document.' },
  QUARK_ERR_SCHEDULE_INVALID: { status: 400, summary: 'A schedule\'s cron expression or time zone is not one the scheduler can arm.' },
  QUARK_ERR_PROCESS_PROPERTIES_UNREADABLE: { status: 500, summary: 'The stored persisted properties of a process cannot be read (a damaged store record); executions start them from the defaults.' },
  QUARK_ERR_PROCESS_UNREADABLE: { status: 500, summary: 'The stored definition of a deployed version cannot be read (a damaged store record).' },
  QUARK_ERR_STEP_NESTING_TOO_DEEP: { status: 422, summary: 'A value a step computed for a document (its body, a process property) nests deeper than limits.maxNestingDepth.' },
  QUARK_ERR_STEP_TIMEOUT: { status: 504, summary: 'A run of pure steps did not finish a chunk of documents within its time limit; its worker was stopped.' },
  QUARK_ERR_STEP_MEMORY_LIMIT: { status: 500, summary: 'A run of pure steps exhausted its worker\'s heap (limits.workerHeapMb); the worker was replaced.' },
  QUARK_ERR_STEP_TASK_UNSENDABLE: { status: 500, summary: 'The documents or process properties of a run of steps could not be passed to a worker thread.' },
  QUARK_ERR_STEP_FAILED: { status: 500, summary: 'A step failed on one document for an unexpected reason; only that document failed.' },
  QUARK_ERR_EXECUTION_NOT_FOUND: { status: 404, summary: 'No execution with this id in the account.' },
  QUARK_ERR_EXECUTION_QUEUE_FULL: { status: 429, summary: 'The runtime runs its maximum of executions and its queue is full: the execution was refused, not queued.' },
  QUARK_ERR_EXECUTION_FINISHED: { status: 409, summary: 'The execution has already finished; it cannot be cancelled.' },
  QUARK_ERR_EXECUTION_CANCELLED: { status: 409, summary: 'The execution was cancelled; its work files were removed.' },
  QUARK_ERR_EXECUTION_TIMEOUT: { status: 504, summary: 'The execution ran past its time limit and was aborted.' },
  QUARK_ERR_EXECUTION_RECORD_FAILED: { status: 500, summary: 'The runtime could not keep the execution\'s record (the store or the file system failed); the execution ended as error.' },
  QUARK_ERR_EXECUTION_LEASE_LOST: { status: 409, summary: 'In a molecule, the node running the execution lost its claim on it (another node claimed or accounted for it); that node stopped its run.' },
  QUARK_ERR_EXECUTION_NODE_LOST: { status: 500, summary: 'In a molecule, the node running the execution was lost (killed, or its heartbeat stale); the execution was aborted, not run again.' },
  QUARK_ERR_EXECUTION_INTERRUPTED: { status: 500, summary: 'The runtime stopped (shutdown, kill or crash) while the execution was queued or running.' },

  // CLI (never sent by the API)
  QUARK_ERR_CLI_NOT_LOGGED_IN: { status: 401, summary: 'No runtime URL and token: run quark login or set QUARK_URL and QUARK_TOKEN.' },
  QUARK_ERR_CLI_UNREACHABLE: { status: 503, summary: 'The runtime could not be reached at the configured URL.' },
  QUARK_ERR_CLI_INPUT_INVALID: { status: 400, summary: 'A command-line argument or input file is not valid.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalogue;

/**
 * One problem with one field: `path` is a JSON pointer into the offending document,
 * `message` names the field (by its schema title when it has one) and says what is
 * wrong; `keyword` is the JSON Schema keyword that failed, for machines.
 */
export interface FieldProblem {
  path: string;
  message: string;
  keyword?: string;
  file?: string;
}

/** Problems as one line for an error message: `"Folder" must be an absolute path (/folder); …`. */
export function describeProblems(problems: readonly FieldProblem[]): string {
  return problems.map((p) => (p.path === '' || p.path === '/' ? p.message : `${p.message} (${p.path})`)).join('; ');
}

export interface ErrorDetails {
  problems?: FieldProblem[];
  [key: string]: unknown;
}

/** The form in which an error crosses a thread or a process boundary. */
export interface PlainError {
  code: ErrorCode;
  message: string;
  details?: ErrorDetails;
}

export class QuarkError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetails | undefined;

  constructor(code: ErrorCode, message: string, options: { details?: ErrorDetails; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'QuarkError';
    this.code = code;
    this.status = errorCatalogue[code].status;
    this.details = options.details;
  }

  toJSON(): PlainError {
    return toPlainError(this);
  }
}

export function quarkError(code: ErrorCode, message: string, details?: ErrorDetails, cause?: unknown): QuarkError {
  return new QuarkError(code, message, { details, cause });
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorCatalogue, value);
}

export function isQuarkError(value: unknown): value is QuarkError {
  return value instanceof QuarkError;
}

export function toPlainError(error: QuarkError): PlainError {
  const plain: PlainError = { code: error.code, message: error.message };
  if (error.details !== undefined) plain.details = error.details;
  return plain;
}

/** Rebuilds an error posted across a thread boundary; unknown codes become internal errors. */
export function fromPlainError(plain: { code?: unknown; message?: unknown; details?: unknown }): QuarkError {
  const code = isErrorCode(plain.code) ? plain.code : 'QUARK_ERR_API_INTERNAL';
  const message = typeof plain.message === 'string' ? plain.message : 'unknown error';
  const details = plain.details !== null && typeof plain.details === 'object' ? (plain.details as ErrorDetails) : undefined;
  return new QuarkError(code, message, { details });
}

/** The message of anything thrown, for wrapping foreign errors. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
