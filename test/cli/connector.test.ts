import t from 'tap';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import semver from 'semver';
import { join } from 'node:path';
import { lintConnector } from 'quark/sdk/testing';
import { probeConnectorFolder } from '../../runtime/index.js';
import { cli, root, tempDir } from '../helpers/quark.js';

const fixtures = join(root, 'test', 'fixtures', 'connectors-lint');
const quarkVersion = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

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

  // every other fixture has a problem: what the command checks (the spec rules, then the
  // loader's import probe), called in-process; the exit code of a problem is shown above
  for (const name of readdirSync(fixtures).filter((n) => n !== 'good' && n !== 'incompatible-v2')) {
    const dir = join(fixtures, name);
    const problems = [...lintConnector(dir).problems, ...(await probeConnectorFolder(dir))];
    t.ok(problems.length > 0, `${name} has a problem`);
  }
});

t.test('quark connector validate refuses what a runtime would quarantine: the module is imported in a worker', async (t) => {
  const dir = join(fixtures, 'missing-handler');
  t.same(lintConnector(dir).problems, [], 'the spec rules alone find nothing: only importing the module does');
  const human = await cli(['connector', 'validate', dir]);
  t.equal(human.code, 1, human.stdout + human.stderr);
  t.match(human.stdout, /lint-missing-handler: 1 problem\n.*index\.js \/: .*no handler for operation\(s\) fetch declared in connector\.json \[QUARK_ERR_PLUGIN_MODULE_INVALID\] \[loader\]/);
  const json = await cli(['--json', 'connector', 'validate', dir]);
  t.match(json.json(), { ok: false, problems: [{ file: join(dir, 'index.js'), path: '', rule: 'loader', message: /no handler for operation\(s\) fetch/ }] });

  // a module that throws when imported, or is not a connector at all
  const broken = tempDir(t);
  cpSync(join(fixtures, 'good'), broken, { recursive: true });
  writeFileSync(join(broken, 'index.js'), "throw new Error('needs a database at import');\n");
  const threw = await cli(['--json', 'connector', 'validate', broken]);
  t.equal(threw.code, 1);
  t.match(threw.json().problems, [{ rule: 'loader', message: /importing .*index\.js failed: needs a database at import \[QUARK_ERR_PLUGIN_IMPORT_FAILED\]/ }]);
  writeFileSync(join(broken, 'index.js'), 'export default { operations: {} };\n');
  const plain = await cli(['--json', 'connector', 'validate', broken]);
  t.match(plain.json().problems, [{ rule: 'loader', message: /no default export made with defineConnector/ }]);
});

t.test('quark connector new writes a folder that validates', async (t) => {
  const parent = tempDir(t);
  const made = await cli(['--json', 'connector', 'new', 'acme-widgets', '--dir', parent]);
  t.equal(made.code, 0, made.stderr);
  t.same(made.json().files.sort(), ['.gitignore', 'README.md', 'connection.schema.json', 'connector.json', 'index.js', 'jsconfig.json', 'operations/greet.schema.json', 'package.json', 'test/connector.test.js']);
  const check = await cli(['connector', 'validate', join(parent, 'acme-widgets')]);
  t.equal(check.code, 0, check.stdout);

  // the folder works on any machine: no path of this one in what it writes
  for (const file of made.json().files as string[]) {
    const text = readFileSync(join(parent, 'acme-widgets', file), 'utf8');
    t.notOk(text.includes(root), `${file} names no folder of this machine`);
    t.notMatch(text, /"file:/, `${file} has no file: dependency`);
  }
  const manifest = JSON.parse(readFileSync(join(parent, 'acme-widgets', 'package.json'), 'utf8'));
  t.notOk('quark' in (manifest.dependencies ?? {}) || 'quark' in (manifest.devDependencies ?? {}), 'npm install does not fetch the registry\'s unrelated "quark"');
  t.ok(semver.satisfies(quarkVersion, manifest.peerDependencies.quark), `the peer range ${manifest.peerDependencies.quark} accepts this quark ${quarkVersion}`);
  t.same(manifest.peerDependenciesMeta, { quark: { optional: true } });

  const again = await cli(['connector', 'new', 'acme-widgets', '--dir', parent]);
  t.equal(again.code, 2, 'refuses a folder that is not empty');
  const badId = await cli(['connector', 'new', 'Acme_Widgets', '--dir', parent]);
  t.equal(badId.code, 2, 'refuses an id that is not valid');
  t.match(badId.stderr, /is not a connector id/);
});
