#!/usr/bin/env node
// bench/engine peer: the flow in Node-RED 4, embedded in this process the way its docs
// describe (RED.init + RED.start), with no editor, no admin API, no HTTP nodes, logging off
// (node-red-runner.mjs, shared with integration-node-red.mjs).
//   node bench/engine/node-red.mjs <docs> [--batch K]
// Needs Node-RED: npm ci --prefix bench/engine. The flow, deployed through the runtime API
// (RED.runtime.flows.setFlows, a "full" deploy, as the editor's Deploy button does):
//
//   json ─→ change ─→ function ─→ switch ─┬─ total > 100 ─→ function "count ifTrue"
//                                         └─ otherwise   ─→ function "count ifFalse"
//
//   json:     payload Buffer → object (Node-RED's JSON node), so parsing is counted here as it
//             is for quark, which receives bytes
//   change:   set payload.total to the JSONata $sum(payload.items.price)
//   function: set a property: msg.customerId = String(msg.payload.customer.id)
//   switch:   property payload.total, rules "> 100" and "otherwise", stop at the first match
//   count:    function nodes counting into their node context and the flow context; the one
//             that brings the flow count to <docs> calls finish() on an object this script
//             puts in the global context (functionGlobalContext), which stops the clock
//
// Documents go in by calling receive() on the json node, as an inject or http-in node's
// send() would deliver them, with msg.payload = the document's Buffer. Node-RED has no
// back-pressure: every hop is a setImmediate (its default, asynchronous delivery), and the
// switch node takes one message per turn of the event loop (it queues its input and handles
// the next message in a setImmediate, to keep order while rules may be asynchronous). So
// this script feeds K documents (--batch, default 1) per turn of the event loop: with K = 1
// every node handles one message per turn and nothing piles up; with K > 1 the surplus
// queues at the switch node (K = 3, 10, 100 and 1000, or all at once, gave 10,000 to 17,000
// documents/s against 25,000 to 30,000 with K = 1 on the bench machine, and 500 to 750 MB
// peak RSS against 360 MB). The time runs from the first receive() to the last count.
// Serializing is not part of the Node-RED flow (no json node before the ends): this peer does
// a little less work than quark and the plain loop, which pass each document on as bytes.
import { parseArgs } from 'node:util';
import { makeDocuments } from './documents.mjs';
import { functionNode, startFlow } from './node-red-runner.mjs';
import { docsArg, report, startClock } from './peer.mjs';

const docs = docsArg();
const { values } = parseArgs({ args: process.argv.slice(3), options: { batch: { type: 'string', default: '1' } } });
const batch = values.batch === 'all' ? docs : Number(values.batch);

const bench = { docs, finish: () => {} };

const countCode = (path) => [
  `context.set('count', (context.get('count') || 0) + 1);`,
  `const all = (flow.get('count') || 0) + 1;`,
  `flow.set('count', all);`,
  `const bench = global.get('bench');`,
  `if (all === bench.docs) bench.finish();`,
  `return null; // ${path}: the end of this path`,
].join('\n');

const z = 'bench';
const nodes = [
  { id: 'parse', z, type: 'json', name: 'parse', property: 'payload', action: 'obj', pretty: false, x: 100, y: 100, wires: [['map']] },
  { id: 'map', z, type: 'change', name: 'map: total', rules: [{ t: 'set', p: 'payload.total', pt: 'msg', to: '$sum(payload.items.price)', tot: 'jsonata' }], x: 250, y: 100, wires: [['setProperty']] },
  functionNode(z, 'setProperty', 'msg.customerId = String(msg.payload.customer.id);\nreturn msg;', 1, [['decide']], 'set property'),
  { id: 'decide', z, type: 'switch', name: 'total > 100', property: 'payload.total', propertyType: 'msg', rules: [{ t: 'gt', v: '100', vt: 'num' }, { t: 'else' }], checkall: 'false', repair: false, outputs: 2, x: 550, y: 100, wires: [['countTrue'], ['countFalse']] },
  functionNode(z, 'countTrue', countCode('ifTrue'), 0, [], 'count ifTrue'),
  functionNode(z, 'countFalse', countCode('ifFalse'), 0, [], 'count ifFalse'),
];

const { node, stop: stopRed } = await startFlow(z, 'bench/engine', nodes, { bench });
const parse = node('parse');

const input = makeDocuments(docs);
let stop;
const finished = new Promise((resolve) => {
  bench.finish = () => resolve(stop());
});
stop = startClock();
let next = 0;
const feed = () => {
  const end = Math.min(next + batch, docs);
  for (; next < end; next++) parse.receive({ payload: input[next] });
  if (next < docs) setImmediate(feed);
};
feed();
const timing = await finished;
const ifTrue = node('countTrue').context().get('count');
const ifFalse = node('countFalse').context().get('count');
report(docs, { ...timing, ifTrue, ifFalse });
await stopRed();
process.exit(0);
