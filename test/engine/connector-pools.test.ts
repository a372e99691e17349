// The pool router of "one connector per worker": a pool per plugin folder, a bounded total
// of running tasks, retirement of a tainted connector's pool. With fake pools that record
// what they were given, and one real test with two fixture plugins.
import t from 'tap';
import { join } from 'node:path';
import { createConnectorPools, poolKey, stepsYoungGenerationMb } from '../../runtime/engine/connector-pools.js';
import type { PoolStats, RunOptions, WorkerPool, WorkerPoolOptions } from '../../runtime/engine/pool.js';
import type { WorkerReply, WorkerTask } from '../../runtime/engine/messages.js';
import { fixturePlugins } from '../helpers/quark.js';

const silent = { warn: () => undefined };
const stats: PoolStats = { threads: 1, idleThreads: 1, queueSize: 0, completed: 0, utilization: 0 };
const testTask = (plugin: string): WorkerTask => ({ kind: 'test', entry: join(fixturePlugins, plugin, 'index.js'), config: {}, runtime: {} });

/** Pools whose tasks end when the test says so. */
function fakePools() {
  const made: { closed: boolean; tasks: WorkerTask[]; options: WorkerPoolOptions }[] = [];
  const finish: ((reply: WorkerReply) => void)[] = [];
  const createPool = (options: WorkerPoolOptions): WorkerPool => {
    const record = { closed: false, tasks: [] as WorkerTask[], options };
    made.push(record);
    return {
      run: (task: WorkerTask, _options: RunOptions) => {
        record.tasks.push(task);
        return new Promise<WorkerReply>((resolve) => finish.push(resolve));
      },
      stats: () => stats,
      close: async () => void (record.closed = true),
    };
  };
  return { made, finish, createPool };
}

t.test('tasks of different connectors never share a pool; steps have their own', async (t) => {
  t.equal(poolKey(testTask('secret-echo')), join(fixturePlugins, 'secret-echo'));
  t.equal(poolKey({ kind: 'steps' } as WorkerTask), 'steps');
  const fake = fakePools();
  const pools = createConnectorPools({ threads: 4, heapMb: 64, logger: silent, createPool: fake.createPool });
  const runs = [pools.run(testTask('secret-echo'), { timeoutMs: 1000, what: 'a' }), pools.run(testTask('hostile'), { timeoutMs: 1000, what: 'b' }), pools.run(testTask('secret-echo'), { timeoutMs: 1000, what: 'c' })];
  await t.resolves(until(() => fake.finish.length === 3));
  t.equal(fake.made.length, 2, 'two connectors, two pools');
  t.same(fake.made.map((m) => m.tasks.length), [2, 1]);
  for (const end of fake.finish) end({ ok: true, value: null, logs: [] });
  await Promise.all(runs);
  await pools.close();
  t.ok(fake.made.every((m) => m.closed), 'close closes every pool');
});

t.test("the steps pool's workers have a small young generation; a connector's pool keeps V8's default", async (t) => {
  const fake = fakePools();
  const pools = createConnectorPools({ threads: 2, heapMb: 64, logger: silent, createPool: fake.createPool });
  const runs = [pools.run({ kind: 'steps' } as WorkerTask, { timeoutMs: 1000, what: 'steps' }), pools.run(testTask('secret-echo'), { timeoutMs: 1000, what: 'plugin' })];
  await t.resolves(until(() => fake.finish.length === 2));
  t.equal(fake.made[0]!.options.youngGenerationMb, stepsYoungGenerationMb);
  t.equal(fake.made[1]!.options.youngGenerationMb, undefined);
  for (const end of fake.finish) end({ ok: true, value: null, logs: [] });
  await Promise.all(runs);
  await pools.close();
});

t.test('at most `threads` tasks run at once over all pools; a waiting task can be cancelled', async (t) => {
  const fake = fakePools();
  const pools = createConnectorPools({ threads: 1, heapMb: 64, logger: silent, createPool: fake.createPool });
  const first = pools.run(testTask('secret-echo'), { timeoutMs: 1000, what: 'first' });
  const cancel = new AbortController();
  const waiting = pools.run(testTask('hostile'), { timeoutMs: 1000, what: 'the waiting task', signal: cancel.signal });
  const third = pools.run(testTask('hostile'), { timeoutMs: 1000, what: 'third' });
  await until(() => fake.finish.length === 1);
  t.equal(pools.stats().queueSize, 2, 'two wait for a slot');
  cancel.abort();
  await t.rejects(waiting, { code: 'QUARK_ERR_OPERATION_CANCELLED', message: /the waiting task was cancelled before it started/ });
  fake.finish[0]!({ ok: true, value: 1, logs: [] });
  await first;
  await until(() => fake.finish.length === 2);
  t.equal(fake.made[1]!.tasks.length, 1, 'the cancelled task never reached a pool');
  fake.finish[1]!({ ok: true, value: 3, logs: [] });
  t.same(await third, { ok: true, value: 3, logs: [] });
  await pools.close();
});

t.test('a tainted reply retires its pool once its tasks end; the next task gets a new one', async (t) => {
  const fake = fakePools();
  const warnings: string[] = [];
  const pools = createConnectorPools({ threads: 2, heapMb: 64, logger: { warn: (_f, m) => void warnings.push(m) }, createPool: fake.createPool });
  const tainted = pools.run(testTask('hostile'), { timeoutMs: 1000, what: 'a' });
  const other = pools.run(testTask('hostile'), { timeoutMs: 1000, what: 'b' });
  await until(() => fake.finish.length === 2);
  fake.finish[0]!({ ok: true, value: 1, logs: [], recycle: 'an unhandled rejection: late' });
  t.match(await tainted, { ok: true, recycle: /late/ }, 'the task itself is not failed');
  t.equal(fake.made[0]!.closed, false, 'not closed while a task still runs in it');
  const next = pools.run(testTask('hostile'), { timeoutMs: 1000, what: 'c' });
  await until(() => fake.finish.length === 3);
  t.equal(fake.made.length, 2, 'the next task went to a new pool');
  fake.finish[1]!({ ok: true, value: 2, logs: [] });
  await other;
  t.equal(fake.made[0]!.closed, true, 'the retired pool is closed when its last task ends');
  fake.finish[2]!({ ok: true, value: 3, logs: [] });
  await next;
  t.equal(pools.recycled(), 1);
  t.match(warnings, [/tainted by plugin code/]);
  await pools.close();
});

t.test('idle pools beyond `threads` are closed, least recently used first', async (t) => {
  const fake = fakePools();
  const pools = createConnectorPools({ threads: 1, heapMb: 64, logger: silent, createPool: fake.createPool });
  for (const [index, plugin] of ['secret-echo', 'hostile'].entries()) {
    const run = pools.run(testTask(plugin), { timeoutMs: 1000, what: plugin });
    await until(() => fake.finish.length === index + 1);
    fake.finish.at(-1)!({ ok: true, value: null, logs: [] });
    await run;
  }
  t.same(fake.made.map((m) => m.closed), [true, false], 'the first connector\'s idle pool made room');
  t.same(pools.keys(), [join(fixturePlugins, 'hostile')]);
  await pools.close();
});

/** Waits for a condition set by the pools' own promises (a few turns of the event loop). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setImmediate(resolve));
}

t.test("a connector's pool that only ran the loader's probe is closed when the probe ends; one that ran a task is kept", async (t) => {
  const fake = fakePools();
  const pools = createConnectorPools({ threads: 2, heapMb: 64, logger: silent, createPool: fake.createPool });
  const probe: WorkerTask = { kind: 'probe', entry: join(fixturePlugins, 'hostile', 'index.js'), operations: [], testConnection: true };
  const probed = pools.run(probe, { timeoutMs: 1000, what: 'probe' });
  await until(() => fake.finish.length === 1);
  fake.finish[0]!({ ok: true, value: null, logs: [] });
  await probed;
  t.ok(fake.made[0]!.closed, 'the probed connector holds no worker');
  t.same(pools.keys(), []);
  const tested = pools.run(testTask('hostile'), { timeoutMs: 1000, what: 'test' });
  await until(() => fake.finish.length === 2);
  fake.finish[1]!({ ok: true, value: null, logs: [] });
  await tested;
  t.notOk(fake.made[1]!.closed, 'a connector in use keeps its pool (until idle)');
  await pools.close();
});
