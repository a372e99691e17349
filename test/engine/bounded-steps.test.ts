/**
 * Isolation "threads": which steps chunks the runtime keeps in its own worker threads
 * (bounded-steps.ts) and which go to the plugin host process (split-pool.ts). A chunk goes
 * to the runtime's threads only when it cannot grow past boundedStepsBytes; anything that
 * could run away (a function, a range, a binding, a split, a spilled or large body) still
 * goes to the host, where V8's abort for memory ends only the host.
 */
import t from 'tap';
import { boundedNodes } from '../../runtime/engine/expressions.js';
import { boundedSteps, boundedStepsBytes } from '../../runtime/engine/bounded-steps.js';
import { createSplitPool } from '../../runtime/engine/split-pool.js';
import type { PoolStats, WorkerPool } from '../../runtime/engine/pool.js';
import type { StepsTask, WorkerTask } from '../../runtime/engine/messages.js';
import type { PureStep } from '../../runtime/processes/definition.js';

/** The steps of bench/latency.mjs's process: map → set-properties → decision. */
const small: Record<string, PureStep> = {
  map: { id: 'map', kind: 'map', expression: '{"greeting": "hello", "n": 42, "tags": ["a", "b"]}', next: 'props' },
  props: { id: 'props', kind: 'set-properties', document: { greeting: { $expr: 'greeting' } }, next: 'big' },
  big: { id: 'big', kind: 'decision', condition: 'n > 10' },
};

function task(steps: Record<string, PureStep>, bodies: { bytes?: number; file?: boolean }[] = [{ bytes: 20 }]): StepsTask {
  return {
    kind: 'steps',
    steps,
    first: Object.keys(steps)[0]!,
    documents: bodies.map((b) => ({ properties: {}, body: b.file ? { kind: 'file', path: '/tmp/x', size: 10 } : { kind: 'inline', bytes: new Uint8Array(b.bytes ?? 0) } })),
    process: {},
    execution: { id: 'exe_b', process: 'p', version: 1, trigger: 'api' },
    workDir: '/tmp/quark-bounded',
    spillBytes: 8 * 1024 * 1024,
    maxNestingDepth: 500,
  };
}

t.test('bounded expression trees: paths, literals, constructors, comparisons and the direct aggregates', async (t) => {
  for (const text of ['customer.id', '"text"', '42', '{"a": x, "b": [1, "two", y.z]}', 'n > 10 and ok', '$merge([$, {"total": $sum(items.price)}])', '$count(items)', '$properties.kind = "a"']) {
    t.type(boundedNodes(text), 'number', text);
  }
  // each can make more than its input: the author's functions, ranges, bindings, stages, predicates, concatenation
  for (const text of ['$append($, $)', '[1..1000000]', '($x := $; [$x, $x])', 'items.{"x": $$}', 'a[b > 1]', '"a" & b', '$grow := function($a){ $a }', 'a ? b : c', 'not valid (']) {
    t.equal(boundedNodes(text), undefined, text);
  }
});

t.test('a small chunk of bounded steps is bounded; a large, spilled or unbounded one is not', async (t) => {
  t.ok(boundedSteps(task(small)), 'the latency bench\'s process over a small document');
  t.ok(boundedSteps(task(small, [{ bytes: 20 }, { bytes: 20 }, { bytes: 0 }])), 'three small documents');
  t.notOk(boundedSteps(task(small, [{ bytes: boundedStepsBytes }])), 'a body of boundedStepsBytes');
  t.notOk(boundedSteps(task(small, [{ bytes: 10_000 }])), '10 KB through steps that may make 108 times their input');
  t.notOk(boundedSteps(task(small, [{ file: true }])), 'a spilled body');
  t.notOk(boundedSteps(task({ grow: { id: 'grow', kind: 'map', expression: '$grow([], 200)' } })), 'a function call');
  t.notOk(boundedSteps(task({ ...small, s: { id: 's', kind: 'split', mode: 'json-array' } })), 'a split among the steps');
  t.notOk(boundedSteps(task({ ...small, n: { id: 'n', kind: 'notify', message: 'hi' } })), 'a notify among the steps');
  // each map of 9 nodes may make nine times its input: ten of them in a row, more than the bound
  const chain = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`m${i}`, { id: `m${i}`, kind: 'map', expression: '{"a": $, "b": [x, y, z]}' } as PureStep]));
  t.notOk(boundedSteps(task(chain, [{ bytes: 2 }])), 'a chain of maps whose product of fan-outs passes the bound');
});

function recording(name: string, into: string[]): WorkerPool {
  const stats: PoolStats = { threads: 1, idleThreads: 1, queueSize: 0, completed: 0, utilization: 0 };
  return {
    run: async () => {
      into.push(name);
      return { ok: true, value: null, logs: [] };
    },
    stats: () => stats,
    close: async () => {},
  };
}

t.test('isolation threads: bounded steps run in a steps pool of the runtime, the rest of the steps in the host, plugin tasks in the connector pools', async (t) => {
  const ran: string[] = [];
  const pool = createSplitPool({ steps: recording('host', ran), local: recording('runtime steps', ran), plugins: recording('plugins', ran) });
  const options = { timeoutMs: 1000, what: 'test' };
  await pool.run(task(small), options);
  await pool.run(task(small, [{ bytes: 100_000 }]), options);
  await pool.run(task({ grow: { id: 'grow', kind: 'map', expression: '$grow([], 200)' } }), options);
  const operation = { kind: 'operation', entry: '/plugins/x/index.js' } as unknown as WorkerTask;
  await pool.run(operation, options);
  t.same(ran, ['runtime steps', 'host', 'host', 'plugins']);
});
