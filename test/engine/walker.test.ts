/**
 * Unit tests of the graph walker with a real worker pool (dist/runtime/engine/worker.js):
 * no runtime, no store, no HTTP. They find the edge cases the black-box tests cannot
 * afford: half a million documents on one path, one poisoned document among many, an
 * expression that never ends, one that eats the worker's heap.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createWorkerPool, type WorkerPool } from '../../runtime/engine/pool.js';
import { append, chunkFailure, createWalker, eachInOrder, segmentTimeout, type WalkContext, type WalkerOptions } from '../../runtime/engine/walker.js';
import { inlineRef } from '../../runtime/engine/bodies.js';
import { createLogger } from '../../runtime/core/logger.js';
import { quarkError } from '../../runtime/core/errors.js';
import { hostDied } from '../../runtime/engine/host.js';
import type { DocumentRef } from '../../runtime/engine/messages.js';
import { createOutputStream } from '../../runtime/processes/output-stream.js';
import type { ProcessDefinition, PureStep, Step } from '../../runtime/processes/definition.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

const quiet = createLogger({ level: 'silent' });

function contextFor(t: Teardown, overrides: Partial<WalkContext> = {}): WalkContext {
  const workDir = mkdtempSync(join(tmpdir(), 'quark-walker-'));
  t.teardown(() => rmSync(workDir, { recursive: true, force: true }));
  return {
    info: { id: 'exe_test', process: 'p', version: 1, trigger: 'manual' },
    workDir,
    signal: new AbortController().signal,
    process: {},
    operations: { run: async () => { throw new Error('no operations in these tests'); } },
    callee: () => { throw quarkError('QUARK_ERR_PROCESS_NOT_FOUND', 'no callees in these tests'); },
    counts: {},
    log: quiet,
    warnings: 0,
    ...overrides,
  };
}

function poolFor(t: Teardown, heapMb = 512): WorkerPool {
  const pool = createWorkerPool({ threads: 2, heapMb, logger: createLogger({ level: 'silent' }) });
  t.teardown(() => pool.close());
  return pool;
}

function walkerFor(pool: WorkerPool, options: Partial<WalkerOptions> = {}) {
  return createWalker({ pool, threads: 2, spillBytes: 8 * 1024 * 1024, stepTimeoutMs: 600_000, maxNestingDepth: 500, ...options });
}

const definition = (steps: Step[], first = steps[0]!.id): ProcessDefinition => ({ id: 'p', name: 'p', start: { kind: 'documents', next: first }, steps });
const doc = (body: string, properties: Record<string, string> = {}): DocumentRef => ({ properties, body: inlineRef(body) });
const text = (d: DocumentRef) => (d.body.kind === 'inline' ? Buffer.from(d.body.bytes).toString('utf8') : readFileSync(d.body.path, 'utf8'));
const nested = (levels: number) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);

t.test('500,000 documents on one path: split lines → map → decision', async (t) => {
  const walker = walkerFor(poolFor(t));
  const lines = Array.from({ length: 500_000 }, (_, i) => String(i)).join('\n');
  const steps: Step[] = [
    { id: 'split', kind: 'split', mode: 'lines', next: 'map' },
    { id: 'map', kind: 'map', expression: '{"n": $number($)}', next: 'even' },
    { id: 'even', kind: 'decision', condition: 'n % 2 = 0', ifFalse: 'odd' },
    { id: 'odd', kind: 'stop' },
  ];
  const ctx = contextFor(t);
  const result = await walker.walk(definition(steps), [doc(lines)], ctx);
  t.equal(result.failures.length, 0, 'nothing failed');
  t.equal(result.outputs.length, 250_000, 'the even half ends the path');
  t.equal(text(result.outputs[0]!), '{"n":0}');
  t.equal(text(result.outputs[249_999]!), '{"n":499998}');
  t.same(ctx.counts.split, { in: 1, out: 500_000, errors: 0 });
  t.same(ctx.counts.map, { in: 500_000, out: 500_000, errors: 0 });
  t.same(ctx.counts.even, { in: 500_000, out: 500_000, errors: 0 });
});

t.test("a split's children are spread over the pool's workers, not walked in the split's one task", async (t) => {
  const pool = poolFor(t);
  const tasks: number[] = [];
  const counting: WorkerPool = { ...pool, run: (task, options) => (task.kind === 'steps' && tasks.push(task.documents.length), pool.run(task, options)) };
  const walker = walkerFor(counting);
  const lines = Array.from({ length: 20_000 }, (_, i) => String(i)).join('\n');
  const steps: Step[] = [
    { id: 'split', kind: 'split', mode: 'lines', next: 'map' },
    { id: 'map', kind: 'map', expression: '{"n": $number($)}' },
  ];
  const ctx = contextFor(t);
  const result = await walker.walk(definition(steps), [doc(lines)], ctx);
  t.equal(result.outputs.length, 20_000);
  t.equal(text(result.outputs[19_999]!), '{"n":19999}', 'in order');
  t.same(ctx.counts.map, { in: 20_000, out: 20_000, errors: 0 });
  t.same(tasks[0], 1, 'the split: one task for the one document');
  t.ok(tasks.length >= 3, `the children went out in chunks (${tasks.length - 1} tasks of ${tasks.slice(1).join(', ')})`);
  t.equal(tasks.slice(1).reduce((a, b) => a + b, 0), 20_000);
});

t.test('combine in lines mode streams spilled bodies into a file instead of refusing them', async (t) => {
  const walker = walkerFor(poolFor(t), { spillBytes: 64 * 1024 });
  const ctx = contextFor(t);
  const spilledPath = join(ctx.workDir, 'spilled-input');
  const big = Array.from({ length: 20_000 }, (_, i) => `big ${i}`).join('\r\n') + '\r\n';
  writeFileSync(spilledPath, big);
  const spilled: DocumentRef = { properties: { from: 'file' }, body: { kind: 'file', path: spilledPath, size: Buffer.byteLength(big) } };
  const steps: Step[] = [{ id: 'all', kind: 'combine', mode: 'lines' }];
  const result = await walker.walk(definition(steps), [doc('first\n', { from: 'memory' }), spilled, doc('last')], ctx);
  t.same(result.failures, [], 'nothing refused');
  t.equal(result.outputs.length, 1);
  const out = result.outputs[0]!;
  t.equal(out.body.kind, 'file', 'larger than spillBytes: a file');
  t.equal(text(out), 'first\n' + big.replace(/\r\n$/, '') + '\nlast\n', 'each body once, its last line end made one \\n');
  t.equal(out.body.kind === 'file' && out.body.size, Buffer.byteLength(text(out)));
  t.same(out.properties, { from: 'memory' }, "the first document's properties");
  t.same(ctx.counts.all, { in: 3, out: 1, errors: 0 });
});

t.test('append takes any number of items (push(...items) overflows past ~125,000)', async (t) => {
  const target = [1];
  append(target, Array.from({ length: 300_000 }, (_, i) => i));
  t.equal(target.length, 300_001);
  t.equal(target[300_000], 299_999);
});

t.test('a document nested 20,000 deep fails alone; the 199 others of its chunk go on', async (t) => {
  const walker = walkerFor(poolFor(t));
  const documents = Array.from({ length: 200 }, (_, i) => doc(i === 57 ? nested(20_000) : JSON.stringify({ i }), { index: String(i) }));
  const ctx = contextFor(t);
  const result = await walker.walk(definition([{ id: 'same', kind: 'map', expression: '$' }]), documents, ctx);
  t.equal(result.outputs.length, 199, 'every other document made it');
  t.equal(result.failures.length, 1, 'one failure');
  const failure = result.failures[0]!;
  t.equal(failure.code, 'QUARK_ERR_STEP_NESTING_TOO_DEEP', 'the code says what happened');
  t.equal(failure.step, 'same');
  t.match(failure.message, /nests deeper than 500 levels/);
  t.same(ctx.counts.same, { in: 200, out: 200, errors: 1 });
  t.notOk(result.outputs.some((d) => d.properties.index === '57'), 'the deep one is not in the output');
});

t.test('a body nested 600 deep (deeper than limits.maxNestingDepth, not than JSON.stringify) fails alone', async (t) => {
  const walker = walkerFor(poolFor(t));
  const documents = [doc('{"x":1}'), doc(nested(600)), doc(nested(500))];
  const result = await walker.walk(definition([{ id: 'same', kind: 'map', expression: '$' }]), documents, contextFor(t));
  t.same(result.failures.map((f) => [f.step, f.code]), [['same', 'QUARK_ERR_STEP_NESTING_TOO_DEEP']]);
  t.match(result.failures[0]!.message, /nests deeper than 500 levels .*\(at \/a\/a\/a/);
  t.same(result.outputs.map((d) => text(d).length), [7, nested(500).length], 'exactly at the limit passes');
});

t.test('discardOutputs: the ends of the process are counted, none kept; a called process still hands its documents on', async (t) => {
  const walker = walkerFor(poolFor(t));
  const steps: Step[] = [
    { id: 'map', kind: 'map', expression: '{"n": n * 2}', next: 'big' },
    { id: 'big', kind: 'decision', condition: 'n > 10', ifTrue: 'mark' },
    { id: 'mark', kind: 'set-properties', document: { big: 'yes' } },
  ];
  const documents = Array.from({ length: 3000 }, (_, n) => doc(JSON.stringify({ n })));
  const kept = await walker.walk(definition(steps), documents, contextFor(t));
  t.equal(kept.outputs.length, 3000);
  t.equal(kept.documentsOut, 3000);
  const ctx = contextFor(t, { discardOutputs: true });
  const dropped = await walker.walk(definition(steps), documents, ctx);
  t.equal(dropped.outputs.length, 0, 'none kept');
  t.equal(dropped.documentsOut, 3000, 'all counted');
  t.same(ctx.counts.mark, { in: 2994, out: 2994, errors: 0 });
  const callee: ProcessDefinition = { id: 'inner', name: 'inner', start: { kind: 'documents', next: 'double' }, steps: [{ id: 'double', kind: 'map', expression: '{"n": n * 2}' }] };
  const calling: Step[] = [{ id: 'call', kind: 'process-call', process: 'inner', next: 'last' }, { id: 'last', kind: 'map', expression: '{"n": n + 1}' }];
  const called = await walker.walk(definition(calling), [doc('{"n":1}'), doc('{"n":2}')], contextFor(t, { discardOutputs: true, callee: async () => callee }));
  t.same([called.documentsOut, called.outputs.length, called.failures.length], [2, 0, 0], "the callee's outputs went on to the next step, then were counted");
});

t.test('eachInOrder: at most `limit` at a time, results delivered in item order as they come', async (t) => {
  let running = 0;
  let most = 0;
  const delivered: number[] = [];
  const gates = Array.from({ length: 10 }, () => {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
  });
  const run = async (i: number) => {
    running++;
    most = Math.max(most, running);
    await gates[i]!.promise;
    running--;
    return i;
  };
  const all = eachInOrder([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 3, run, (i) => delivered.push(i));
  gates[1]!.resolve();
  gates[2]!.resolve();
  await new Promise((resolve) => setImmediate(resolve)); // every continuation of the settled ones has run
  t.same(delivered, [], 'nothing before the first is in');
  gates[0]!.resolve();
  await new Promise((resolve) => setImmediate(resolve));
  t.same(delivered, [0, 1, 2], 'the first three as soon as the first is in');
  for (const gate of gates) gate.resolve();
  await all;
  t.same(delivered, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.equal(most, 3);
});

t.test('a process property set too deep fails its document, not the tasks that follow', async (t) => {
  const walker = walkerFor(poolFor(t));
  const steps: Step[] = [
    { id: 'keep', kind: 'set-properties', process: { last: { $expr: '$' } }, next: 'after' },
    { id: 'after', kind: 'map', expression: '$process.last ? "set" : "unset"' },
  ];
  const updates: Map<string, unknown>[] = [];
  const ctx = contextFor(t, { onProcessUpdates: (u) => updates.push(u) });
  const result = await walker.walk(definition(steps), [doc('{"x":1}'), doc(nested(3000)), doc('{"x":3}')], ctx);
  t.same(result.failures.map((f) => [f.step, f.code]), [['keep', 'QUARK_ERR_STEP_NESTING_TOO_DEEP']]);
  t.same(result.outputs.map(text), ['set', 'set']);
  t.same(ctx.process.last, { x: 3 }, 'the last value set, in document order');
  t.same(updates.map((u) => Object.fromEntries(u)), [{ last: { x: 3 } }], 'told once per chunk, with the last value per name');
});

t.test('JSONata errors keep their message, code and position', async (t) => {
  const walker = walkerFor(poolFor(t));
  const steps: Step[] = [{ id: 'route', kind: 'route', value: '$properties.kind', routes: [{ equals: 'custom', next: 'custom' }, { equals: 'type', next: 'type' }] },
    { id: 'custom', kind: 'map', expression: '$error("custom message")' },
    { id: 'type', kind: 'map', expression: '1 + "a"' }];
  const result = await walker.walk(definition(steps), [doc('{}', { kind: 'custom' }), doc('{}', { kind: 'type' })], contextFor(t));
  const messages = Object.fromEntries(result.failures.map((f) => [f.step, f.message]));
  t.match(messages.custom, /custom message \(JSONata D3137, at character \d+\)/);
  t.match(messages.type, /The right side of the "\+" operator must evaluate to a number \(JSONata T2002, at character 3\)/);
  t.notMatch(JSON.stringify(messages), /object Object/);
});

const endless = '($f := function($n){ $f($n + 1) }; $f(0))';

t.test('an expression that never ends fails its chunk with QUARK_ERR_STEP_TIMEOUT; the pool goes on', async (t) => {
  const pool = poolFor(t);
  const walker = walkerFor(pool);
  const steps: Step[] = [
    { id: 'route', kind: 'route', value: '$properties.kind', routes: [{ equals: 'endless', next: 'spin' }], default: 'fine' },
    { id: 'spin', kind: 'map', expression: endless, timeoutMs: 500 },
    { id: 'fine', kind: 'map', expression: '"fine"' },
  ];
  const result = await walker.walk(definition(steps), [doc('{}', { kind: 'endless' })], contextFor(t));
  t.equal(result.outputs.length, 0);
  t.same(result.failures.map((f) => f.code), ['QUARK_ERR_STEP_TIMEOUT'], 'the step\'s own timeoutMs stopped it (the default is 10 min here)');
  t.match(result.failures[0]!.message, /did not finish within 500 ms/);
  const after = await walker.walk(definition(steps), [doc('{}', { kind: 'other' })], contextFor(t));
  t.same(after.outputs.map(text), ['fine'], 'the next task runs on a fresh worker');
});

t.test('limits.stepTimeoutMs is the default limit of a run of pure steps', async (t) => {
  const walker = walkerFor(poolFor(t), { stepTimeoutMs: 500 });
  const result = await walker.walk(definition([{ id: 'spin', kind: 'map', expression: endless }]), [doc('{}')], contextFor(t));
  t.same(result.failures.map((f) => f.code), ['QUARK_ERR_STEP_TIMEOUT']);
});

t.test('an expression that exhausts the worker heap fails with QUARK_ERR_STEP_MEMORY_LIMIT; the pool goes on', async (t) => {
  const pool = poolFor(t, 64);
  const walker = walkerFor(pool);
  // many small objects: V8 stops the worker gracefully (one huge array growing in a single
  // allocation can instead abort the whole process: see the README's limits)
  const steps: Step[] = [{ id: 'hog', kind: 'map', expression: '[1..2000000].{"n": $, "s": $string($) & "xxxxxxxxxxxxxxxxxxxxxxxx"}' }];
  const result = await walker.walk(definition(steps), [doc('{}'), doc('{}')], contextFor(t));
  t.same(result.failures.map((f) => f.code), ['QUARK_ERR_STEP_MEMORY_LIMIT', 'QUARK_ERR_STEP_MEMORY_LIMIT'], 'the chunk\'s documents fail with the memory code');
  t.match(result.failures[0]!.message, /ran out of memory \(worker heap limit 64 MB\)/);
  const after = await walker.walk(definition([{ id: 'small', kind: 'map', expression: '"small"' }]), [doc('{}')], contextFor(t));
  t.same(after.outputs.map(text), ['small'], 'a new worker takes the next task');
});

t.test('segmentTimeout: the largest limit a step of the run sets, else the default', async (t) => {
  const pure = (steps: PureStep[]) => Object.fromEntries(steps.map((s) => [s.id, s]));
  const a: PureStep = { id: 'a', kind: 'map', expression: '1', next: 'b' };
  const b: PureStep = { id: 'b', kind: 'decision', condition: 'true', ifTrue: 'c', ifFalse: 'op' };
  const c: PureStep = { id: 'c', kind: 'map', expression: '2', timeoutMs: 5000 };
  t.equal(segmentTimeout(a, pure([a, b, c]), 60_000), 5000, 'a step reached in the run sets it');
  t.equal(segmentTimeout(a, pure([a, b]), 60_000), 60_000, 'none sets one: the default');
  t.equal(segmentTimeout(c, pure([a, b, c]), 60_000), 5000, 'only steps reachable from the entry count');
  t.equal(segmentTimeout(a, pure([a, b, { ...c, timeoutMs: 120_000 }, { id: 'op', kind: 'map', expression: '3', timeoutMs: 200 }]), 60_000), 120_000, 'the largest wins');
});

t.test('chunkFailure speaks of steps, not plugins', async (t) => {
  const map: PureStep = { id: 'm', kind: 'map', expression: '1' };
  const oom = quarkError('QUARK_ERR_PLUGIN_WORKER_DIED', 'step m ran out of memory (worker heap limit 64 MB); its worker was replaced', { heapMb: 64, outOfMemory: true }, Object.assign(new Error('oom'), { code: 'ERR_WORKER_OUT_OF_MEMORY' }));
  t.equal(chunkFailure(oom, map, 3, 1000).code, 'QUARK_ERR_STEP_MEMORY_LIMIT');
  const hostOom = hostDied('step m', null, 'SIGABRT', 'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory');
  t.match(chunkFailure(hostOom, map, 3, 1000), { code: 'QUARK_ERR_STEP_MEMORY_LIMIT', message: /plugin host process ran out of memory/ }, 'the host aborted for memory (isolation "process"): the memory code');
  t.equal(chunkFailure(hostDied('step m', 1, null, 'some other end'), map, 3, 1000).code, 'QUARK_ERR_PLUGIN_HOST_DIED', 'a host that ended otherwise says so');
  t.equal(chunkFailure(quarkError('QUARK_ERR_PLUGIN_TIMEOUT', 'x'), map, 3, 1000).code, 'QUARK_ERR_STEP_TIMEOUT');
  const unsendable = quarkError('QUARK_ERR_PLUGIN_WORKER_DIED', 'step m could not be passed to a worker thread', { posted: false }, new RangeError('Maximum call stack size exceeded'));
  const failure = chunkFailure(unsendable, map, 3, 1000);
  t.equal(failure.code, 'QUARK_ERR_STEP_TASK_UNSENDABLE');
  t.match(failure.message, /could not be passed to a worker thread: Maximum call stack size exceeded/);
  t.equal(chunkFailure(new Error('boom'), map, 3, 1000).code, 'QUARK_ERR_STEP_FAILED');
});

t.test('outputSink: the ends of the process go to the sink as they end; a full sink holds the next chunk back', async (t) => {
  const pool = poolFor(t);
  let handed = 0;
  const running = new Set<Promise<unknown>>();
  const counting: WorkerPool = {
    ...pool,
    run: (task, options) => {
      if (task.kind === 'steps') handed++;
      const run = pool.run(task, options);
      running.add(run);
      void run.finally(() => running.delete(run));
      return run;
    },
  };
  const walker = walkerFor(counting);
  const outputs = createOutputStream({ maxDocuments: 1 });
  let firstPush!: () => void;
  const pushed = new Promise<void>((resolve) => (firstPush = resolve));
  const sink = { push: (documents: readonly DocumentRef[]) => (outputs.push(documents), firstPush()), ready: () => outputs.ready() };
  const documents = Array.from({ length: 20_000 }, (_, n) => doc(JSON.stringify({ n })));
  const ctx = contextFor(t, { outputSink: sink });
  const walking = walker.walk(definition([{ id: 'double', kind: 'map', expression: '{"n": n * 2}' }]), documents, ctx);
  await pushed;
  // the chunks handed over before the sink filled finish; none is handed after them while nobody reads
  const before = handed;
  while (running.size > 0) await Promise.allSettled([...running]);
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(handed, before, `no chunk handed over while the sink was full (${handed} of 10 handed)`);
  t.ok(handed < 10, 'the walk is held back');
  let read = 0;
  const reading = (async () => {
    for (let d = await outputs.next(); d; d = await outputs.next()) {
      if (read === 0) t.equal(Buffer.from(d.bytes!).toString(), '{"n":0}', 'in order');
      read++;
    }
  })();
  const result = await walking;
  outputs.end();
  await reading;
  t.equal(read, 20_000, 'every document went through the sink');
  t.equal(result.outputs.length, 0, 'none kept by the walk');
  t.equal(result.documentsOut, 20_000);
  t.equal(handed, 10);
});
