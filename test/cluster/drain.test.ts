// Graceful drain of a molecule node: SIGTERM stops its claiming (the nodes list says
// draining), lets its running executions finish within cluster.drainMs, and hands back
// the ones still running when the grace ends (queued again as their next attempt when the
// process is retried on node loss, else aborted); meanwhile its API still answers (reads,
// cancel, wait) while /readyz answers 503 with the reason. A rolling restart of three nodes loses nothing and runs nothing twice.
import t from 'tap';
import { until } from '../helpers/quark.js';
import { counting, ended, moleculeSkip, nodeIdOf, startMolecule, tagged, type Api } from '../helpers/molecule.js';

const skip = moleculeSkip;

t.test('a rolling restart of three nodes (SIGTERM, drained, started again, one after the other) while executions run: every one complete, each once', { skip }, async (t) => {
  const { nodes, api, start, counter } = await startMolecule(t, 3, { limits: { maxRunningExecutions: 2 } });
  t.equal((await api(0)('POST', '/deployments', counting('rolling', 700))).status, 201);

  const ids: string[] = [];
  const startSome = async (via: Api, round: number, count: number) => {
    for (let i = 0; i < count; i++) {
      const answer = await via('POST', '/executions', { process: 'rolling', ...tagged(`r${round}-${i}`) });
      t.equal(answer.status, 202);
      ids.push(answer.body.id);
    }
  };
  let drainedWithRuns = 0;
  for (let i = 0; i < 3; i++) {
    const other = api((i + 1) % 3);
    const id = await until(`node ${i} in the nodes list`, () => nodeIdOf(other, nodes[i]!));
    // work for every node, the one about to stop among them
    await startSome(other, i, 10);
    const stopped = nodes[i]!.stop('SIGTERM');
    const draining = await until(`node ${i} listed as draining`, async () => ((await other('GET', '/nodes')).body as any[]).find((n) => n.id === id && n.draining));
    t.ok(draining, `node ${i} shows draining in the nodes list of another node`);
    t.equal(await stopped, 0, `node ${i} drained and exited cleanly`);
    if (/draining: this node claims nothing more/.test(nodes[i]!.output())) drainedWithRuns++;
    await startSome(other, i + 10, 4);
    await start(i);
    const back = await until(`node ${i} back, not draining`, async () => ((await other('GET', '/nodes')).body as any[]).find((n) => n.id === id && !n.draining && n.address === nodes[i]!.url));
    t.ok(back, `node ${i} restarted with its id, claiming again`);
  }
  t.ok(drainedWithRuns >= 1, `nodes stopped while they ran executions and let them finish (${drainedWithRuns} of 3)`);
  const views = await Promise.all(ids.map((id) => ended(api(0), id)));
  t.same(views.filter((v) => v.status !== 'complete').map((v) => [v.id, v.status, v.errorCode]), [], `all ${ids.length} complete`);
  const counts = [...counter.counts.entries()];
  t.equal(counts.length, ids.length, 'each one counted');
  t.same(counts.filter(([, n]) => n !== 1), [], 'each once');
});

t.test('the drain grace ends with runs still going: the retryable one is handed back and completes elsewhere as attempt 2, the other aborted', { skip }, async (t) => {
  const { nodes, api, start, counter } = await startMolecule(t, 2, { limits: { maxRunningExecutions: 2 }, start: [0], config: (i) => (i === 0 ? { cluster: { drainMs: 1000 } } : undefined) });
  const onFirst = api(0);
  t.equal((await onFirst('POST', '/deployments', counting('long-plain', 60_000))).status, 201);
  t.equal((await onFirst('POST', '/deployments', { ...counting('long-retried', 4000), options: { retryOnNodeLoss: true } })).status, 201);
  const plain = (await onFirst('POST', '/executions', { process: 'long-plain', ...tagged('plain') })).body.id as string;
  const retried = (await onFirst('POST', '/executions', { process: 'long-retried', ...tagged('retried') })).body.id as string;
  await until('both running on the first node', async () => {
    const views = await Promise.all([plain, retried].map(async (id) => (await onFirst('GET', `/executions/${id}`)).body));
    return views.every((v) => v.status === 'in-process') ? views : undefined;
  });
  await start(1);
  const onSecond = api(1);
  t.equal(await nodes[0]!.stop('SIGTERM'), 0, 'the first node exits after its grace');
  const [plainEnd, retriedEnd] = [await ended(onSecond, plain), await ended(onSecond, retried)];
  t.match(plainEnd, { status: 'aborted', errorCode: 'QUARK_ERR_EXECUTION_INTERRUPTED', attempt: 1 }, 'the one not retried: aborted at the end of the grace');
  t.match(plainEnd.errorMessage, /drain grace of 1000 ms ended/);
  t.match(retriedEnd, { status: 'complete', attempt: 2 }, 'the retryable one: handed back, complete as attempt 2');
  t.equal(counter.counts.get('retried'), 1, 'its side effect once: the first attempt was stopped before it');
  t.equal(counter.counts.get('plain'), undefined);
  t.match(nodes[0]!.output(), /handed back, queued again for another node/);
});

t.test('a draining node answers /readyz 503 with the reason, and keeps answering its API until it has handed back its work: reads, a wait start (run by another node), a cancel of its own run', { skip }, async (t) => {
  const { nodes, api, start, nodeIds, ownerToken } = await startMolecule(t, 2, { start: [0] });
  const draining = api(0);
  t.equal((await draining('POST', '/deployments', counting('long', 60_000))).status, 201);
  t.equal((await draining('POST', '/deployments', counting('quick', 100))).status, 201);
  const long = (await draining('POST', '/executions', { process: 'long', ...tagged('long') })).body.id as string;
  await until('it runs on the first node', async () => ((await draining('GET', `/executions/${long}`)).body.status === 'in-process' ? true : undefined));
  await start(1);
  const ids = await nodeIds();
  t.match(await nodes[0]!.api('GET', '/readyz'), { status: 200, body: { status: 'ready' } }, 'ready before the drain');
  const stopped = nodes[0]!.stop('SIGTERM');
  await until('the first node listed as draining', async () => ((await api(1)('GET', '/nodes')).body as any[]).find((n) => n.id === ids[0] && n.draining));

  const readiness = await nodes[0]!.api('GET', '/readyz');
  t.match(readiness, { status: 503, body: { status: 'not ready', reason: /draining/ } }, 'the draining node is not ready (load balancers stop sending it work), saying why');
  t.match(await nodes[1]!.api('GET', '/readyz'), { status: 200 }, 'the other node is ready');

  const read = await draining('GET', `/executions/${long}`);
  t.match(read, { status: 200, body: { status: 'in-process', owner: ids[0] } }, 'a read on the draining node is answered');
  t.equal((await draining('GET', '/executions?limit=5')).status, 200, 'and a list');
  const waited = await draining('POST', '/executions', { process: 'quick', wait: true, ...tagged('waited') });
  t.match(waited, { status: 200, body: { status: 'complete', owner: ids[1], noOutput: /went through the molecule's queue/ } }, 'a wait start on the draining node is answered: it ran on the other node, no output documents, saying why');
  const streamed = await fetch(`${nodes[0]!.url}/api/v1/executions`, { method: 'POST', headers: { authorization: `Bearer ${ownerToken}`, 'content-type': 'application/json', accept: 'application/x-ndjson' }, body: JSON.stringify({ process: 'quick', ...tagged('streamed') }) });
  const lines = (await streamed.text()).trim().split('\n').map((l) => JSON.parse(l));
  t.same(lines.map((l) => l.type), ['execution', 'end'], 'a streamed start on the draining node: its start and its end, no document');
  t.match(lines[1], { execution: { status: 'complete', owner: ids[1], documentsOut: 1 }, documents: { streamed: 0 } }, 'its end as the store has it: it ran on the other node');
  t.match(lines[1].notStreamed, /went through the molecule's queue/, 'saying why no document came');
  const cancel = await draining('POST', `/executions/${long}/cancel`);
  t.equal(cancel.status, 200, 'a cancel on the draining node is answered');
  t.equal(await stopped, 0, 'the node exits once its run ended (cancelled), before the grace');
  t.match(await ended(api(1), long), { status: 'aborted', errorCode: 'QUARK_ERR_EXECUTION_CANCELLED' }, 'its run ended cancelled');
});
