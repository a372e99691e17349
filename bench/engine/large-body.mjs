#!/usr/bin/env node
// bench/engine: the memory of one large JSON body through a map. A runtime in this process
// (as bench/engine/quark.mjs) with limits.spillBytes raised to 64 MiB, so a 50 MB body stays
// in memory where a map can read it; one document of about <mb> MB (an object whose
// `orders` array holds the 1 KB orders of documents.mjs) goes through
//   map: $merge([$, {"count": $count(orders)}])
// and the script reports the peak RSS of the whole process (main thread and workers) against
// the RSS before the execution (runtime started and warmed up, the body built), as MB and as
// a multiple of the body's size. On Linux the peak is set back to the RSS just before the
// execution (/proc/self/clear_refs), so building the bodies does not count (peakReset: true).
//   node bench/engine/large-body.mjs [--mb 50] [--bodies 1] [--dist DIR]
//   --bodies N  that many such executions at once (each its own body)
// Prints one JSON line: { bodyMb, bodies, startRssMb, peakRssMb, growthMb, growthPerBody, peakReset, seconds }.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { makeDocuments } from './documents.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({ options: { mb: { type: 'string', default: '50' }, bodies: { type: 'string', default: '1' }, dist: { type: 'string' } } });
const { createRuntime, initHome, createSchemaRegistry } = await import(pathToFileURL(join(values.dist ?? root, 'dist/runtime/index.js')).href);

const home = mkdtempSync(join(tmpdir(), 'quark-bench-large-'));
process.on('exit', () => rmSync(home, { recursive: true, force: true }));
const { ownerToken, paths } = await initHome({ home }, createSchemaRegistry());
const config = JSON.parse(readFileSync(paths.config, 'utf8'));
config.limits.spillBytes = 64 * 1024 * 1024;
writeFileSync(paths.config, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
const rt = await createRuntime({ home, logLevel: 'silent' });
const caller = await rt.authenticate(ownerToken);
const definition = {
  id: 'bench-large-body',
  name: 'bench/engine large body',
  start: { kind: 'documents', next: 'map' },
  steps: [{ id: 'map', kind: 'map', expression: '$merge([$, {"count": $count(orders)}])' }],
};
await rt.deployments.deploy(caller, definition);

/**
 * Linux: the peak RSS (VmHWM, which getrusage's maxRSS reads too) set back to the RSS now,
 * so the peak is the run's and not the building of the bodies'; false where it cannot be.
 */
function resetPeak() {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** One body of about `mb` MB: {"batch": …, "orders": [ …1 KB orders… ]}. */
function body(mb, seed) {
  const orders = makeDocuments(Math.round((mb * 2 ** 20) / 1000), seed);
  return Buffer.concat([Buffer.from('{"batch":"large","orders":['), ...orders.flatMap((o, i) => (i ? [Buffer.from(','), o] : [o])), Buffer.from(']}')]);
}

const ends = new Map();
rt.executions.subscribe(caller, (view) => {
  if (view.status !== 'queued' && view.status !== 'in-process') ends.get(view.id)?.(view);
});
async function run(bodies) {
  const started = await Promise.all(bodies.map((b) => rt.executions.start(caller, { process: definition.id, trigger: 'api', documents: [{ body: b }] }, { wait: false })));
  const views = await Promise.all(started.map((s) => new Promise((resolve) => ends.set(s.id, resolve))));
  for (const view of views) if (view.status !== 'complete') throw new Error(`execution ${view.id} ended ${view.status}: ${view.errorMessage}`);
}

await run([body(1, 7)]); // warm-up: workers started, expression compiled
const count = Number(values.bodies);
const bodies = Array.from({ length: count }, (_, i) => body(Number(values.mb), 100 + i));
const bodyMb = bodies[0].length / 2 ** 20;
global.gc?.();
const startRssMb = process.memoryUsage.rss() / 2 ** 20;
const peakReset = resetPeak();
const t0 = process.hrtime.bigint();
await run(bodies);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const peakRssMb = process.resourceUsage().maxRSS / 1024;
const growthMb = peakRssMb - startRssMb;
console.log(JSON.stringify({ bodyMb: +bodyMb.toFixed(1), bodies: count, startRssMb: Math.round(startRssMb), peakRssMb: Math.round(peakRssMb), growthMb: Math.round(growthMb), growthPerBody: +(growthMb / count / bodyMb).toFixed(2), peakReset, seconds: +seconds.toFixed(2) }));
await rt.close();
process.exit(0);
