#!/usr/bin/env node
// bench/engine peer: the flow as a quark process, run in a runtime created in this process
// (the in-process facade of dist/runtime/index.js, as the API would run it, minus HTTP):
//
//   start (documents) → map → props → big ─┬─ total > 100 → high (set-properties: path=high)
//                                          └─ otherwise   → low  (set-properties: path=low)
//
//   map:   $merge([$, {"total": $sum(items.price)}])   (JSONata; a map replaces the body, so
//          the document is merged with its total, as Node-RED's change node sets payload.total)
//   props: the document property customerId = customer.id
//   big:   decision on total > 100
//   ends:  set-properties steps; the execution's step counts (steps.high.in, steps.low.in) are
//          the documents counted at each end
//
// The pure steps run in the runtime's worker threads (limits.workerThreads, 2 by default) in
// chunks of up to 2000 documents; the body is parsed once in the worker and serialized once
// when it leaves the run of pure steps. Needs `npm run build` (dist/).
//   node bench/engine/quark.mjs <docs> [--wait] [--copy] [--threads N] [--dist DIR] [--postgres URL]
//   --wait     start with {wait: true}: the clock then also covers presenting the 100,000
//              output documents as base64 for the API answer (not part of the flow's work);
//              by default the execution starts with {wait: false} and this script waits
//              for its end as executions.subscribe() tells it
//   --copy     hand each document over in a Buffer of its own; by default the Buffers are the
//              views into 16 MiB slabs that documents.mjs makes (what every peer gets)
//   --threads  limits.workerThreads of the bench home (default: the runtime's default)
//   --isolation  config.json's isolation (threads, threads-only, process; default: the kind's)
//   --dist     a quark package folder other than this checkout (its dist/runtime/index.js), to
//              compare an engine change against this build
//   --postgres URL  the home's store on PostgreSQL: a fresh database made on that server
//              (the URL's user needs CREATEDB), dropped at the end; by default the home's
//              SQLite quark.db
// Before the clock starts, one warm-up execution of 500 documents runs (starts the worker
// threads, imports the worker module and compiles the JSONata expressions in each worker).
// Prints the one JSON line of peer.mjs; the clock runs from handing the documents to
// executions.start() to the status event of the execution's end. Where pure steps run in
// the plugin host process (isolation threads, the default, and process), its CPU time in
// that window and its peak RSS are added to this process's.
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeDocuments } from './documents.mjs';
import { docsArg, report, startClock } from './peer.mjs';
import { benchRuntime, definition, hostUsage, loadRuntime } from './home.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const docs = docsArg();
const { values } = parseArgs({ args: process.argv.slice(3), options: { wait: { type: 'boolean', default: false }, copy: { type: 'boolean', default: false }, threads: { type: 'string' }, isolation: { type: 'string' }, dist: { type: 'string' }, postgres: { type: 'string' } } });
const runtimeModule = await loadRuntime(values.dist ?? root);

export { definition };

/** A database of its own on the server of `serverUrl` (pg from this checkout's node_modules), and how to drop it. */
async function freshDatabase(serverUrl) {
  const { default: pg } = await import('pg');
  const admin = async (sql) => {
    const client = new pg.Client({ connectionString: serverUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  const name = `quark_bench_engine_${process.pid}_${Date.now().toString(36)}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

const database = values.postgres ? await freshDatabase(values.postgres) : undefined;
const { rt, caller } = await benchRuntime(runtimeModule, {
  init: database ? { store: { kind: 'postgres', url: database.url } } : {},
  configure: (config) => ({
    ...config,
    ...(values.isolation ? { isolation: values.isolation } : {}),
    limits: { ...config.limits, ...(values.threads ? { workerThreads: Number(values.threads) } : {}) },
  }),
});

const terminal = (status) => status !== 'queued' && status !== 'in-process';
// the end of an execution, told by the runtime's own status events (executions.subscribe),
// so the clock stops when the execution ends, with no polling load on the main thread
const ends = new Map();
const endWaiters = new Map();
rt.executions.subscribe(caller, (view) => {
  if (!terminal(view.status)) return;
  const waiter = endWaiters.get(view.id);
  if (waiter) waiter(view);
  else ends.set(view.id, view);
});
const ended = (id) => (ends.has(id) ? Promise.resolve(ends.get(id)) : new Promise((resolve) => endWaiters.set(id, resolve)));

async function execute(documents, wait) {
  if (wait) return rt.executions.start(caller, { process: definition.id, trigger: 'api', documents }, { wait: true });
  const started = await rt.executions.start(caller, { process: definition.id, trigger: 'api', documents }, { wait: false });
  return ended(started.id);
}

function check(view, n) {
  if (view.status !== 'complete') throw new Error(`execution ${view.id} ended ${view.status}: ${view.errorMessage}`);
  const s = view.steps;
  if (s.map?.in !== n || s.big?.in !== n || (s.high?.in ?? 0) + (s.low?.in ?? 0) !== n || view.documentsOut !== n) {
    throw new Error(`execution ${view.id} lost documents: ${JSON.stringify({ steps: s, documentsOut: view.documentsOut })}`);
  }
  return { ifTrue: s.high?.in ?? 0, ifFalse: s.low?.in ?? 0 };
}

// warm-up: other documents than the measured ones (their own seed), the same shape
const warmDocs = makeDocuments(500, 0x3a7e).map((body) => ({ body }));
check(await execute(warmDocs, values.wait), warmDocs.length);

const input = makeDocuments(docs);
const documents = input.map((bytes) => ({ body: values.copy ? Buffer.from(Uint8Array.prototype.slice.call(bytes).buffer) : bytes }));
const from = process.hrtime.bigint();
const hostBefore = hostUsage();
const stop = startClock();
const view = await execute(documents, values.wait);
const timing = stop();
// pure steps run in the plugin host process (isolation threads and process): its CPU time
// in the window and its peak RSS count as quark's
const hostAfter = hostUsage();
timing.cpuSeconds += hostAfter.cpuSeconds - hostBefore.cpuSeconds;
timing.childRssMb = hostAfter.peakRssMb;
// the timed window on the monotonic clock (µs) that .cpuprofile timestamps use: bench/profile-summary.mjs --from/--to
process.stderr.write(`quark: window ${from / 1000n} ${process.hrtime.bigint() / 1000n}\n`);
process.stderr.write(`quark: peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB this process (${Math.round(timing.startRssMb)} MB at the start), ${Math.round(timing.childRssMb)} MB the plugin host (${Math.round(hostBefore.peakRssMb)} MB at the start)\n`);
const counts = check(view, docs);
process.stderr.write(`quark: execution ${view.id} ${view.status}, durationMs ${view.durationMs} (record), ${view.documentsOut} out, steps ${JSON.stringify(view.steps)}\n`);
report(docs, { ...timing, ...counts });
if (database) {
  await rt.close();
  await database.drop();
}
await rt.close();
process.exit(0);
