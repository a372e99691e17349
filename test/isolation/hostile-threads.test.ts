// Hostile plugins in the default isolation mode (worker threads, one connector per
// worker): what the runtime stops there, through the real CLI runtime as a child process.
// What this mode does not stop (reading files, starting children) is in README, "Security
// model", and is stopped in the plugin host process (hostile-process.test.ts).
import t from 'tap';
import { join } from 'node:path';
import { fixturePlugins, initHome, startRuntime, until } from '../helpers/quark.js';

const signingKey = 'victim-signing-key-7f3a9c';

t.test('a hostile plugin in worker threads: the runtime answers throughout', async (t) => {
  const { home, ownerToken } = await initHome(t, {
    config: { plugins: { paths: [join(fixturePlugins, 'hostile'), join(fixturePlugins, 'hmac-signer')] }, limits: { workerThreads: 1, workerExternalMb: 64 } },
  });
  const rt = await startRuntime(t, home);
  const created = await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'bad', connector: 'hostile', config: { token: 'hostile-token-1234' } });
  t.equal(created.status, 201, JSON.stringify(created.body));
  const victim = await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'victim', connector: 'hmac-signer', config: { signingKey } });
  t.equal(victim.status, 201, JSON.stringify(victim.body));
  const run = async (operation: string, parameters: Record<string, unknown> = {}) => {
    const answer = await rt.api('POST', `/api/v1/connections/bad/operations/${operation}`, ownerToken, { parameters, documents: [{}] });
    t.equal(answer.status, 200, `${operation}: ${JSON.stringify(answer.body)}`);
    const outcome = answer.body.results[0];
    // what the plugin managed to do: the properties of its one output document
    return { ...outcome, properties: outcome.documents?.[0]?.properties ?? {} };
  };
  const healthy = async (what: string) => t.equal((await rt.api('GET', '/healthz')).status, 200, `the runtime answers after ${what}`);

  // what this mode does not stop, as README "Security model" says: asserted, so the
  // table cannot drift from the truth (isolation "process" refuses both)
  t.test('reading <home>/master.key and starting a child process succeed in this mode (documented)', async (t) => {
    t.match(await run('read', { path: join(home, 'master.key') }), { status: 'success', properties: { read: 'yes' } });
    t.match(await run('spawn'), { status: 'success', properties: { spawned: 'child ran' } });
    await healthy('the read and the spawn');
  });

  t.test("a patched crypto.createHmac does not see another connector's secret (one connector per worker)", async (t) => {
    t.equal((await run('patch')).properties.patched, 'yes');
    const tested = await rt.api('POST', '/api/v1/connections/victim/test', ownerToken, {});
    t.equal(tested.body.status, 'ok', JSON.stringify(tested.body));
    const seen = await run('captured');
    t.same(JSON.parse(seen.properties.captured), [], 'nothing captured: the victim signed in a worker of its own');
    t.notMatch(JSON.stringify(seen), signingKey);
  });

  for (const [operation, parameters, words] of [
    ['kill', { target: 'self' }, /cannot signal a process \(process\.kill\)/],
    ['kill', { target: 'parent' }, /cannot signal a process \(process\.kill\)/],
    ['exit', {}, /cannot end the process \(process\.exit\)/],
    ['abort', {}, /cannot abort the process \(process\.abort\)/],
  ] as const) {
    t.test(`process.${operation}(${JSON.stringify(parameters)}) fails the plugin's task, not the runtime`, async (t) => {
      const outcome = await run(operation, parameters);
      t.match(outcome, { status: 'failure', code: 'QUARK_ERR_PLUGIN_THREW', message: words });
      await healthy(operation);
    });
  }

  t.test('Buffers past limits.workerExternalMb stop the task with a code, not the runtime', async (t) => {
    const outcome = await run('buffers', { mb: 512 });
    t.match(outcome, { status: 'failure', code: 'QUARK_ERR_PLUGIN_RESOURCE_LIMIT', message: /MB of external memory, over its limit of 64 MB/ });
    await healthy('the Buffers');
    t.equal((await run('captured')).status, 'success', 'the next task runs');
  });

  t.test('a late unhandled rejection does not fail the unrelated task running then; the worker is recycled', async (t) => {
    t.equal((await run('late')).properties.armed, 'yes');
    const fired = await run('late', { fire: true });
    t.equal(fired.status, 'success', 'the task running when the rejection fired is not failed');
    await until('the recycling to be logged', () => (/tainted by plugin code/.test(rt.output()) ? true : undefined));
    t.match(rt.output(), /an unhandled rejection: late rejection of an earlier task/);
    t.equal((await run('captured')).status, 'success', 'the next task runs in a fresh worker');
    await healthy('the late rejection');
  });
});
