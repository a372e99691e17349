// Hostile plugins in isolation mode "process": plugin code runs in a plugin host process
// under Node's permission model. Each capability of issue 15 fails to do harm, and the
// runtime answers throughout; through the real CLI runtime as a child process.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { fixturePlugins, initHome, startRuntime, until, type Running } from '../helpers/quark.js';

const signingKey = 'victim-signing-key-7f3a9c';

async function hostileRuntime(t: Test, config: Record<string, unknown> = {}) {
  const { home, ownerToken } = await initHome(t, {
    kind: 'cloud',
    config: { plugins: { paths: [join(fixturePlugins, 'hostile'), join(fixturePlugins, 'hmac-signer')] }, isolation: 'process', limits: { workerThreads: 1 }, ...config },
  });
  const rt = await startRuntime(t, home);
  const created = await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'bad', connector: 'hostile', config: { token: 'hostile-token-1234' } });
  t.equal(created.status, 201, JSON.stringify(created.body));
  const run = async (operation: string, parameters: Record<string, unknown> = {}) => {
    const answer = await rt.api('POST', `/api/v1/connections/bad/operations/${operation}`, ownerToken, { parameters, documents: [{}] });
    t.equal(answer.status, 200, `${operation}: ${JSON.stringify(answer.body)}`);
    const outcome = answer.body.results[0];
    return { ...outcome, properties: outcome.documents?.[0]?.properties ?? {} };
  };
  return { home, ownerToken, rt, run };
}

const healthy = async (t: Test, rt: Running, what: string) => t.equal((await rt.api('GET', '/healthz')).status, 200, `the runtime answers after ${what}`);

t.test('a hostile plugin in the plugin host process (isolation "process", on a cloud runtime)', async (t) => {
  const { home, ownerToken, rt, run } = await hostileRuntime(t);

  for (const file of ['master.key', 'quark.db', 'config.json']) {
    t.test(`reading <home>/${file} is refused by the permission model`, async (t) => {
      const outcome = await run('read', { path: join(home, file) });
      t.match(outcome, { status: 'application-error', code: 'ERR_ACCESS_DENIED' });
      await healthy(t, rt, `reading ${file}`);
    });
  }

  t.test('starting a child process is refused', async (t) => {
    t.match(await run('spawn'), { status: 'application-error', code: 'ERR_ACCESS_DENIED' });
  });

  t.test("the runtime's environment does not reach plugin code", async (t) => {
    t.equal((await run('env')).properties.names, '', 'an empty environment');
  });

  t.test("a patched crypto.createHmac does not see another connector's secret", async (t) => {
    const victim = await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'victim', connector: 'hmac-signer', config: { signingKey } });
    t.equal(victim.status, 201, JSON.stringify(victim.body));
    t.equal((await run('patch')).properties.patched, 'yes');
    const tested = await rt.api('POST', '/api/v1/connections/victim/test', ownerToken, {});
    t.equal(tested.body.status, 'ok', JSON.stringify(tested.body));
    t.same(JSON.parse((await run('captured')).properties.captured), []);
  });

  for (const [operation, parameters, words] of [
    ['kill', { target: 'self' }, /cannot signal a process/],
    ['kill', { target: 'parent' }, /cannot signal a process/],
    ['exit', {}, /cannot end the process/],
    ['abort', {}, /cannot abort the process/],
  ] as const) {
    t.test(`process.${operation}(${JSON.stringify(parameters)}) fails the task; the runtime and the host go on`, async (t) => {
      t.match(await run(operation, parameters), { status: 'failure', code: 'QUARK_ERR_PLUGIN_THREW', message: words });
      await healthy(t, rt, operation);
    });
  }

  t.test('a late unhandled rejection does not fail the task running then', async (t) => {
    t.equal((await run('late')).properties.armed, 'yes');
    t.equal((await run('late', { fire: true })).status, 'success');
    await until('the recycling to be logged', () => (/tainted by plugin code/.test(rt.output()) ? true : undefined));
  });
});
