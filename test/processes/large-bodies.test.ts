/**
 * Large bodies in memory (over 1 MiB, within limits.spillBytes) through a real runtime in
 * the default isolation, where pure steps run in the plugin host process and such bodies
 * cross to it and back in files of the execution's work directory (engine/crossing.ts):
 * what a client gets is the same as for any body, through operations between the runs of
 * pure steps, kept for a waiting caller or streamed to a reading one.
 */
import t from 'tap';
import { join } from 'node:path';
import { fixturePlugins, initHome, startRuntime } from '../helpers/quark.js';

const orders = Array.from({ length: 30_000 }, (_, i) => ({ id: i, note: `order ${i}: é € 😀` }));
const body = JSON.stringify({ orders });

/** map → echo (an operation, in the runtime's own workers) → map → decision: two runs of pure steps. */
const definition = {
  id: 'large',
  name: 'large',
  start: { kind: 'documents', next: 'count' },
  steps: [
    { id: 'count', kind: 'map', expression: '$merge([$, {"count": $count(orders)}])', next: 'copy' },
    { id: 'copy', kind: 'operation', connection: 'kit', operation: 'echo', parameters: { tag: 'big', times: 1 }, next: 'last' },
    { id: 'last', kind: 'map', expression: '$properties.kind = "bad" ? $error("a bad one") : $merge([$, {"last": orders[-1].id}])', next: 'check' },
    { id: 'check', kind: 'decision', condition: 'count = 30000' },
  ],
};

async function kitRuntime(t: any, isolation?: string) {
  const { home, ownerToken } = await initHome(t, { config: { plugins: { paths: [join(fixturePlugins, 'process-kit')] }, ...(isolation ? { isolation } : {}) } });
  const rt = await startRuntime(t, home);
  const api = (method: string, path: string, payload?: unknown) => rt.api(method, `/api/v1${path}`, ownerToken, payload);
  t.equal((await api('POST', '/connections', { name: 'kit', connector: 'process-kit', config: {} })).status, 201);
  t.equal((await api('POST', '/deployments', definition)).status, 201);
  return { rt, ownerToken, api };
}

async function throughOperation(t: any, isolation?: string) {
  t.ok(body.length > 1024 * 1024, 'larger than the 1 MiB at which a body crosses in a file, within the default spillBytes (8 MiB)');
  const { api } = await kitRuntime(t, isolation);
  const documents = [{ body }, { body, properties: { kind: 'bad' } }, { body }];
  const answer = await api('POST', '/executions', { process: 'large', wait: true, documents });
  t.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 300));
  t.match(answer.body, { status: 'error', errorCode: 'QUARK_ERR_EXPRESSION_FAILED', documentsIn: 3, documentsOut: 2, documentsFailed: 1 }, 'the execution ends error: one document failed');
  t.same(answer.body.errors.map((e: { step: string; code: string }) => [e.step, e.code]), [['last', 'QUARK_ERR_EXPRESSION_FAILED']]);
  t.equal(answer.body.output.length, 2);
  const expected = JSON.stringify({ orders, count: 30_000, last: 29_999 });
  for (const out of answer.body.output) t.equal(Buffer.from(out.body, 'base64').toString('utf8'), expected, 'byte for byte');
  t.match(answer.body.steps, { count: { in: 3, out: 3 }, copy: { in: 3, out: 3 }, last: { in: 3, out: 2, errors: 1 }, check: { in: 2, out: 2 } });
}

t.test('a large body through pure steps in the plugin host, an operation between them: the caller gets JSON.stringify\'s text; a bad document fails alone', (t) => throughOperation(t));

t.test('the same in isolation "threads-only" (pure steps in the runtime\'s own workers: a large map output written in pieces into a crossing file, read back by the walker)', (t) => throughOperation(t, 'threads-only'));

t.test('a large body a map makes, streamed to the client: in parts read from its crossing file, joined into the body', async (t) => {
  const { rt, ownerToken } = await kitRuntime(t);
  const response = await fetch(`${rt.url}/api/v1/executions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ownerToken}`, 'content-type': 'application/json', accept: 'application/x-ndjson' },
    body: JSON.stringify({ definition: { ...definition, id: 'streamed', steps: [{ ...definition.steps[0], next: undefined }] }, documents: [{ body }] }),
  });
  t.equal(response.status, 200);
  const lines = (await response.text()).split('\n').filter((line) => line.length > 0).map((line) => JSON.parse(line));
  const head = lines.find((l) => l.type === 'document');
  const parts = lines.filter((l) => l.type === 'part');
  t.ok(parts.length > 1, `in ${parts.length} parts`);
  t.equal(Buffer.from(parts.map((p) => p.body).join(''), 'base64').toString('utf8'), JSON.stringify({ orders, count: 30_000 }));
  t.equal(head.size, Buffer.byteLength(JSON.stringify({ orders, count: 30_000 })));
  t.match(lines.at(-1), { type: 'end', execution: { status: 'complete' }, documents: { streamed: 1 } });
});
