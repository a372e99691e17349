/**
 * Step data through the HTTP API: a test-mode run records the documents that left each
 * step (properties, the head of the body), secrets scrubbed, paged; a deployed run
 * records nothing unless its process or its request asks; purged with the execution.
 */
import t from 'tap';
import { initHome, startRuntime } from '../helpers/quark.js';

const definition = {
  id: 'step-data',
  name: 'Step data',
  start: { kind: 'documents', next: 'tag' },
  steps: [
    { id: 'tag', kind: 'set-properties', document: { 'api.password': 'hunter2-Zq9', 'order.kind': { $expr: '$exists(kind) ? kind : "binary"' } }, next: 'route' },
    { id: 'route', kind: 'decision', condition: '$exists(kind)', ifTrue: 'grow', ifFalse: 'keep' },
    { id: 'grow', kind: 'map', expression: '$merge([$, {"padding": $pad("", 300, "x")}])' },
    { id: 'keep', kind: 'notify', message: 'binary' },
  ],
};

const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 10, 13]);

t.test('a test-mode run records each step\'s documents, secret-named properties redacted, bodies cut at the limit, paged', async (t) => {
  const { home, ownerToken } = await initHome(t, { kind: 'atom', config: { limits: { stepDataBodyBytes: 128 } } });
  const rt = await startRuntime(t, home);
  const documents = [{ body: JSON.stringify({ kind: 'a', n: 1 }) }, { body: binary.toString('base64'), encoding: 'base64' }, { body: JSON.stringify({ kind: 'b', n: 2 }) }];
  const run = await rt.api('POST', '/api/v1/executions', ownerToken, { definition, documents, wait: true });
  t.equal(run.status, 200, JSON.stringify(run.body));
  t.equal(run.body.status, 'complete');
  const steps = await rt.api('GET', `/api/v1/executions/${run.body.id}/steps`, ownerToken);
  t.same(steps.body.steps, [{ step: 'grow', count: 2 }, { step: 'keep', count: 1 }, { step: 'route', count: 3 }, { step: 'tag', count: 3 }]);

  const tag = await rt.api('GET', `/api/v1/executions/${run.body.id}/steps/tag/documents`, ownerToken);
  t.equal(tag.status, 200);
  t.equal(tag.body.documents.length, 3);
  t.equal(tag.body.next, null, 'one page');
  for (const d of tag.body.documents) t.equal(d.properties['api.password'], '[redacted]', 'a property named like a secret is redacted');
  t.notOk(JSON.stringify(tag.body).includes('hunter2-Zq9'), 'the secret value is nowhere in the answer');
  t.same(tag.body.documents.map((d: any) => d.properties['order.kind']), ['a', 'binary', 'b']);
  t.same(tag.body.documents[0].input, {}, 'the properties it entered the step with');
  const route = await rt.api('GET', `/api/v1/executions/${run.body.id}/steps/route/documents`, ownerToken);
  t.same(route.body.documents[0].input, route.body.documents[0].properties, 'a decision changes no property');
  const bin = tag.body.documents[1];
  t.match(bin, { encoding: 'base64', size: binary.length, truncated: false });
  t.same(Buffer.from(bin.body, 'base64'), binary, 'a binary body, as bytes');
  t.match(tag.body.documents[0], { encoding: 'utf8', body: '{"kind":"a","n":1}', truncated: false });

  const grow = await rt.api('GET', `/api/v1/executions/${run.body.id}/steps/grow/documents?limit=1`, ownerToken);
  t.equal(grow.body.documents.length, 1);
  t.match(grow.body.documents[0], { seq: 0, truncated: true, encoding: 'utf8' });
  t.equal(grow.body.documents[0].body.length, 128, 'the body head is cut at limits.stepDataBodyBytes');
  t.ok(grow.body.documents[0].size > 300, 'the whole size is said');
  t.equal(grow.body.next, '0');
  const second = await rt.api('GET', `/api/v1/executions/${run.body.id}/steps/grow/documents?limit=1&cursor=${grow.body.next}`, ownerToken);
  t.same(second.body.documents.map((d: any) => d.seq), [1], 'the next page');
  t.equal(second.body.next, null);
  const refused = await rt.api('GET', `/api/v1/executions/${run.body.id}/steps/grow/documents?cursor=x`, ownerToken);
  t.equal(refused.status, 400, 'a bad cursor is refused');
  t.equal(refused.body.error.code, 'QUARK_ERR_API_CURSOR_INVALID', 'with the code every list gives a bad cursor');
  t.same(refused.body.error.details.problems.map((p: { path: string }) => p.path), ['/querystring/cursor']);
  t.equal((await rt.api('GET', `/api/v1/executions/exe_nope/steps/grow/documents`, ownerToken)).status, 404);
});

t.test('a deployed run records step data only when its process or its request asks', async (t) => {
  const { home, ownerToken } = await initHome(t, { kind: 'atom' });
  const rt = await startRuntime(t, home);
  t.equal((await rt.api('POST', '/api/v1/deployments', ownerToken, definition)).status, 201);
  const documents = [{ body: JSON.stringify({ kind: 'a' }) }];
  const plain = await rt.api('POST', '/api/v1/executions', ownerToken, { process: definition.id, documents, wait: true });
  t.same((await rt.api('GET', `/api/v1/executions/${plain.body.id}/steps`, ownerToken)).body.steps, [], 'off by default');
  const asked = await rt.api('POST', '/api/v1/executions', ownerToken, { process: definition.id, documents, wait: true, recordStepData: true });
  t.equal((await rt.api('GET', `/api/v1/executions/${asked.body.id}/steps`, ownerToken)).body.steps.length, 3, 'the request asked');
  t.equal((await rt.api('POST', '/api/v1/deployments', ownerToken, { ...definition, options: { recordStepData: true } })).status, 201);
  const byProcess = await rt.api('POST', '/api/v1/executions', ownerToken, { process: definition.id, documents, wait: true });
  t.equal((await rt.api('GET', `/api/v1/executions/${byProcess.body.id}/steps`, ownerToken)).body.steps.length, 3, 'the process asks');
});

t.test('another account cannot read an execution\'s step data: 404, as for the execution', async (t) => {
  const { home, ownerToken } = await initHome(t, { kind: 'cloud' });
  const rt = await startRuntime(t, home);
  t.equal((await rt.api('POST', '/api/v1/accounts', ownerToken, { name: 'globex', relation: 'tenant' })).status, 201);
  const tenantToken = (await rt.api('POST', '/api/v1/tokens', ownerToken, { name: 'console', account: 'globex' })).body.token as string;
  const run = await rt.api('POST', '/api/v1/executions', ownerToken, { definition, documents: [{ body: JSON.stringify({ kind: 'a' }) }], wait: true });
  t.equal(run.status, 200, JSON.stringify(run.body));
  const steps = await rt.api('GET', `/api/v1/executions/${run.body.id}/steps`, tenantToken);
  t.equal(steps.status, 404, JSON.stringify(steps.body));
  t.equal(steps.body.error.code, 'QUARK_ERR_EXECUTION_NOT_FOUND');
  const documents = await rt.api('GET', `/api/v1/executions/${run.body.id}/steps/tag/documents`, tenantToken);
  t.equal(documents.status, 404);
  t.notOk(JSON.stringify(documents.body).includes('order.kind'), 'nothing of the owner\'s documents');
  t.equal((await rt.api('GET', `/api/v1/executions/${run.body.id}/steps`, ownerToken)).body.steps.length, 3, 'the owner reads them');
});
