#!/usr/bin/env node
// bench/isolation: what each isolation mode costs, in one run: "threads-only" (plugin code and
// pure steps in worker threads of the runtime), "threads" (the atom default: plugin code
// there, pure steps in a plugin host process) and "process" (the cloud default: both in the
// plugin host under Node's permission model). One runtime per mode in this process
// (bench/engine/home.mjs: the in-process facade of dist/runtime/index.js, what the API calls,
// minus HTTP, on a fresh home in /tmp, log level silent, default limits, the only difference
// is config.json's isolation), with the fixture plugins hmac-signer and process-kit. Rounds
// rotate the modes' order; each round runs, in each mode:
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
// cost = a mode's median / the first mode's (for throughput: first / mode, so > 1 is the cost
// either way). Peak RSS: this process's VmHWM, and each plugin host's.
//   npm run build
//   node bench/isolation.mjs [--modes threads-only,threads,process] [--rounds 3] [--n 200] [--docs 100000] [--callers 8] [--seconds 5] [--write bench/RESULTS.md]
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeDocuments } from './engine/documents.mjs';
import { benchRuntime, definition, loadRuntime } from './engine/home.mjs';
import { prependResults } from './results.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { modes: { type: 'string', default: 'threads-only,threads,process' }, rounds: { type: 'string', default: '3' }, n: { type: 'string', default: '200' }, docs: { type: 'string', default: '100000' }, callers: { type: 'string', default: '8' }, seconds: { type: 'string', default: '5' }, write: { type: 'string' } } });
const rounds = Number(values.rounds);
const n = Number(values.n);
const docs = Number(values.docs);
const callers = Number(values.callers);
const seconds = Number(values.seconds);
const runtimeModule = await loadRuntime(root);
const fixtures = join(root, 'test/fixtures/plugins');
// bench/engine's flow (engine/home.mjs), under an id of its own
const engineFlow = { ...definition, id: 'bench-isolation', name: 'bench/isolation' };
const modes = values.modes.split(',');
const uptime = () => execFileSync('uptime', { encoding: 'utf8' }).trim();
const loadBefore = uptime();
const wallStart = performance.now();

async function runtimeIn(isolation) {
  const plugins = { paths: [join(fixtures, 'hmac-signer'), join(fixtures, 'process-kit')] };
  const { rt, caller } = await benchRuntime(runtimeModule, { prefix: `quark-bench-isolation-${isolation}-`, configure: (config) => ({ ...config, isolation, plugins }), flow: engineFlow });
  await rt.connections.create(caller, { name: 'signer', connector: 'hmac-signer', config: { signingKey: 'bench-signing-key-0123456789' } });
  await rt.connections.create(caller, { name: 'kit', connector: 'process-kit', config: {} });
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
  const order = subjects.map((_, i) => subjects[(i + round) % subjects.length]);
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
const hosts = descendants(process.pid).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('host-main.js'));
const rss = { self: hwm(process.pid), hosts: hosts.map(hwm) };
const wallSeconds = (performance.now() - wallStart) / 1000;
const loadAfter = uptime();
for (const s of subjects) await s.rt.close();

const quantile = (list, q) => {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};
const median = (list) => quantile(list, 0.5);
const fmt = (x, digits = 2) => (x >= 100 ? x.toFixed(0) : x.toFixed(digits));
const [base] = subjects;
const rows = [
  ['Test Connection (hmac-signer), ms', 'test', false],
  ['operation (process-kit echo, 1 KiB), ms', 'operation', false],
  [`operations/s, ${callers} concurrent callers for ${seconds} s`, 'throughput', true],
  [`engine: ${docs.toLocaleString('en')} documents, s`, 'engine', false],
];
const table = rows.map(([label, key, higherIsBetter]) => {
  const scale = key === 'engine' ? 1 / 1000 : 1;
  const cells = subjects.map((s) => {
    const m = median(s.samples[key]) * scale;
    const b = median(base.samples[key]) * scale;
    const p90 = higherIsBetter ? '–' : fmt(quantile(s.samples[key], 0.9) * scale);
    const cost = higherIsBetter ? b / m : m / b;
    return `${fmt(m)} | ${p90} | ${cost.toFixed(2)}`;
  });
  const extra = key === 'engine' ? ` (documents/s: ${subjects.map((s) => fmt(docs / (median(s.samples[key]) * scale), 0)).join(' / ')})` : '';
  return `| ${label}${extra} | ${cells.join(' | ')} |`;
});
const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
const text = `## ${new Date().toISOString().slice(0, 10)} — isolation: ${subjects.map((s) => s.isolation).join(' vs ')}, same run (code at ${commit}; ${rounds} round(s))

Machine: ${cpus().length} × ${cpus()[0]?.model.split(' ').slice(0, 2).join(' ')}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}; shared with other engineers' builds and tests (\`uptime\` before: ${loadBefore}; after: ${loadAfter}), so compare the ratios, which come from the same run. One runtime per mode in the bench's process (bench/engine/home.mjs), fresh homes in /tmp, default limits (2 worker threads), only \`isolation\` differs. Per round and mode: ${n} sequential Test Connections, ${n} sequential operations, ${callers} concurrent callers for ${seconds} s, one engine execution; modes' order rotated per round. ms = median and p90 of every call of every round; cost = the mode / ${base.isolation} (throughput: ${base.isolation} / the mode). Peak RSS: the bench process ${fmt(rss.self, 0)} MB (every runtime's main thread and the in-process workers), the plugin hosts ${rss.hosts.map((x) => `${fmt(x, 0)} MB`).join(', ') || 'none'}. Wall ${fmt(wallSeconds, 0)} s.

| path | ${subjects.map((s) => `${s.isolation} | p90 | cost`).join(' | ')} |
| --- | ${subjects.map(() => '---: | ---: | ---:').join(' | ')} |
${table.join('\n')}

Test Connection and operation: in process each call is one task relayed runtime → host (IPC, structured clone) → worker and back, on top of the same worker hop as in the threads modes (threads and threads-only run plugin code alike). Engine: in threads and process every chunk of up to 2,000 documents crosses the IPC channel both ways (its bodies copied, not transferred as between threads); in threads-only it stays in the runtime's threads.
`;
console.log(text);
if (values.write) prependResults(values.write, text);
process.exit(0);
