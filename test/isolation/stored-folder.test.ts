// A connection saved with a folder that today's rules refuse (saved before the rule: here,
// saved on the home in isolation "threads", then the runtime moved to "process") is said
// at start, at error level, counted by quark_load_problems and shown by `connections show`
// and the API with its reason; the start goes on, and its tasks fail with the refusal.
// Through the real CLI runtime as a child process.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, initHome, startRuntime, untilOutput } from '../helpers/quark.js';

t.test('a stored connection whose folder is refused now is reported at start, never stopping it', async (t) => {
  const { home, ownerToken } = await initHome(t, { config: { isolation: 'threads' } });
  const first = await startRuntime(t, home);
  const created = await first.api('POST', '/api/v1/connections', ownerToken, { name: 'on-home', connector: 'local-files', config: { folder: home } });
  t.equal(created.status, 201, 'threads gives no folder to a host: nothing refuses it');
  t.notOk(created.body.problems, 'no problem in threads');
  await first.stop();

  const file = join(home, 'config.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), isolation: 'process' }, null, 2));
  const rt = await startRuntime(t, home);
  await untilOutput(rt, /"level":50[^\n]*"code":"QUARK_ERR_CONNECTION_FOLDER_REFUSED"[^\n]*connection \\"on-home\\" was saved with a folder that is refused now/);
  t.pass('said at start, at error level');

  const shown = await rt.api('GET', '/api/v1/connections/on-home', ownerToken);
  t.equal(shown.status, 200);
  t.match(shown.body.problems, [{ path: '/config/folder', code: 'QUARK_ERR_CONNECTION_FOLDER_REFUSED', message: /holds master\.key/ }]);
  const show = await cli(['connections', 'show', 'on-home'], rt.as(ownerToken));
  t.equal(show.code, 0, show.stderr);
  t.match(show.stdout, /problem\s+\/config\/folder QUARK_ERR_CONNECTION_FOLDER_REFUSED: /);
  t.match((await rt.api('GET', '/metrics')).body as string, /quark_load_problems\{kind="connection"\} 1/);

  const tested = await rt.api('POST', '/api/v1/connections/on-home/test', ownerToken, {});
  t.match(JSON.stringify(tested.body), /QUARK_ERR_CONNECTION_FOLDER_REFUSED/, 'its Test Connection fails with the refusal');
  t.equal((await rt.api('GET', '/healthz')).status, 200, 'the runtime answers');
});
