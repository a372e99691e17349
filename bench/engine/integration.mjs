#!/usr/bin/env node
// bench/engine integration workload (integration-flow.mjs), side by side in one run: quark
// (integration-quark.mjs), Node-RED 4 (integration-node-red.mjs, if installed) and the plain
// single-threaded loop with the same JSONata (integration-loop.mjs). Two phases:
//   batch  10,000 documents of about 20 KB: split → 5-branch route → map → combine
//   small  1,000 small executions started one after another
// Each peer in a process of its own per run, order rotated per run; medians of --runs.
//   node bench/engine/integration.mjs [--documents 10000] [--executions 1000] [--runs 5] [--write bench/RESULTS.md]
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { expectedPerCarrier, makeBatches } from './integration-flow.mjs';
import { prependResults } from '../results.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { values } = parseArgs({ options: { documents: { type: 'string', default: '10000' }, executions: { type: 'string', default: '1000' }, runs: { type: 'string', default: '5' }, write: { type: 'string' } } });
const runs = Number(values.runs);
const phases = [
  { mode: 'batch', n: Number(values.documents), unit: 'documents' },
  { mode: 'small', n: Number(values.executions), unit: 'executions' },
];
const peers = [{ name: 'quark', script: 'integration-quark.mjs' }, { name: 'plain loop (JSONata)', script: 'integration-loop.mjs' }];
if (existsSync(join(here, 'node_modules/node-red'))) peers.push({ name: 'Node-RED 4', script: 'integration-node-red.mjs' });
else process.stderr.write('note: Node-RED is not installed (npm ci --prefix bench/engine): left out\n');
const expected = expectedPerCarrier(makeBatches(phases[0].n));

function measure(peer, phase) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, peer.script), phase.mode, String(phase.n)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${peer.name} ${phase.mode} exited with ${code}\n${stderr.slice(-2000)}`));
      const result = JSON.parse(stdout.trim().split('\n').pop());
      if (phase.mode === 'batch' && JSON.stringify(Object.entries(result.perCarrier).sort()) !== JSON.stringify(Object.entries(expected).sort())) {
        return reject(new Error(`${peer.name} counted ${JSON.stringify(result.perCarrier)}, expected ${JSON.stringify(expected)}`));
      }
      resolve(result);
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const rows = [];
for (const phase of phases) {
  const samples = new Map(peers.map((p) => [p.name, []]));
  for (let run = 0; run < runs; run++) {
    for (const peer of peers.map((_, i) => peers[(i + run) % peers.length])) {
      const s = await measure(peer, phase);
      samples.get(peer.name).push(s);
      process.stderr.write(`${phase.mode} run ${run + 1}/${runs} ${peer.name}: ${(phase.n / s.seconds).toFixed(0)} ${phase.unit}/s, ${s.seconds.toFixed(2)} s, ${(s.cpuSeconds / s.seconds).toFixed(2)} cores busy, ${s.peakRssMb} MB\n`);
    }
  }
  for (const peer of peers) {
    const list = samples.get(peer.name);
    const rates = list.map((s) => phase.n / s.seconds);
    rows.push({ phase, name: peer.name, rate: median(rates), min: Math.min(...rates), max: Math.max(...rates), busy: median(list.map((s) => s.cpuSeconds / s.seconds)), cpuUs: median(list.map((s) => (s.cpuSeconds / phase.n) * 1e6)), rss: Math.max(...list.map((s) => s.peakRssMb)) });
  }
}
const int = (x) => Math.round(x).toLocaleString('en-US');
const rateOf = (phase, name) => rows.find((r) => r.phase === phase && r.name === name)?.rate;
const ratio = (x, of) => (of === undefined ? '–' : (x / of).toFixed(2));
let commit = 'unknown commit';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
} catch {
  /* not a git checkout */
}
const text = [
  `## ${new Date().toISOString().slice(0, 10)} — engine, integration workload: ${int(phases[0].n)} documents of about 20 KB through split, a 5-branch route and combine; ${int(phases[1].n)} small executions back to back (code at ${commit}; ${runs} runs)`,
  '',
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}. batch: each document {"batch", "orders": [20 orders of documents.mjs]} is split on orders, routed on shipping.carrier (5 carriers), mapped per branch (a record with $sum(items.price) and the carrier's fee, JSONata) and combined per branch into one JSON array (5 documents out, ${Object.values(expected).map(int).join(' / ')} records); quark runs one execution over all documents (started without waiting); the loop keeps the records per branch and serialises each branch's array at the end; Node-RED: json → change → split → switch (5) → change (JSONata) → join per branch (after its known count) → a function serialising the array. small: one 1 KB document per execution through map ($merge with its total) → set property → decision; quark: executions.start with {wait: true}, one after another; Node-RED: the next document fed when the one before has ended; the loop: one document after another. rate = median [min–max] of ${runs} runs, ratios against the loop's and Node-RED's medians in the same run; cores busy = CPU of the process / wall time; CPU µs = CPU time per document (batch) or per execution (small); peak RSS = highest of the runs.`,
  '',
  '| phase | peer | per second | [min–max] | vs plain loop | vs Node-RED | cores busy | CPU µs each | peak RSS MB |',
  '| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.phase.mode} (${r.phase.unit}) | ${r.name} | ${int(r.rate)} | ${int(r.min)}–${int(r.max)} | ${ratio(r.rate, rateOf(r.phase, 'plain loop (JSONata)'))} | ${ratio(r.rate, rateOf(r.phase, 'Node-RED 4'))} | ${r.busy.toFixed(2)} | ${r.cpuUs.toFixed(1)} | ${Math.round(r.rss)} |`),
  '',
].join('\n');
console.log(text);
if (values.write) prependResults(values.write, text);
