// A cloud runtime runs plugin code in the plugin host process by default (isolation
// "process"; atom and molecule keep "threads"; explicit config wins), and the host is
// granted the folders of the connections' fields marked x-local-path: the local-files
// connector reads and writes its folder there, a hostile plugin still cannot read the
// master key, and a folder that would give the host the master key is refused when the
// connection is saved. Through the real CLI runtime as a child process.
import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fixturePlugins, initHome, startRuntime } from '../helpers/quark.js';
import { isolationOf } from '../../runtime/home/index.js';

t.test('the isolation default per kind; explicit config wins', async (t) => {
  t.equal(isolationOf({ kind: 'cloud' }), 'process');
  t.equal(isolationOf({ kind: 'atom' }), 'threads');
  t.equal(isolationOf({ kind: 'molecule' }), 'threads');
  t.equal(isolationOf({ kind: 'cloud', isolation: 'threads' }), 'threads');
  t.equal(isolationOf({ kind: 'atom', isolation: 'process' }), 'process');
  t.equal(isolationOf({ kind: 'atom', isolation: 'threads-only' }), 'threads-only');
});

t.test('a cloud runtime with its default isolation: local folders granted, the master key not', async (t) => {
  const outside = mkdtempSync(join(tmpdir(), 'quark-cloud-folders-'));
  t.teardown(() => rmSync(outside, { recursive: true, force: true }));
  const { home, ownerToken } = await initHome(t, { kind: 'cloud', config: { plugins: { paths: [join(fixturePlugins, 'hostile')] } } });
  const rt = await startRuntime(t, home);
  const create = (name: string, config: Record<string, unknown>) => rt.api('POST', '/api/v1/connections', ownerToken, { name, connector: 'local-files', config });
  const test = async (name: string) => (await rt.api('POST', `/api/v1/connections/${name}/test`, ownerToken, {})).body;
  const hostile = async (path: string) => {
    const answer = await rt.api('POST', '/api/v1/connections/bad/operations/read', ownerToken, { parameters: { path }, documents: [{}] });
    t.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body.results[0];
  };
  t.equal((await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'bad', connector: 'hostile', config: { token: 'hostile-token-1234' } })).status, 201);

  t.test('plugin code runs in the plugin host: reading master.key is refused', async (t) => {
    t.match(await hostile(join(home, 'master.key')), { status: 'application-error', code: 'ERR_ACCESS_DENIED' });
  });

  const inbox = join(outside, 'inbox');
  mkdirSync(inbox);
  t.test('a local-files connection reads and writes its folder (Test Connection lists it, writes and deletes a file, sums its free space)', async (t) => {
    const created = await create('inbox', { folder: inbox });
    t.equal(created.status, 201, JSON.stringify(created.body));
    const tested = await test('inbox');
    t.equal(tested.status, 'ok', JSON.stringify(tested));
    t.same(tested.checks.map((c: { id: string; status: string }) => [c.id, c.status]), [['folder', 'ok'], ['read', 'ok'], ['write', 'ok'], ['space', 'ok']]);
    t.same(readdirSync(inbox), [], 'its probe file was written and deleted');
  });

  t.test('a folder that does not exist yet is created there ("Create folder")', async (t) => {
    const fresh = join(outside, 'made', 'deeper');
    t.equal((await create('made', { folder: fresh, createFolder: true })).status, 201);
    t.equal((await test('made')).status, 'ok');
    t.ok(existsSync(fresh), 'the host created it');
  });

  t.test('a connection changed to another folder works there (a new host, granted the new folder)', async (t) => {
    const other = join(outside, 'other');
    mkdirSync(other);
    const changed = await rt.api('PUT', '/api/v1/connections/inbox', ownerToken, { config: { folder: other } });
    t.equal(changed.status, 200, JSON.stringify(changed.body));
    t.equal((await test('inbox')).status, 'ok');
    t.match(rt.output(), /a plugin host starts for a set of local folders/);
  });

  t.test('an unsaved configuration is tested in its folder too', async (t) => {
    const loose = join(outside, 'loose');
    mkdirSync(loose);
    const answer = await rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'local-files', config: { folder: loose } });
    t.equal(answer.body.status, 'ok', JSON.stringify(answer.body));
  });

  t.test('the hostile plugin still cannot read master.key after the grants', async (t) => {
    t.match(await hostile(join(home, 'master.key')), { status: 'application-error', code: 'ERR_ACCESS_DENIED' });
    t.match(await hostile(join(home, 'quark.db')), { status: 'application-error', code: 'ERR_ACCESS_DENIED' });
  });

  for (const [what, folder] of [['the home (master.key, quark.db)', () => home], ['the file system root', () => '/'], ['a plugin folder (read-write)', () => join(fixturePlugins, 'hostile')]] as const) {
    t.test(`a folder that is ${what} is refused when saved: QUARK_ERR_CONNECTION_FOLDER_REFUSED`, async (t) => {
      const refused = await create(`refused-${readdirSync(outside).length}`, { folder: folder() });
      t.equal(refused.status, 400, JSON.stringify(refused.body));
      t.match(refused.body.error, { code: 'QUARK_ERR_CONNECTION_FOLDER_REFUSED', details: { problems: [{ path: '/folder' }] } });
    });
  }

  t.test('an unsaved configuration on the home is refused before any task runs', async (t) => {
    const answer = await rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'local-files', config: { folder: home } });
    t.match(JSON.stringify(answer.body), /QUARK_ERR_CONNECTION_FOLDER_REFUSED/);
    t.equal((await rt.api('GET', '/healthz')).status, 200);
  });
});
