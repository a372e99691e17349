#!/usr/bin/env node
// bench/engine: documents per second through start → map (JSONata: total = $sum(items.price))
// → set property → decision (total > 100) → a counting end on each path, in quark and its
// peers, side by side in one run: Node-RED 4 (node-red.mjs), the same logic as a plain
// single-threaded loop with the same JSONata expression (plain-loop.mjs), and that loop with
// the sum in plain JS (the floor). Every peer runs in a process of its own per run, on the
// same deterministic input (documents.mjs), in an order rotated per run; each prints one JSON
// line (the contract in peer.mjs). Reports medians, ratios, cores busy and peak RSS.
//   npm ci --prefix bench/engine       # Node-RED, once (else it is left out)
//   node bench/engine/run.mjs [--docs 100000] [--runs 5] [--write bench/RESULTS.md] [--baseline DIR] [--postgres URL]
//   --postgres URL  also quark with its store on PostgreSQL (a fresh database per run on
//                   that server, dropped after it), as the peer "quark (PostgreSQL store)"
//   --baseline DIR  also quark as built in DIR (another checkout's dist/), e.g. main before an
//                   engine change, as the peer "quark (baseline)"
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeDocuments } from './documents.mjs';
import { prependResults } from '../results.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const { values } = parseArgs({ options: { docs: { type: 'string', default: '100000' }, runs: { type: 'string', default: '5' }, write: { type: 'string' }, baseline: { type: 'string' }, postgres: { type: 'string' } } });
const docs = Number(values.docs);
const runs = Number(values.runs);
if (!Number.isInteger(docs) || docs < 1 || !Number.isInteger(runs) || runs < 1) throw new Error('usage: run.mjs [--docs N] [--runs N] [--write FILE]');

const NODE_RED = 'Node-RED 4';
const LOOP = 'plain loop (JSONata)';
const notes = [];
const peers = [];
const QUARK_PG = 'quark (PostgreSQL store)';

// ── HOOK: the quark peer ─────────────────────────────────────────────────────────────────
// bench/engine/quark.mjs is written separately. Contract (the same for every peer, see
// peer.mjs): `node bench/engine/quark.mjs <docs>` runs the flow over makeDocuments(docs) and
// prints one JSON line { "docsPerSecond", "peakRssMb", "seconds" } (optionally "cpuSeconds",
// "startRssMb", "ifTrue", "ifFalse"). Until the file exists, quark is left out with a note.
if (existsSync(join(here, 'quark.mjs'))) {
  peers.push({ name: 'quark', script: 'quark.mjs', args: [] });
  if (values.postgres) peers.push({ name: QUARK_PG, script: 'quark.mjs', args: ['--postgres', values.postgres] });
  if (values.baseline) peers.push({ name: 'quark (baseline)', script: 'quark.mjs', args: ['--dist', values.baseline] });
} else notes.push('bench/engine/quark.mjs does not exist yet: quark left out.');
// ─────────────────────────────────────────────────────────────────────────────────────────

let nodeRedVersion;
try {
  nodeRedVersion = JSON.parse(readFileSync(join(here, 'node_modules/node-red/package.json'), 'utf8')).version;
  peers.push({ name: NODE_RED, script: 'node-red.mjs', args: [] });
} catch {
  notes.push('Node-RED is not installed (npm ci --prefix bench/engine): Node-RED left out.');
}
peers.push({ name: LOOP, script: 'plain-loop.mjs', args: [] });
peers.push({ name: 'plain loop (plain JS, no JSONata)', script: 'plain-loop.mjs', args: ['--plain-js'] });
const quarkJsonata = JSON.parse(readFileSync(join(root, 'node_modules/jsonata/package.json'), 'utf8')).version;
for (const note of notes) process.stderr.write(`note: ${note}\n`);

// what every peer must count at each end
const expected = { ifTrue: 0, ifFalse: 0 };
let inputBytes = 0;
for (const bytes of makeDocuments(docs)) {
  inputBytes += bytes.length;
  const total = JSON.parse(bytes).items.reduce((sum, item) => sum + item.price, 0);
  if (total > 100) expected.ifTrue++;
  else expected.ifFalse++;
}

function measure(peer) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, peer.script), String(docs), ...peer.args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30 * 60 * 1000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const fail = (why) => reject(new Error(`${peer.name} (${peer.script}) ${why}\n${stderr.slice(-3000)}`));
      if (code !== 0) return fail(`exited with ${signal ?? code}`);
      const line = stdout.trim().split('\n').pop();
      let result;
      try {
        result = JSON.parse(line);
      } catch {
        return fail(`printed no JSON line: ${JSON.stringify(stdout.slice(-500))}`);
      }
      for (const key of ['docsPerSecond', 'peakRssMb', 'seconds']) if (typeof result[key] !== 'number') return fail(`left out "${key}": ${line}`);
      if (result.ifTrue !== undefined && (result.ifTrue !== expected.ifTrue || result.ifFalse !== expected.ifFalse)) {
        return fail(`counted ${result.ifTrue} + ${result.ifFalse} documents at the ends, expected ${expected.ifTrue} + ${expected.ifFalse}`);
      }
      resolve(result);
    });
  });
}

const loadText = () => loadavg().map((x) => x.toFixed(2)).join(', ');
// the machine's load around the run: on shared cores the ratios of one run are what compares
const loadBefore = loadText();
const samples = new Map(peers.map((p) => [p.name, []]));
for (let run = 0; run < runs; run++) {
  // rotate the order each run so no peer always goes first
  const order = peers.map((_, i) => peers[(i + run) % peers.length]);
  for (const peer of order) {
    const sample = await measure(peer);
    samples.get(peer.name).push(sample);
    const busy = sample.cpuSeconds === undefined ? '' : `, ${(sample.cpuSeconds / sample.seconds).toFixed(2)} cores busy`;
    process.stderr.write(`run ${run + 1}/${runs} ${peer.name}: ${Math.round(sample.docsPerSecond)} docs/s, ${sample.seconds.toFixed(2)} s${busy}, ${Math.round(sample.peakRssMb)} MB peak RSS\n`);
  }
}

const loadAfter = loadText();
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const rows = peers.map(({ name }) => {
  const list = samples.get(name);
  const rates = list.map((s) => s.docsPerSecond);
  const busy = list.every((s) => typeof s.cpuSeconds === 'number') ? median(list.map((s) => s.cpuSeconds / s.seconds)) : undefined;
  const start = list.every((s) => typeof s.startRssMb === 'number') ? median(list.map((s) => s.startRssMb)) : undefined;
  const cpuUs = list.every((s) => typeof s.cpuSeconds === 'number') ? median(list.map((s) => (s.cpuSeconds / docs) * 1e6)) : undefined;
  return { name, rate: median(rates), min: Math.min(...rates), max: Math.max(...rates), seconds: median(list.map((s) => s.seconds)), busy, cpuUs, rss: Math.max(...list.map((s) => s.peakRssMb)), start };
});
const rateOf = (name) => rows.find((r) => r.name === name)?.rate;
const nodeRed = rateOf(NODE_RED);
const loop = rateOf(LOOP);
const int = (x) => Math.round(x).toLocaleString('en-US');
const ratio = (x, of) => (of === undefined ? '–' : (x / of).toFixed(2));

const cpu = cpus()[0]?.model ?? 'unknown CPU';
let commit = 'unknown commit';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
} catch {
  /* not a git checkout */
}
const targets = [];
const quark = rows.find((r) => r.name === 'quark');
if (quark) {
  if (nodeRed !== undefined) targets.push(`quark / Node-RED = ${(quark.rate / nodeRed).toFixed(2)}× (target ≥ 2.5×)`);
  targets.push(`quark / plain loop (JSONata) = ${(quark.rate / loop).toFixed(2)}× (target ≥ 1.0×)`);
  const loopRow = rows.find((r) => r.name === LOOP);
  if (loopRow) targets.push(`quark's peak RSS / the loop's = ${(quark.rss / loopRow.rss).toFixed(2)}× (target ≤ 1.5×)`);
  if (quark.cpuUs !== undefined && loopRow?.cpuUs !== undefined) targets.push(`CPU per document: quark ${quark.cpuUs.toFixed(1)} µs, the loop ${loopRow.cpuUs.toFixed(1)} µs`);
  const onPg = rows.find((r) => r.name === QUARK_PG);
  if (onPg) targets.push(`quark on PostgreSQL / on SQLite = ${(onPg.rate / quark.rate).toFixed(2)}× docs/s`);
  if (quark.busy !== undefined) targets.push(`quark keeps ${quark.busy.toFixed(2)} of ${cpus().length} cores busy`);
}
const lines = [
  `## ${new Date().toISOString().slice(0, 10)} — engine: ${int(docs)} documents of about ${Math.round(inputBytes / docs)} bytes through map, set property and decision (code at ${commit}; ${runs} runs)`,
  '',
  `Load: load average (1, 5, 15 min) ${loadBefore} before the run and ${loadAfter} after.`,
  '',
  `Machine: ${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}. Flow: parse the JSON bytes → map (JSONata \`$sum(items.price)\` into \`total\`) → set property (customerId = customer.id) → decision (total > 100) → a counting end on each path (${int(expected.ifTrue)} and ${int(expected.ifFalse)} documents). Peers: ${nodeRedVersion ? `Node-RED ${nodeRedVersion} embedded (json → change with the JSONata → function → switch → two counting function nodes; one document fed per event-loop turn, its best; no serialization at the end)` : 'Node-RED not installed'}; the same logic as a plain single-threaded loop with the same JSONata expression compiled once (jsonata ${quarkJsonata}; serializes each document back to bytes), and with the sum in plain JS (the floor). Each peer in its own process per run, order rotated per run; the clock runs from the first document in to the last one counted (start-up and building the input excluded). docs/s = median [min–max] of ${runs} runs; ratios = a peer's median docs/s / Node-RED's or the JSONata loop's median docs/s from the same run; cores busy = CPU time of the whole process (all threads) / wall time, median; CPU µs/doc = that CPU time / documents, median; peak RSS = highest of the runs, whole process, including the input documents (${(inputBytes / 2 ** 20).toFixed(0)} MB of JSON text) that every peer holds; RSS at start = when the clock starts.`,
  '',
  '| peer | docs/s | [min–max] | vs Node-RED | vs plain loop (JSONata) | seconds | cores busy | CPU µs/doc | peak RSS MB | RSS at start MB |',
  '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.name} | ${int(r.rate)} | ${int(r.min)}–${int(r.max)} | ${ratio(r.rate, nodeRed)} | ${ratio(r.rate, loop)} | ${r.seconds.toFixed(2)} | ${r.busy?.toFixed(2) ?? '–'} | ${r.cpuUs?.toFixed(1) ?? '–'} | ${Math.round(r.rss)} | ${r.start === undefined ? '–' : Math.round(r.start)} |`),
  '',
  ...(targets.length ? [`Targets: ${targets.join('; ')}.`, ''] : []),
  ...(notes.length ? [...notes.map((n) => `Note: ${n}`), ''] : []),
];
const text = lines.join('\n');
console.log(text);
if (values.write) prependResults(values.write, text);
