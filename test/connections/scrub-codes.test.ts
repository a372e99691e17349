import t from 'tap';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { fixturePlugins, initHome, startRuntime } from '../helpers/quark.js';

// Distinctive, so a scan for it cannot match anything else.
const secret = 'Sup3r-Secret-Codes-41ab';

t.test('a secret a plugin puts in a code, an id or a property name is scrubbed everywhere', async (t) => {
  const { home, ownerToken } = await initHome(t, { config: { plugins: { paths: [join(fixturePlugins, 'secret-in-codes')] } } });
  const rt = await startRuntime(t, home);
  const api = (method: string, path: string, body?: unknown) => rt.api(method, `/api/v1${path}`, ownerToken, body);
  const config = { username: 'u', password: secret };

  const test = await api('POST', '/test-connection', { connector: 'secret-in-codes', config });
  t.equal(test.status, 200);
  t.same(test.body.checks.map((c: any) => [c.id, c.code]), [['login-[redacted]', 'E_[redacted]']], "the check's id and code");

  t.equal((await api('POST', '/connections', { name: 'leaky', connector: 'secret-in-codes', config })).status, 201);
  const documents = [{ properties: { kind: 'failure' } }, { properties: { kind: 'application' } }];
  const run = await api('POST', '/connections/leaky/operations/leak', { documents });
  t.equal(run.status, 200);
  t.same(run.body.results.map((r: any) => r.code), ['F_[redacted]', 'A_[redacted]'], "the results' codes");
  t.same(Object.keys(run.body.results[1].properties), ['p-[redacted]'], 'a property name');

  const process = { id: 'leaks', name: 'leaks', start: { kind: 'none', next: 'leak' }, steps: [{ id: 'leak', kind: 'operation', connection: 'leaky', operation: 'leak', parameters: {} }] };
  t.equal((await api('POST', '/deployments', process)).status, 201);
  const execution = await api('POST', '/executions', { process: 'leaks', documents: [documents[0]], wait: true });
  t.equal(execution.body.status, 'error');
  t.equal(execution.body.errorCode, 'F_[redacted]', "the execution's error code");
  t.equal(execution.body.errors[0].code, 'F_[redacted]', 'the stored document error');
  const log = await rt.api('GET', `/api/v1/executions/${execution.body.id}/log`, ownerToken);

  await rt.stop();
  const db = new Database(join(home, 'quark.db'), { readonly: true });
  t.teardown(() => db.close());
  const stored = JSON.stringify(db.prepare('SELECT * FROM execution_errors').all()) + JSON.stringify(db.prepare('SELECT * FROM executions').all());
  for (const [where, text] of Object.entries({ answers: JSON.stringify([test.body, run.body, execution.body]), 'the execution log': String(log.body), 'the store': stored, 'the runtime log': rt.output() })) {
    t.notOk(text.includes(secret), `the secret is not in ${where}`);
  }
});
