import t from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cli, root, tempDir } from '../helpers/quark.js';

const fixtures = join(root, 'test', 'fixtures', 'connectors-lint');

t.test('quark connector validate: exit codes 0 / 1 / 2, problems with file and pointer, --json', async (t) => {
  const good = await cli(['connector', 'validate', join(fixtures, 'good')]);
  t.equal(good.code, 0, good.stderr);
  t.match(good.stdout, /lint-good 1\.0\.0: no problems/);

  const bad = await cli(['connector', 'validate', join(fixtures, 'unmarked-secret')]);
  t.equal(bad.code, 1);
  t.match(bad.stdout, /connection\.schema\.json \/properties\/password: "password" sounds like a secret.*\[secret-name\]/);

  const json = await cli(['--json', 'connector', 'validate', join(fixtures, 'incompatible-v2'), '--previous', join(fixtures, 'good')]);
  t.equal(json.code, 1);
  const body = json.json();
  t.equal(body.ok, false);
  t.equal(body.problems.length, 4);
  t.match(body.problems[0], { file: join(fixtures, 'incompatible-v2', 'connection.schema.json'), path: '/properties/username', rule: 'compatibility' });

  const missing = await cli(['connector', 'validate', join(fixtures, 'no-such-folder')]);
  t.equal(missing.code, 2, 'cannot run: not a folder');
  t.match(missing.stderr, /is not a folder/);
  const notConnector = await cli(['--json', 'connector', 'validate', fixtures]);
  t.equal(notConnector.code, 2, 'cannot run: no connector.json');
  t.equal(notConnector.json().error.code, 'QUARK_ERR_CLI_INPUT_INVALID');

  for (const name of readdirSync(fixtures).filter((n) => n !== 'good' && n !== 'incompatible-v2')) {
    const r = await cli(['connector', 'validate', join(fixtures, name)]);
    t.equal(r.code, 1, `${name} has a problem`);
  }
});

t.test('quark connector new writes a folder that validates', async (t) => {
  const parent = tempDir(t);
  const made = await cli(['--json', 'connector', 'new', 'acme-widgets', '--dir', parent]);
  t.equal(made.code, 0, made.stderr);
  t.same(made.json().files.sort(), ['.gitignore', 'README.md', 'connection.schema.json', 'connector.json', 'index.js', 'jsconfig.json', 'operations/greet.schema.json', 'package.json', 'test/connector.test.js']);
  const check = await cli(['connector', 'validate', join(parent, 'acme-widgets')]);
  t.equal(check.code, 0, check.stdout);

  const again = await cli(['connector', 'new', 'acme-widgets', '--dir', parent]);
  t.equal(again.code, 2, 'refuses a folder that is not empty');
  const badId = await cli(['connector', 'new', 'Acme_Widgets', '--dir', parent]);
  t.equal(badId.code, 2, 'refuses an id that is not valid');
  t.match(badId.stderr, /is not a connector id/);
});
