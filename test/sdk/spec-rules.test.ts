import t from 'tap';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lintConnector, secretNameClass, CannotLintError, type SpecProblem } from '../../runtime/sdk/testing/index.js';
import { root, tempDir } from '../helpers/quark.js';
import { RUNTIME_API_VERSION } from '../../runtime/sdk/index.js';

const fixtures = join(root, 'test', 'fixtures', 'connectors-lint');
const lint = (name: string, previous?: string) => lintConnector(join(fixtures, name), previous ? { previous: join(fixtures, previous) } : {});
const brief = (problems: SpecProblem[]) => problems.map((p) => [p.file.slice(fixtures.length + 1), p.path, p.rule]);

t.test('the secret-name rule: secrets by name, identifiers not, S3 right', async (t) => {
  for (const name of ['password', 'proxyPassword', 'awsSecretKey', 'apiKey', 'api_key', 'privateKey', 'clientSecret', 'accessToken', 'passphrase', 'signingKey', 'PIN']) {
    t.equal(secretNameClass(name), 'secret', `${name} sounds like a secret`);
  }
  for (const name of ['awsAccessKey', 'accessKeyId', 'keyId', 'publicKey', 'username', 'proxyUser', 'tokenUrl', 'secretName', 'passwordFile', 'partitionKey', 'region', 'endpoint']) {
    t.equal(secretNameClass(name), 'public', `${name} names an identifier`);
  }
  for (const name of ['bucket', 'spinner', 'folder', 'greeting']) t.equal(secretNameClass(name), 'neutral', `${name} says nothing`);
});

t.test("quark's own connectors and the scaffold's fixture follow every rule", async (t) => {
  for (const id of ['local-files', 'amazon-s3']) {
    const result = lintConnector(join(root, 'dist', 'connectors', id));
    t.same(result.problems, [], `${id} has no problems`);
  }
  t.same(lint('good').problems, [], 'the good fixture (with an "x-secret": false opt-out on tokenAudience) has none');
});

t.test('each fixture made to have a problem has exactly that problem, with file and pointer', async (t) => {
  const expected: Record<string, [string, string, string][]> = {
    'unmarked-secret': [['unmarked-secret/connection.schema.json', '/properties/password', 'secret-name']],
    'secret-access-key': [['secret-access-key/connection.schema.json', '/properties/awsAccessKey/x-secret', 'secret-name']],
    'bad-default': [['bad-default/connection.schema.json', '/properties/port/default', 'default']],
    'enum-duplicate': [['enum-duplicate/connection.schema.json', '/properties/mode/enum/2', 'enum']],
    'enum-unlabelled': [['enum-unlabelled/connection.schema.json', '/properties/mode/enum', 'enum']],
    'dangling-ref': [['dangling-ref/connection.schema.json', '/properties/host/$ref', 'ref']],
    'duplicate-order': [['duplicate-order/connection.schema.json', '/properties/username/x-order', 'order']],
    'unknown-kind': [['unknown-kind/connector.json', '/operations/0/kind', 'manifest']],
    'incompatible-api': [['incompatible-api/connector.json', '/runtimeApi', 'runtime-api']],
    'bad-manifest': [
      ['bad-manifest/connector.json', '/testConnection', 'manifest'],
      ['bad-manifest/connector.json', '/version', 'manifest'],
    ],
    'not-json': [['not-json/connection.schema.json', '', 'json']],
  };
  for (const [name, problems] of Object.entries(expected)) {
    t.same(brief(lint(name).problems), problems, name);
  }
  t.match(lint('unknown-kind').problems[0]!.message, /^"kind" must be one of the 8 allowed values, such as "get", "query"/);
  t.match(lint('incompatible-api').problems[0]!.message, new RegExp(`needs runtime API \\^2\\.0\\.0.*offers ${RUNTIME_API_VERSION.replaceAll('.', '\\.')}$`));
});

t.test('--previous: saved connections of the previous version must still validate', async (t) => {
  const result = lint('incompatible-v2', 'good');
  t.same(
    result.problems.map((p) => [p.path, p.rule]),
    [
      ['/properties/username', 'compatibility'],
      ['/required', 'compatibility'],
      ['/properties/port/type', 'compatibility'],
      ['/properties/mode/enum', 'compatibility'],
    ],
  );
  t.match(result.problems[1]!.message, /"region" is newly required and has no default/);
  t.notMatch(result.problems.map((p) => p.message).join('\n'), /"mode" is newly required/, 'a newly required field with a default is fine');
  t.same(lint('incompatible-v2').problems, [], 'without --previous the same folder is fine');
  t.same(lint('good', 'good').problems, [], 'a version compared with itself is compatible');
});

t.test('a folder that is not a connector cannot be linted', async (t) => {
  t.throws(() => lintConnector(join(fixtures, 'no-such-folder')), CannotLintError);
  t.throws(() => lintConnector(fixtures), /has no connector.json/);
});

t.test('--previous: closing a schema to unknown fields and removing an operation are incompatible', async (t) => {
  const work = tempDir(t);
  const before = join(work, 'v1');
  const after = join(work, 'v2');
  cpSync(join(fixtures, 'good'), before, { recursive: true });
  cpSync(join(fixtures, 'good'), after, { recursive: true });
  const schemaFile = join(before, 'connection.schema.json');
  const open = JSON.parse(readFileSync(schemaFile, 'utf8'));
  delete open.additionalProperties;
  writeFileSync(schemaFile, JSON.stringify(open));
  const manifestFile = join(after, 'connector.json');
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
  manifest.operations = [];
  writeFileSync(manifestFile, JSON.stringify(manifest));
  const result = lintConnector(after, { previous: before });
  t.same(
    result.problems.map((p) => [p.file.slice(work.length + 1), p.path, p.rule]),
    [
      ['v2/connection.schema.json', '/additionalProperties', 'compatibility'],
      ['v2/connector.json', '/operations', 'compatibility'],
    ],
  );
  t.match(result.problems[1]!.message, /operation "fetch" was removed/);
});
