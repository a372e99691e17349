#!/usr/bin/env node
// bench/engine quick check, a regression guard that prints and asserts nothing (well under
// 2 minutes): the engine flow of run.mjs over 20,000 documents in quark and in the plain
// JSONata loop, then the integration batch (integration.mjs) over 500 documents in both;
// one run each, in processes of their own, and the ratios of the same run.
//   node bench/engine/quick.mjs        (needs npm run build)
import { spawnSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
function peer(script, args) {
  const child = spawnSync(process.execPath, [join(here, script), ...args], { encoding: 'utf8', timeout: 5 * 60 * 1000 });
  if (child.status !== 0) throw new Error(`${script} ${args.join(' ')} failed: ${child.stderr.slice(-1500)}`);
  return JSON.parse(child.stdout.trim().split('\n').pop());
}
const line = (name, n, r) => `  ${name.padEnd(26)} ${String(Math.round(n / r.seconds)).padStart(8)} /s  ${((r.cpuSeconds / n) * 1e6).toFixed(1).padStart(8)} µs CPU each  ${String(r.peakRssMb).padStart(5)} MB peak RSS`;

const docs = 20000;
const quark = peer('quark.mjs', [String(docs)]);
const loop = peer('plain-loop.mjs', [String(docs)]);
console.log(`engine flow, ${docs} documents of 1 KB (map → set property → decision):`);
console.log(line('quark', docs, quark));
console.log(line('plain loop (JSONata)', docs, loop));
console.log(`  quark / loop: ${(loop.seconds / quark.seconds).toFixed(2)}× in docs/s`);
const batch = 500;
const qb = peer('integration-quark.mjs', ['batch', String(batch)]);
const lb = peer('integration-loop.mjs', ['batch', String(batch)]);
console.log(`integration batch, ${batch} documents of 20 KB (split → 5-branch route → map → combine):`);
console.log(line('quark', batch, qb));
console.log(line('plain loop (JSONata)', batch, lb));
console.log(`  quark / loop: ${(lb.seconds / qb.seconds).toFixed(2)}× in documents/s`);
