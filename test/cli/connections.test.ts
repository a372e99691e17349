import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { cli, initHome, startRuntime, tempDir } from '../helpers/quark.js';

/** A loopback port nothing listens on: taken from the OS, then released. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

t.test('connections through the CLI: typed --set, --set-json, messages, did you mean, JSON errors, --json shapes', async (t) => {
  const { home, ownerToken } = await initHome(t);
  const rt = await startRuntime(t, home);
  const env = rt.as(ownerToken);
  const dir = tempDir(t);

  t.test('--set values are typed by the connector schema: digits stay text in a text field', async (t) => {
    const s3 = await cli(['--json', 'connections', 'create', 's3', '--connector', 'amazon-s3', '--set', 'awsAccessKey=12345678', '--set', 'awsSecretKey=1234', '--set', 'bucket=123', '--set', 'region=eu-west-1', '--set', 'multipartThresholdMb=64'], env);
    t.equal(s3.code, 0, s3.stderr);
    t.equal(s3.json().config.awsAccessKey, '12345678');
    t.equal(s3.json().config.bucket, '123');
    t.equal(s3.json().config.multipartThresholdMb, 64, 'an integer field takes the text as a number');
    t.equal(s3.json().secrets['/awsSecretKey'], true, 'a secret of digits is accepted as text');

    const files = await cli(['--json', 'connections', 'create', 'files', '--connector', 'local-files', '--set', `folder=${dir}`, '--set', 'createFolder=true', '--set-json', 'minFreeSpace=7'], env);
    t.equal(files.code, 0, files.stderr);
    t.same([files.json().config.createFolder, files.json().config.minFreeSpace], [true, 7]);

    const updated = await cli(['--json', 'connections', 'update', 'files', '--merge', '--set', 'minFreeSpace=8'], env);
    t.equal(updated.code, 0, updated.stderr);
    t.equal(updated.json().config.minFreeSpace, 8, 'update --set is typed by the connection\'s connector');

    const notNumber = await cli(['connections', 'create', 'f2', '--connector', 'local-files', '--set', `folder=${dir}`, '--set', 'minFreeSpace=lots'], env);
    t.equal(notNumber.code, 2);
    t.match(notNumber.stderr, /\/minFreeSpace: "Minimum free space" must be a whole number\n/);

    const badJson = await cli(['connections', 'create', 'f3', '--connector', 'local-files', '--set', `folder=${dir}`, '--set-json', 'minFreeSpace={nope'], env);
    t.equal(badJson.code, 2);
    t.match(badJson.stderr, /QUARK_ERR_CLI_INPUT_INVALID: --set-json minFreeSpace is not valid JSON: line 1, column 2/);
  });

  t.test('validation messages name fields by their title', async (t) => {
    const s3 = await cli(['connections', 'create', 'nokey', '--connector', 'amazon-s3', '--set', 'awsSecretKey=x', '--set', 'bucket=my-bucket'], env);
    t.equal(s3.code, 2);
    t.match(s3.stderr, /^error QUARK_ERR_CONNECTION_INVALID: the configuration is not valid for connector "amazon-s3": "AWS access key" is required \(\/awsAccessKey\)\n/);
    t.match(s3.stderr, /\n {2}- \/awsAccessKey: "AWS access key" is required\n/);
    const files = await cli(['connections', 'create', 'rel', '--connector', 'local-files', '--set', 'folder=relative/path'], env);
    t.equal(files.code, 2);
    t.match(files.stderr, /\n {2}- \/folder: "Folder" must be an absolute path\n/);
    const json = await cli(['--json', 'connections', 'create', 'rel', '--connector', 'local-files', '--set', 'folder=relative/path'], env);
    t.same(json.json().error.details.problems, [{ path: '/folder', message: '"Folder" must be an absolute path', keyword: 'pattern' }], 'pointer and keyword for machines');
  });

  t.test('an unknown connector id gets a suggestion', async (t) => {
    for (const args of [['--set', `folder=${dir}`], ['--set-json', `folder="${dir}"`]]) {
      const typo = await cli(['connections', 'create', 'typo', '--connector', 'local-file', ...args], env);
      t.equal(typo.code, 7);
      t.match(typo.stderr, /QUARK_ERR_CONNECTOR_NOT_FOUND: no connector "local-file" is loaded on this runtime \(did you mean "local-files"\?\)/);
    }
    const far = await cli(['connections', 'create', 'typo', '--connector', 'salesforce', '--set-json', 'a=1'], env);
    t.notMatch(far.stderr, /did you mean/, 'no suggestion when nothing is close');
  });

  t.test('a --file that is not JSON: line and column, and nothing of its content', async (t) => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{\n  "folder": "/tmp/s3cr3t-looking-value",\n  "createFolder": tru\n}\n');
    const bad = await cli(['connections', 'create', 'bad', '--connector', 'local-files', '--file', file], env);
    t.equal(bad.code, 2);
    t.match(bad.stderr, `error QUARK_ERR_CLI_INPUT_INVALID: ${file} is not valid JSON: line 3, column 19: `);
    t.notMatch(bad.stderr, /s3cr3t/, 'the file\'s content is not quoted');
    const stdin = await cli(['connections', 'create', 'bad', '--connector', 'local-files', '--file', '-'], env, '{"folder": "/tmp"\n');
    t.equal(stdin.code, 2);
    t.match(stdin.stderr, /standard input is not valid JSON: line 2, column 1: expected ',' or '}' after property value\n {2}- standard input: line 2/);
  });

  t.test('--json prints the API\'s object for every list', async (t) => {
    const lists = [
      ['connections', 'list'],
      ['deployments', 'list'],
      ['executions', 'list'],
      ['accounts', 'list'],
      ['tokens', 'list'],
    ];
    for (const args of lists) {
      const listed = await cli(['--json', ...args], env);
      t.equal(listed.code, 0, listed.stderr);
      const body = listed.json();
      t.notOk(Array.isArray(body), `${args[0]} list is an object`);
      t.ok(Array.isArray(body[args[0]!]), `${args[0]} list has {${args[0]}: [...]}`);
    }
  });
});

t.test('login: a URL without a scheme is a usage error; unreachable and wrong-scheme URLs say what to do', async (t) => {
  const { home, ownerToken } = await initHome(t);
  const rt = await startRuntime(t, home);
  const profile = { QUARK_PROFILE: join(tempDir(t), 'profile.json') };
  const hostPort = rt.url.replace(/^http:\/\//, '');

  const bare = await cli(['login', '--url', hostPort, '--token', ownerToken], profile);
  t.equal(bare.code, 2, 'a usage error');
  t.match(bare.stderr, `--url must be an http:// or https:// URL, such as http://${hostPort}; got "${hostPort}"`);

  const tls = await cli(['login', '--url', `https://${hostPort}`, '--token', ownerToken], profile);
  t.equal(tls.code, 9);
  t.match(tls.stderr, `cannot reach the runtime at https://${hostPort}: it does not answer HTTPS (the TLS handshake failed); if the runtime serves plain HTTP, log in with --url http://${hostPort}`);

  const port = await closedPort();
  const down = await cli(['login', '--url', `http://127.0.0.1:${port}`, '--token', ownerToken], profile);
  t.equal(down.code, 9);
  t.match(down.stderr, /nothing listens there \(connection refused\); is the runtime running\? Start it with quark start/);

  const ok = await cli(['login', '--url', `${rt.url}/`, '--token', ownerToken], profile);
  t.equal(ok.code, 0, ok.stderr);
});

t.test('test-connection with --set as an account the runtime is not associated with: refused first, exit 6', async (t) => {
  const { home, ownerToken } = await initHome(t, { kind: 'cloud' });
  const rt = await startRuntime(t, home);
  // a folder of its own: /tmp holds the home, which a cloud runtime's plugin host may not be given
  const folder = tempDir(t, 'quark-files-');
  t.equal((await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'owners', connector: 'local-files', config: { folder } })).status, 201);
  await rt.api('POST', '/api/v1/accounts', ownerToken, { name: 'tenant-co', relation: 'tenant' });
  await rt.api('POST', '/api/v1/accounts', ownerToken, { name: 'guest-co', relation: 'guest' });
  const tenant = (await rt.api('POST', '/api/v1/tokens', ownerToken, { name: 't', account: 'tenant-co' })).body.token;
  const guest = (await rt.api('POST', '/api/v1/tokens', ownerToken, { name: 'g', account: 'guest-co' })).body.token;
  t.equal((await rt.api('POST', '/api/v1/connections', tenant, { name: 'mine', connector: 'local-files', config: { folder } })).status, 201);

  const cases: [string, string, string[]][] = [
    ['a guest, who may not read connections', guest, ['test-connection', 'owners', '--set', 'minFreeSpace=1']],
    ['a tenant, on a connection of another account', tenant, ['test-connection', 'owners', '--set', 'minFreeSpace=1']],
    ['a tenant, on its own connection', tenant, ['test-connection', 'mine', '--set-json', 'minFreeSpace=1']],
    ['a tenant, with an unknown connector', tenant, ['test-connection', '--connector', 'nope', '--set', 'a=b']],
  ];
  for (const [who, token, args] of cases) {
    const run = await cli(args, rt.as(token));
    t.equal(run.code, 6, `${who}: ${run.stderr}`);
    t.match(run.stderr, /QUARK_ERR_RUNTIME_NOT_ASSOCIATED/, who);
  }
  const owner = await cli(['test-connection', 'owners', '--set', 'minFreeSpace=1'], rt.as(ownerToken));
  t.equal(owner.code, 0, owner.stderr);
  t.match(owner.stdout, /Test Connection OK/);
});
