import { performance } from 'node:perf_hooks';
import { QuarkError, quarkError, describeProblems, type ErrorCode } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { AccessControl, Caller } from '../accounts/access.js';
import type { WorkerPool } from '../engine/pool.js';
import { schemaIds, type SchemaRegistry } from '../schema/index.js';
import { relayPluginLogs, scrubStrings, secretValues } from '../secrets/secret-fields.js';
import { overallStatus, type Check, type OverallStatus, type RuntimeSettings, type TestReport } from '../sdk/index.js';
import type { ConnectionService } from './service.js';
import { localFolders } from '../connectors/local-paths.js';

export interface TestConnectionRequest {
  /** A saved connection (id or name). With `config`, unsaved changes are tested over it. */
  connection?: string;
  connector?: string;
  config?: Record<string, unknown>;
}

export interface TestConnectionResult {
  status: OverallStatus;
  connector: string;
  connection?: { id: string; name: string };
  checks: Check[];
  durationMs: number;
}

export interface TestConnectionDeps {
  access: AccessControl;
  connections: ConnectionService;
  pool: WorkerPool;
  schemas: SchemaRegistry;
  metrics: Metrics;
  logger: Logger;
  runtime: RuntimeSettings;
  timeoutMs: number;
}

/** Extra time the worker gets after the plugin's own AbortSignal fired, before it is killed. */
const hardStopGraceMs = 1000;

/**
 * Test Connection: authorize (container rule) → validate (nothing contacted) → run the
 * connector's test in a worker with a time limit → a structured result. Only the first
 * two steps throw; whatever happens in the plugin becomes a failed check.
 */
export function createTestConnection(deps: TestConnectionDeps) {
  const validateReport = deps.schemas.validator(schemaIds.testResult);

  function runtimeFailure(code: ErrorCode, message: string): Check[] {
    return [{ id: 'runtime', title: 'Connector test ran', status: 'failed', code, message }];
  }

  /** The container rule, counted and logged when it refuses. */
  function authorize(caller: Caller, connectorHint = 'unknown'): void {
    try {
      deps.access.requireAssociated(caller);
    } catch (error) {
      deps.metrics.testConnections.inc({ connector: connectorHint, outcome: 'refused' });
      deps.logger.info({ account: caller.account.id, code: (error as QuarkError).code }, 'test connection refused by the container rule');
      throw error;
    }
  }

  async function run(caller: Caller, request: TestConnectionRequest): Promise<TestConnectionResult> {
    const connectorHint = request.connector ?? 'saved';
    authorize(caller, connectorHint);
    let resolved: Awaited<ReturnType<ConnectionService['resolve']>>;
    try {
      resolved = await deps.connections.resolve(caller, request);
    } catch (error) {
      deps.metrics.testConnections.inc({ connector: connectorHint, outcome: 'invalid' });
      throw error;
    }
    const { connector, config, record } = resolved;
    if (!connector.testConnection) {
      throw quarkError('QUARK_ERR_CONNECTOR_NO_TEST', `connector "${connector.id}" does not support Test Connection`);
    }
    const secrets = secretValues(config, connector.secretPointers);
    const log = deps.logger.child({ connector: connector.id, ...(record ? { connection: record.id } : {}) });
    // the configuration is logged at debug level; its secret fields are redacted by the
    // paths derived from the connectors' schemas
    log.debug({ config }, 'test connection starting');
    const started = performance.now();
    let checks: Check[];
    let reported: OverallStatus | undefined;
    try {
      const reply = await deps.pool.run(
        { kind: 'test', entry: connector.entry, config, runtime: deps.runtime },
        { timeoutMs: deps.timeoutMs, graceMs: hardStopGraceMs, what: `Test Connection of ${connector.id}`, folders: localFolders(connector.localPaths, config) },
      );
      relayPluginLogs(log, reply.logs, secrets);
      if (!reply.ok) {
        checks = runtimeFailure(reply.error.code, reply.error.message);
      } else {
        const problems = validateReport(reply.value);
        checks = problems.length > 0
          ? runtimeFailure('QUARK_ERR_PLUGIN_RESULT_INVALID', `the connector returned a malformed result: ${describeProblems(problems)}`)
          : (reply.value as TestReport).checks;
        if (problems.length === 0) reported = (reply.value as TestReport).status;
      }
    } catch (error) {
      const failure = error instanceof QuarkError ? error : quarkError('QUARK_ERR_PLUGIN_WORKER_DIED', String(error));
      checks = runtimeFailure(failure.code, failure.message);
    }
    // every string a plugin sent back (id, title, message, code…) is scrubbed
    checks = scrubStrings(checks, secrets);
    // the connector may report a worse status than its checks show, never a better one
    const derived = overallStatus(checks);
    const status = reported === 'failed' || (reported === 'warning' && derived === 'ok') ? reported : derived;
    const durationMs = Math.round(performance.now() - started);
    deps.metrics.testConnections.inc({ connector: connector.id, outcome: status });
    log.info({ status, durationMs, checks: checks.map((c) => ({ id: c.id, status: c.status, code: c.code })) }, 'test connection finished');
    return { status, connector: connector.id, ...(record ? { connection: { id: record.id, name: record.name } } : {}), checks, durationMs };
  }

  return { authorize, run };
}
