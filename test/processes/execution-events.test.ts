import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { initHome, root, startRuntime } from '../helpers/quark.js';
import { eventStream } from '../helpers/events.js';

t.test('GET /api/v1/executions/events streams status changes of the caller\'s account only', async (t) => {
  const { home, ownerToken } = await initHome(t, { kind: 'cloud' });
  const rt = await startRuntime(t, home);
  const api = (method: string, path: string, body?: unknown, token = ownerToken) => rt.api(method, `/api/v1${path}`, token, body);
  t.equal((await api('POST', '/accounts', { name: 'globex', relation: 'tenant' })).status, 201);
  const tenantToken = (await api('POST', '/tokens', { name: 'console', account: 'globex' })).body.token as string;

  t.equal((await fetch(`${rt.url}/api/v1/executions/events`)).status, 401, 'no token, no stream');
  const open = async (token: string) => {
    const response = await fetch(`${rt.url}/api/v1/executions/events`, { headers: { authorization: `Bearer ${token}` } });
    t.equal(response.status, 200);
    t.match(response.headers.get('content-type'), /^text\/event-stream/);
    return eventStream(response);
  };
  const owner = await open(ownerToken);
  const tenant = await open(tenantToken);

  const definition = JSON.parse(readFileSync(join(root, 'processes', 'orders-no-connector.json'), 'utf8'));
  t.equal((await api('POST', '/deployments', definition)).status, 201);
  const started = await api('POST', '/executions', { process: definition.id, documents: [{ body: readFileSync(join(root, 'processes', 'orders-sample.json'), 'utf8') }] });
  t.equal(started.status, 202);
  const id = started.body.id;
  const done = await owner.next((e) => e.id === id && !['queued', 'in-process'].includes(e.status));
  t.match(done.status, /^complete/);
  t.same(done.steps['split-orders'], { in: 1, out: 4, errors: 0 }, 'the view carries the step counts');
  t.same(owner.seen.filter((e) => e.id === id).map((e) => e.status).slice(0, 2), ['queued', 'in-process'], 'every status change, in order');

  // the tenant's own execution reaches the tenant, and the owner never sees it
  t.equal((await api('POST', '/deployments', definition, tenantToken)).status, 201);
  const theirs = (await api('POST', '/executions', { process: definition.id }, tenantToken)).body.id;
  const event = await tenant.next((e) => e.id === theirs && e.status !== 'queued' && e.status !== 'in-process');
  t.equal(event.accountId, (await api('GET', '/whoami', undefined, tenantToken)).body.account.id);
  t.notOk(tenant.seen.some((e) => e.id === id), 'the tenant saw none of the owner\'s executions');
  t.notOk(owner.seen.some((e) => e.id === theirs), 'the owner saw none of the tenant\'s executions');

  // an open stream does not hold the runtime open at shutdown
  const before = Date.now();
  t.equal(await rt.stop('SIGTERM'), 0);
  t.ok(Date.now() - before < 5000, `stopped in ${Date.now() - before} ms with two streams open`);
});
