#!/usr/bin/env node
// bench/engine: the memory of one large JSON body through a map. A runtime in this process
// (as bench/engine/quark.mjs) with limits.spillBytes raised to 64 MiB, so a 50 MB body stays
// in memory where a map can read it; one document of about <mb> MB (an object whose
// `orders` array holds the 1 KB orders of documents.mjs) goes through
//   map: $merge([$, {"count": $count(orders)}])
// and the script reports the peak RSS of the runtime against its RSS before the execution
// (runtime started and warmed up, the body built), as MB and as a multiple of the body's
// size. The runtime is this process (main thread and workers) and, on Linux, its child
// processes: in the default isolation ("threads") the pure steps run in the plugin host
// process, whose memory counts as much as the main process's. On Linux each process's peak
// (VmHWM) is set back to its RSS just before the execution (/proc/<pid>/clear_refs), so
// building the bodies does not count, and the peak is the sum of the processes' peaks (each
// at its own moment: at least the peak of the sum); elsewhere, this process's maxRSS alone
// (linux: false).
//   node bench/engine/large-body.mjs [--mb 50] [--bodies 1] [--isolation threads|threads-only] [--wait] [--dist DIR]
//   --bodies N  that many such executions at once (each its own body)
//   --wait      start them waiting for the end, so each one's output is kept for the caller (default: not waited for, outputs counted only)
// Prints one JSON line: { bodyMb, bodies, isolation, wait, startRssMb, peakRssMb, growthMb, growthPerBody, mainGrowthMb, childGrowthMb, linux, seconds }.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { makeDocuments } from './documents.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({ options: { mb: { type: 'string', default: '50' }, bodies: { type: 'string', default: '1' }, isolation: { type: 'string' }, wait: { type: 'boolean', default: false }, dist: { type: 'string' } } });
const { createRuntime, initHome, createSchemaRegistry } = await import(pathToFileURL(join(values.dist ?? root, 'dist/runtime/index.js')).href);

const home = mkdtempSync(join(tmpdir(), 'quark-bench-large-'));
process.on('exit', () => rmSync(home, { recursive: true, force: true }));
const { ownerToken, paths } = await initHome({ home }, createSchemaRegistry());
const config = JSON.parse(readFileSync(paths.config, 'utf8'));
config.limits.spillBytes = 64 * 1024 * 1024;
if (values.isolation) config.isolation = values.isolation;
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

/** Linux: this process and its descendants, by pid (a child's children through /proc/<pid>/task/<tid>/children). */
function processTree(pid = process.pid) {
  const pids = [pid];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const children = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    if (children) for (const child of children.split(/\s+/)) pids.push(...processTree(Number(child)));
  }
  return pids;
}

const statusMb = (pid, field) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

/**
 * Linux: the runtime's processes and their RSS now, each one's peak (VmHWM) set back to it,
 * so a peak read later is the run's; undefined where /proc cannot do it.
 */
function startMeasure() {
  try {
    const pids = processTree();
    const start = new Map(pids.map((pid) => [pid, statusMb(pid, 'VmRSS')]));
    for (const pid of pids) writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return { pids, start };
  } catch {
    return undefined;
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
  const start = (b) => rt.executions.start(caller, { process: definition.id, trigger: 'api', documents: [{ body: b }] }, { wait: values.wait });
  // --wait: the caller waits for the end, so the output documents are kept for it
  const views = values.wait ? await Promise.all(bodies.map(start)) : await Promise.all((await Promise.all(bodies.map(start))).map((s) => new Promise((resolve) => ends.set(s.id, resolve))));
  for (const view of views) if (view.status !== 'complete') throw new Error(`execution ${view.id} ended ${view.status}: ${view.errorMessage}`);
}

await run([body(1, 7)]); // warm-up: workers started, expression compiled
const count = Number(values.bodies);
const bodies = Array.from({ length: count }, (_, i) => body(Number(values.mb), 100 + i));
const bodyMb = bodies[0].length / 2 ** 20;
global.gc?.();
const measure = startMeasure();
const startRssMb = measure ? [...measure.start.values()].reduce((x, y) => x + y, 0) : process.memoryUsage.rss() / 2 ** 20;
const t0 = process.hrtime.bigint();
await run(bodies);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const growthOf = (pid) => statusMb(pid, 'VmHWM') - measure.start.get(pid);
const mainGrowthMb = measure ? growthOf(process.pid) : process.resourceUsage().maxRSS / 1024 - startRssMb;
const childGrowthMb = measure ? measure.pids.slice(1).reduce((n, pid) => n + growthOf(pid), 0) : 0;
const growthMb = mainGrowthMb + childGrowthMb;
const round = (mb) => Math.round(mb);
console.log(JSON.stringify({ bodyMb: +bodyMb.toFixed(1), bodies: count, isolation: config.isolation ?? 'default', wait: values.wait, startRssMb: round(startRssMb), peakRssMb: round(startRssMb + growthMb), growthMb: round(growthMb), growthPerBody: +(growthMb / count / bodyMb).toFixed(2), mainGrowthMb: round(mainGrowthMb), childGrowthMb: round(childGrowthMb), linux: measure !== undefined, seconds: +seconds.toFixed(2) }));
await rt.close();
process.exit(0);
