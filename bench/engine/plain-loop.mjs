#!/usr/bin/env node
// bench/engine peer: the flow's logic as a plain single-threaded loop, the limit of this work
// on one core. For each document (a Buffer of JSON text from documents.mjs):
//   parse → map (total = $sum(items.price)) → set property (customerId = customer.id, a
//   string property that travels with the document) → serialize the body back to bytes (a
//   runtime passes bytes on) → decision (total > 100) → count at one of two ends.
//   node bench/engine/plain-loop.mjs <docs>            the map as the JSONata expression
//                                                       $sum(items.price), compiled once
//   node bench/engine/plain-loop.mjs <docs> --plain-js  the map as a JS loop: no JSONata at
//                                                       all, the absolute floor
// Prints the one JSON line of peer.mjs.
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeDocuments } from './documents.mjs';
import { docsArg, report, startClock } from './peer.mjs';

const docs = docsArg();
const plainJs = process.argv.includes('--plain-js');
// quark's own jsonata (the repository's node_modules), not the copy Node-RED vendors
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const jsonata = createRequire(join(root, 'package.json'))('jsonata');
const sumPrices = jsonata('$sum(items.price)');

const input = makeDocuments(docs);
let ifTrue = 0;
let ifFalse = 0;
let bytesOut = 0;

const stop = startClock();
for (const bytes of input) {
  const doc = JSON.parse(bytes.toString('utf8'));
  if (plainJs) {
    let total = 0;
    for (const item of doc.items) total += item.price;
    doc.total = total;
  } else {
    doc.total = await sumPrices.evaluate(doc); // jsonata 2: evaluate returns a Promise
  }
  const properties = { customerId: String(doc.customer.id) };
  const body = Buffer.from(JSON.stringify(doc), 'utf8');
  bytesOut += body.length + properties.customerId.length;
  if (doc.total > 100) ifTrue++;
  else ifFalse++;
}
const timing = stop();
if (ifTrue + ifFalse !== docs || bytesOut === 0) throw new Error('lost documents');
report(docs, { ...timing, ifTrue, ifFalse });
