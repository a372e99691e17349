import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorCatalogue, fromPlainError, quarkError } from '../../runtime/core/errors.js';
import { root } from '../helpers/quark.js';

t.test('docs/errors.md documents exactly the catalogue, with the same HTTP statuses', async (t) => {
  const doc = readFileSync(join(root, 'docs', 'errors.md'), 'utf8');
  const documented = new Map<string, number>();
  for (const match of doc.matchAll(/^\|\s*`(QUARK_ERR_[A-Z0-9_]+)`\s*\|\s*(\d{3})\s*\|/gm)) documented.set(match[1]!, Number(match[2]));
  const catalogue = new Map(Object.entries(errorCatalogue).map(([code, spec]) => [code, spec.status]));
  t.same([...documented.keys()].sort(), [...catalogue.keys()].sort(), 'same codes');
  for (const [code, status] of catalogue) t.equal(documented.get(code), status, `${code} status`);
});

t.test('codes follow QUARK_ERR_<AREA>_<WHAT>', async (t) => {
  for (const code of Object.keys(errorCatalogue)) t.match(code, /^QUARK_ERR_[A-Z]+_[A-Z0-9_]+$/);
});

t.test('an error survives the trip through plain data (the worker boundary)', async (t) => {
  const original = quarkError('QUARK_ERR_PLUGIN_TIMEOUT', 'too slow', { timeoutMs: 5 });
  const copy = fromPlainError(structuredClone(original.toJSON()));
  t.equal(copy.code, 'QUARK_ERR_PLUGIN_TIMEOUT');
  t.equal(copy.status, 504);
  t.same(copy.details, { timeoutMs: 5 });
  t.equal(fromPlainError({ code: 'NOT_A_CODE', message: 'x' }).code, 'QUARK_ERR_API_INTERNAL', 'unknown codes do not pass through');
});
