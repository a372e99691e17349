import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cli, fixturePlugins, initHome, startRuntime } from '../helpers/quark.js';

// Distinctive values, so a scan for them cannot match anything else.
const first = 'Sup3r-Secret-Alpha-7c1e';
const second = 'Sup3r-Secret-Bravo-92fd';

t.test('connections: validation with paths, Click to Set, secrets encrypted, masked and never logged', async (t) => {
  const { home, ownerToken } = await initHome(t, { config: { plugins: { paths: [join(fixturePlugins, 'secret-echo')] } } });
  const rt = await startRuntime(t, home);
  const env = rt.as(ownerToken);
  const outputs: string[] = [];
  const record = <T extends { stdout: string; stderr: string }>(r: T): T => {
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const call = async (method: string, path: string, body?: unknown) => {
    const r = await rt.api(method, path, ownerToken, body);
    outputs.push(JSON.stringify(r.body));
    return r;
  };

  t.test('validation reports every problem at once with its path, and saves nothing', async (t) => {
    const r = await call('POST', '/api/v1/connections', { name: 'bad', connector: 'secret-echo', config: { password: 'short', port: 70000, colour: 'red' } });
    t.equal(r.status, 400);
    t.equal(r.body.error.code, 'QUARK_ERR_CONNECTION_INVALID');
    t.same(
      r.body.error.details.problems.map((p: any) => p.path).sort(),
      ['/colour', '/password', '/port', '/username'],
    );
    t.match(r.body.error.details.problems.find((p: any) => p.path === '/port').message, /^"Port" must be at most 65535$/);
    t.notMatch(JSON.stringify(r.body), /short/, 'the bad secret value is not echoed');
    const c = record(await cli(['connections', 'create', 'bad', '--connector', 'secret-echo', '--set', 'port=0'], env));
    t.equal(c.code, 2, 'invalid input exit code');
    t.match(c.stderr, /\/port: "Port" must be at least 1\n/);
    t.match(c.stderr, /\/username: "User name" is required\n/);
    t.same((await call('GET', '/api/v1/connections')).body.connections, []);
    const unknown = await call('POST', '/api/v1/connections', { name: 'x', connector: 'nope', config: {} });
    t.equal(unknown.status, 404);
    t.equal(unknown.body.error.code, 'QUARK_ERR_CONNECTOR_NOT_FOUND');
  });

  let id = '';
  t.test('create shows the secret only as set', async (t) => {
    const r = record(await cli(['--json', 'connections', 'create', 'crm', '--connector', 'secret-echo', '--set', 'username=ops', '--set', `password=${first}`], env));
    t.equal(r.code, 0, r.stderr);
    const view = r.json();
    id = view.id;
    t.same(view.secrets, { '/password': true });
    t.same(view.config, { username: 'ops', port: 443, delayMs: 0 }, 'defaults applied, secret absent');
    const human = record(await cli(['connections', 'show', 'crm'], env));
    t.match(human.stdout, /password \(secret\)\s+set/);
    const dup = await call('POST', '/api/v1/connections', { name: 'crm', connector: 'secret-echo', config: { username: 'a', password: first } });
    t.equal(dup.status, 409);
    t.equal(dup.body.error.code, 'QUARK_ERR_CONNECTION_NAME_TAKEN');
  });

  t.test('Test Connection uses the stored secret; a secret echoed by the plugin is scrubbed', async (t) => {
    const r = await call('POST', `/api/v1/connections/${id}/test`, {});
    t.equal(r.status, 200);
    t.equal(r.body.status, 'failed', 'the fixture only accepts right-password');
    t.match(r.body.checks[1].message, /password \[redacted\] was refused for ops/);
    const cliRun = record(await cli(['test-connection', 'crm'], env));
    t.equal(cliRun.code, 1, 'a failed result exits 1');
    t.match(cliRun.stdout, /✖ credentials: password \[redacted\] was refused/);
    // unsaved changes over the saved connection: the stored secret is kept, the new port used
    const unsaved = await call('POST', `/api/v1/connections/${id}/test`, { config: { username: 'ops', port: 8443 } });
    t.match(unsaved.body.checks[0].message, /port 8443/);
    t.equal(unsaved.body.checks[1].status, 'failed', 'still the stored (wrong) secret');
  });

  t.test('Click to Set: leaving the secret out keeps it, a value replaces it, null clears it', async (t) => {
    const keep = await call('PUT', `/api/v1/connections/${id}`, { config: { username: 'ops2' } });
    t.equal(keep.status, 200);
    t.same(keep.body.secrets, { '/password': true }, 'kept');
    t.equal(keep.body.config.username, 'ops2');
    t.equal(keep.body.revision, 2);

    const replace = record(await cli(['connections', 'update', 'crm', '--merge', '--set', `password=${second}`], env));
    t.equal(replace.code, 0, replace.stderr);
    const test = await call('POST', `/api/v1/connections/${id}/test`, {});
    t.match(test.body.checks[1].message, /password \[redacted\] was refused for ops2/);

    const right = await call('PUT', `/api/v1/connections/${id}`, { config: { username: 'ops2', password: 'right-password' } });
    t.equal(right.status, 200);
    t.equal((await call('POST', `/api/v1/connections/${id}/test`, {})).body.status, 'ok', 'the replaced secret is the one used');
    await call('PUT', `/api/v1/connections/${id}`, { config: { username: 'ops2', password: second } });

    const clear = record(await cli(['--json', 'connections', 'update', 'crm', '--merge', '--clear', 'password'], env));
    t.equal(clear.code, 2, 'clearing a required secret is a validation error');
    t.match(clear.stderr, /\/password/);
    t.match(clear.stderr, /is required/);
  });

  t.test('secrets are not in the database file in plaintext', async (t) => {
    const files = readdirSync(home).filter((f) => f.startsWith('quark.db'));
    t.ok(files.length >= 1);
    for (const f of files) {
      const bytes = readFileSync(join(home, f));
      for (const s of [first, second, 'right-password']) t.equal(bytes.indexOf(Buffer.from(s)), -1, `${s} not in ${f}`);
    }
  });

  t.test('no API or CLI output ever carried a secret, and neither did the log', async (t) => {
    record(await cli(['--json', 'connections', 'list'], env));
    record(await cli(['connections', 'show', id], env));
    outputs.push(JSON.stringify((await call('GET', `/api/v1/connections/${id}`)).body));
    const all = outputs.join('\n');
    t.ok(all.length > 1000, 'plenty of output was collected');
    for (const s of [first, second]) t.notOk(all.includes(s), `${s} absent from API and CLI output`);
    const log = rt.output();
    t.match(log, /"level":20.*"config":\{[^}]*"password":"\[redacted\]"/, 'the configuration was logged at debug level, its secret redacted');
    t.match(log, /testing with password \[redacted\]/, 'the plugin\'s log line was kept, scrubbed');
    for (const s of [first, second]) t.notOk(log.includes(s), `${s} absent from the runtime log`);
  });

  t.test('delete', async (t) => {
    const r = record(await cli(['connections', 'delete', 'crm'], env));
    t.equal(r.code, 0);
    const gone = await call('GET', `/api/v1/connections/${id}`);
    t.equal(gone.status, 404);
    t.equal(gone.body.error.code, 'QUARK_ERR_CONNECTION_NOT_FOUND');
    const again = record(await cli(['connections', 'delete', 'crm'], env));
    t.equal(again.code, 7, 'not found exit code');
  });
});
