// The cluster-wide running cap: cluster.maxRunning (BullMQ global concurrency) bounds the
// executions running at once in the whole molecule, whatever each node's slots; a value
// that is not a positive integer is refused at start, naming the field.
import t from 'tap';
import { cli } from '../helpers/quark.js';
import { configure, counting, ended, moleculeHomes, moleculeSkip, startMolecule, tagged } from '../helpers/molecule.js';

t.test('three nodes of 2 slots each, cluster.maxRunning 2: 30 executions all complete, never more than 2 inside their step at once, on more than one node', { skip: moleculeSkip }, async (t) => {
  const cap = 2;
  const { api, counter, nodeIds, nodes, ownerToken } = await startMolecule(t, 3, { limits: { maxRunningExecutions: 2 }, config: () => ({ cluster: { maxRunning: cap } }), holdMs: 300 });
  t.equal((await api(0)('POST', '/deployments', counting('capped'))).status, 201);
  await nodeIds();
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) {
    const answer = await api(i % 3)('POST', '/executions', { process: 'capped', ...tagged(`c-${i}`) });
    t.equal(answer.status, 202, `start ${i} queued`);
    ids.push(answer.body.id);
  }
  const views = await Promise.all(ids.map((id) => ended(api(0), id)));
  t.same(views.filter((v) => v.status !== 'complete').map((v) => [v.id, v.status, v.errorMessage]), [], 'all 30 complete');
  t.same([...counter.counts.values()].filter((n) => n !== 1), [], 'each counted once');
  t.equal(counter.counts.size, 30);
  t.ok(counter.maxInFlight() <= cap, `at most ${cap} runs were inside their step at once (seen: ${counter.maxInFlight()}; the nodes have 6 slots)`);
  t.equal(counter.maxInFlight(), cap, 'and the cap was used');
  t.ok(new Set(views.map((v) => v.owner)).size >= 2, 'they ran on more than one node');
  const wait = await api(1)('POST', '/executions', { process: 'capped', wait: true, ...tagged('waited') });
  t.match(wait.body, { status: 'complete', documentsOut: 1 }, 'a wait start goes through the capped queue and is answered when it ended');
  t.notOk('output' in wait.body, 'without its output documents: whichever node ran it holds them');
  t.match(wait.body.noOutput, /went through the molecule's queue.*none are in this answer/, 'saying why');
  const streamed = await fetch(`${nodes[1]!.url}/api/v1/executions`, { method: 'POST', headers: { authorization: `Bearer ${ownerToken}`, 'content-type': 'application/json', accept: 'application/x-ndjson' }, body: JSON.stringify({ process: 'capped', ...tagged('streamed') }) });
  const lines = (await streamed.text()).trim().split('\n').map((l) => JSON.parse(l));
  t.same(lines.map((l) => l.type), ['execution', 'end'], 'a streamed start through the capped queue: its start and its end, whichever node ran it');
  t.match(lines[1], { execution: { status: 'complete', documentsOut: 1 }, documents: { streamed: 0 }, notStreamed: /went through the molecule's queue/ });
});

t.test('cluster.maxRunning must be a positive integer: a node refuses to start otherwise, naming the field', { skip: moleculeSkip }, async (t) => {
  const { homes } = await moleculeHomes(t, 1);
  configure(homes[0]!, { cluster: { maxRunning: 0 } });
  const start = await cli(['start', '--home', homes[0]!, '--port', '0']);
  t.not(start.code, 0);
  t.match(start.stderr, /QUARK_ERR_CONFIG_INVALID/);
  t.match(start.stderr, /\/cluster\/maxRunning/);
});
