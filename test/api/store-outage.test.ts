/**
 * PostgreSQL stopped under a running runtime and started again: /readyz turns 503 while it
 * is away and 200 once it answers, the runtime does not crash, and what it acknowledged
 * before is still there. The test runs a PostgreSQL of its own (../shared/tools/services
 * in a folder of its own), so stopping it touches no other test.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cli, fixturePlugins, root, startRuntime, tempDir, until, untilOutput } from '../helpers/quark.js';
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
  const down = await until('/readyz to answer 503', async () => {
    const readiness = await rt.api<{ status: string; reason: string }>('GET', '/readyz');
    return readiness.status === 503 ? readiness.body : undefined;
  });
  t.match(down, { status: 'not ready', reason: 'the store cannot be reached' }, '/readyz is 503 while PostgreSQL is stopped, saying why');
  t.notMatch(JSON.stringify(down), /password|postgres:\/\/|127\.0\.0\.1/, 'naming no address');
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

t.test('an execution that ends while PostgreSQL is away: it ends with a code, /readyz is 503 until the store answers, then 200 again without a restart, and the end is written', { skip }, async (t) => {
  const dir = tempDir(t, 'quark-outage-');
  await services('start.sh', dir, '--postgres');
  t.teardown(() => services('stop.sh', dir, '--purge'));
  const home = join(tempDir(t), 'home');
  const init = await cli(['--json', 'init', '--home', home, '--owner', 'acme', '--port', '0', '--store', urlOf(dir)]);
  t.equal(init.code, 0, init.stderr);
  const ownerToken = init.json<{ ownerToken: string }>().ownerToken;
  const configFile = join(home, 'config.json');
  writeFileSync(configFile, JSON.stringify({ ...JSON.parse(readFileSync(configFile, 'utf8')), plugins: { paths: [join(fixturePlugins, 'process-kit')] } }));
  const rt = await startRuntime(t, home);
  const api = <T = any>(method: string, path: string, body?: unknown) => rt.api<T>(method, `/api/v1${path}`, ownerToken, body);
  t.equal((await api('POST', '/connections', { name: 'kit', connector: 'process-kit', config: {} })).status, 201);
  const release = join(tempDir(t, 'quark-release-'), 'go');
  const nap = { id: 'nap', name: 'nap', start: { kind: 'none', next: 'nap' }, steps: [{ id: 'nap', kind: 'operation', connection: 'kit', operation: 'sleep', parameters: { ms: 600_000, release } }] };
  t.equal((await api('POST', '/deployments', nap)).status, 201);
  const started = await api<{ id: string }>('POST', '/executions', { process: 'nap' });
  t.equal(started.status, 202);
  const id = started.body.id;
  await until('it to run', async () => ((await api<{ status: string }>('GET', `/executions/${id}`)).body.status === 'in-process' ? true : undefined));

  await services('stop.sh', dir);
  await until('/readyz to answer 503', async () => ((await rt.api('GET', '/readyz')).status === 503 ? true : undefined));
  writeFileSync(release, 'go');
  await untilOutput(rt, /the end of an execution could not be written/);
  t.equal((await rt.api('GET', '/readyz')).status, 503, 'not ready while the store is away');
  t.equal(rt.child.exitCode, null, 'no crash');

  await services('start.sh', dir, '--postgres');
  await until('/readyz to answer 200 again', async () => ((await rt.api('GET', '/readyz')).status === 200 ? true : undefined));
  t.pass('/readyz is 200 again once PostgreSQL answers, without a restart');
  const ended = (await api<{ status: string; errorCode: string; errorMessage: string }>('GET', `/executions/${id}`)).body;
  t.match(ended, { status: 'error', errorCode: 'QUARK_ERR_EXECUTION_RECORD_FAILED', errorMessage: /could not be kept: PostgreSQL at 127\.0\.0\.1:\d+ is not reachable/ }, 'its end, with the code, reached the store once it answered');
  t.equal((await api('POST', '/executions', { process: 'nap', wait: true })).status, 200, 'and executions run again');
  t.notMatch(rt.output(), /until it is restarted/, 'the log does not tell anyone to restart');
});
