/**
 * The direct evaluator of simple expressions (engine/expressions.ts) against JSONata
 * itself: for every expression and input, the evaluator's answer is JSONata's (the same
 * value, or the same error code), and the simple ones are in fact taken directly.
 */
import t from 'tap';
import jsonata from 'jsonata';
import { createEvaluator, directResult, type ExpressionBindings } from '../../runtime/engine/expressions.js';

const bindings: ExpressionBindings = {
  properties: { kind: 'order', empty: '' },
  process: { count: 3, nested: { on: true }, list: [1, 2] },
  execution: { id: 'exe_1', process: 'p', version: 2, trigger: 'api' },
  body: { size: 10, spilled: false },
};

const inputs: unknown[] = [
  { customer: { id: 'C-1', tier: 'gold', address: { city: 'Porto' } }, total: 120.5, zero: 0, name: 'x', flag: true, nothing: null, items: [{ price: 1 }, { price: 2 }], one: [7], obj: {}, str: '' },
  { customer: { id: 42 }, total: 99, name: 'y', flag: false },
  { customer: [{ id: 'A' }, { id: 'B' }], total: '120' },
  { total: 100 },
  {},
  [{ total: 1 }, { total: 200 }],
  { items: [], nums: [1, 2.5, -3], empty: [], nested: [[1], [2]], mixed: [{ price: 1 }, { price: 'x' }], total: 5 },
  { items: [{ price: [1, 2] }, { price: 3 }], orders: [{ items: [{ price: 1 }] }, { items: [{ price: 2 }, { price: 4 }] }], customer: { id: 'C-2' } },
  { items: [{ price: 5 }], deep: [{ price: [[1]] }], customer: null },
  { items: [{ price: [] }], nums: [0.1, 0.2, 0.3] },
  { items: [1, { price: 2 }, null, 'x'], customer: 'text' },
  { items: { price: 9 }, total: -0 },
  { items: [{ price: [[1], 2] }] },
  { items: [{ price: 1 }, {}, { price: null }] },
  'a string',
  7,
  null,
  undefined,
];

const expressions = [
  'customer.id', 'customer.address.city', 'customer.missing.deeper', 'total', 'items', 'items.price', 'one', 'nothing', 'nothing.x', 'name.length', 'toString', 'customer.constructor',
  '$', '$properties.kind', '$properties.missing', '$process.count', '$process.nested.on', '$process.list', '$execution.trigger', '$body.size', '$body.spilled',
  '"high"', '42', '-1.5', 'true', 'false', 'null',
  'total > 100', 'total >= 100', 'total < 100', 'total <= 99', 'name > "x"', 'missing > 1', 'missing < missing', 'flag > 1', 'total > "100"',
  'customer.id = "C-1"', 'customer.id != "C-1"', 'total = 100', 'missing = 1', 'nothing = null', 'flag = true', 'obj = obj', 'items = items',
  'total > 100 and customer.tier = "gold"', 'flag or missing', 'missing and flag', 'zero or str', 'obj and true', '$properties.empty or $process.count > 2',
  '$process.nested and $properties.kind = "order"',
  '$sum(items.price)', '$sum(items)', '$sum(one)', '$sum(total)', '$sum(missing)', '$sum(customer.id)', '$sum(nums)', '$sum(empty)', '$sum(mixed.price)', '$sum(orders.items.price)', '$sum(deep.price)', '$sum(nested)',
  '$count(items)', '$count(items.price)', '$count(missing)', '$count(customer)', '$count(empty)', '$count(orders.items)', '$count(nested)',
  '$merge([$, {"total": $sum(items.price)}])', '$merge([customer, {"a": 1}])', '$merge([$, missing])', '$merge(items)', '$merge([$])', '$merge([name])', '$merge([customer.address, customer])', '$merge(orders.items)',
  '{"a": total, "b": missing}', '{"c": customer, "n": $count(items)}', '{"a": 1, "a": 2}', '{}', '$merge([$, {"n": $count(items), "s": $sum(items.price), "id": customer.id}])',
  '$sum(items.price) > 2', '{"t": total > 100}',
];

async function viaJsonata(text: string, input: unknown): Promise<unknown> {
  try {
    return { value: await jsonata(text).evaluate(input, bindings as unknown as Record<string, unknown>) };
  } catch (error) {
    return { error: (error as { code?: string }).code };
  }
}

async function viaEvaluator(evaluate: ReturnType<typeof createEvaluator>, text: string, input: unknown): Promise<unknown> {
  try {
    return { value: await evaluate(text, input, bindings) };
  } catch (error) {
    return { error: (error as { code?: string }).code };
  }
}

t.test("every answer is JSONata's", async (t) => {
  const evaluate = createEvaluator();
  for (const text of expressions) {
    for (const input of inputs) {
      const expected = await viaJsonata(text, input);
      t.same(await viaEvaluator(evaluate, text, input), expected, `${text} on ${JSON.stringify(input)}`);
      // a sequence JSONata makes is an array with extra flags: compare the JSON too
      t.equal(JSON.stringify(await viaEvaluator(evaluate, text, input)), JSON.stringify(expected));
    }
  }
});

t.test('field paths, literals, comparisons and and/or are read directly; other expressions are JSONata', async (t) => {
  const input = inputs[0];
  t.equal(directResult('customer.id', input, bindings), 'C-1');
  t.equal(directResult('total > 100', input, bindings), true);
  t.equal(directResult('missing > 1', input, bindings), undefined, 'undefined, as JSONata: no match');
  t.equal(directResult('$properties.kind = "order" and flag', input, bindings), true);
  t.equal(directResult('"high"', input, bindings), 'high');
  t.equal(directResult('items.price', input, bindings), 'declined', 'an array: JSONata flattens sequences');
  t.equal(directResult('customer.id', inputs[2], bindings), 'declined', 'an array on the way');
  t.equal(directResult('flag > 1', input, bindings), 'declined', "a type mismatch: JSONata's error");
  t.equal(directResult('$sum(items.price)', input, bindings), 3, 'an aggregate over a path: the values along it');
  t.same(directResult('$merge([$, {"total": $sum(items.price)}])', { a: 1, items: [{ price: 2 }, { price: 3 }] }, bindings), { a: 1, items: [{ price: 2 }, { price: 3 }], total: 5 });
  t.equal(directResult('$sum(mixed.price)', inputs[6], bindings), 'declined', "a value that is not a number: JSONata's T0412");
  t.equal(directResult('$merge([$, {"a": 1}])', inputs[5], bindings), 'declined', 'an array input: JSONata maps over it');
  t.equal(directResult('$max(items.price)', input, bindings), 'not direct', 'a function the direct evaluator does not know');
  t.equal(directResult('$sum(items[0].price)', input, bindings), 'not direct', 'a predicate in the argument');
  t.equal(directResult('items[0]', input, bindings), 'not direct', 'a predicate');
  t.equal(directResult('$count.x', input, bindings), 'not direct', 'a variable that is not a binding');
  t.equal(directResult('total + 1', input, bindings), 'not direct');
});
