import t from 'tap';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { fixturePlugins, initHome, startRuntime, tempDir } from '../helpers/quark.js';

// Defect 17 as it was found: a plugin that allocates in a loop, a heap cap of 256 MB and a
// Test Connection limit of 1 s, three tests at once. Its workers run out of memory after
// their tests have timed out; piscina then emitted 'error' with no listener and the runtime
// exited 1. Whichever way each test ends (timed out, or its worker died), it answers, and
// the runtime goes on serving.
t.test('plugins running out of memory after their Test Connection timed out do not stop the runtime', async (t) => {
  const plugins = tempDir(t, 'quark-plugins-');
  cpSync(join(fixturePlugins, 'eats-memory'), join(plugins, 'eats-memory'), { recursive: true });
  const { home, ownerToken } = await initHome(t, {
    config: { plugins: { paths: [plugins] }, limits: { workerHeapMb: 256, testConnectionTimeoutMs: 1000 } },
  });
  const rt = await startRuntime(t, home);
  const config = { username: 'u', password: 'a-password-1' };
  const answers = await Promise.all([1, 2, 3].map(() => rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'eats-memory', config })));
  for (const answer of answers) {
    t.equal(answer.status, 200, 'the test answers');
    t.equal(answer.body.status, 'failed');
    t.match(answer.body.checks[0].code, /^QUARK_ERR_PLUGIN_(TIMEOUT|WORKER_DIED)$/, 'failed with what happened to it');
  }
  const folder = tempDir(t);
  // the workers may die after the answers: the runtime must outlive that and still work
  const after = await rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'local-files', config: { folder } });
  t.equal(after.status, 200);
  t.equal(after.body.status, 'ok', 'a healthy plugin is tested afterwards');
  t.equal((await rt.api('GET', '/healthz')).status, 200, 'the runtime still answers');
  t.equal(rt.child.exitCode, null, 'the runtime process is still running');
});
