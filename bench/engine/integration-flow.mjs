// bench/engine integration workload, shared by its peers (integration.mjs runs them): the
// input, the logic and the expected answers.
//   batch: <n> documents of about 20 KB, each {"batch", "orders": [20 orders of documents.mjs]};
//          split on orders → route on shipping.carrier (5 carriers, 5 branches) → a map per
//          branch (a small record with the order's total and the carrier's fee) → combine
//          (all records of a branch into one JSON array) → 5 combined documents out
//   small: <n> executions started one after another, each of one 1 KB document through
//          map ($merge with its total) → set property → decision (the latency bench's flow)
import { makeDocuments } from './documents.mjs';

export const CARRIERS = ['CTT', 'DHL', 'PostNL', 'Posten', 'UPS'];
export const ORDERS_PER_DOCUMENT = 20;
/** The map of each branch: the same record, a fee rate of the carrier's own. */
export const branchExpression = (i) => `{"id": id, "carrier": shipping.carrier, "total": $sum(items.price), "fee": $round($sum(items.price) * ${(0.02 + i * 0.01).toFixed(2)}, 2)}`;
export const smallExpression = '$merge([$, {"total": $sum(items.price)}])';

/** n batch documents (Buffers of JSON text, about 20 KB each), deterministic. */
export function makeBatches(n) {
  const orders = makeDocuments(n * ORDERS_PER_DOCUMENT, 0x2b1d);
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const parts = [Buffer.from(`{"batch":"B-${String(i + 1).padStart(6, '0')}","orders":[`)];
    for (let k = 0; k < ORDERS_PER_DOCUMENT; k++) {
      if (k) parts.push(Buffer.from(','));
      parts.push(orders[i * ORDERS_PER_DOCUMENT + k]);
    }
    parts.push(Buffer.from(']}'));
    out[i] = Buffer.concat(parts);
  }
  return out;
}

/** What every peer must count: orders per carrier. */
export function expectedPerCarrier(batches) {
  const counts = Object.fromEntries(CARRIERS.map((c) => [c, 0]));
  for (const b of batches) for (const o of JSON.parse(b).orders) counts[o.shipping.carrier]++;
  return counts;
}

/** n small documents for the small executions. */
export const makeSmall = (n) => makeDocuments(n, 0x5a11);
