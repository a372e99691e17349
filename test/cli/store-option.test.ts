import t from 'tap';
import { join } from 'node:path';
import { cli, startRuntime, tempDir } from '../helpers/quark.js';
import { closedPort, freshDatabase, postgresSkip } from '../helpers/postgres.js';

/** A loopback port nothing listens on (taken, then given back). */
t.test('init --store with a PostgreSQL that is not there: QUARK_ERR_STORE_UNAVAILABLE naming host and port, never the password', async (t) => {
  const port = await closedPort();
  const home = join(tempDir(t), 'home');
  const result = await cli(['--json', 'init', '--home', home, '--port', '0', '--store', `postgres://quark:hunter2@127.0.0.1:${port}/quark`]);
  t.not(result.code, 0);
  t.match(result.json(), { error: { code: 'QUARK_ERR_STORE_UNAVAILABLE', message: new RegExp(`PostgreSQL at 127\\.0\\.0\\.1:${port} is not reachable`) } });
  t.notMatch(result.stdout + result.stderr, /hunter2/);
});

t.test('init --store that is not a PostgreSQL URL: QUARK_ERR_CLI_INPUT_INVALID', async (t) => {
  const result = await cli(['--json', 'init', '--home', join(tempDir(t), 'home'), '--store', 'mysql://u:secret@h/x']);
  t.match(result.json(), { error: { code: 'QUARK_ERR_CLI_INPUT_INVALID' } });
  t.notMatch(result.stdout + result.stderr, /secret/);
});

t.test('a runtime on PostgreSQL: info names host and port; the password is in no output, log or answer', { skip: postgresSkip }, async (t) => {
  const url = new URL(await freshDatabase(t));
  url.password = 'hunter2-secret'; // trust authentication on the test server: accepted, unused
  const home = join(tempDir(t), 'home');
  const init = await cli(['--json', 'init', '--home', home, '--port', '0', '--store', url.toString()]);
  t.equal(init.code, 0, init.stderr);
  t.equal(init.json<{ store: string }>().store, `postgres at 127.0.0.1:${url.port}`);
  const rt = await startRuntime(t, home);
  const info = await rt.api<{ store: string }>('GET', '/api/v1/runtime', init.json<{ ownerToken: string }>().ownerToken);
  t.equal(info.body.store, `postgres at 127.0.0.1:${url.port}`);
  t.notMatch(init.stdout + init.stderr + JSON.stringify(info.body) + rt.output(), /hunter2/, 'nowhere');
});
