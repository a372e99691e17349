#!/usr/bin/env node
// bench/quick: the regression guard CI runs (`npm run bench:quick`, after `npm run build`):
// a list of short benches, each run in a child process of its own with its output printed
// as it comes, about two minutes in all. It never asserts: a slowdown shows in the logs,
// and a bench that fails or passes its time budget is reported as such, while the script
// still exits 0 (CI does not fail on numbers from a shared machine).
//
// To add a bench, add an entry to `benches`: a name, the script (relative to bench/), its
// arguments for a short run, and a budget in seconds after which it is stopped.
//
//   node bench/quick.mjs [--only NAME,…] [--list]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));

/** The quick benches, in the order they run. */
export const benches = [
  {
    name: 's3-transfer',
    what: '16 MiB upload, download and copy through the S3 connector beside the raw SDK, aws s3 cp and rclone, 1 run (Ceph RGW with S3_ENDPOINT, else s3rver)',
    script: 's3-transfer.mjs',
    args: ['--sizes', '16', '--runs', '1'],
    budgetSeconds: 75,
  },
  {
    name: 'latency',
    what: 'one small execution through the HTTP API: 200 sequential, then 50 callers for 3 s',
    script: 'latency.mjs',
    args: ['--runs', '200', '--warmup', '20', '--concurrency', '50', '--seconds', '3'],
    budgetSeconds: 40,
  },
  {
    name: 'engine',
    what: 'the engine flow over 20,000 documents and the integration batch over 500, in quark and the plain JSONata loop, 1 run each',
    script: 'engine/quick.mjs',
    args: [],
    budgetSeconds: 60,
  },
];

/** Runs one bench; resolves to how it ended, never rejects. */
async function run(bench) {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [join(here, bench.script), ...bench.args], { stdio: ['ignore', 'inherit', 'inherit'] });
  const timer = setTimeout(() => child.kill('SIGTERM'), bench.budgetSeconds * 1000);
  const [code, signal] = await once(child, 'close').catch((error) => [undefined, String(error)]);
  clearTimeout(timer);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const outcome = code === 0 ? 'done' : signal === 'SIGTERM' ? `stopped at its budget of ${bench.budgetSeconds} s` : `failed (exit ${code ?? signal})`;
  return { name: bench.name, seconds, outcome };
}

const { values } = parseArgs({ options: { only: { type: 'string' }, list: { type: 'boolean', default: false } } });
const chosen = values.only ? benches.filter((b) => values.only.split(',').includes(b.name)) : benches;
if (values.list) {
  for (const b of benches) console.log(`${b.name}: ${b.what} (budget ${b.budgetSeconds} s)`);
  process.exit(0);
}
const summary = [];
for (const bench of chosen) {
  console.log(`\n== bench:quick ${bench.name}: ${bench.what}`);
  summary.push(await run(bench));
}
console.log('\n== bench:quick summary (timings are printed above; nothing is asserted)');
for (const s of summary) console.log(`${s.name}: ${s.outcome} in ${s.seconds.toFixed(1)} s`);
process.exit(0);
