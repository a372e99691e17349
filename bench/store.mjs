#!/usr/bin/env node
// bench/store: the SQLite store against the PostgreSQL store on the runtime's hot paths, and
// the cost of durable queueing against the in-memory queue it replaced, in one run.
//
// (a) Hot paths, through the in-process facade of dist/runtime/index.js (what the API calls,
//     minus HTTP), one runtime per store in this process, each on a fresh home (log level
//     silent, default limits), called one at a time:
//       execution  executions.start({process, wait: true}) of a small process, start (none)
//                  → map → set-properties → decision: from the call to its final view
//                  (record inserted in-process, log lines, the end written)
//       deploy     deployments.deploy() of that definition again (a new version: allocated,
//                  recorded, made active)
//       list       connections.list() of an account with 20 connections
// (b) Queueing, at the store: one execution record with one 1 KiB input document, through
//       durable    createStoreQueue (runtime/processes/queue.ts): enqueue (record and input
//                  committed in one transaction) → take → documents → release (inputs
//                  dropped) → update to in-process
//       in memory  what the code before durable queueing did: insert the record (queued),
//                  keep the document in memory → take it from memory → update to in-process
//       durable, 100 KiB  the durable path with a 100 KiB body (above 64 KiB: a file under
//                  work/queued/, moved into the execution's folder, removed)
// Every round runs each store's every operation <n> times, the stores' order rotated per
// round; medians (and p90) are over every call of every round; ratios are PostgreSQL's
// median / SQLite's, and a queue path's median / the in-memory path's on the same store.
//   npm run build
//   node bench/store.mjs --postgres URL [--rounds 5] [--n 200] [--write bench/RESULTS.md]
//   --postgres URL  a server where this bench may create (and drops) two databases
//                   (e.g. QUARK_TEST_POSTGRES_URL of ../shared/tools/services)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { prependResults } from './results.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { postgres: { type: 'string' }, rounds: { type: 'string', default: '5' }, n: { type: 'string', default: '200' }, write: { type: 'string' } } });
const rounds = Number(values.rounds);
const n = Number(values.n);
if (!values.postgres || !Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(n) || n < 1) {
  throw new Error('usage: store.mjs --postgres URL [--rounds N] [--n N] [--write FILE]');
}
const load = async (path) => import(pathToFileURL(join(root, 'dist', path)).href);
const { createRuntime, initHome, createSchemaRegistry } = await load('runtime/index.js');
const { openSqliteStore } = await load('runtime/store/sqlite-store.js');
const { openPostgresStore } = await load('runtime/store/postgres-store.js');
const { createStoreQueue } = await load('runtime/processes/queue.js');

const definition = {
  id: 'bench-store',
  name: 'bench/store',
  start: { kind: 'none', next: 'map' },
  steps: [
    { id: 'map', kind: 'map', expression: '{"greeting": "hello", "n": 42, "tags": ["a", "b"]}', next: 'props' },
    { id: 'props', kind: 'set-properties', document: { greeting: { $expr: 'greeting' } }, next: 'big' },
    { id: 'big', kind: 'decision', condition: 'n > 10' },
  ],
};

const scratch = mkdtempSync(join(tmpdir(), 'quark-bench-store-'));
const databases = [];
async function admin(sql) {
  const client = new pg.Client({ connectionString: values.postgres });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
/** A fresh database on the server; its URL. */
async function freshDatabase() {
  const name = `quark_bench_${randomBytes(4).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  databases.push(name);
  const url = new URL(values.postgres);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A runtime on a fresh home with `store`, the process deployed and 20 connections. */
async function runtimeOn(kind) {
  const home = join(scratch, `home-${kind}`);
  const store = kind === 'postgres' ? { kind: 'postgres', url: await freshDatabase() } : undefined;
  const { ownerToken } = await initHome({ home, ...(store ? { store } : {}) }, createSchemaRegistry());
  const rt = await createRuntime({ home, logLevel: 'silent' });
  const caller = await rt.authenticate(ownerToken);
  await rt.deployments.deploy(caller, definition);
  for (let i = 0; i < 20; i++) await rt.connections.create(caller, { name: `files-${String(i).padStart(2, '0')}`, connector: 'local-files', config: { folder: `/tmp/bench-${i}`, createFolder: true } });
  return { rt, caller };
}

/** A store with one account, and its work folder, for the queue paths. */
async function storeOn(kind) {
  const store = kind === 'postgres' ? await openPostgresStore({ url: await freshDatabase(), poolSize: 10 }) : openSqliteStore(join(scratch, `queue-${kind}.db`));
  await store.accounts.insert({ id: 'acc_bench', name: 'bench', relation: 'owner', createdAt: new Date().toISOString() });
  const workRoot = join(scratch, `work-${kind}`);
  mkdirSync(workRoot, { recursive: true });
  return { store, workRoot, queue: createStoreQueue({ store, workRoot }) };
}

let seq = 0;
function record() {
  seq += 1;
  return {
    id: `exe_bench${String(seq).padStart(8, '0')}`, accountId: 'acc_bench', processId: 'bench-store', version: 1, trigger: 'api', status: 'queued',
    queuedAt: new Date().toISOString(), startedAt: null, endedAt: null, errorCode: null, errorMessage: null, steps: {},
    documentsIn: 1, documentsOut: 0, documentsFailed: 0, warnings: 0, owner: null, attempt: 1,
  };
}
const documentOf = (bytes) => ({ properties: { 'document.name': 'in.json' }, body: { kind: 'inline', bytes: new Uint8Array(randomBytes(bytes)) } });
const small = documentOf(1024);
const large = documentOf(100 * 1024);
const running = (r) => ({ ...r, status: 'in-process', startedAt: new Date().toISOString(), owner: 'node_bench' });

async function durable(q, document) {
  const r = record();
  await q.queue.enqueue(r, [document]);
  const taken = await q.queue.take();
  await q.queue.documents(taken.id, join(q.workRoot, taken.id));
  await q.queue.release(taken.id);
  await q.store.executions.update(running(taken));
  rmSync(join(q.workRoot, taken.id), { recursive: true, force: true });
}
/** The queue before durable queueing: the record in the store, the documents in memory. */
async function inMemory(q, memory) {
  const r = record();
  await q.store.executions.insert(r);
  memory.push({ record: r, documents: [small] });
  const taken = memory.shift();
  await q.store.executions.update(running(taken.record));
}

const kinds = ['sqlite', 'postgres'];
const subjects = {};
for (const kind of kinds) subjects[kind] = { ...(await runtimeOn(kind)), q: await storeOn(kind), memory: [] };
const operations = {
  execution: (s) => s.rt.executions.start(s.caller, { process: definition.id, trigger: 'api' }, { wait: true }),
  deploy: (s) => s.rt.deployments.deploy(s.caller, definition),
  'connections.list (20)': (s) => s.rt.connections.list(s.caller),
  'queue: in memory (before)': (s) => inMemory(s.q, s.memory),
  'queue: durable, 1 KiB inline': (s) => durable(s.q, small),
  'queue: durable, 100 KiB file': (s) => durable(s.q, large),
};
const samples = Object.fromEntries(kinds.map((k) => [k, Object.fromEntries(Object.keys(operations).map((o) => [o, []]))]));

// warm-up: each operation a few times on each store
for (const kind of kinds) for (const op of Object.values(operations)) for (let i = 0; i < 20; i++) await op(subjects[kind]);
const uptimeBefore = execFileSync('uptime', { encoding: 'utf8' }).trim();
const cpu0 = process.cpuUsage();
const wall0 = performance.now();
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? kinds : [...kinds].reverse();
  for (const kind of order) {
    for (const [name, op] of Object.entries(operations)) {
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await op(subjects[kind]);
        samples[kind][name].push(performance.now() - t0);
      }
    }
  }
}
const wallMs = performance.now() - wall0;
const cpu = process.cpuUsage(cpu0);

const quantile = (xs, q) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};
const ms = (x) => (x < 1 ? x.toFixed(3) : x.toFixed(2));
const median = (kind, name) => quantile(samples[kind][name], 0.5);
const rows = Object.keys(operations).map((name) => {
  const [s, p] = [median('sqlite', name), median('postgres', name)];
  const vsMemory = (kind) => (name.startsWith('queue: durable') ? (median(kind, name) / median(kind, 'queue: in memory (before)')).toFixed(2) : '–');
  return `| ${name} | ${ms(s)} | ${ms(quantile(samples.sqlite[name], 0.9))} | ${ms(p)} | ${ms(quantile(samples.postgres[name], 0.9))} | ${(p / s).toFixed(2)} | ${vsMemory('sqlite')} | ${vsMemory('postgres')} |`;
});

for (const kind of kinds) {
  await subjects[kind].rt.close();
  await subjects[kind].q.store.close();
}
for (const name of databases) await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
rmSync(scratch, { recursive: true, force: true });

let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
} catch {
  /* not a checkout */
}
const uptime = execFileSync('uptime', { encoding: 'utf8' }).trim();
const server = new URL(values.postgres);
const text = `## ${new Date().toISOString().slice(0, 10)} — store: SQLite vs PostgreSQL on the hot paths, and durable vs in-memory queueing (code at ${commit}; ${rounds} round(s) of ${n} calls)

Machine: ${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}; shared with other engineers' builds and tests (\`uptime\` before the run: ${uptimeBefore}; after: ${uptime}), so absolute numbers move between runs — compare the ratios, which come from the same run. PostgreSQL 15 on loopback (${server.hostname}:${server.port}, ../shared/tools/services: default settings, fsync on), a fresh database per store, pool of 10; SQLite: the home's quark.db (WAL, synchronous NORMAL). Both runtimes in the bench's process (log level silent, default limits), called one at a time after 20 warm-up calls of each operation; each round runs every operation ${n} times on each store, the stores' order rotated per round. ms = median [p90] of every call; PG/SQLite = the medians' ratio; vs in memory = a durable queue path's median / the in-memory path's on the same store. Wall ${(wallMs / 1000).toFixed(1)} s, the bench process ${((cpu.user + cpu.system) / 1000 / wallMs).toFixed(2)} cores busy (the PostgreSQL server's own CPU is not counted).

| operation | SQLite ms | p90 | PostgreSQL ms | p90 | PG / SQLite | vs in memory (SQLite) | vs in memory (PG) |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${rows.join('\n')}

execution = \`executions.start({wait: true})\` of start (none) → map → set-properties → decision (record inserted in-process, its log lines, its end); deploy = a new version allocated, recorded and made active; connections.list of 20. Queue paths, at the store (one record, one input): in memory = the code before durable queueing (record inserted queued, documents in memory, then updated to in-process); durable = enqueue (record and input in one transaction) → take → documents → release → in-process; 100 KiB = the same with the body as a file under work/queued/ (above 64 KiB), moved and removed.
`;
console.log(text);
if (values.write) prependResults(values.write, text);
