/** Unit tests of large computed bodies written in pieces (engine/json-body.ts) and bodies crossing a process boundary in files (engine/crossing.ts). */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BodyTooDeep, jsonBody } from '../../runtime/engine/json-body.js';
import { anyCrossing, fromCrossing, toCrossing } from '../../runtime/engine/crossing.js';
import { inlineRef } from '../../runtime/engine/bodies.js';
import type { BodyRef, DocumentRef } from '../../runtime/engine/messages.js';

const textOf = (ref: BodyRef) => (ref.kind === 'inline' ? Buffer.from(ref.bytes).toString('utf8') : readFileSync(ref.path, 'utf8'));

function workDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'quark-json-body-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'exe');
}

class Money {
  constructor(readonly cents: number) {}
  toJSON() {
    return `${this.cents / 100} EUR`;
  }
}

/** Values where JSON.stringify has rules of its own: undefined, functions and symbols, toJSON, holes, non-plain objects, text on piece boundaries. */
function awkward(): Record<string, unknown> {
  const wide = Array.from({ length: 200 }, (_, i) => ({ i, name: `n${i}`, skip: undefined, fn: () => i, tags: i % 3 === 0 ? ['a', undefined, null] : [] }));
  const sparse: unknown[] = [1];
  sparse[4] = 'x';
  const keyed = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k"${i}\n`, i % 2 ? { deep: [[i]] } : `v${i}`]));
  return {
    wide,
    sparse,
    keyed,
    date: new Date(Date.UTC(2026, 11, 3)),
    money: new Money(1250),
    map: new Map([[1, 2]]),
    nothing: undefined,
    sym: Symbol('s'),
    nan: Number.NaN,
    infinite: Number.POSITIVE_INFINITY,
    negativeZero: -0,
    boxed: new Number(3),
    nullProto: Object.assign(Object.create(null) as object, { a: 1 }),
    // a text larger than one piece, its UTF-8 of 1 to 4 bytes a character
    text: 'é€😀a'.repeat(40_000),
  };
}

t.test('jsonBody writes what JSON.stringify writes, byte for byte, in memory or in a file past spillBytes', async (t) => {
  const dir = workDir(t);
  for (const value of [awkward(), [awkward(), [], {}, [[]], null, 'x'], {}, [], Array.from({ length: 5000 }, (_, i) => ({ id: i, price: i * 1.5 }))]) {
    const expected = JSON.stringify(value);
    const small = jsonBody(value, { spillBytes: 64 * 1024 * 1024, workDir: dir, maxDepth: 100 });
    t.equal(small.kind, 'inline', 'within spillBytes: in memory');
    t.equal(textOf(small), expected);
    const spilled = jsonBody(value, { spillBytes: 1000, workDir: dir, maxDepth: 100 });
    if (Buffer.byteLength(expected) > 1000) {
      t.equal(spilled.kind, 'file', 'past spillBytes: a file of the work directory');
      t.notOk(spilled.kind === 'file' && spilled.crossing, 'a spilled body, not one in memory');
      t.equal(spilled.kind === 'file' && spilled.size, Buffer.byteLength(expected));
    }
    t.equal(textOf(spilled), expected);
  }
});

t.test('jsonBody with crossAbove: a body past it but within spillBytes goes to a crossing file (a body in memory on its way)', async (t) => {
  const dir = workDir(t);
  const value = { orders: Array.from({ length: 3000 }, (_, i) => ({ id: i })) };
  const ref = jsonBody(value, { spillBytes: 1024 * 1024, workDir: dir, maxDepth: 100, crossAbove: 1024 });
  t.equal(ref.kind, 'file');
  t.equal(ref.kind === 'file' && ref.crossing, true);
  t.equal(textOf(ref), JSON.stringify(value));
  const small = jsonBody({ a: [1, 2] }, { spillBytes: 1024 * 1024, workDir: dir, maxDepth: 100, crossAbove: 1024 });
  t.equal(small.kind, 'inline', 'under crossAbove: in memory');
});

t.test('jsonBody refuses a value nested deeper than maxDepth, at the same depth as JSON.stringify\'s text would be refused', async (t) => {
  const options = { spillBytes: 1024 * 1024, workDir: workDir(t), maxDepth: 10 };
  const nest = (levels: number): unknown => {
    let value: unknown = 1;
    for (let i = 0; i < levels; i++) value = [value];
    return value;
  };
  const tooDeep = (value: Record<string, unknown> | unknown[]) => {
    try {
      jsonBody(value, options);
    } catch (error) {
      return error instanceof BodyTooDeep;
    }
    return false;
  };
  // the deep part inside a wide container (walked) and inside a narrow one (stringified whole)
  const wideAt = (levels: number) => ({ items: Array.from({ length: 100 }, (_, i) => (i === 50 ? nest(levels) : i)) });
  const narrowAt = (levels: number) => ({ a: { b: { c: nest(levels) } } });
  t.equal(textOf(jsonBody(wideAt(8), options)), JSON.stringify(wideAt(8)), 'exactly 10 levels pass');
  t.ok(tooDeep(wideAt(9)), 'one more: refused');
  t.equal(textOf(jsonBody(narrowAt(7), options)), JSON.stringify(narrowAt(7)));
  t.ok(tooDeep(narrowAt(8)), 'one more: refused');
  t.ok(tooDeep(nest(20_000) as unknown[]), 'deeper than JSON.stringify\'s stack: refused, not a crash');
  t.throws(() => jsonBody({ n: 1n }, options), TypeError, 'what JSON.stringify throws, as it throws it');
});

t.test('crossing files: large bodies in memory go to files and come back in memory, their files removed', async (t) => {
  const dir = workDir(t);
  const large = Buffer.alloc(3000, 'a');
  const documents: DocumentRef[] = [
    { properties: { n: '1' }, body: inlineRef('small') },
    { properties: { n: '2' }, body: inlineRef(large), origins: [7] },
    { properties: { n: '3' }, body: { kind: 'file', path: '/spilled/elsewhere', size: 10 } },
  ];
  t.notOk(anyCrossing(documents, 4000), 'none that large');
  t.equal(await toCrossing(documents, dir, 4000), documents, 'nothing to write: the same documents');
  const crossed = await toCrossing(documents, dir, 1000);
  t.equal(crossed[0]!.body.kind, 'inline');
  const file = crossed[1]!.body;
  t.ok(file.kind === 'file' && file.crossing === true && file.size === 3000, 'the large one in a crossing file');
  t.same(crossed[1]!.origins, [7]);
  t.equal(crossed[2], documents[2], 'a spilled body stays as it is');
  const back = await fromCrossing(crossed, dir);
  t.equal(textOf(back[1]!.body), large.toString());
  t.equal(back[1]!.body.kind, 'inline');
  t.notOk(existsSync((file as { path: string }).path), 'the crossing file was removed once read');
  t.equal(back[2]!.body, documents[2]!.body);
  // a ref marked crossing outside the work directory is not read in, nor removed: a spilled body
  const [again] = await toCrossing([documents[1]!], dir, 1000);
  const elsewhere = await fromCrossing([again!], join(dir, 'other'));
  t.same(elsewhere[0]!.body, { kind: 'file', path: (again!.body as { path: string }).path, size: 3000 });
  t.ok(existsSync((again!.body as { path: string }).path), 'still there');
});
