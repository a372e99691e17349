import t from 'tap';
import { join } from 'node:path';
import { createWorkerPool } from '../../runtime/engine/pool.js';
import { inlineRef, emptyBody } from '../../runtime/engine/bodies.js';
import { fixturePlugins, tempDir } from '../helpers/quark.js';

// Idle piscina workers normally block in Atomics.wait, so a plugin's timer that throws
// after the answer fires only when the next task arrives. Without atomics an idle worker
// runs its event loop: the throw then kills a worker that has no task, which is the case
// of a worker running out of memory after its task timed out (defect 17), made
// deterministic. Workers read this from the environment they inherit.
process.env.PISCINA_DISABLE_ATOMICS = '1';

const entry = join(fixturePlugins, 'dies-after-answer', 'index.js');
const what = 'the dies-after-answer fixture';

/** A logger that hands each warning to whoever waits for the next one. */
function watchedLogger() {
  const warnings: { fields: object; message: string }[] = [];
  let waiter: (() => void) | undefined;
  return {
    warnings,
    warn(fields: object, message: string) {
      warnings.push({ fields, message });
      waiter?.();
    },
    next: () => new Promise<void>((resolve) => (waiter = resolve)),
  };
}

t.test("a plugin's late failure taints its worker instead of ending it: the reply says so, the next task runs", async (t) => {
  const logger = watchedLogger();
  const pool = createWorkerPool({ threads: 1, heapMb: 64, logger });
  t.teardown(() => pool.close());
  const reply = await pool.run({ kind: 'test', entry, config: {}, runtime: {} }, { timeoutMs: 30_000, what });
  t.ok(reply.ok, 'the task itself succeeded');
  t.match(reply.recycle, /a leaked handle/, 'its timer, still pending, marks the worker for recycling');
  const again = await pool.run({ kind: 'test', entry, config: {}, runtime: {} }, { timeoutMs: 30_000, what });
  t.ok(again.ok, 'the next task runs');
  t.same(logger.warnings, [], 'no worker died');
});

t.test('process.exit half way through the documents fails that document only; the worker lives', async (t) => {
  const logger = watchedLogger();
  const pool = createWorkerPool({ threads: 1, heapMb: 64, logger });
  t.teardown(() => pool.close());
  const workDir = tempDir(t);
  const documents = [{ properties: { last: 'no' }, body: inlineRef('a') }, { properties: { last: 'yes' }, body: emptyBody }];
  const task = { kind: 'operation' as const, entry, operation: 'exit', config: {}, parameters: {}, runtime: {}, documents, workDir, spillBytes: 1024 };
  const reply = await pool.run(task, { timeoutMs: 30_000, what });
  t.ok(reply.ok, 'the task answers');
  const [first, second] = (reply as { ok: true; value: { status: string; code?: string; message?: string }[] }).value;
  t.equal(first!.status, 'success');
  t.match(second, { status: 'failure', code: 'QUARK_ERR_PLUGIN_THREW', message: /plugin code cannot end the process \(process.exit\)/ });
});

t.test('a task queued behind a worker that is stopped still runs', async (t) => {
  const logger = watchedLogger();
  const pool = createWorkerPool({ threads: 1, heapMb: 64, logger });
  t.teardown(() => pool.close());
  const spinner = join(fixturePlugins, 'hangs', 'index.js');
  const stuck = pool.run({ kind: 'test', entry: spinner, config: {}, runtime: {} }, { timeoutMs: 500, graceMs: 0, what: 'the spinner' });
  const queued = pool.run({ kind: 'test', entry, config: {}, runtime: {} }, { timeoutMs: 30_000, what });
  await t.rejects(stuck, { code: 'QUARK_ERR_PLUGIN_TIMEOUT' }, 'the spinner is stopped at its limit');
  t.ok((await queued).ok, 'the task that waited behind it runs in a new worker');
});

t.test('a resource the runtime cannot record (the store throws) is refused to the plugin; nothing escapes', async (t) => {
  const logger = watchedLogger();
  const pool = createWorkerPool({ threads: 1, heapMb: 64, logger });
  t.teardown(() => pool.close());
  const holder = join(fixturePlugins, 'holds-resource', 'index.js');
  const marker = join(tempDir(t), 'marker');
  const task = {
    kind: 'operation' as const,
    entry: holder,
    operation: 'hold',
    config: { marker, token: 'tok' },
    parameters: { name: 'n', then: 'keep' },
    runtime: {},
    documents: [{ properties: {}, body: emptyBody }],
    workDir: tempDir(t),
    spillBytes: 1024,
  };
  const onResource = () => {
    throw new Error('SQLITE_FULL: database or disk is full');
  };
  const reply = await pool.run(task, { timeoutMs: 30_000, what: 'the holds-resource fixture', onResource });
  t.ok(reply.ok, 'the task answers');
  const [outcome] = (reply as { ok: true; value: { status: string; code?: string; message?: string }[] }).value;
  t.match(outcome, { status: 'failure', code: 'QUARK_ERR_RESOURCE_NOT_RECORDED', message: /hold refused: the runtime could not record the resource: SQLITE_FULL/ });
});

t.test("the pool's utilization is read at most once a second (each read summarises piscina's histogram)", async (t) => {
  const { createUtilization, utilizationMaxAgeMs } = await import('../../runtime/engine/pool.js');
  let reads = 0;
  let now = 1_000_000;
  const piscina = {
    get utilization() {
      reads++;
      return reads / 10;
    },
  };
  const utilization = createUtilization(piscina, () => now);
  t.equal(utilization(), 0.1);
  now += utilizationMaxAgeMs - 1;
  t.equal(utilization(), 0.1, 'within the second: the value read before');
  t.equal(reads, 1);
  now += 1;
  t.equal(utilization(), 0.2, 'a second later: read again');
  t.equal(reads, 2);
});

/** A steps task of `count` documents whose map takes about a millisecond each (a range of 20,000 summed). */
function slowSteps(t: Parameters<typeof tempDir>[0], count: number) {
  const documents = Array.from({ length: count }, (_, i) => ({ properties: {}, body: inlineRef(String(i)) }));
  const steps = { slow: { id: 'slow', kind: 'map' as const, expression: '$sum([1..20000])' } };
  return { kind: 'steps' as const, steps, first: 'slow', documents, process: {}, execution: { id: 'exe_1', process: 'p', version: 1, trigger: 'manual' as const }, workDir: tempDir(t), spillBytes: 1024 * 1024, maxNestingDepth: 100 };
}

type StepsReply = { ok: true; value: { exits: { documents: unknown[] }[]; failed: { code: string }[] } };

t.test("a chunk's time limit stops it between documents: the ones walked are kept, the rest fail with the limit, the worker is not terminated", async (t) => {
  const logger = watchedLogger();
  const pool = createWorkerPool({ threads: 1, heapMb: 64, logger });
  t.teardown(() => pool.close());
  // about two seconds of work against a limit of 200 ms; the grace is far longer than the work,
  // so only a stop the worker heard between documents can end it early
  const reply = (await pool.run(slowSteps(t, 2000), { timeoutMs: 200, graceMs: 600_000, what: 'the steps' })) as StepsReply;
  t.ok(reply.ok, 'the task answers instead of being terminated');
  const walked = reply.value.exits.reduce((n, e) => n + e.documents.length, 0);
  t.ok(reply.value.failed.length > 0, 'documents not reached within the limit failed');
  t.ok(reply.value.failed.every((f) => f.code === 'QUARK_ERR_STEP_TIMEOUT'), 'with the time limit');
  t.equal(walked + reply.value.failed.length, 2000, 'every document is accounted for');
  t.same(logger.warnings, [], 'no worker died');
});

t.test("a steps task's time limit counts from its worker's start, not while it waits behind another task", async (t) => {
  const logger = watchedLogger();
  const pool = createWorkerPool({ threads: 1, heapMb: 64, logger });
  t.teardown(() => pool.close());
  // the first holds the only worker for about two seconds; the second, with a limit of one
  // second, waits that long in the queue and then needs a few milliseconds
  const first = pool.run(slowSteps(t, 2000), { timeoutMs: 600_000, what: 'the first steps' });
  const second = (await pool.run(slowSteps(t, 3), { timeoutMs: 1000, graceMs: 600_000, what: 'the second steps' })) as StepsReply;
  const firstReply = (await first) as StepsReply;
  t.same(firstReply.value.failed, [], 'the first ran whole');
  t.same(second.value.failed, [], 'the second was not timed out while it waited');
  t.equal(second.value.exits[0]!.documents.length, 3);
});
