import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { QuarkError, quarkError, describeProblems } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { AccessControl, Caller } from '../accounts/access.js';
import type { LocalFolder, WorkerPool } from '../engine/pool.js';
import type { BodyRef, DocumentRef, OperationResultRef } from '../engine/messages.js';
import { emptyBody, inlineRef } from '../engine/bodies.js';
import { relayPluginLogs, scrubStrings, secretValues } from '../secrets/secret-fields.js';
import type { RuntimeSettings } from '../sdk/index.js';
import type { ConnectionService } from './service.js';
import type { LoadedConnector } from '../connectors/registry.js';
import { computedLocalPaths, localFolders } from '../connectors/local-paths.js';
import type { ExecutionInfo } from '../engine/expressions.js';
import type { HoldOwner, Recovery } from './recovery.js';

/** An input document: the body as bytes, text, or a file to stream from. */
export interface OperationInput {
  properties?: Record<string, string>;
  body?: Buffer | string | { file: string; size: number };
}

export interface OperationRequest {
  /** A saved connection (id or name) of the caller's account. */
  connection: string;
  operation: string;
  parameters?: Record<string, unknown>;
  documents: OperationInput[];
}

export interface OperationProgress {
  document: number;
  bytesDone: number;
  bytesTotal?: number;
}

export interface OperationRun {
  connector: string;
  operation: string;
  /** One result per input document, in order. File bodies live in workDir until dispose(). */
  results: OperationResultRef[];
  durationMs: number;
  workDir: string;
  dispose(): Promise<void>;
}

export interface OperationDeps {
  access: AccessControl;
  connections: ConnectionService;
  pool: WorkerPool;
  logger: Logger;
  runtime: RuntimeSettings;
  workRoot: string;
  spillBytes: number;
  timeoutMs: number;
  /** Records the resources operations hold, and recovers what they leave. */
  recovery: Recovery;
  /** Why the plugin host may not be given an operation's local paths (isolation "process"), or undefined. */
  checkFolders?(folders: readonly LocalFolder[]): QuarkError | undefined;
}

/** The input documents of an operation or an execution as refs (bodies as bytes or files). */
export function inputDocuments(documents: readonly OperationInput[]): DocumentRef[] {
  return documents.map((d) => ({ properties: d.properties ?? {}, body: inputRef(d.body) }));
}

function inputRef(body: OperationInput['body']): BodyRef {
  if (body === undefined) return emptyBody;
  if (typeof body === 'string' || Buffer.isBuffer(body)) return inlineRef(body);
  return { kind: 'file', path: body.file, size: body.size };
}

/**
 * A plugin that echoes a secret in any string of its result (message, code, properties,
 * its documents' properties) does not leak it. Bodies are data and pass as they are.
 */
function scrubResult(r: OperationResultRef, secrets: readonly string[]): OperationResultRef {
  const { documents, ...fields } = r;
  const scrubbed = scrubStrings(fields, secrets);
  if (!documents) return scrubbed;
  return { ...scrubbed, documents: documents.map((d) => ({ ...d, properties: scrubStrings(d.properties, secrets) })) };
}

function everyDocumentFailed(documents: readonly DocumentRef[], error: { code: string; message: string }, secrets: readonly string[]): OperationResultRef[] {
  const failure = scrubStrings({ code: error.code, message: error.message }, secrets);
  return documents.map(() => ({ status: 'failure', ...failure }));
}

/** A connection and operation resolved for running: done once per request or per step. */
export interface PreparedOperation {
  connector: LoadedConnector;
  operation: LoadedConnector['operations'][number];
  config: Record<string, unknown>;
  secrets: readonly string[];
  log: Logger;
  /** The saved connection whose resources the operation may hold; absent for an unsaved one. */
  owner?: HoldOwner;
}

export interface ExecuteOptions {
  workDir: string;
  signal?: AbortSignal;
  onProgress?(p: OperationProgress): void;
  timeoutMs?: number;
  /** For parameters holding {"$expr"} values: the bindings they are evaluated with, per document. */
  dynamic?: { process: Record<string, unknown>; execution: ExecutionInfo };
  /** Where the plugin's log lines go (an execution step's logger); else the runtime log. */
  log?: Logger;
}

/**
 * Connector operations: `prepare` resolves the caller's connection and the operation;
 * `execute` runs it over documents in a worker, every input document getting exactly one
 * result, with secrets scrubbed from every message. `run` does both for one request (the
 * operations route); process steps prepare once and execute per batch.
 */
export function createOperations(deps: OperationDeps) {
  async function prepare(caller: Caller, request: { connection: string; operation: string }): Promise<PreparedOperation> {
    deps.access.requireMember(caller, 'run operations');
    const { connector, config, record } = await deps.connections.resolve(caller, { connection: request.connection });
    const operation = connector.operations.find((o) => o.id === request.operation);
    if (!operation) {
      throw quarkError('QUARK_ERR_OPERATION_NOT_FOUND', `connector "${connector.id}" has no operation "${request.operation}"; it has: ${connector.operations.map((o) => o.id).join(', ') || 'none'}`);
    }
    const log = deps.logger.child({ connector: connector.id, connection: record?.id, operation: operation.id });
    const secrets = secretValues(config, connector.secretPointers);
    const owner = record ? { accountId: record.accountId, connectionId: record.id, connectorId: connector.id, secrets } : undefined;
    return { connector, operation, config, secrets, log, ...(owner ? { owner } : {}) };
  }

  function checkParameters(prepared: PreparedOperation, parameters: Record<string, unknown>): void {
    const problems = prepared.operation.validateParameters(parameters);
    if (problems.length > 0) {
      throw quarkError('QUARK_ERR_OPERATION_INVALID_PARAMETERS', `the parameters of ${prepared.connector.id}/${prepared.operation.id} are not valid: ${describeProblems(problems)}`, { problems });
    }
    const refusal = deps.checkFolders?.(localFolders(prepared.operation.localPaths, parameters, '/parameters'));
    if (refusal) throw refusal;
  }

  /**
   * The folders a task brings (the connection's and its parameters'); refused (isolation
   * "process") when a local-path parameter is computed per document: the host is granted
   * its folders before the task runs.
   */
  function taskFolders(prepared: PreparedOperation, parameters: Record<string, unknown>, dynamic: boolean): LocalFolder[] | QuarkError {
    const { connector, operation } = prepared;
    const computed = dynamic && deps.checkFolders ? computedLocalPaths(operation.localPaths, parameters) : [];
    if (computed.length > 0) {
      const field = `/parameters${computed[0]}`;
      const why = 'a local path must be a literal value here: the plugin host is granted it before the task runs, not per document';
      return quarkError('QUARK_ERR_CONNECTION_FOLDER_REFUSED', `the parameter ${field} of ${connector.id}/${operation.id} is computed per document ({"$expr"}) and cannot be given to the plugin host (isolation "process"): ${why}`, { problems: [{ path: field, message: why }] });
    }
    return [...localFolders(connector.localPaths, prepared.config), ...localFolders(operation.localPaths, parameters, '/parameters')];
  }

  async function execute(prepared: PreparedOperation, documents: DocumentRef[], parameters: Record<string, unknown>, options: ExecuteOptions): Promise<OperationResultRef[]> {
    const { connector, operation, config, secrets, log } = prepared;
    const what = `operation ${connector.id}/${operation.id}`;
    log.debug({ documents: documents.length, parameters }, 'operation starting');
    // what the task holds and has not released when it ends (a kill of its worker, a
    // release that failed) is recovered in the background
    const held = new Set<string>();
    const folders = taskFolders(prepared, parameters, options.dynamic !== undefined);
    if (folders instanceof QuarkError) return everyDocumentFailed(documents, folders, secrets);
    try {
      const reply = await deps.pool.run(
        {
          kind: 'operation',
          entry: connector.entry,
          operation: operation.id,
          config,
          parameters,
          runtime: deps.runtime,
          documents,
          workDir: options.workDir,
          spillBytes: deps.spillBytes,
          ...(options.dynamic ? { dynamic: { ...options.dynamic, parametersSchema: operation.parametersSchema } } : {}),
        },
        {
          timeoutMs: options.timeoutMs ?? deps.timeoutMs,
          graceMs: 30_000,
          what,
          onResource: deps.recovery.handlerFor(prepared.owner, held),
          folders,
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.onProgress ? { onProgress: ({ type: _t, ...p }) => options.onProgress!(p) } : {}),
        },
      );
      relayPluginLogs(options.log ?? log, reply.logs, secrets);
      return reply.ok ? (reply.value as OperationResultRef[]).map((r) => scrubResult(r, secrets)) : everyDocumentFailed(documents, reply.error, secrets);
    } catch (error) {
      // the worker died, timed out or was cancelled: every document failed, with the reason
      if (!(error instanceof QuarkError)) throw error;
      (options.log ?? log).warn({ code: error.code, connector: connector.id, operation: operation.id }, 'operation stopped');
      return everyDocumentFailed(documents, error, secrets);
    } finally {
      deps.recovery.settle(held);
    }
  }

  async function run(caller: Caller, request: OperationRequest, options: { signal?: AbortSignal; onProgress?(p: OperationProgress): void } = {}): Promise<OperationRun> {
    const prepared = await prepare(caller, request);
    const parameters = structuredClone(request.parameters ?? {});
    checkParameters(prepared, parameters);
    const workDir = join(deps.workRoot, newId('op'));
    await mkdir(workDir, { recursive: true, mode: 0o700 });
    const dispose = () => rm(workDir, { recursive: true, force: true });
    const documents = inputDocuments(request.documents);
    const started = performance.now();
    let results: OperationResultRef[];
    try {
      results = await execute(prepared, documents, parameters, { workDir, ...options });
    } catch (error) {
      // not one of the plugin's failures (those are results): the work folder goes too
      await dispose();
      throw error;
    }
    const durationMs = Math.round(performance.now() - started);
    prepared.log.info({ durationMs, results: results.map((r) => r.status) }, 'operation finished');
    return { connector: prepared.connector.id, operation: prepared.operation.id, results, durationMs, workDir, dispose };
  }

  return { prepare, execute, run };
}

export type Operations = ReturnType<typeof createOperations>;
