import t from 'tap';
import { jsonErrorOffset, lineAndColumn, parseJsonText, typeSetValue, typeSetValues } from '../../runtime/cli/config-input.js';

t.test('jsonErrorOffset points at the first character that is not JSON', async (t) => {
  const cases: [string, number][] = [
    ['{"a": tru}', 6],
    ['{"a": 1,}', 8],
    ['[1 2]', 3],
    ['{"a": 1', 7],
    ['{"a" 1}', 5],
    ['{"a": "x\u0001"}', 8],
    ['{"a": "\\q"}', 7],
    ['{} x', 3],
    ['', 0],
  ];
  for (const [text, offset] of cases) {
    t.throws(() => JSON.parse(text), `${JSON.stringify(text)} is not JSON`);
    t.equal(jsonErrorOffset(text), offset, JSON.stringify(text));
  }
  t.same(lineAndColumn('{\n  "a": x\n}', 9), { line: 2, column: 8 });
});

t.test('parseJsonText names line and column and never quotes the text', async (t) => {
  const text = '{\n  "password": "hunter2-secret",\n  "port": 80,,\n}';
  t.throws(() => parseJsonText(text, 'conf.json'), { code: 'QUARK_ERR_CLI_INPUT_INVALID', message: /^conf\.json is not valid JSON: line 3, column 14: / });
  try {
    parseJsonText(text, 'conf.json');
  } catch (error) {
    t.notMatch(JSON.stringify({ message: (error as Error).message, details: (error as { details?: unknown }).details }), /hunter2/);
  }
});

t.test('--set values are typed by their field', async (t) => {
  t.equal(typeSetValue({ type: 'string' }, '12345678'), '12345678', 'a text field keeps digits as text');
  t.equal(typeSetValue({ type: 'integer' }, '42'), 42);
  t.equal(typeSetValue({ type: 'integer' }, 'lots'), 'lots', 'left for the runtime to refuse');
  t.equal(typeSetValue({ type: 'number' }, ' '), ' ');
  t.equal(typeSetValue({ type: 'boolean' }, 'true'), true);
  t.equal(typeSetValue({ type: ['string', 'null'] }, 'null'), 'null', 'text wins over null');
  t.equal(typeSetValue({ enum: [1, 2] }, '2'), 2, 'an enum of numbers');
  t.equal(typeSetValue(undefined, '7'), '7', 'an unknown field stays text');
  t.same(typeSetValues({ properties: { n: { type: 'integer' }, s: { type: 'string' } } }, { n: '5', s: '5', toString: '5' }), { n: 5, s: '5', toString: '5' });
});
