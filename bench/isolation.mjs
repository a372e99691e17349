#!/usr/bin/env node
// bench/isolation: what isolation "process" (plugin code and pure steps in a plugin host
// process under Node's permission model) costs against the default "threads", in one run.
// Two runtimes in this process (the in-process facade of dist/runtime/index.js, what the API
// calls, minus HTTP), each on a fresh home in /tmp (log level silent, default limits, the
// only difference is config.json's isolation), with the fixture plugins hmac-signer and
// process-kit. Rounds alternate the modes' order; each round runs, in each mode:
//   test connection  <n> sequential Test Connections of an hmac-signer connection (its
//                    testConnection signs one string with the connection's secret): the
//                    runtime's path end to end (authorize, validate, decrypt, worker, result)
//   operation        <n> sequential process-kit echo operations on one 1 KiB document,
//                    then <callers> concurrent callers for <seconds> s: operations/s
//   engine           <docs> documents of bench/engine/documents.mjs (about 1 KB each)
//                    through bench/engine's flow (map → set property → decision → two ends),
//                    started with {wait: false}, polled every 5 ms until complete
// Before the first round each runtime runs each path once (workers and the host started,
// modules imported, expressions compiled). Medians and p90 over every call of every round;
// ratio = process median / threads median (for throughput: threads / process, so > 1 is
// the cost either way). Peak RSS: this process's VmHWM, and the plugin host's.
//   npm run build
//   node bench/isolation.mjs [--rounds 3] [--n 200] [--docs 100000] [--callers 8] [--seconds 5] [--write bench/RESULTS.md]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { makeDocuments } from './engine/documents.mjs';
import { prependResults } from './results.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, n: { type: 'string', default: '200' }, docs: { type: 'string', default: '100000' }, callers: { type: 'string', default: '8' }, seconds: { type: 'string', default: '5' }, write: { type: 'string' } } });
const rounds = Number(values.rounds);
const n = Number(values.n);
const docs = Number(values.docs);
const callers = Number(values.callers);
const seconds = Number(values.seconds);
const { createRuntime, initHome, createSchemaRegistry } = await import(pathToFileURL(join(root, 'dist/runtime/index.js')).href);
const fixtures = join(root, 'test/fixtures/plugins');
// bench/engine's flow (engine/quark.mjs), under an id of its own
const engineFlow = {
  id: 'bench-isolation',
  name: 'bench/isolation',
  start: { kind: 'documents', next: 'map' },
  steps: [
    { id: 'map', kind: 'map', expression: '$merge([$, {"total": $sum(items.price)}])', next: 'props' },
    { id: 'props', kind: 'set-properties', document: { customerId: { $expr: 'customer.id' } }, next: 'big' },
    { id: 'big', kind: 'decision', condition: 'total > 100', ifTrue: 'high', ifFalse: 'low' },
    { id: 'high', kind: 'set-properties', document: { path: 'high' } },
    { id: 'low', kind: 'set-properties', document: { path: 'low' } },
  ],
};
const modes = ['threads', 'process'];
const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();
const loadBefore = uptime();
const wallStart = performance.now();

async function runtimeIn(isolation) {
  const home = mkdtempSync(join(tmpdir(), `quark-bench-isolation-${isolation}-`));
  process.on('exit', () => rmSync(home, { recursive: true, force: true }));
  const { ownerToken, paths } = await initHome({ home }, createSchemaRegistry());
  const config = JSON.parse(readFileSync(paths.config, 'utf8'));
  writeFileSync(paths.config, JSON.stringify({ ...config, isolation, plugins: { paths: [join(fixtures, 'hmac-signer'), join(fixtures, 'process-kit')] } }, null, 2) + '\n', { mode: 0o600 });
  const rt = await createRuntime({ home, logLevel: 'silent' });
  const caller = await rt.authenticate(ownerToken);
  await rt.connections.create(caller, { name: 'signer', connector: 'hmac-signer', config: { signingKey: 'bench-signing-key-0123456789' } });
  await rt.connections.create(caller, { name: 'kit', connector: 'process-kit', config: {} });
  await rt.deployments.deploy(caller, engineFlow);
  return { isolation, rt, caller, samples: { test: [], operation: [], throughput: [], engine: [] } };
}

const body = Buffer.alloc(1024, 'x');

async function testConnection(s) {
  const result = await s.rt.testConnection.run(s.caller, { connection: 'signer' });
  if (result.status !== 'ok') throw new Error(`Test Connection in ${s.isolation}: ${JSON.stringify(result)}`);
}

async function operation(s) {
  const run = await s.rt.runOperation(s.caller, { connection: 'kit', operation: 'echo', parameters: { tag: 'bench' }, documents: [{ properties: {}, body }] });
  try {
    if (run.results[0]?.status !== 'success') throw new Error(`operation in ${s.isolation}: ${JSON.stringify(run.results)}`);
  } finally {
    await run.dispose();
  }
}

async function engine(s, documents) {
  const started = await s.rt.executions.start(s.caller, { process: engineFlow.id, trigger: 'api', documents }, { wait: false });
  let view = started;
  while (view.status === 'queued' || view.status === 'in-process') {
    await new Promise((resolve) => setTimeout(resolve, 5));
    view = await s.rt.executions.get(s.caller, started.id);
  }
  if (view.status !== 'complete' || view.documentsOut !== documents.length) throw new Error(`engine in ${s.isolation}: ${view.status} ${view.errorMessage ?? ''} (${view.documentsOut} out)`);
}

async function timed(fn) {
  const from = performance.now();
  await fn();
  return performance.now() - from;
}

/** Operations per second of `callers` callers, each calling again when answered, for `seconds`. */
async function throughput(s) {
  const until = performance.now() + seconds * 1000;
  let done = 0;
  const from = performance.now();
  await Promise.all(Array.from({ length: callers }, async () => {
    while (performance.now() < until) {
      await operation(s);
      done++;
    }
  }));
  return done / ((performance.now() - from) / 1000);
}

const subjects = [];
for (const mode of modes) subjects.push(await runtimeIn(mode));
const warm = makeDocuments(500, 0x3a7e).map((b) => ({ body: b }));
for (const s of subjects) {
  await testConnection(s);
  await operation(s);
  await engine(s, warm);
}
const input = makeDocuments(docs);
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? subjects : [...subjects].reverse();
  for (const s of order) {
    for (let i = 0; i < n; i++) s.samples.test.push(await timed(() => testConnection(s)));
    for (let i = 0; i < n; i++) s.samples.operation.push(await timed(() => operation(s)));
    s.samples.throughput.push(await throughput(s));
    s.samples.engine.push(await timed(() => engine(s, input.map((b) => ({ body: b })))));
  }
}

function descendants(pid) {
  const kids = readdirSync(`/proc/${pid}/task`).flatMap((task) => readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
  return [...kids, ...kids.flatMap(descendants)];
}
const hwm = (pid) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const host = descendants(process.pid).find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('host-main.js'));
const rss = { self: hwm(process.pid), host: host ? hwm(host) : 0 };
const wallSeconds = (performance.now() - wallStart) / 1000;
const loadAfter = uptime();
for (const s of subjects) await s.rt.close();

const quantile = (list, q) => {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};
const median = (list) => quantile(list, 0.5);
const fmt = (x, digits = 2) => (x >= 100 ? x.toFixed(0) : x.toFixed(digits));
const [threads, proc] = subjects;
const rows = [
  ['Test Connection (hmac-signer), ms', 'test', false],
  ['operation (process-kit echo, 1 KiB), ms', 'operation', false],
  [`operations/s, ${callers} concurrent callers for ${seconds} s`, 'throughput', true],
  [`engine: ${docs.toLocaleString('en')} documents, s`, 'engine', false],
];
const table = rows.map(([label, key, higherIsBetter]) => {
  const scale = key === 'engine' ? 1 / 1000 : 1;
  const a = median(threads.samples[key]) * scale;
  const b = median(proc.samples[key]) * scale;
  const p90 = (s) => (higherIsBetter ? '–' : fmt(quantile(s.samples[key], 0.9) * scale));
  const ratio = higherIsBetter ? a / b : b / a;
  const extra = key === 'engine' ? ` (${fmt(docs / a, 0)} vs ${fmt(docs / b, 0)} documents/s)` : '';
  return `| ${label}${extra} | ${fmt(a)} | ${p90(threads)} | ${fmt(b)} | ${p90(proc)} | ${ratio.toFixed(2)} |`;
});
const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
const text = `## ${new Date().toISOString().slice(0, 10)} — isolation: threads vs the plugin host process, same run (code at ${commit}; ${rounds} round(s))

Machine: ${cpus().length} × ${cpus()[0]?.model.split(' ').slice(0, 2).join(' ')}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}; shared with other engineers' builds and tests (\`uptime\` before: ${loadBefore}; after: ${loadAfter}), so compare the ratios, which come from the same run. Two runtimes in the bench's process, fresh homes in /tmp, default limits (2 worker threads), only \`isolation\` differs. Per round and mode: ${n} sequential Test Connections, ${n} sequential operations, ${callers} concurrent callers for ${seconds} s, one engine execution; modes' order alternated per round. ms = median and p90 of every call of every round; cost = process / threads (throughput: threads / process). Peak RSS: the bench process ${fmt(rss.self, 0)} MB (both runtimes' main threads and the threads mode's workers), the plugin host ${fmt(rss.host, 0)} MB. Wall ${fmt(wallSeconds, 0)} s.

| path | threads | p90 | process | p90 | cost |
| --- | ---: | ---: | ---: | ---: | ---: |
${table.join('\n')}

Test Connection and operation: each call is one task relayed runtime → host (IPC, structured clone) → worker and back, on top of the same worker hop as in threads. Engine: every chunk of up to 2,000 documents crosses the IPC channel both ways (its bodies copied, not transferred as between threads).
`;
console.log(text);
if (values.write) prependResults(values.write, text);
process.exit(0);
