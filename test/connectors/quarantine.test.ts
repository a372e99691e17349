import t from 'tap';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { cli, fixturePlugins, initHome, startRuntime, tempDir } from '../helpers/quark.js';
import { RUNTIME_API_VERSION } from '../../runtime/sdk/index.js';

const secret = 'right-password';
const limitMs = 10_000;
const broken = ['throws-at-import', 'invalid-manifest', 'incompatible', 'hangs-at-import', 'dangling-ref', 'not-a-connector'];

t.test('broken plugins are quarantined with precise reasons; misbehaving ones fail only their call', async (t) => {
  const plugins = tempDir(t, 'quark-plugins-');
  for (const name of [...broken, 'hangs', 'eats-memory', 'bad-result']) cpSync(join(fixturePlugins, name), join(plugins, name), { recursive: true });
  // limits generous for a loaded machine: the hanging fixtures wait forever, so they meet
  // them whatever the load, and the healthy plugins never come near them
  const { home, ownerToken } = await initHome(t, {
    config: { plugins: { paths: [plugins] }, limits: { testConnectionTimeoutMs: limitMs, pluginImportTimeoutMs: limitMs, workerHeapMb: 48 } },
  });
  // one good plugin from the home's own connectors folder: it must resolve quark/sdk there too
  cpSync(join(fixturePlugins, 'secret-echo'), join(home, 'connectors', 'secret-echo'), { recursive: true });
  const rt = await startRuntime(t, home);

  const { status, body } = await rt.api('GET', '/api/v1/connectors', ownerToken);
  t.equal(status, 200);
  const loaded = body.loaded.filter((c: any) => c.source !== 'built-in').map((c: any) => c.id).sort();
  t.same(loaded, ['bad-result', 'eats-memory', 'hangs-forever', 'secret-echo'], 'the healthy plugins load');
  t.ok(body.loaded.some((c: any) => c.id === 'local-files' && c.source === 'built-in'), 'and the built-ins');
  const reasons = Object.fromEntries(body.quarantined.map((q: any) => [q.dir.split('/').pop(), q.reason]));
  t.same(Object.keys(reasons).sort(), [...broken].sort(), 'every broken plugin is quarantined, nothing else');

  t.equal(reasons['throws-at-import'].code, 'QUARK_ERR_PLUGIN_IMPORT_FAILED');
  t.match(reasons['throws-at-import'].message, /boom: this plugin cannot start/);
  t.match(reasons['throws-at-import'].details.problems[0].file, /throws-at-import\/index\.js$/);

  t.equal(reasons['invalid-manifest'].code, 'QUARK_ERR_PLUGIN_MANIFEST_INVALID');
  const manifestProblems = reasons['invalid-manifest'].details.problems;
  t.same(manifestProblems.map((p: any) => p.path).sort(), ['/id', '/testConnection', '/version'], 'all manifest problems at once, by JSON pointer');
  t.match(manifestProblems[0].file, /invalid-manifest\/connector\.json$/);

  t.equal(reasons.incompatible.code, 'QUARK_ERR_PLUGIN_INCOMPATIBLE');
  t.equal(reasons.incompatible.details.problems[0].path, '/runtimeApi');
  t.match(reasons.incompatible.message, new RegExp(`needs runtime API \\^2\\.0\\.0; this runtime offers ${RUNTIME_API_VERSION.replaceAll('.', '\\.')}$`));

  t.equal(reasons['hangs-at-import'].code, 'QUARK_ERR_PLUGIN_TIMEOUT');
  t.match(reasons['hangs-at-import'].message, new RegExp(`importing connector hangs-at-import did not finish within ${limitMs} ms`));

  t.equal(reasons['dangling-ref'].code, 'QUARK_ERR_PLUGIN_SCHEMA_INVALID');
  t.match(reasons['dangling-ref'].message, /connection\.schema\.json: .*hostname/);

  t.equal(reasons['not-a-connector'].code, 'QUARK_ERR_PLUGIN_MODULE_INVALID');

  // the CLI shows the same reasons with file and pointer
  const list = await cli(['connectors', 'list'], rt.as(ownerToken));
  t.equal(list.code, 0);
  t.match(list.stdout, /Quarantined:/);
  t.match(list.stdout, /QUARK_ERR_PLUGIN_MANIFEST_INVALID/);
  t.match(list.stdout, /invalid-manifest\/connector\.json#\/testConnection: "testConnection" must be true or false/);
  t.match(list.stdout, /incompatible\/connector\.json#\/runtimeApi/);

  // using a quarantined connector is a clear error
  const quarantined = await rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'throws-at-import', config: { username: 'u', password: secret } });
  t.equal(quarantined.status, 409);
  t.equal(quarantined.body.error.code, 'QUARK_ERR_CONNECTOR_QUARANTINED');

  const config = { username: 'u', password: secret };
  t.test('a test that hangs is cut off at the time limit and reported as a timeout', async (t) => {
    const result = await rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'hangs-forever', config });
    t.equal(result.status, 200, 'Test Connection never throws through to the caller');
    t.equal(result.body.status, 'failed');
    t.equal(result.body.checks[0].code, 'QUARK_ERR_PLUGIN_TIMEOUT');
    t.match(result.body.checks[0].message, new RegExp(`did not finish within ${limitMs} ms and was stopped`), 'stopped at the limit: it would never end by itself');
  });

  t.test('a test that exhausts its heap kills only its worker', async (t) => {
    const result = await rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'eats-memory', config });
    t.equal(result.status, 200);
    t.equal(result.body.status, 'failed');
    t.equal(result.body.checks[0].code, 'QUARK_ERR_PLUGIN_WORKER_DIED');
    t.match(result.body.checks[0].message, /ran out of memory \(worker heap limit 48 MB\)/);
  });

  t.test('a malformed result is reported as such', async (t) => {
    const result = await rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'bad-result', config });
    t.equal(result.body.status, 'failed');
    t.equal(result.body.checks[0].code, 'QUARK_ERR_PLUGIN_RESULT_INVALID');
    t.match(result.body.checks[0].message, /"status" must be one of: .* \(\/checks\/0\/status\)/);
  });

  t.test('after all that the runtime still answers and healthy plugins still work', async (t) => {
    t.equal((await rt.api('GET', '/healthz')).status, 200);
    t.equal((await rt.api('GET', '/readyz')).status, 200);
    const result = await rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'secret-echo', config });
    t.equal(result.body.status, 'ok');
    const metrics = await rt.api('GET', '/metrics');
    t.match(metrics.body, /quark_test_connection_total\{connector="hangs-forever",outcome="failed"\} 1/);
    t.match(metrics.body, /quark_worker_pool_threads \d+/);
  });
});
