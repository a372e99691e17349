import t from 'tap';
import { join } from 'node:path';
import { createExecutions, type ExecutionsDeps } from '../../runtime/processes/executions.js';
import { openSqliteStore } from '../../runtime/store/sqlite-store.js';
import { createStoreQueue, type ExecutionQueue } from '../../runtime/processes/queue.js';
import type { Store } from '../../runtime/store/types.js';
import { StoreFencedError, StoreUnavailableError } from '../../runtime/store/errors.js';
import { createMetrics } from '../../runtime/core/metrics.js';
import { createLogger } from '../../runtime/core/logger.js';
import type { Caller } from '../../runtime/accounts/access.js';
import { tempDir } from '../helpers/quark.js';

const account = { id: 'acc_1', name: 'acme', relation: 'owner' as const, createdAt: new Date().toISOString() };
const caller: Caller = { account, tokenId: 'tok_1' };
const definition = { id: 'p', name: 'p', start: { kind: 'none', next: 'a' }, steps: [] };

type Walk = ExecutionsDeps['walker']['walk'];
const walksFine: Walk = async () => ({ documentsIn: 0, documentsOut: 0, outputs: [], failures: [] });
/** A walk that lasts until its execution is aborted. */
const walksUntilAborted: Walk = (_d, _docs, ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));

/** The store, with `executions[method]` rejecting from its Nth call on (every call when `from` is 1). */
function faulty(store: Store, method: 'update' | 'appendLog', from: number, until = Infinity, refusal = (m: string) => new Error(m)): Store {
  let calls = 0;
  const original = store.executions[method] as (...args: unknown[]) => Promise<void>;
  const executions = {
    ...store.executions,
    [method]: async (...args: unknown[]) => {
      calls += 1;
      if (calls >= from && calls <= until) throw refusal(`disk I/O error (injected, ${method} #${calls})`);
      return original(...args);
    },
  };
  return { ...store, executions } as Store;
}

async function build(t: any, options: { fault?: (store: Store) => Store; walk?: Walk; maxRunning?: number; queue?: (store: Store, workRoot: string) => ExecutionQueue } = {}) {
  const dir = tempDir(t);
  const real = openSqliteStore(join(dir, 'quark.db'));
  t.teardown(() => real.close());
  await real.accounts.insert(account);
  const store = options.fault ? options.fault(real) : real;
  const executions = createExecutions({
    store,
    access: { requireMember: () => undefined } as never,
    deployments: { validate: async (_caller: Caller, d: unknown) => d, requireActive: async () => ({ definition, version: 1 }) } as never,
    operations: {} as never,
    walker: { walk: options.walk ?? walksFine } as never,
    metrics: createMetrics(),
    logger: createLogger({ level: 'silent' }),
    logLevel: 'info',
    redact: [],
    workRoot: join(dir, 'work'),
    nodeId: 'node_test',
    ...(options.queue ? { queue: options.queue(store, join(dir, 'work')) } : {}),
    limits: { maxRunningExecutions: options.maxRunning ?? 4, maxQueuedExecutions: 10, executionTimeoutMs: 600_000, purgeDays: 30 },
  });
  return { executions, real };
}

t.test('a store that refuses every execution write: the execution still ends, as error with a code, and the runtime is not ready', async (t) => {
  const { executions } = await build(t, { fault: (s) => faulty(s, 'update', 1) });
  const view = await executions.start(caller, { definition, trigger: 'api' }, { wait: true });
  t.equal(view.status, 'error');
  t.equal(view.errorCode, 'QUARK_ERR_EXECUTION_RECORD_FAILED');
  t.match(view.errorMessage, /disk I\/O error \(injected/);
  t.match(executions.failure(), /could not be written: disk I\/O error/, 'the runtime knows it is not ready, and why');
  await executions.close();
  t.pass('close() does not wait forever');
});

t.test('a store that throws on the first update (the end; a free slot inserts the record in-process): recorded as error on the next', async (t) => {
  const { executions, real } = await build(t, { fault: (s) => faulty(s, 'update', 1, 1) });
  const view = await executions.start(caller, { definition, trigger: 'api' }, { wait: true });
  t.equal(view.status, 'error');
  t.equal(view.errorCode, 'QUARK_ERR_EXECUTION_RECORD_FAILED');
  t.equal((await real.executions.get(account.id, view.id))?.status, 'error', 'the store has the end');
  t.equal(executions.failure(), undefined, 'the runtime stays ready: the end was written');
  await executions.close();
});

t.test('a store that cannot be reached for the end (StoreUnavailableError): not ready while the end waits, ready again once it is written, no restart', async (t) => {
  const unreachable = (m: string) => new StoreUnavailableError(`PostgreSQL at 127.0.0.1:5432 is not reachable: ${m}`);
  const { executions, real } = await build(t, { fault: (s) => faulty(s, 'update', 1, 3, unreachable) });
  const view = await executions.start(caller, { definition, trigger: 'api' }, { wait: true });
  t.equal(view.status, 'error');
  t.equal(view.errorCode, 'QUARK_ERR_EXECUTION_RECORD_FAILED', 'it ends with a code');
  t.equal((await real.executions.get(account.id, view.id))?.status, 'in-process', 'the store does not have the end yet');
  t.match(executions.failure(), /1 execution end\(s\) wait for the store/, 'not ready, and why');
  await executions.writeUnwritten();
  t.match(executions.failure(), /wait for the store/, 'the store still refuses (call 3): still kept, still not ready');
  await executions.writeUnwritten();
  t.equal(executions.failure(), undefined, 'written: ready again');
  t.match(await real.executions.get(account.id, view.id), { status: 'error', errorCode: 'QUARK_ERR_EXECUTION_RECORD_FAILED' }, 'the store has the end with its code');
  await executions.close();
});

t.test('an end kept while the store was unreachable, then refused as fenced (another node finalised the run meanwhile): dropped, ready again', async (t) => {
  let refusals = 0;
  const unreachableThenFenced = (m: string) => (++refusals < 3 ? new StoreUnavailableError(`PostgreSQL at 127.0.0.1:5432 is not reachable: ${m}`) : new StoreFencedError(`lease epoch moved on: ${m}`));
  const { executions } = await build(t, { fault: (s) => faulty(s, 'update', 1, 3, unreachableThenFenced) });
  const view = await executions.start(caller, { definition, trigger: 'api' }, { wait: true });
  t.equal(view.errorCode, 'QUARK_ERR_EXECUTION_RECORD_FAILED');
  t.match(executions.failure(), /1 execution end\(s\) wait for the store/, 'not ready while the end waits');
  await executions.writeUnwritten();
  t.equal(executions.failure(), undefined, 'the store answered that another node holds the record: the kept end is dropped, not retried forever');
  await executions.close();
});

t.test('a store that refuses the log: the execution ends as it ran, the lines are dropped and said to be', async (t) => {
  const { executions, real } = await build(t, { fault: (s) => faulty(s, 'appendLog', 1) });
  const view = await executions.start(caller, { definition, trigger: 'api' }, { wait: true });
  t.equal(view.status, 'complete');
  t.equal((await real.executions.get(account.id, view.id))?.status, 'complete');
  t.match(executions.failure(), /an execution log could not be written/);
  await executions.close();
});

t.test('a walker that fails unexpectedly ends the execution as error', async (t) => {
  const { executions } = await build(t, { walk: async () => Promise.reject(new Error('the pool is gone')) });
  const view = await executions.start(caller, { definition, trigger: 'api' }, { wait: true });
  t.equal(view.status, 'error');
  t.equal(view.errorCode, 'QUARK_ERR_API_INTERNAL');
  t.match(view.errorMessage, /the pool is gone/);
  await executions.close();
});

t.test('shutdown: the running execution is aborted, the queued one stays queued, each with a last line in its log; a queued test-mode run is discarded', async (t) => {
  const { executions } = await build(t, { walk: walksUntilAborted, maxRunning: 1 });
  const running = await executions.start(caller, { process: 'p', trigger: 'api' });
  const queued = await executions.start(caller, { process: 'p', trigger: 'api' });
  const tried = await executions.start(caller, { definition, trigger: 'api' });
  t.equal((await executions.get(caller, queued.id)).status, 'queued');
  t.equal((await executions.get(caller, tried.id)).status, 'queued');
  await executions.close();
  const logOf = async (id: string) => (await executions.log(caller, id)).join('');
  t.equal((await executions.get(caller, running.id)).status, 'aborted');
  t.match(await logOf(running.id), /execution ended aborted: the runtime shut down/);
  t.equal((await executions.get(caller, queued.id)).status, 'queued', 'it waits in the store for the next start');
  t.match(await logOf(queued.id), /the runtime shut down before this execution started: it stays queued and runs when the runtime starts again/);
  t.match(await executions.get(caller, tried.id), { status: 'discarded', errorCode: 'QUARK_ERR_EXECUTION_INTERRUPTED', errorMessage: /test-mode run .* is not kept across a restart/ }, 'the test-mode run is discarded, saying why');
});

/** A promise and its resolver. */
function signal<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

t.test('a cancel that comes while the pump takes the queued execution: no step of it runs, and it ends cancelled', async (t) => {
  const walkedSecond = signal();
  let secondId = '';
  const walk: Walk = (d, docs, ctx) => {
    if (ctx.info.id === secondId) walkedSecond.resolve();
    return walksUntilAborted(d, docs, ctx);
  };
  // the store queue, with its take held open once it took an execution: the window a cancel can fall into
  const took = signal();
  const letGo = signal();
  const queue = (store: Store, workRoot: string): ExecutionQueue => {
    const inner = createStoreQueue({ store, workRoot });
    return {
      ...inner,
      async take() {
        const record = await inner.take();
        if (record) {
          took.resolve();
          await letGo.promise;
        }
        return record;
      },
    };
  };
  const { executions } = await build(t, { walk, maxRunning: 1, queue });
  const first = await executions.start(caller, { definition, trigger: 'api' });
  const second = await executions.start(caller, { definition, trigger: 'api' });
  secondId = second.id;
  t.equal(second.status, 'queued', 'the second waits');
  const secondEnded = signal<{ status: string; errorCode: string | null }>();
  executions.subscribe(caller, (v) => {
    if (v.id === second.id && !['queued', 'in-process'].includes(v.status)) secondEnded.resolve(v);
  });
  await executions.cancel(caller, first.id);
  await took.promise;
  const cancelling = executions.cancel(caller, second.id);
  letGo.resolve();
  const answer = await cancelling;
  t.notOk(['complete', 'error'].includes(answer.status), `the cancel answered (${answer.status})`);
  const outcome = await Promise.race([secondEnded.promise, walkedSecond.promise.then(() => 'walked' as const)]);
  t.not(outcome, 'walked', 'no step of it ran after the cancel');
  t.match(outcome, { status: /^(aborted|discarded)$/, errorCode: 'QUARK_ERR_EXECUTION_CANCELLED' }, 'it ended cancelled');
  t.equal((await executions.get(caller, second.id)).errorCode, 'QUARK_ERR_EXECUTION_CANCELLED', 'so says its record');
  await executions.close();
});
