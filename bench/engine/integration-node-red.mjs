#!/usr/bin/env node
// bench/engine integration peer: Node-RED 4 embedded as in node-red.mjs (node-red-runner.mjs: no editor, no HTTP).
//   batch: json → change (payload = payload.orders) → split → switch on
//          payload.shipping.carrier (5 outputs) → a change node per branch (payload = the
//          branch's JSONata) → a join node per branch (an array of payloads, after as many
//          messages as that branch gets: the counts are known in advance from the input, as
//          Node-RED's join needs a count or a timeout without msg.parts of one message) → a
//          function node per branch that counts and ends the clock when all five are in
//   In Node-RED's JSONata `$` is the message, so the expressions read payload.… instead.
//   small: json → change (payload = the $merge JSONata) → function (set the property) →
//          switch (total > 100) → two ending function nodes; each document is fed only after
//          the one before has ended (an execution at a time)
// Needs Node-RED: npm ci --prefix bench/engine. Prints one JSON line: { seconds, cpuSeconds, peakRssMb, perCarrier? }.
import { CARRIERS, branchExpression, expectedPerCarrier, makeBatches, makeSmall, smallExpression } from './integration-flow.mjs';
import { functionNode, startFlow } from './node-red-runner.mjs';
import { startClock } from './peer.mjs';

const [mode, count] = [process.argv[2], Number(process.argv[3])];
const bench = { ended: () => {} };
const z = 'bench';
const fn = (id, func, outputs, wires) => functionNode(z, id, func, outputs, wires);

const input = mode === 'batch' ? makeBatches(count) : makeSmall(count);
const expected = mode === 'batch' ? expectedPerCarrier(input) : undefined;
const batchFlow = () => [
  { id: 'parse', z, type: 'json', name: 'parse', property: 'payload', action: 'obj', pretty: false, x: 0, y: 0, wires: [['orders']] },
  { id: 'orders', z, type: 'change', name: 'orders', rules: [{ t: 'set', p: 'payload', pt: 'msg', to: 'payload.orders', tot: 'msg' }], x: 0, y: 0, wires: [['split']] },
  { id: 'split', z, type: 'split', name: 'split', splt: '\\n', spltType: 'str', arraySplt: 1, arraySpltType: 'len', stream: false, addname: '', x: 0, y: 0, wires: [['route']] },
  { id: 'route', z, type: 'switch', name: 'route', property: 'payload.shipping.carrier', propertyType: 'msg', rules: CARRIERS.map((c) => ({ t: 'eq', v: c, vt: 'str' })), checkall: 'false', repair: false, outputs: 5, x: 0, y: 0, wires: CARRIERS.map((_, i) => [`map${i}`]) },
  ...CARRIERS.map((_, i) => ({ id: `map${i}`, z, type: 'change', name: `map${i}`, rules: [{ t: 'set', p: 'payload', pt: 'msg', to: branchExpression(i).replaceAll('items.', 'payload.items.').replace('"id": id', '"id": payload.id').replace('shipping.carrier', 'payload.shipping.carrier'), tot: 'jsonata' }], x: 0, y: 0, wires: [[`join${i}`]] })),
  ...CARRIERS.map((c, i) => ({ id: `join${i}`, z, type: 'join', name: `join${i}`, mode: 'custom', build: 'array', property: 'payload', propertyType: 'msg', key: 'topic', joiner: '\\n', joinerType: 'str', accumulate: false, timeout: '', count: String(expected[c]), reduceRight: false, reduceExp: '', reduceInit: '', reduceInitType: '', reduceFixup: '', x: 0, y: 0, wires: [[`end${i}`]] })),
  ...CARRIERS.map((c, i) => fn(`end${i}`, `msg.payload = Buffer.from(JSON.stringify(msg.payload));\nglobal.get('bench').ended('${c}', ${'$'}{0});\nreturn null;`.replace('${0}', 'msg.payload.length'), 0, [])),
];
const smallFlow = () => [
  { id: 'parse', z, type: 'json', name: 'parse', property: 'payload', action: 'obj', pretty: false, x: 0, y: 0, wires: [['map']] },
  { id: 'map', z, type: 'change', name: 'map', rules: [{ t: 'set', p: 'payload', pt: 'msg', to: smallExpression.replace('[$,', '[payload,').replace('items.', 'payload.items.'), tot: 'jsonata' }], x: 0, y: 0, wires: [['setProperty']] },
  fn('setProperty', 'msg.customerId = String(msg.payload.customer.id);\nreturn msg;', 1, [['decide']]),
  { id: 'decide', z, type: 'switch', name: 'total > 100', property: 'payload.total', propertyType: 'msg', rules: [{ t: 'gt', v: '100', vt: 'num' }, { t: 'else' }], checkall: 'false', repair: false, outputs: 2, x: 0, y: 0, wires: [['high'], ['low']] },
  fn('high', "msg.path = 'high';\nglobal.get('bench').ended('high', Buffer.from(JSON.stringify(msg.payload)).length);\nreturn null;", 0, []),
  fn('low', "msg.path = 'low';\nglobal.get('bench').ended('low', Buffer.from(JSON.stringify(msg.payload)).length);\nreturn null;", 0, []),
];
const { node, stop: stopRed } = await startFlow(z, 'bench/engine integration', mode === 'batch' ? batchFlow() : smallFlow(), { bench });
const parse = node('parse');

let result;
if (mode === 'batch') {
  const perCarrier = {};
  const done = new Promise((resolve) => {
    bench.ended = (carrier) => {
      perCarrier[carrier] = expected[carrier];
      if (Object.keys(perCarrier).length === CARRIERS.length) resolve();
    };
  });
  const stop = startClock();
  let next = 0;
  const feed = () => {
    if (next < input.length) parse.receive({ payload: input[next++] });
    if (next < input.length) setImmediate(feed);
  };
  feed();
  await done;
  result = { ...stop(), perCarrier };
} else {
  const stop = startClock();
  for (const payload of input) {
    const ended = new Promise((resolve) => (bench.ended = resolve));
    parse.receive({ payload });
    await ended;
  }
  result = stop();
}
const { seconds, cpuSeconds, perCarrier } = result;
process.stdout.write(JSON.stringify({ seconds, cpuSeconds, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024), ...(perCarrier ? { perCarrier } : {}) }) + '\n');
await stopRed();
process.exit(0);
