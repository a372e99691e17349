// Failover time of a molecule: kill -9 of the node that runs an execution → the execution
// accounted for (aborted with QUARK_ERR_EXECUTION_NODE_LOST) as another node's API shows
// it, over --trials trials, with the test timings of test/helpers/molecule.ts (heartbeat
// 1 s, nodeLostMs 5 s, reconcile 1 s) or the defaults (--defaults). Real `quark start`
// processes on a fresh database and BullMQ prefix per trial (startMolecule of the test
// helpers, built; bench/molecule-setup.mjs).
//
//   npm run build && source /tmp/svc/services.env && node bench/failover.mjs --trials 10
import { load, median, molecule, option, quark, scope } from './molecule-setup.mjs';

const trials = Number(option('--trials', '10'));
const defaults = process.argv.includes('--defaults');
const { startMolecule, counting, tagged, testTimings } = molecule;
const { until } = quark;
const defaultTimings = { heartbeatMs: 5000, lockMs: 15000, stalledCheckMs: 10000, reconcileMs: 10000, nodeLostMs: 20000 };

async function trial() {
  const t = scope();
  try {
    const { nodes, api, start } = await startMolecule(t, 2, { start: [1], ...(defaults ? { config: () => ({ cluster: defaultTimings }) } : {}) });
    const [doomed, onDoomed] = [nodes[1], api(1)];
    await onDoomed('POST', '/deployments', counting('long', 600_000));
    const id = (await onDoomed('POST', '/executions', { process: 'long', ...tagged('x') })).body.id;
    await until('it runs', async () => ((await onDoomed('GET', `/executions/${id}`)).body.status === 'in-process' ? true : undefined));
    await start(0);
    const onSurvivor = api(0);
    const killedAt = Date.now();
    doomed.child.kill('SIGKILL');
    const view = await until('accounted for', async () => {
      const v = (await onSurvivor('GET', `/executions/${id}`)).body;
      return v.status !== 'in-process' ? v : undefined;
    }, 300_000);
    return { ms: Date.now() - killedAt, code: view.errorCode };
  } finally {
    await t.end();
  }
}

const before = load();
const results = [];
for (let i = 0; i < trials; i++) {
  const r = await trial();
  results.push(r);
  console.log(`trial ${i + 1}: ${r.ms} ms (${r.code})`);
}
const sorted = results.map((r) => r.ms).sort((a, b) => a - b);
const timings = defaults ? 'defaults (heartbeat 5 s, nodeLostMs 20 s, reconcile 10 s)' : `test timings (heartbeat ${testTimings.heartbeatMs} ms, nodeLostMs ${testTimings.nodeLostMs} ms, reconcile ${testTimings.reconcileMs} ms)`;
console.log(`failover, ${timings}: ${trials} trials, median ${median(sorted)} ms, min ${sorted[0]} ms, max ${sorted[sorted.length - 1]} ms; load average before ${before}, after ${load()}`);
process.exit(0);
