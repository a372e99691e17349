/**
 * PostgreSQL stopped under a running runtime and started again: /readyz turns 503 while it
 * is away and 200 once it answers, the runtime does not crash, and what it acknowledged
 * before is still there. The test runs a PostgreSQL of its own (../shared/tools/services
 * in a folder of its own), so stopping it touches no other test.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cli, root, startRuntime, tempDir, until } from '../helpers/quark.js';
import { postgresSkip } from '../helpers/postgres.js';

const run = promisify(execFile);
const tool = process.env.QUARK_TEST_SERVICES_TOOL ?? join(root, '..', 'shared', 'tools', 'services');
const skip = postgresSkip || (existsSync(join(tool, 'start.sh')) ? false : `SKIPPED: no services tool at ${tool} (set QUARK_TEST_SERVICES_TOOL)`);

/** The services tool on `dir`: start.sh (same port and data on a restart) or stop.sh. */
async function services(script: 'start.sh' | 'stop.sh', dir: string, ...args: string[]): Promise<void> {
  await run('bash', [join(tool, script), dir, ...args], { env: { ...process.env, PG_PORT: existsSync(join(dir, 'pg.port')) ? '' : '0' } });
}

function urlOf(dir: string): string {
  const match = /QUARK_TEST_POSTGRES_URL=(\S+)/.exec(readFileSync(join(dir, 'services.env'), 'utf8'));
  if (!match) throw new Error(`no QUARK_TEST_POSTGRES_URL in ${dir}/services.env`);
  return match[1]!;
}

t.test('PostgreSQL stopped and started under a running runtime: 503 meanwhile, no crash, nothing acknowledged lost', { skip }, async (t) => {
  const dir = tempDir(t, 'quark-outage-');
  await services('start.sh', dir, '--postgres');
  t.teardown(() => services('stop.sh', dir, '--purge'));
  const home = join(tempDir(t), 'home');
  const init = await cli(['--json', 'init', '--home', home, '--owner', 'acme', '--port', '0', '--store', urlOf(dir)]);
  t.equal(init.code, 0, init.stderr);
  const ownerToken = init.json<{ ownerToken: string }>().ownerToken;
  const rt = await startRuntime(t, home);
  t.equal((await rt.api('GET', '/readyz')).status, 200, 'ready with PostgreSQL up');
  const created = await rt.api<{ token: string }>('POST', '/api/v1/tokens', ownerToken, { name: 'before the outage' });
  t.equal(created.status, 201, 'a write acknowledged before the outage');

  await services('stop.sh', dir);
  const down = await until('/readyz to answer 503', async () => ((await rt.api('GET', '/readyz')).status === 503 ? true : undefined));
  t.ok(down, '/readyz is 503 while PostgreSQL is stopped');
  const refused = await rt.api<{ error: { code: string; message: string } }>('POST', '/api/v1/tokens', ownerToken, { name: 'during the outage' });
  t.equal(refused.status, 503, 'a request that needs the store is refused with 503');
  t.equal(refused.body.error.code, 'QUARK_ERR_STORE_UNAVAILABLE');
  t.notMatch(JSON.stringify(refused.body), /password|postgres:\/\//, 'the error names no URL');
  t.equal(rt.child.exitCode, null, 'the runtime is still running');

  await services('start.sh', dir, '--postgres');
  await until('/readyz to answer 200 again', async () => ((await rt.api('GET', '/readyz')).status === 200 ? true : undefined));
  t.pass('/readyz is 200 again, without a restart');
  const whoami = await rt.api<{ account: { name: string } }>('GET', '/api/v1/whoami', created.body.token);
  t.equal(whoami.status, 200, 'the token acknowledged before the outage still authenticates');
  const after = await rt.api('POST', '/api/v1/tokens', ownerToken, { name: 'after the outage' });
  t.equal(after.status, 201, 'and writes work again');
  t.match(rt.output(), /PostgreSQL at 127\.0\.0\.1:\d+/, 'the log names the server by host and port');
  t.equal(rt.child.exitCode, null, 'no crash');
});
