#!/usr/bin/env node
// bench/engine integration peer: the same logic as a plain single-threaded loop with the same
// JSONata expressions, compiled once (quark's jsonata).
//   batch: parse each document, for each order: route on its carrier, evaluate the branch's
//          map, keep the record; at the end serialise each branch's records as one JSON array
//   small: for each document (one at a time, as an execution each): parse, $merge the total,
//          set the property, decide, serialise the body
// Prints one JSON line: { seconds, cpuSeconds, peakRssMb, perCarrier? }.
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CARRIERS, branchExpression, makeBatches, makeSmall, smallExpression } from './integration-flow.mjs';
import { startClock } from './peer.mjs';

const [mode, count] = [process.argv[2], Number(process.argv[3])];
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const jsonata = createRequire(join(root, 'package.json'))('jsonata');

let result;
if (mode === 'batch') {
  const maps = CARRIERS.map((_, i) => jsonata(branchExpression(i)));
  const input = makeBatches(count);
  const stop = startClock();
  const branches = CARRIERS.map(() => []);
  for (const bytes of input) {
    for (const order of JSON.parse(bytes.toString('utf8')).orders) {
      const i = CARRIERS.indexOf(order.shipping.carrier);
      branches[i].push(await maps[i].evaluate(order));
    }
  }
  const combined = branches.map((records) => Buffer.from(JSON.stringify(records), 'utf8'));
  result = { ...stop(), perCarrier: Object.fromEntries(CARRIERS.map((c, i) => [c, branches[i].length])) };
  if (combined.length !== CARRIERS.length) throw new Error('lost a branch');
} else {
  const map = jsonata(smallExpression);
  const input = makeSmall(count);
  const stop = startClock();
  let out = 0;
  for (const bytes of input) {
    const doc = await map.evaluate(JSON.parse(bytes.toString('utf8')));
    const properties = { customerId: String(doc.customer.id), path: doc.total > 100 ? 'high' : 'low' };
    out += Buffer.from(JSON.stringify(doc), 'utf8').length + properties.path.length;
  }
  result = stop();
  if (out === 0) throw new Error('nothing out');
}
const { seconds, cpuSeconds, perCarrier } = result;
process.stdout.write(JSON.stringify({ seconds, cpuSeconds, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024), ...(perCarrier ? { perCarrier } : {}) }) + '\n');
