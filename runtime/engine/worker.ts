/**
 * The piscina worker entry. Plugin code is imported and run only here, never in the main
 * thread. Everything that comes back is plain data: errors as {code, message, details}.
 */
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { isConnector, type Connector } from '../sdk/index.js';
import { messageOf, type ErrorCode } from '../core/errors.js';
import type { PostedTask, WorkerReply, WorkerLogRecord, ProbeTask, TestTask } from './messages.js';

// A plugin imports `quark/sdk` wherever its folder is (built-in, the home, a configured
// path): this resolve hook maps that one specifier to this runtime's SDK.
register(new URL('./sdk-resolver.js', import.meta.url), { data: { sdkUrl: new URL('../sdk/index.js', import.meta.url).href } });

class TaskFailure extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

async function load(entry: string): Promise<Connector<unknown>> {
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(entry).href)) as Record<string, unknown>;
  } catch (error) {
    throw new TaskFailure('QUARK_ERR_PLUGIN_IMPORT_FAILED', `importing ${entry} failed: ${messageOf(error)}`);
  }
  const connector = module.default;
  if (!isConnector(connector)) {
    throw new TaskFailure('QUARK_ERR_PLUGIN_MODULE_INVALID', `${entry} has no default export made with defineConnector from quark/sdk`);
  }
  return connector;
}

function probe(connector: Connector<unknown>, task: ProbeTask): unknown {
  if (task.testConnection && typeof connector.testConnection !== 'function') {
    throw new TaskFailure('QUARK_ERR_PLUGIN_MODULE_INVALID', `${task.entry}: connector.json declares testConnection but the module has no testConnection function`);
  }
  const missing = task.operations.filter((id) => typeof connector.operations?.[id] !== 'function');
  if (missing.length > 0) {
    throw new TaskFailure('QUARK_ERR_PLUGIN_MODULE_INVALID', `${task.entry}: no handler for operation(s) ${missing.join(', ')} declared in connector.json`);
  }
  return { ok: true };
}

async function test(connector: Connector<unknown>, task: TestTask, logs: WorkerLogRecord[]): Promise<unknown> {
  if (typeof connector.testConnection !== 'function') {
    throw new TaskFailure('QUARK_ERR_CONNECTOR_NO_TEST', 'the connector module has no testConnection function');
  }
  const record = (level: WorkerLogRecord['level']) => (message: string, fields?: Record<string, unknown>) => {
    if (logs.length < 200) logs.push({ level, message: String(message), ...(fields ? { fields } : {}) });
  };
  const signal = AbortSignal.timeout(task.timeoutMs);
  try {
    return await connector.testConnection({
      config: task.config,
      signal,
      runtime: task.runtime,
      log: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') },
    });
  } catch (error) {
    if (signal.aborted) throw new TaskFailure('QUARK_ERR_PLUGIN_TIMEOUT', `Test Connection did not finish within ${task.timeoutMs} ms and was stopped`);
    throw new TaskFailure('QUARK_ERR_PLUGIN_THREW', `testConnection threw: ${messageOf(error)}`);
  }
}

export default async function run(posted: PostedTask): Promise<WorkerReply> {
  const { started, ...task } = posted;
  started.postMessage('started');
  started.close();
  const logs: WorkerLogRecord[] = [];
  try {
    const connector = await load(task.entry);
    const value = task.kind === 'probe' ? probe(connector, task) : await test(connector, task, logs);
    // structuredClone rejects functions and the like: make that a result-shape error here
    // rather than a DataCloneError in piscina.
    return { ok: true, value: structuredClone(value), logs };
  } catch (error) {
    if (error instanceof TaskFailure) return { ok: false, error: { code: error.code, message: error.message }, logs };
    return { ok: false, error: { code: 'QUARK_ERR_PLUGIN_RESULT_INVALID', message: `the plugin's result cannot be passed back: ${messageOf(error)}` }, logs };
  }
}
