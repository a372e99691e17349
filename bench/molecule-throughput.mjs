// Executions/s of a molecule of 1, 2 and 3 nodes: --n executions (200) of one step with
// --io ms (100) of simulated I/O (counter-kit's count: it sleeps, then POSTs its document
// to a local counter), started through the API of every node in turn, --concurrency
// starts in flight (20); the time is from the first start to the last run's side effect
// at the counter, and every execution is then checked complete, each counted once. Node
// counts are interleaved in each of --rounds rounds (3), on a fresh database and BullMQ
// prefix each, with the test timings and each node's default slots
// (limits.maxRunningExecutions 4, workerThreads 1; maxQueuedExecutions raised to 10,000 so
// that no start is refused); medians, with the load average.
//
//   npm run build && source /tmp/svc/services.env && node bench/molecule-throughput.mjs --rounds 3
import { load, median, molecule, option, quark, scope } from './molecule-setup.mjs';

const n = Number(option('--n', '200'));
const io = Number(option('--io', '100'));
const rounds = Number(option('--rounds', '3'));
const concurrency = Number(option('--concurrency', '20'));
const sizes = option('--nodes', '1,2,3').split(',').map(Number);
const { startMolecule, counting, tagged, ended } = molecule;
const { until } = quark;

const counted = (counter) => [...counter.counts.values()].reduce((a, b) => a + b, 0);

async function trial(size, round) {
  const t = scope();
  try {
    const { api, counter, nodeIds } = await startMolecule(t, size, { limits: { maxQueuedExecutions: 10_000 } });
    await api(0)('POST', '/deployments', counting('io', io));
    await nodeIds();
    const ids = [];
    const startedAt = Date.now();
    let next = 0;
    const starter = async () => {
      while (next < n) {
        const i = next++;
        const answer = await api(i % size)('POST', '/executions', { process: 'io', ...tagged(`r${round}-${i}`) });
        if (answer.status !== 202) throw new Error(`start ${i}: ${answer.status} ${JSON.stringify(answer.body)}`);
        ids.push(answer.body.id);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, starter));
    const startsMs = Date.now() - startedAt;
    await until('every run counted', () => (counted(counter) >= n ? true : undefined), 600_000);
    const ms = Date.now() - startedAt;
    const views = await Promise.all(ids.map((id) => ended(api(0), id)));
    const bad = views.filter((v) => v.status !== 'complete').length + [...counter.counts.values()].filter((c) => c !== 1).length;
    if (bad > 0) throw new Error(`${bad} executions not complete exactly once`);
    const owners = new Set(views.map((v) => v.owner)).size;
    return { ms, startsMs, perSecond: (n * 1000) / ms, owners };
  } finally {
    await t.end();
  }
}

// a failed trial still tears down its nodes, database and keys
process.on('unhandledRejection', (error) => {
  console.error(error);
  process.exitCode = 1;
});
const results = new Map(sizes.map((s) => [s, []]));
const loads = [load()];
for (let round = 0; round < rounds; round++) {
  for (const size of sizes) {
    const r = await trial(size, round);
    results.get(size).push(r);
    loads.push(load());
    console.log(`round ${round + 1}, ${size} node(s): ${r.ms} ms (starts ${r.startsMs} ms), ${r.perSecond.toFixed(1)} executions/s, on ${r.owners} node(s); load ${loads.at(-1)}`);
  }
}
console.log(`\n${n} executions of ${io} ms simulated I/O, ${rounds} rounds; load average (1, 5, 15 min) before ${loads[0]}, after ${loads.at(-1)}`);
console.log('| nodes | median executions/s | min | max | median ms | median ms of the starts |');
console.log('| ---: | ---: | ---: | ---: | ---: | ---: |');
for (const size of sizes) {
  const rs = results.get(size);
  const per = rs.map((r) => r.perSecond);
  console.log(`| ${size} | ${median(per).toFixed(1)} | ${Math.min(...per).toFixed(1)} | ${Math.max(...per).toFixed(1)} | ${median(rs.map((r) => r.ms))} | ${median(rs.map((r) => r.startsMs))} |`);
}
process.exit(0);
