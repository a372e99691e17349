/**
 * The definition editor's checks without a browser: the process schema's standalone
 * validator that the build bundles for the browser (vendor-process-schema.js) finds the
 * runtime's problems in the runtime's words; a problem's JSON pointer lands on the line
 * of the field it names (json-tree.js, over CodeMirror's JSON syntax tree); completion
 * offers the fields of a step's kind and its allowed values (schema-walk.js).
 */
import t from 'tap';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parser } from '@lezer/json';
import { Text } from '@codemirror/state';
import { createSchemaRegistry, schemaIds } from '../../runtime/schema/index.js';
import { root } from '../helpers/quark.js';

const load = async (name: string) => import(pathToFileURL(join(root, 'runtime', 'console', 'static', name)).href);
const { schemaProblems, processSchema } = await load('vendor-process-schema.js');
const { rangeOf, textAt, pathOf, containerAt, literalsOf, locate } = await load('json-tree.js');
const { schemasAt, propertyNames, allowedValues, refersToStep } = await load('schema-walk.js');

const runtimeCheck = createSchemaRegistry().validator(schemaIds.process);

const good = {
  id: 'p',
  name: 'P',
  start: { kind: 'documents', next: 'a' },
  steps: [
    { id: 'a', kind: 'decision', condition: 'x > 1', ifTrue: 'b' },
    { id: 'b', kind: 'notify', message: 'hi', level: 'info' },
  ],
};

t.test("the browser's schema check is the runtime's: the same problems, in the same words", async (t) => {
  const cases: unknown[] = [
    good,
    { ...good, id: 'Not An Id' },
    { ...good, colour: 'red' },
    { ...good, start: { kind: 'operation' } },
    { ...good, steps: [{ id: 'a', kind: 'map' }, { id: 'b', kind: 'teleport' }, { kind: 'notify', message: 1, level: 'loud' }] },
    { name: '' },
    [],
  ];
  for (const definition of cases) {
    const copy = structuredClone(definition);
    const runtime = runtimeCheck(copy).map((p) => ({ path: p.path, message: p.message }));
    const browser = schemaProblems(structuredClone(definition)).map((p: { path: string; message: string }) => ({ path: p.path, message: p.message }));
    t.same(browser, runtime, JSON.stringify(definition).slice(0, 80));
  }
  t.same(schemaProblems(good), [], 'a good definition has none');
  t.ok(schemaProblems({ ...good, colour: 1 }).some((p: { message: string }) => p.message === '"colour" is not a known field'));
  t.equal(processSchema.$id, 'https://quark.dev/schemas/process.schema.json', 'the schema itself comes along, for completion');
});

const text = JSON.stringify(good, null, 2);
const doc = Text.of(text.split('\n'));
const tree = parser.parse(text);
const lineOf = (needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;
const lineAt = (pos: number) => doc.lineAt(pos).number;

t.test("a problem's pointer lands on its field's line", async (t) => {
  const at = (pointer: string) => rangeOf(tree, doc, pointer);
  t.equal(lineAt(at('/steps/0/condition').from), lineOf('"condition"'), 'a field');
  t.equal(doc.sliceString(at('/steps/0/condition').from, at('/steps/0/condition').to), '"condition": "x > 1"', 'the name and the value are marked');
  t.equal(lineAt(at('/steps/1/level').from), lineOf('"level"'));
  t.equal(lineAt(at('/steps/1').from), lineOf('"id": "b"') - 1, "an object: its opening line");
  t.equal(doc.sliceString(at('/steps/1').from, at('/steps/1').to), '{', 'only that line is marked');
  t.equal(lineAt(at('/steps/0/ifFalse').from), lineOf('"id": "a"') - 1, 'a missing field: the object it is missing from');
  t.equal(lineAt(at('/steps/7/next').from), lineOf('"steps"'), 'a missing item: the list');
  t.equal(lineAt(at('').from), 1, 'the whole document: its first line');
  t.equal(lineAt(at('/start/next').from), lineOf('"next": "a"'));
  t.equal(textAt(tree, doc, '/steps/1/message'), '"hi"', 'the text at a pointer');
  t.equal(textAt(tree, doc, '/steps/1/nothing'), null);
  const escaped = '{"a/b": {"c~d": 1}}';
  t.equal(textAt(parser.parse(escaped), Text.of([escaped]), '/a~1b/c~0d'), '1', 'escaped segments');
});

t.test('the cursor to a path, and the schema there', async (t) => {
  const inside = text.indexOf('"condition"');
  const container = containerAt(tree, inside);
  t.same(pathOf(doc, container), ['steps', '0'], "the cursor's object");
  t.same(literalsOf(doc, container), { id: 'a', kind: 'decision', condition: 'x > 1', ifTrue: 'b' }, 'its plain values');
  const valuesAt = (segments: string[]) => (depth: number) => {
    const found = locate(tree, doc, segments.slice(0, depth).map((s) => `/${s}`).join(''));
    return found?.found ? literalsOf(doc, found.node) : {};
  };
  const names = (segments: string[]) => propertyNames(processSchema, schemasAt(processSchema, segments, valuesAt(segments))).map((p: { name: string }) => p.name);
  const decision = names(['steps', '0']);
  for (const name of ['id', 'kind', 'condition', 'ifTrue', 'ifFalse']) t.ok(decision.includes(name), `a decision step offers ${name}`);
  t.notOk(decision.includes('connection'), 'not the fields of an operation step');
  t.ok(names(['steps', '1']).includes('level'), 'a notify step offers level');
  t.ok(names([]).includes('steps') && names([]).includes('start'), 'the top offers steps and start');
  const entries = (segments: string[]) => schemasAt(processSchema, segments, valuesAt(segments));
  t.ok(allowedValues(entries(['steps', '0', 'kind'])).includes('process-call'), 'the step kinds');
  t.same(allowedValues(entries(['start', 'kind'])), ['none', 'documents', 'operation'], 'the start kinds');
  t.same(allowedValues(entries(['steps', '1', 'level'])), ['info', 'warning', 'error']);
  t.ok(refersToStep(entries(['steps', '0', 'ifTrue']), ['steps', '0', 'ifTrue']), 'ifTrue names a step');
  t.ok(refersToStep(entries(['start', 'next']), ['start', 'next']), 'so does the start\'s next');
  t.notOk(refersToStep(entries(['steps', '0', 'id']), ['steps', '0', 'id']), 'a step\'s own id does not');
  t.ok(propertyNames(processSchema, entries(['steps', '0'])).find((p: { name: string; description?: string }) => p.name === 'ifTrue')?.description, 'a field comes with its description');
});
