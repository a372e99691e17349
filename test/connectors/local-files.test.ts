import t from 'tap';
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cli, initHome, startRuntime, tempDir } from '../helpers/quark.js';

t.test('the built-in local-files connector: Test Connection tells apart a missing, an unwritable and a good folder', async (t) => {
  const { home, ownerToken } = await initHome(t);
  const rt = await startRuntime(t, home);
  const dir = tempDir(t);
  const test = (config: Record<string, unknown>) => rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'local-files', config });

  const good = await test({ folder: dir });
  t.equal(good.body.status, 'ok');
  t.same(good.body.checks.map((c: any) => [c.id, c.status]), [['folder', 'ok'], ['read', 'ok'], ['write', 'ok'], ['space', 'ok']]);

  const missing = await test({ folder: join(dir, 'missing') });
  t.equal(missing.body.status, 'failed');
  t.match(missing.body.checks[0].message, /it does not exist; create it or fix the path, or turn on "Create folder"/);

  const created = await test({ folder: join(dir, 'made', 'here'), createFolder: true });
  t.equal(created.body.status, 'ok', 'createFolder creates it');

  const tight = await test({ folder: dir, minFreeSpace: 1_000_000_000 });
  t.equal(tight.body.status, 'warning', 'low free space is a warning, not a failure');
  const warnRun = await cli(['test-connection', '--connector', 'local-files', '--set', `folder=${dir}`, '--set', 'minFreeSpace=1000000000'], rt.as(ownerToken));
  t.equal(warnRun.code, 3, 'warning has its own exit code');

  if (process.getuid?.() !== 0) {
    const locked = join(dir, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o500);
    const unwritable = await test({ folder: locked });
    t.equal(unwritable.body.checks.find((c: any) => c.id === 'write').status, 'failed');
  }

  const relative = await test({ folder: 'relative/path' });
  t.equal(relative.status, 400, 'the schema is checked before anything runs');
  t.equal(relative.body.error.details.problems[0].path, '/folder');
});
