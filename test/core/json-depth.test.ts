/** Unit tests of the nesting-depth check (core/json-depth.ts). */
import t from 'tap';
import { checkBodyDepth, findTooDeep, jsonTextNestsDeeper } from '../../runtime/core/json-depth.js';
import { type QuarkError } from '../../runtime/core/errors.js';

t.test('depth counts objects and arrays; scalars are free', async (t) => {
  t.equal(findTooDeep(1, 0), undefined);
  t.equal(findTooDeep({ a: [1, 2] }, 2), undefined);
  t.same(findTooDeep({ a: [1, 2] }, 1), { path: '/a', maxDepth: 1 });
  t.same(findTooDeep({ a: 1, b: { 'c/d~e': [[]] } }, 2), { path: '/b/c~1d~0e', maxDepth: 2 }, 'the pointer is escaped (RFC 6901)');
  t.same(findTooDeep([0, [1, [2]]], 2), { path: '/1/1', maxDepth: 2 });
});

t.test('no recursion: a value nested 1,000,000 deep is measured', async (t) => {
  let deep: unknown = 'bottom';
  for (let i = 0; i < 1_000_000; i++) deep = [deep];
  const found = findTooDeep(deep, 500)!;
  t.equal(found.path, '/0'.repeat(500));
  t.equal(findTooDeep(JSON.parse('['.repeat(20_000) + ']'.repeat(20_000)), 20_000), undefined, 'exactly at the limit passes');
});

t.test('checkBodyDepth: QUARK_ERR_API_NESTING_TOO_DEEP with the pointer under /body', async (t) => {
  t.doesNotThrow(() => checkBodyDepth({ a: { b: 1 } }, 2));
  t.doesNotThrow(() => checkBodyDepth(undefined, 2), 'no body');
  const error = t.throws(() => checkBodyDepth({ a: { b: { c: 1 } } }, 2)) as QuarkError;
  t.equal(error.code, 'QUARK_ERR_API_NESTING_TOO_DEEP');
  t.equal(error.status, 400);
  t.same(error.details?.problems, [{ path: '/body/a/b', message: 'nests deeper than 2 levels of objects and arrays (limits.maxNestingDepth); flatten the value' }]);
});

t.test('jsonTextNestsDeeper reads the depth off JSON text, as findTooDeep of its value', async (t) => {
  const values: unknown[] = [1, 'x', [], {}, { a: [1, 2] }, [0, [1, [2]]], { s: '[[[[{{{{', t: 'quote \\" [ and \\\\', u: [{ v: '}' }] }, { a: { b: { c: { d: 'e"]' } } } }];
  for (const value of values) {
    const text = JSON.stringify(value);
    for (let max = 0; max <= 5; max++) t.equal(jsonTextNestsDeeper(text, max), findTooDeep(value, max) !== undefined, `${text} at ${max}`);
  }
  t.equal(jsonTextNestsDeeper('['.repeat(600) + ']'.repeat(600), 500), true);
  t.equal(jsonTextNestsDeeper('['.repeat(500) + ']'.repeat(500), 500), false, 'exactly at the limit passes');
  // many brackets in strings or side by side, few nested: the count of brackets is only a bound
  t.equal(jsonTextNestsDeeper(JSON.stringify({ s: '{{{{[[[[', list: [[1], [2], {}, {}] }), 3), false, 'brackets in strings and siblings do not nest');
  t.equal(jsonTextNestsDeeper(JSON.stringify({ s: '{{{{[[[[', list: [[[1]]] }), 3), true, 'past the bound, the scan decides');
  t.equal(jsonTextNestsDeeper('{"a":{"b":[1]}}', 3), false, 'three brackets at a limit of 3');
  t.equal(jsonTextNestsDeeper('{"a":{"b":[[1]]}}', 3), true);
});
