// Issue 11, defect 8: a runaway expression that makes one allocation past a worker's heap
// limit (an array grown by copies) makes V8 abort the whole process that holds the worker
// (nodejs/node#47224). In the DEFAULT isolation of an atom ("threads") pure steps run in a
// plugin host process, so the abort ends only the host: the step fails with
// QUARK_ERR_STEP_MEMORY_LIMIT and the runtime answers. The heap limit is lowered only so
// that the abort comes quickly, and the time limit of pure steps raised (60 s by default)
// so that on a busy machine the copies cannot run out of time before they run out of
// memory; isolation is the default. Through the real CLI runtime.
import t from 'tap';
import { initHome, startRuntime } from '../helpers/quark.js';

/** Each call copies the array into a larger one (the README's "make one allocation past the heap limit"). */
const runaway = '($grow := function($a, $n){ $n = 0 ? $count($a) : $grow($append($a, [1..1000000]), $n - 1) }; $grow([], 200))';

t.test('a runaway expression in the default isolation fails its step, not the runtime', async (t) => {
  const { home, ownerToken } = await initHome(t, { config: { limits: { workerHeapMb: 256, stepTimeoutMs: 600_000 } } });
  const rt = await startRuntime(t, home);
  const definition = { id: 'runaway', name: 'runaway', start: { kind: 'documents', next: 'grow' }, steps: [{ id: 'grow', kind: 'map', expression: runaway }] };
  const answer = await rt.api('POST', '/api/v1/executions', ownerToken, { definition, documents: [{ body: '{}' }], wait: true });
  t.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 400));
  t.equal(answer.body.status, 'error');
  t.same(answer.body.errors.map((e: { step: string; code: string }) => [e.step, e.code]), [['grow', 'QUARK_ERR_STEP_MEMORY_LIMIT']], JSON.stringify(answer.body.errors).slice(0, 400));
  t.match(answer.body.errors[0].message, /ran out of memory/);
  t.equal((await rt.api('GET', '/healthz')).status, 200, 'the runtime answers /healthz');
  t.equal((await rt.api('GET', '/api/v1/executions', ownerToken)).status, 200, 'the runtime answers its API');
  t.equal(rt.child.exitCode, null, 'the runtime process is up');
  const fine = { id: 'fine', name: 'fine', start: { kind: 'documents', next: 'small' }, steps: [{ id: 'small', kind: 'map', expression: '"small"' }] };
  const next = await rt.api('POST', '/api/v1/executions', ownerToken, { definition: fine, documents: [{ body: '{}' }], wait: true });
  t.equal(next.body.status, 'complete', `the next run of pure steps completes: ${JSON.stringify(next.body).slice(0, 600)}`);
});
