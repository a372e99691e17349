// Failover time of a molecule: kill -9 of the node that runs an execution → the execution
// accounted for (aborted with QUARK_ERR_EXECUTION_NODE_LOST) as another node's API shows
// it, over --trials trials, with the test timings of test/helpers/molecule.ts (heartbeat
// 1 s, nodeLostMs 5 s, reconcile 1 s) or the defaults (--defaults). Real `quark start`
// processes on a fresh database and BullMQ prefix per trial (the test helpers, built).
//
//   npm run build && source /tmp/svc/services.env && node bench/failover.mjs --trials 10
import { join } from 'node:path';
import { execSync } from 'node:child_process';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const trials = Number(option('--trials', '10'));
const defaults = args.includes('--defaults');

const dist = join(import.meta.dirname, '..', 'dist', 'test', 'helpers');
const { moleculeHomes, counterServer, counting, tagged, configure, testTimings } = await import(join(dist, 'molecule.js'));
const { startRuntime, until } = await import(join(dist, 'quark.js'));

/** The test helpers' teardown, run after each trial. */
function scope() {
  const fns = [];
  return { teardown: (fn) => fns.push(fn), async end() { for (const fn of fns.reverse()) await fn(); } };
}

async function trial() {
  const t = scope();
  try {
    const { homes, ownerToken } = await moleculeHomes(t, 2);
    if (defaults) for (const home of homes) configure(home, { cluster: { heartbeatMs: 5000, lockMs: 15000, stalledCheckMs: 10000, reconcileMs: 10000, nodeLostMs: 20000 } });
    const counter = await counterServer(t);
    const doomed = await startRuntime(t, homes[1]);
    const api = (rt) => (method, path, body) => rt.api(method, `/api/v1${path}`, ownerToken, body);
    await api(doomed)('POST', '/connections', { name: 'counter', connector: 'counter-kit', config: { url: counter.url } });
    await api(doomed)('POST', '/deployments', counting('long', 600_000));
    const id = (await api(doomed)('POST', '/executions', { process: 'long', ...tagged('x') })).body.id;
    await until('it runs', async () => ((await api(doomed)('GET', `/executions/${id}`)).body.status === 'in-process' ? true : undefined));
    const survivor = await startRuntime(t, homes[0]);
    const killedAt = Date.now();
    doomed.child.kill('SIGKILL');
    const view = await until('accounted for', async () => {
      const v = (await api(survivor)('GET', `/executions/${id}`)).body;
      return v.status !== 'in-process' ? v : undefined;
    }, 300_000);
    return { ms: Date.now() - killedAt, code: view.errorCode };
  } finally {
    await t.end();
  }
}

const load = () => execSync('uptime').toString().trim().replace(/.*load average: /, '');
const before = load();
const results = [];
for (let i = 0; i < trials; i++) {
  const r = await trial();
  results.push(r);
  console.log(`trial ${i + 1}: ${r.ms} ms (${r.code})`);
}
const sorted = results.map((r) => r.ms).sort((a, b) => a - b);
const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
const timings = defaults ? 'defaults (heartbeat 5 s, nodeLostMs 20 s, reconcile 10 s)' : `test timings (heartbeat ${testTimings.heartbeatMs} ms, nodeLostMs ${testTimings.nodeLostMs} ms, reconcile ${testTimings.reconcileMs} ms)`;
console.log(`failover, ${timings}: ${trials} trials, median ${median} ms, min ${sorted[0]} ms, max ${sorted[sorted.length - 1]} ms; load average before ${before}, after ${load()}`);
process.exit(0);
