/** Unit tests of the pure-step interpreter (engine/steps.ts), run in this thread. */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packOutcome, runSteps } from '../../runtime/engine/steps.js';
import { createEvaluator, expressionError, expressionFailure } from '../../runtime/engine/expressions.js';
import { inlineRef } from '../../runtime/engine/bodies.js';
import type { DocumentRef, StepsTask } from '../../runtime/engine/messages.js';
import type { PureStep } from '../../runtime/processes/definition.js';

const evaluate = createEvaluator();
const doc = (body: string, properties: Record<string, string> = {}): DocumentRef => ({ properties, body: inlineRef(body) });
const text = (d: DocumentRef) => (d.body.kind === 'inline' ? Buffer.from(d.body.bytes).toString('utf8') : readFileSync(d.body.path, 'utf8'));
const nested = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);

function task(t: { teardown(fn: () => unknown): void }, steps: PureStep[], documents: DocumentRef[], extra: Partial<StepsTask> = {}): StepsTask {
  const workDir = mkdtempSync(join(tmpdir(), 'quark-steps-'));
  t.teardown(() => rmSync(workDir, { recursive: true, force: true }));
  return {
    kind: 'steps',
    steps: Object.fromEntries(steps.map((s) => [s.id, s])),
    first: steps[0]!.id,
    documents,
    process: {},
    execution: { id: 'exe_1', process: 'p', version: 1, trigger: 'manual' },
    workDir,
    spillBytes: 1024 * 1024,
    maxNestingDepth: 100,
    ...extra,
  };
}

t.test('documents leave at the first step that is not pure, bodies serialised once', async (t) => {
  const steps: PureStep[] = [
    { id: 'props', kind: 'set-properties', document: { who: { $expr: 'name' }, gone: null }, next: 'map' },
    { id: 'map', kind: 'map', expression: '{"hello": $properties.who}', next: 'operation' },
  ];
  const outcome = await runSteps(task(t, steps, [doc('{"name":"ada"}', { gone: 'x' })]), evaluate, new AbortController().signal);
  t.same(outcome.exits.map((e) => e.next), ['operation']);
  const out = outcome.exits[0]!.documents[0]!;
  t.same(out.properties, { who: 'ada' }, 'set, and removed by null');
  t.equal(text(out), '{"hello":"ada"}');
  t.same(outcome.counts, { props: { in: 1, out: 1, errors: 0 }, map: { in: 1, out: 1, errors: 0 } });
});

t.test('each failure belongs to its document; the others go on', async (t) => {
  const steps: PureStep[] = [{ id: 'map', kind: 'map', expression: '$properties.kind = "bad" ? $error("bad one") : $properties.kind = "deep" ? $ : {"ok": true}' }];
  const documents = [doc('{}', { kind: 'good' }), doc('{}', { kind: 'bad' }), doc(nested(150), { kind: 'deep' }), doc('{}', { kind: 'good' })];
  const outcome = await runSteps(task(t, steps, documents), evaluate, new AbortController().signal);
  t.equal(outcome.exits[0]!.documents.length, 2, 'the two good ones');
  t.same(outcome.failed.map((f) => f.code), ['QUARK_ERR_EXPRESSION_FAILED', 'QUARK_ERR_STEP_NESTING_TOO_DEEP']);
  t.match(outcome.failed[0]!.message, /step map: the expression failed: bad one \(JSONata D3137, at character \d+\)/);
  t.match(outcome.failed[1]!.message, /step map: the body nests deeper than 100 levels .* \(at \/0\/0\/0/);
});

t.test('notify, exception and route refuse values too deep to turn into text', async (t) => {
  const steps: PureStep[] = [{ id: 'say', kind: 'notify', message: { $expr: '$' } }];
  const outcome = await runSteps(task(t, steps, [doc(nested(150)), doc('"short"')]), evaluate, new AbortController().signal);
  t.same(outcome.failed.map((f) => [f.step, f.code]), [['say', 'QUARK_ERR_STEP_NESTING_TOO_DEEP']]);
  t.same(outcome.notes.map((n) => n.message), ['short']);
});

t.test('a task stopped before its last documents fails them with the reason, rather than dropping them', async (t) => {
  const controller = new AbortController();
  const slowFirst: PureStep[] = [{ id: 'map', kind: 'map', expression: '$' }];
  const stopping = async (text: string, input: unknown, bindings: Parameters<typeof evaluate>[2]) => {
    controller.abort(new DOMException('quark: timeout', 'TimeoutError'));
    return evaluate(text, input, bindings);
  };
  const outcome = await runSteps(task(t, slowFirst, [doc('1'), doc('2'), doc('3')]), stopping, controller.signal);
  t.equal(outcome.exits[0]!.documents.length, 1, 'the document in flight finished');
  t.same(outcome.failed.map((f) => f.code), ['QUARK_ERR_STEP_TIMEOUT', 'QUARK_ERR_STEP_TIMEOUT'], 'the two not reached failed with the time limit');
  t.same(outcome.counts.map, { in: 3, out: 1, errors: 2 });
});

t.test('split lines: any number of children, walked on', async (t) => {
  const lines = Array.from({ length: 10_000 }, (_, i) => `line ${i}`).join('\r\n') + '\n\n';
  const steps: PureStep[] = [{ id: 'split', kind: 'split', mode: 'lines', next: 'up' }, { id: 'up', kind: 'map', expression: '$uppercase($)' }];
  const outcome = await runSteps(task(t, steps, [doc(lines)]), evaluate, new AbortController().signal);
  const out = outcome.exits[0]!.documents;
  t.equal(out.length, 10_000, 'empty lines are dropped');
  t.equal(text(out[9_999]!), 'LINE 9999');
  const { outcome: packed, buffers } = packOutcome(outcome);
  t.equal(buffers.length, 1, 'small bodies: one buffer');
  t.equal(buffers[0]!.byteLength, out.reduce((n, d) => n + (d.body.kind === 'inline' ? d.body.bytes.byteLength : 0), 0), 'packed into one buffer');
  t.equal(text(packed.exits[0]!.documents[42]!), 'LINE 42');
});

t.test('a large body through a map: its input bytes are freed once decoded, its output moves back without a copy', async (t) => {
  const orders = Array.from({ length: 6000 }, (_, i) => ({ id: i, price: i % 7 }));
  const input = Buffer.from(JSON.stringify({ orders }), 'utf8');
  // a body that is a whole buffer of its own, as a large chunk of one document is when it crosses
  const own = new Uint8Array(new ArrayBuffer(input.byteLength));
  own.set(input);
  const document: DocumentRef = { properties: {}, body: { kind: 'inline', bytes: own } };
  const steps: PureStep[] = [{ id: 'count', kind: 'map', expression: '$merge([$, {"count": $count(orders), "sum": $sum(orders.price)}])' }];
  const outcome = await runSteps(task(t, steps, [document]), evaluate, new AbortController().signal);
  t.equal(own.buffer.byteLength, 0, 'the input buffer was detached (its memory freed) once the map had parsed it');
  const out = outcome.exits[0]!.documents[0]!;
  t.same(JSON.parse(text(out)), { orders, count: 6000, sum: orders.reduce((n, o) => n + o.price, 0) });
  const { outcome: packed, buffers } = packOutcome(outcome);
  const bytes = (packed.exits[0]!.documents[0]!.body as { bytes: Uint8Array }).bytes;
  t.equal(bytes, (out.body as { bytes: Uint8Array }).bytes, 'the output body is the same bytes, not a copy');
  t.ok(buffers.includes(bytes.buffer as ArrayBuffer), 'its own buffer is in the transfer list');
  t.equal(buffers[0]!.byteLength, 0, 'nothing copied into the shared buffer');
});

t.test('a large body a decision reads: not freed, it leaves as it came', async (t) => {
  const input = Buffer.from(JSON.stringify({ big: 'x'.repeat(100_000), total: 5 }), 'utf8');
  const own = new Uint8Array(new ArrayBuffer(input.byteLength));
  own.set(input);
  const steps: PureStep[] = [{ id: 'big', kind: 'decision', condition: 'total > 1', ifTrue: 'yes', ifFalse: 'no' }, { id: 'yes', kind: 'set-properties', document: { high: 'yes' } }, { id: 'no', kind: 'stop' }];
  const outcome = await runSteps(task(t, steps, [{ properties: {}, body: { kind: 'inline', bytes: own } }]), evaluate, new AbortController().signal);
  t.equal(own.buffer.byteLength, input.byteLength, 'still whole');
  t.equal(text(outcome.exits[0]!.documents[0]!), input.toString('utf8'));
});

t.test('steps answered at once (direct expressions) and through JSONata give the same outcome, in the same order', async (t) => {
  const steps: PureStep[] = [
    { id: 'map', kind: 'map', expression: '$merge([$, {"total": $sum(items.price)}])', next: 'props' },
    { id: 'props', kind: 'set-properties', document: { id: { $expr: 'customer.id' }, kind: { $expr: '$string(total)' }, gone: { $expr: 'missing' }, fixed: 'x' }, process: { last: { $expr: 'customer.id' }, seen: { $expr: '$count(items)' }, label: { $expr: '$uppercase(customer.id)' } }, next: 'big' },
    { id: 'big', kind: 'decision', condition: 'total > 3', ifTrue: 'high', ifFalse: 'low' },
    { id: 'high', kind: 'set-properties', document: { path: 'high' } },
    { id: 'low', kind: 'set-properties', document: { path: 'low' } },
  ];
  const docs = () => Array.from({ length: 30 }, (_, i) => doc(JSON.stringify({ customer: { id: `C${i}` }, items: Array.from({ length: i % 4 }, (_, k) => ({ price: k + 0.5 })) }), { gone: 'y' }));
  // the same evaluator, always answering with a promise, as JSONata does
  const later: typeof evaluate = (text, input, bindings) => Promise.resolve().then(() => evaluate(text, input, bindings));
  const atOnce = await runSteps(task(t, steps, docs()), evaluate, new AbortController().signal);
  const throughPromises = await runSteps(task(t, steps, docs()), later, new AbortController().signal);
  const view = (o: typeof atOnce) => ({ ...o, exits: o.exits.map((e) => ({ next: e.next, documents: e.documents.map((d) => ({ properties: d.properties, body: text(d) })) })) });
  t.same(view(atOnce), view(throughPromises));
  t.same(atOnce.exits.map((e) => e.documents.length).reduce((a, b) => a + b, 0), 30);
  t.same(atOnce.processUpdates.slice(0, 3), [['last', 'C0'], ['seen', 0], ['label', 'C0']], 'process writes in document and step order');
  t.same(atOnce.exits[0]!.documents[0]!.properties, { id: 'C0', fixed: 'x', path: 'low' }, 'no items: no total (JSONata), so kind and gone have no value and are removed');
});

t.test('split lines of a spilled body: read as a stream, split as a body in memory is', async (t) => {
  // over two read chunks (1 MiB each), \r\n and \n line ends, a lone \r kept inside its line, empty lines dropped
  const lines = Array.from({ length: 120_000 }, (_, i) => (i === 7 ? 'a\rb' : `line ${i}`));
  const content = lines.map((line, i) => line + (i % 2 ? '\r\n' : '\n') + (i % 1000 === 0 ? '\n' : '')).join('');
  const steps: PureStep[] = [{ id: 'split', kind: 'split', mode: 'lines', next: 'up' }, { id: 'up', kind: 'map', expression: '$uppercase($)' }];
  const spilled = task(t, steps, []);
  const path = join(spilled.workDir, 'big-body');
  writeFileSync(path, content);
  const fromFile = await runSteps({ ...spilled, documents: [{ properties: {}, body: { kind: 'file', path, size: Buffer.byteLength(content) } }] }, evaluate, new AbortController().signal);
  const inMemory = await runSteps(task(t, steps, [doc(content)]), evaluate, new AbortController().signal);
  const out = fromFile.exits[0]!.documents.map(text);
  t.equal(out.length, 120_000);
  t.equal(out[7], 'A\rB', 'a lone \r is not a line end');
  t.equal(out[119_999], 'LINE 119999');
  t.same(out, inMemory.exits[0]!.documents.map(text), 'the same children as from the body in memory');
});

t.test('a split with more children than handBackAbove hands them back towards its next step', async (t) => {
  const steps: PureStep[] = [{ id: 'split', kind: 'split', mode: 'lines', next: 'up' }, { id: 'up', kind: 'map', expression: '$uppercase($)' }];
  const lines = 'a\nb\nc\n';
  const kept = await runSteps(task(t, steps, [doc(lines)], { handBackAbove: 3 }), evaluate, new AbortController().signal);
  t.same(kept.exits.map((e) => [e.next, e.documents.map(text)]), [[null, ['A', 'B', 'C']]], 'up to the limit: walked on here');
  const handed = await runSteps(task(t, steps, [doc(lines)], { handBackAbove: 2 }), evaluate, new AbortController().signal);
  t.same(handed.exits.map((e) => [e.next, e.documents.map(text)]), [['up', ['a', 'b', 'c']]], 'past it: handed back, unwalked');
  t.same(handed.counts, { split: { in: 1, out: 3, errors: 0 } });
});

t.test('expressionFailure reads JSONata\'s plain-object errors', async (t) => {
  t.equal(expressionFailure({ code: 'T2001', position: 3, message: 'The left side of the "-" operator must evaluate to a number' }), 'The left side of the "-" operator must evaluate to a number (JSONata T2001, at character 3)');
  t.equal(expressionFailure(new RangeError('Maximum call stack size exceeded')), 'Maximum call stack size exceeded');
  t.equal(expressionFailure('plain'), 'plain');
  t.match(expressionError('$foo(') ?? '', /^is not a valid JSONata expression: .+ \(JSONata S\d+, at character \d+\)$/);
});

t.test('a step may be called "done" or "ended": ids are only ids', async (t) => {
  const steps: PureStep[] = [{ id: 'check', kind: 'decision', condition: 'true', ifTrue: 'done' }, { id: 'done', kind: 'map', expression: '"reached"' }];
  const outcome = await runSteps(task(t, steps, [doc('{}')]), evaluate, new AbortController().signal);
  t.same(outcome.exits[0]!.documents.map(text), ['reached']);
});
