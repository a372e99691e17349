import t from 'tap';
import { cpSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { cli, fixturePlugins, initHome, startRuntime, tempDir } from '../helpers/quark.js';

t.test('plugins that die or spin at import, or link to the master key, cannot keep the runtime from starting', async (t) => {
  const plugins = tempDir(t, 'quark-plugins-');
  for (const name of ['eats-memory-at-import', 'hangs-at-import', 'secret-echo']) cpSync(join(fixturePlugins, name), join(plugins, name), { recursive: true });
  const { home, ownerToken } = await initHome(t, {
    kind: 'cloud',
    config: { plugins: { paths: [plugins] }, limits: { pluginImportTimeoutMs: 2000, workerHeapMb: 48 } },
  });
  // the plugin of defect 19: its connection schema is a link to the runtime's master key
  const linked = join(home, 'connectors', 'key-link');
  cpSync(join(fixturePlugins, 'secret-echo'), linked, { recursive: true });
  rmSync(join(linked, 'connection.schema.json'));
  symlinkSync(join(home, 'master.key'), join(linked, 'connection.schema.json'));

  const rt = await startRuntime(t, home);
  t.equal((await rt.api('GET', '/healthz')).status, 200, 'it listens and answers');
  const { body } = await rt.api('GET', '/api/v1/connectors', ownerToken);
  t.ok(body.loaded.some((c: any) => c.id === 'secret-echo'), 'the healthy plugin loads');
  const reasons = Object.fromEntries(body.quarantined.map((q: any) => [q.dir.split('/').pop(), q.reason]));
  t.match(reasons['eats-memory-at-import'], { code: /^QUARK_ERR_PLUGIN_(WORKER_DIED|TIMEOUT)$/ }, 'out of memory at import: quarantined');
  t.match(reasons['hangs-at-import'], { code: 'QUARK_ERR_PLUGIN_TIMEOUT' }, 'spinning at import: quarantined');
  t.match(reasons['key-link'], { code: 'QUARK_ERR_PLUGIN_MANIFEST_INVALID', message: /a link that leads out of the plugin folder/ });

  t.test('another account sees the folders by name and the files relative to them', async (t) => {
    await rt.api('POST', '/api/v1/accounts', ownerToken, { name: 'tenant-a', relation: 'tenant' });
    const created = await cli(['--json', 'tokens', 'create', 'ci', '--account', 'tenant-a'], rt.as(ownerToken));
    t.equal(created.code, 0, created.stderr);
    const tenant = await rt.api('GET', '/api/v1/connectors', created.json().token);
    t.equal(tenant.status, 200);
    const text = JSON.stringify(tenant.body.quarantined);
    t.notOk(text.includes(home) || text.includes(plugins), 'no path of the runtime machine');
    const link = tenant.body.quarantined.find((q: any) => q.dir === 'key-link');
    t.match(link?.reason.details.problems[0], { file: 'connector.json', path: '/connectionSchema' });
    t.match(link?.reason.message, /^connector\.json at \/connectionSchema: names connection\.schema\.json, a link/);
    for (const connector of ['hangs-at-import', 'eats-memory-at-import']) {
      const refused = await rt.api('POST', '/api/v1/connections', created.json().token, { name: `c-${connector}`, connector, config: {} });
      t.match(refused.body.error, { code: 'QUARK_ERR_CONNECTOR_QUARANTINED' }, `a connection of ${connector} is refused: quarantined`);
      const said = JSON.stringify(refused.body);
      t.notOk(said.includes(home) || said.includes(plugins), 'the refusal names no path of the runtime machine');
    }
  });
});
