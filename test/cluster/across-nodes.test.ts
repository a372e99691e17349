// Cancel and live events across the nodes of a molecule: a cancel sent to a node that does
// not run the execution stops it on the node that does (LISTEN/NOTIFY), and the event
// stream (SSE) of any node shows the executions other nodes run, to their end.
import t from 'tap';
import { startRuntime, until, type Running } from '../helpers/quark.js';
import { openEvents } from '../helpers/events.js';
import { counterServer, counting, moleculeHomes, moleculeSkip, tagged } from '../helpers/molecule.js';

type Api = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>;
const apiOf = (rt: Running, token: string): Api => (method, path, body) => rt.api(method, `/api/v1${path}`, token, body);

t.test('three nodes: cancel from a node that does not run the execution stops it where it runs; every node\'s event stream shows it', { skip: moleculeSkip }, async (t) => {
  const { homes, ownerToken } = await moleculeHomes(t, 3);
  const counter = await counterServer(t);
  const nodes = await Promise.all(homes.map((home) => startRuntime(t, home)));
  const apis = nodes.map((rt) => apiOf(rt, ownerToken));
  t.equal((await apis[0]!('POST', '/connections', { name: 'counter', connector: 'counter-kit', config: { url: counter.url } })).status, 201);
  t.equal((await apis[0]!('POST', '/deployments', counting('long', 60_000))).status, 201);
  const nodeIds = await until('three nodes listed', async () => {
    const list = (await apis[0]!('GET', '/nodes')).body as any[];
    return list.length === 3 && list.every((n) => n.address) ? new Map(list.map((n) => [n.address as string, n.id as string])) : undefined;
  });
  const streams = await Promise.all(nodes.map((rt) => openEvents(rt.url, ownerToken)));
  t.teardown(() => Promise.all(streams.map((s) => s.cancel().catch(() => undefined))));

  const id = (await apis[0]!('POST', '/executions', { process: 'long', ...tagged('cancelled') })).body.id as string;
  const running = await until('it runs on some node', async () => {
    const v = (await apis[0]!('GET', `/executions/${id}`)).body;
    return v.status === 'in-process' && v.owner ? v : undefined;
  });
  const ownerIndex = nodes.findIndex((rt) => nodeIds.get(rt.url) === running.owner);
  const otherIndex = (ownerIndex + 1) % 3;
  for (const [i, stream] of streams.entries()) {
    t.ok(await stream.next((e) => e.id === id && e.status === 'in-process'), `node ${i}'s stream shows it in-process (it runs on node ${ownerIndex})`);
  }

  const cancel = await apis[otherIndex]!('POST', `/executions/${id}/cancel`);
  t.equal(cancel.status, 200, `cancel sent to node ${otherIndex}, which does not run it`);
  for (const [i, stream] of streams.entries()) {
    const end = await stream.next((e) => e.id === id && e.status === 'aborted');
    t.match(end, { errorCode: 'QUARK_ERR_EXECUTION_CANCELLED', errorMessage: 'cancelled by acme' }, `node ${i}'s stream shows it aborted by the cancel`);
  }
  t.match((await apis[2]!('GET', `/executions/${id}`)).body, { status: 'aborted', errorCode: 'QUARK_ERR_EXECUTION_CANCELLED', owner: running.owner }, 'the record says so');
  t.equal(counter.counts.get('cancelled'), undefined, 'its step never counted');
  t.match(nodes[ownerIndex]!.output(), /a cancel sent by another node: this node runs the execution and stops it/);
});
