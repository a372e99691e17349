// Cancel and live events across the nodes of a molecule: a cancel sent to a node that does
// not run the execution stops it on the node that does (LISTEN/NOTIFY), and the event
// stream (SSE) of any node shows the executions other nodes run, to their end. A cancel is
// also kept in the record, so one sent while the owner's listening connection is down
// still stops the run.
import t from 'tap';
import { adminQuery } from '../helpers/postgres.js';
import { until } from '../helpers/quark.js';
import { openEvents } from '../helpers/events.js';
import { counting, ended, moleculeSkip, startMolecule, tagged } from '../helpers/molecule.js';

t.test('three nodes: cancel from a node that does not run the execution stops it where it runs; every node\'s event stream shows it', { skip: moleculeSkip }, async (t) => {
  const { nodes, api, nodeIds, counter, ownerToken } = await startMolecule(t, 3);
  t.equal((await api(0)('POST', '/deployments', counting('long', 60_000))).status, 201);
  const ids = await nodeIds();
  const streams = await Promise.all(nodes.map((rt) => openEvents(rt.url, ownerToken)));
  t.teardown(() => Promise.all(streams.map((s) => s.cancel().catch(() => undefined))));

  const id = (await api(0)('POST', '/executions', { process: 'long', ...tagged('cancelled') })).body.id as string;
  const running = await until('it runs on some node', async () => {
    const v = (await api(0)('GET', `/executions/${id}`)).body;
    return v.status === 'in-process' && v.owner ? v : undefined;
  });
  const ownerIndex = ids.indexOf(running.owner);
  const otherIndex = (ownerIndex + 1) % 3;
  for (const [i, stream] of streams.entries()) {
    t.ok(await stream.next((e) => e.id === id && e.status === 'in-process'), `node ${i}'s stream shows it in-process (it runs on node ${ownerIndex})`);
  }

  const cancel = await api(otherIndex)('POST', `/executions/${id}/cancel`);
  t.equal(cancel.status, 200, `cancel sent to node ${otherIndex}, which does not run it`);
  for (const [i, stream] of streams.entries()) {
    const end = await stream.next((e) => e.id === id && e.status === 'aborted');
    t.match(end, { errorCode: 'QUARK_ERR_EXECUTION_CANCELLED', errorMessage: 'cancelled by acme' }, `node ${i}'s stream shows it aborted by the cancel`);
  }
  t.match((await api(2)('GET', `/executions/${id}`)).body, { status: 'aborted', errorCode: 'QUARK_ERR_EXECUTION_CANCELLED', owner: running.owner }, 'the record says so');
  t.equal(counter.counts.get('cancelled'), undefined, 'its step never counted');
  t.match(nodes[ownerIndex]!.output(), /a cancel sent by another node: this node runs the execution and stops it/);
});

t.test("a cancel sent while the owner's listening connection is down (its backend terminated, no new connection let in) still stops the run", { skip: moleculeSkip }, async (t) => {
  const { nodes, api, nodeIds, counter, storeUrl } = await startMolecule(t, 2);
  t.equal((await api(0)('POST', '/deployments', counting('long', 60_000))).status, 201);
  const ids = await nodeIds();
  const id = (await api(0)('POST', '/executions', { process: 'long', ...tagged('cancelled') })).body.id as string;
  const running = await until('it runs on some node', async () => {
    const v = (await api(0)('GET', `/executions/${id}`)).body;
    return v.status === 'in-process' && v.owner ? v : undefined;
  });
  const ownerIndex = ids.indexOf(running.owner);
  const otherIndex = 1 - ownerIndex;
  const database = new URL(storeUrl).pathname.slice(1);
  // the pools keep their open connections; the listening connections are ended and cannot come back
  await adminQuery(`ALTER DATABASE ${database} WITH ALLOW_CONNECTIONS false`);
  t.teardown(() => adminQuery(`ALTER DATABASE ${database} WITH ALLOW_CONNECTIONS true`).catch(() => undefined));
  const terminated = await adminQuery("SELECT pg_terminate_backend(pid, 10000) AS done FROM pg_stat_activity WHERE datname = $1 AND application_name = 'quark-listen'", [database]);
  t.equal(terminated.rows.length, 2, "both nodes' listening connections ended");
  t.ok(terminated.rows.every((r) => r.done === true), 'their backends are gone before the cancel');

  const cancel = await api(otherIndex)('POST', `/executions/${id}/cancel`);
  t.equal(cancel.status, 200, `cancel sent to node ${otherIndex}: its notification reaches no node`);
  const end = await ended(api(otherIndex), id);
  t.match(end, { status: 'aborted', errorCode: 'QUARK_ERR_EXECUTION_CANCELLED', errorMessage: 'cancelled by acme', owner: running.owner }, 'the run ended cancelled all the same');
  t.equal(counter.counts.get('cancelled'), undefined, 'its step never counted');
  t.match(nodes[ownerIndex]!.output(), /a cancel kept in the store \(its notification did not reach this node\): this node runs the execution and stops it/, 'the owner read it from the store');
  await adminQuery(`ALTER DATABASE ${database} WITH ALLOW_CONNECTIONS true`);
});
