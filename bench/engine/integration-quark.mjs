#!/usr/bin/env node
// bench/engine integration peer: quark (a runtime in this process, as quark.mjs).
//   node bench/engine/integration-quark.mjs batch <documents>   one execution over them, started without waiting
//   node bench/engine/integration-quark.mjs small <executions>  one after another, each started with {wait: true}
// Prints one JSON line: { seconds, cpuSeconds, peakRssMb, perCarrier? }; the plugin host's CPU
// and peak RSS (it runs the pure steps in isolation threads) are added to this process's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CARRIERS, branchExpression, makeBatches, makeSmall, smallExpression } from './integration-flow.mjs';
import { startClock } from './peer.mjs';
import { hostUsage } from './home.mjs';

const [mode, count] = [process.argv[2], Number(process.argv[3])];
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { createRuntime, initHome, createSchemaRegistry } = await import(pathToFileURL(join(root, 'dist/runtime/index.js')).href);
const home = mkdtempSync(join(tmpdir(), 'quark-bench-integration-'));
process.on('exit', () => rmSync(home, { recursive: true, force: true }));
const { ownerToken } = await initHome({ home }, createSchemaRegistry());
const rt = await createRuntime({ home, logLevel: 'silent' });
const caller = await rt.authenticate(ownerToken);

const batch = {
  id: 'bench-batch',
  name: 'bench/engine integration: split, route, combine',
  start: { kind: 'documents', next: 'split' },
  steps: [
    { id: 'split', kind: 'split', mode: 'json-array', path: 'orders', next: 'route' },
    { id: 'route', kind: 'route', value: 'shipping.carrier', routes: CARRIERS.map((c, i) => ({ equals: c, next: `map${i}` })) },
    ...CARRIERS.map((_, i) => ({ id: `map${i}`, kind: 'map', expression: branchExpression(i), next: 'combine' })),
    { id: 'combine', kind: 'combine', mode: 'json-array' },
  ],
};
const small = {
  id: 'bench-small',
  name: 'bench/engine integration: small executions',
  start: { kind: 'documents', next: 'map' },
  steps: [
    { id: 'map', kind: 'map', expression: smallExpression, next: 'props' },
    { id: 'props', kind: 'set-properties', document: { customerId: { $expr: 'customer.id' } }, next: 'big' },
    { id: 'big', kind: 'decision', condition: 'total > 100', ifTrue: 'high', ifFalse: 'low' },
    { id: 'high', kind: 'set-properties', document: { path: 'high' } },
    { id: 'low', kind: 'set-properties', document: { path: 'low' } },
  ],
};
await rt.deployments.deploy(caller, batch);
await rt.deployments.deploy(caller, small);

const ends = new Map();
rt.executions.subscribe(caller, (view) => {
  if (view.status !== 'queued' && view.status !== 'in-process') ends.get(view.id)?.(view);
});
async function runBatch(documents) {
  const started = await rt.executions.start(caller, { process: batch.id, trigger: 'api', documents: documents.map((body) => ({ body })) }, { wait: false });
  const view = await new Promise((resolve) => ends.set(started.id, resolve));
  if (view.status !== 'complete') throw new Error(`batch execution ended ${view.status}: ${view.errorMessage}`);
  return Object.fromEntries(CARRIERS.map((c, i) => [c, view.steps[`map${i}`]?.in ?? 0]));
}
async function runSmall(documents) {
  for (const body of documents) {
    const view = await rt.executions.start(caller, { process: small.id, trigger: 'api', documents: [{ body }] }, { wait: true });
    if (view.status !== 'complete' || view.documentsOut !== 1) throw new Error(`small execution ended ${view.status}: ${view.errorMessage}`);
  }
}

/**
 * Where pure steps run in the plugin host process (isolation threads, the default): its CPU
 * time in the window counts as quark's, and its peak RSS is added to this process's.
 */
function withHost(timing, before) {
  const after = hostUsage();
  return { ...timing, cpuSeconds: timing.cpuSeconds + after.cpuSeconds - before.cpuSeconds, hostRssMb: after.peakRssMb };
}

let result = {};
if (mode === 'batch') {
  await runBatch(makeBatches(20)); // warm-up
  const input = makeBatches(count);
  const host = hostUsage();
  const from = process.hrtime.bigint();
  const stop = startClock();
  const perCarrier = await runBatch(input);
  // the timed window on the monotonic clock (µs) of .cpuprofile timestamps: bench/profile-summary.mjs --from/--to
  process.stderr.write(`quark: window ${from / 1000n} ${process.hrtime.bigint() / 1000n}\n`);
  result = { ...withHost(stop(), host), perCarrier };
} else {
  await runSmall(makeSmall(50)); // warm-up
  const input = makeSmall(count);
  const host = hostUsage();
  const stop = startClock();
  await runSmall(input);
  result = withHost(stop(), host);
}
const { seconds, cpuSeconds, hostRssMb, perCarrier } = result;
process.stdout.write(JSON.stringify({ seconds, cpuSeconds, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024 + hostRssMb), ...(perCarrier ? { perCarrier } : {}) }) + '\n');
await rt.close();
process.exit(0);
