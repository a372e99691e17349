#!/usr/bin/env node
// bench/latency: how long one small execution takes through the HTTP API, and how many a
// runtime answers per second under load. Starts a runtime as a child process (`quark start`
// on a free loopback port, a temp home made by `quark init`, the default config: log level
// info, 2 worker threads, limits.maxRunningExecutions 4, maxQueuedExecutions 100), deploys
//
//   start (none: one empty document) → map → props (set-properties) → big (decision) ─┬─ end
//                                                                                       └─ end
//
// and then, with undici over keep-alive connections:
//   (a) sequential: <warmup> executions, then <runs> more, one at a time, each
//       POST /api/v1/executions {"process", "wait": true}; the latency of each is the time
//       from sending the request to the last byte of the answer (the final execution view);
//   (b) load: <concurrency> callers, each sending the same request again as soon as its
//       answer arrived, for <seconds> s; runs/s = executions answered 200 per second; a full
//       queue answers 429 QUARK_ERR_EXECUTION_QUEUE_FULL (counted, not retried).
// Reports p50, p90, p99 and max (ms), the runtime's own durationMs (from the answers: from
// the record's startedAt to endedAt, ms resolution), the runtime process's CPU (cores busy)
// and peak RSS (VmHWM), and the bench process's own CPU (it shares the cores). Targets from the issue: p50 under 2 ms, p99 under 10 ms, warm pool.
//   npm run build
//   node bench/latency.mjs [--runs 1000] [--warmup 50] [--concurrency 50] [--seconds 10]
//                          [--load-warmup 2] [--log-level info] [--home-dir DIR] [--profile DIR] [--write bench/RESULTS.md]
//   --home-dir DIR  where the temp home is made (default: the OS temp directory)
//   --store URL     keep the records in PostgreSQL (an empty database; quark init --store URL)
//   --dist DIR      run the build in DIR (a checkout's dist/, e.g. an older commit's, for an
//                   A/B in the same minutes; default: this checkout's dist/); the "code at"
//                   commit is then DIR's checkout's
//   --profile DIR   the runtime runs with --cpu-prof --cpu-prof-dir DIR (one .cpuprofile per
//                   thread, written when it stops); the windows of (a) and (b) are printed on
//                   stderr in µs of the monotonic clock, for bench/profile-summary.mjs --from/--to
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { prependResults } from './results.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const { values } = parseArgs({
  options: {
    dist: { type: 'string' },
    runs: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '50' },
    seconds: { type: 'string', default: '10' },
    'load-warmup': { type: 'string', default: '2' },
    'log-level': { type: 'string' },
    'home-dir': { type: 'string' },
    profile: { type: 'string' },
    write: { type: 'string' },
    store: { type: 'string' },
  },
});
const runs = Number(values.runs);
const warmup = Number(values.warmup);
const concurrency = Number(values.concurrency);
const seconds = Number(values.seconds);
const loadWarmup = Number(values['load-warmup']);
if (![runs, warmup, concurrency, seconds, loadWarmup].every((n) => Number.isInteger(n) && n >= 0) || runs < 1 || concurrency < 1) {
  throw new Error('usage: latency.mjs [--runs N] [--warmup N] [--concurrency N] [--seconds N] [--load-warmup S] [--log-level L] [--profile DIR] [--store URL] [--dist DIR] [--write FILE]');
}
const dist = values.dist ?? join(root, 'dist');
const cli = join(dist, 'runtime/cli/main.js');
if (!existsSync(cli)) throw new Error(`${cli} is missing: npm run build`);

export const definition = {
  id: 'bench-latency',
  name: 'bench/latency',
  start: { kind: 'none', next: 'map' },
  steps: [
    { id: 'map', kind: 'map', expression: '{"greeting": "hello", "n": 42, "tags": ["a", "b"]}', next: 'props' },
    { id: 'props', kind: 'set-properties', document: { greeting: { $expr: 'greeting' } }, next: 'big' },
    { id: 'big', kind: 'decision', condition: 'n > 10' },
  ],
};

const nowUs = () => process.hrtime.bigint() / 1000n;
const home = mkdtempSync(join(values['home-dir'] ?? tmpdir(), 'quark-bench-latency-'));
let child;
const cleanup = () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  rmSync(home, { recursive: true, force: true });
};
process.on('exit', cleanup);



const storeArgs = values.store ? ['--store', values.store] : [];
const init = JSON.parse(execFileSync(process.execPath, [cli, '--json', 'init', '--home', join(home, 'home'), ...storeArgs], { encoding: 'utf8' }));
const token = init.ownerToken;
if (typeof token !== 'string') throw new Error(`quark init printed no owner token: ${JSON.stringify(init)}`);

const nodeArgs = values.profile ? ['--cpu-prof', '--cpu-prof-dir', values.profile] : [];
child = spawn(process.execPath, [...nodeArgs, cli, 'start', '--home', join(home, 'home'), '--port', '0', ...(values['log-level'] ? ['--log-level', values['log-level']] : [])], { stdio: ['ignore', 'ignore', 'pipe'] });
let stderr = '';
const url = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`the runtime did not start in 30 s:\n${stderr}`)), 30_000);
  child.stderr.setEncoding('utf8').on('data', (chunk) => {
    stderr += chunk;
    const match = /listening on (http:\/\/[^\s]+)/.exec(stderr);
    if (match) {
      clearTimeout(timer);
      resolve(match[1]);
    }
  });
  child.on('exit', (code) => reject(new Error(`the runtime exited (${code}):\n${stderr}`)));
});
child.stderr.resume();

const agent = new Agent({ connections: concurrency, keepAliveTimeout: 60_000, pipelining: 1 });
const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
async function call(method, path, body) {
  const response = await request(`${url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), dispatcher: agent });
  const text = await response.body.text();
  return { status: response.statusCode, body: text ? JSON.parse(text) : undefined };
}

const deployed = await call('POST', '/api/v1/deployments', definition);
if (deployed.status !== 201) throw new Error(`deploy answered ${deployed.status}: ${JSON.stringify(deployed.body)}`);

const runBody = JSON.stringify({ process: definition.id, wait: true });
/** One execution: its latency in ms, status code and the view's durationMs. */
async function execute() {
  const t0 = performance.now();
  const response = await request(`${url}/api/v1/executions`, { method: 'POST', headers, body: runBody, dispatcher: agent });
  const text = await response.body.text();
  const ms = performance.now() - t0;
  if (response.statusCode === 200) {
    const view = JSON.parse(text);
    if (view.status !== 'complete' || view.documentsOut !== 1) throw new Error(`an execution ended ${view.status}: ${text.slice(0, 500)}`);
    return { ms, status: 200, durationMs: view.durationMs };
  }
  if (response.statusCode === 429) return { ms, status: 429 };
  throw new Error(`POST /api/v1/executions answered ${response.statusCode}: ${text.slice(0, 500)}`);
}

// the runtime's CPU seconds (all threads, and its child processes: the plugin host that runs
// pure steps in isolation "threads") and peak RSS, from /proc
const clockTicks = 100; // USER_HZ on Linux
function processCpu(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks; // utime + stime (fields 14, 15)
}
/** A process and its descendants alive now (their children's pids, per thread, from /proc). */
function processTree(pid) {
  let children = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) children.push(...readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
  } catch {
    children = []; // it has just ended
  }
  return [pid, ...children.flatMap(processTree)];
}
function cpuSeconds() {
  let total = 0;
  for (const pid of processTree(child.pid)) {
    try {
      total += processCpu(pid);
    } catch {
      /* ended between the listing and the read */
    }
  }
  return total;
}
const peakRssMb = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024;

const clientBusy = (from, wall) => {
  const used = process.cpuUsage(from);
  return (used.user + used.system) / 1e6 / wall;
};
const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
const stats = (list) => {
  const s = [...list].sort((a, b) => a - b);
  return { p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), max: s[s.length - 1], mean: s.reduce((a, b) => a + b, 0) / s.length };
};

// (a) sequential
for (let i = 0; i < warmup; i++) await execute();
const seqFrom = nowUs();
const seqCpu = cpuSeconds();
const seqClient = process.cpuUsage();
const seqStart = performance.now();
const sequential = [];
const sequentialRuntime = [];
for (let i = 0; i < runs; i++) {
  const r = await execute();
  sequential.push(r.ms);
  sequentialRuntime.push(r.durationMs);
}
const seqSeconds = (performance.now() - seqStart) / 1000;
const seqBusy = (cpuSeconds() - seqCpu) / seqSeconds;
const seqClientBusy = clientBusy(seqClient, seqSeconds);
const seqTo = nowUs();
process.stderr.write(`latency: window sequential ${seqFrom} ${seqTo}\n`);

// (b) load, after a warm-up under load (<load-warmup> s, not counted): the pools' second
// worker starts when two tasks wait at once, which the sequential phase never makes, and
// its start (module loading, ~1 s of CPU) would land in the window of whichever build
// starts it then; the targets are for a warm pool
async function callers(until, onAnswer) {
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) onAnswer(await execute());
  }));
}
await callers(performance.now() + loadWarmup * 1000, () => {});
const loadFrom = nowUs();
const loadCpu = cpuSeconds();
const loadClient = process.cpuUsage();
const loadStart = performance.now();
const deadline = loadStart + seconds * 1000;
const underLoad = [];
const loadRuntime = [];
let refused = 0;
await callers(deadline, (r) => {
  if (r.status === 429) refused++;
  else {
    underLoad.push(r.ms);
    loadRuntime.push(r.durationMs);
  }
});
const loadSeconds = (performance.now() - loadStart) / 1000;
const loadBusy = (cpuSeconds() - loadCpu) / loadSeconds;
const loadClientBusy = clientBusy(loadClient, loadSeconds);
const loadTo = nowUs();
process.stderr.write(`latency: window load ${loadFrom} ${loadTo}\n`);
const rss = peakRssMb();

await agent.close();
child.kill('SIGTERM');
await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on('exit', resolve)));

const a = stats(sequential);
const ar = stats(sequentialRuntime);
const b = stats(underLoad);
const br = stats(loadRuntime);
const f = (x) => x.toFixed(2);
let commit = 'unknown commit';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: dirname(dist), encoding: 'utf8' }).trim();
} catch {
  /* not a git checkout */
}
const meets = (value, target) => (value < target ? 'met' : 'missed');
const lines = [
  `## ${new Date().toISOString().slice(0, 10)} — latency: one small execution through the HTTP API, store ${init.store ?? 'sqlite'} (code at ${commit})`,
  '',
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}. A runtime started with \`quark start --port 0\` on a fresh home in ${dirname(home)} (default config${values['log-level'] ? `, log level ${values['log-level']}` : ', log level info'}: 2 worker threads, at most 4 executions running and 100 queued), a process start (none) → map → set-properties → decision, both paths ending; each call is \`POST /api/v1/executions {"process", "wait": true}\` over keep-alive connections (undici), answered 200 with the final execution view (one output document, base64). Latency = request sent to the last byte of the answer, in the bench's process; "in the runtime" = the view's durationMs (startedAt to endedAt, millisecond timestamps). Sequential: ${warmup} warm-up calls, then ${runs} one after another. Load: ${concurrency} callers each calling again as soon as answered, for ${loadWarmup} s not counted (the pools' workers started), then for ${seconds} s. Runtime cores busy = the CPU time of the runtime process (all threads) and of its child processes (the plugin host) / wall time, client cores busy = the same for the bench's own process (both share the machine's cores); peak RSS = the runtime's VmHWM.`,
  '',
  '| phase | calls | calls/s | p50 ms | p90 ms | p99 ms | max ms | in the runtime p50 / p99 ms | 429 (queue full) | runtime cores busy | runtime CPU ms per call | client cores busy |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  `| sequential | ${runs} | ${Math.round(runs / seqSeconds)} | ${f(a.p50)} | ${f(a.p90)} | ${f(a.p99)} | ${f(a.max)} | ${ar.p50} / ${ar.p99} | 0 | ${seqBusy.toFixed(2)} | ${f((seqBusy * seqSeconds * 1000) / runs)} | ${seqClientBusy.toFixed(2)} |`,
  `| ${concurrency} concurrent callers, ${seconds} s | ${underLoad.length} | ${Math.round(underLoad.length / loadSeconds)} | ${f(b.p50)} | ${f(b.p90)} | ${f(b.p99)} | ${f(b.max)} | ${br.p50} / ${br.p99} | ${refused} | ${loadBusy.toFixed(2)} | ${f((loadBusy * loadSeconds * 1000) / Math.max(1, underLoad.length))} | ${loadClientBusy.toFixed(2)} |`,
  '',
  `Runtime peak RSS: ${Math.round(rss)} MB. Targets (sequential, warm pool): p50 under 2 ms (${f(a.p50)} ms: ${meets(a.p50, 2)}); p99 under 10 ms (${f(a.p99)} ms: ${meets(a.p99, 10)}).`,
  '',
];
const text = lines.join('\n');
console.log(text);
if (values.write) prependResults(values.write, text);
