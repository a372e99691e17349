/**
 * The plugin host process (isolation mode "process"): started by host.ts under Node's
 * permission model, it runs the connector pools (connector-pools.ts) and relays each task
 * between the runtime's IPC channel and a worker. It holds no secret of its own: each task
 * brings the decrypted fields it needs. It ends when the runtime says so or goes away.
 */
import { isQuarkError, messageOf, type PlainError } from '../core/errors.js';
import { createConnectorPools } from './connector-pools.js';
import type { HostCommand, HostReport, HostSettings } from './host-messages.js';
import type { ResourceAnswer, ResourceRequest } from './messages.js';
import { ownedTask } from './packed.js';

const settings = JSON.parse(process.argv[2] ?? '{}') as HostSettings;

function send(report: HostReport): void {
  // the runtime is gone: nothing to tell, and 'disconnect' ends this process
  if (process.connected) process.send!(report);
}

const pools = createConnectorPools({ threads: settings.threads, heapMb: settings.heapMb, ...(settings.limits ? { limits: settings.limits } : {}), logger: { warn: (fields, message) => send({ type: 'log', fields, message }) } });

interface Running {
  controller: AbortController;
  answers: Map<number, (answer: ResourceAnswer) => void>;
}
const running = new Map<number, Running>();

function plainError(error: unknown): PlainError {
  if (isQuarkError(error)) return { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) };
  return { code: 'QUARK_ERR_API_INTERNAL', message: `the plugin host failed: ${messageOf(error)}` };
}

/** A resource request of the plugin, answered by the runtime (which owns the store). */
function askRuntime(id: number, task: Running, request: ResourceRequest): Promise<ResourceAnswer> {
  return new Promise((resolve) => {
    task.answers.set(request.request, resolve);
    send({ type: 'hold', id, request });
  });
}

async function run(command: Extract<HostCommand, { type: 'run' }>): Promise<void> {
  const task: Running = { controller: new AbortController(), answers: new Map() };
  running.set(command.id, task);
  try {
    // a packed steps task's buffers move to the worker, copied once from the channel's message
    const { task: posted, transfer } = ownedTask(command.task);
    const reply = await pools.run(posted, {
      transfer,
      timeoutMs: command.timeoutMs,
      ...(command.graceMs !== undefined ? { graceMs: command.graceMs } : {}),
      what: command.what,
      signal: task.controller.signal,
      onProgress: (event) => send({ type: 'progress', id: command.id, event }),
      ...(command.holds ? { onResource: (request: ResourceRequest) => askRuntime(command.id, task, request) } : {}),
    });
    send({ type: 'done', id: command.id, reply, stats: pools.stats() });
  } catch (error) {
    send({ type: 'failed', id: command.id, error: plainError(error), stats: pools.stats() });
  } finally {
    running.delete(command.id);
  }
}

async function close(): Promise<void> {
  for (const task of running.values()) task.controller.abort();
  await pools.close();
  process.disconnect?.();
}

process.on('message', (command: HostCommand) => {
  if (command.type === 'run') void run(command);
  else if (command.type === 'cancel') running.get(command.id)?.controller.abort();
  else if (command.type === 'resource') {
    const task = running.get(command.id);
    task?.answers.get(command.answer.request)?.(command.answer);
    task?.answers.delete(command.answer.request);
  } else void close();
});
// the runtime ended (or closed the channel): so does the host, with its workers
process.on('disconnect', () => void pools.close().finally(() => process.exit(0)));
send({ type: 'ready' });
