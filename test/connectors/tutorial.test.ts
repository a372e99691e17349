/**
 * Follows docs/connectors.md step by step: scaffold, validate, run the generated test,
 * load the connector from a plugin folder, and run it in a deployed process.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, initHome, root, startRuntime, tempDir } from '../helpers/quark.js';

t.test('the connector tutorial, from connector new to a deployed process', async (t) => {
  const plugins = tempDir(t, 'quark-tutorial-');
  const dir = join(plugins, 'acme-greeter');

  // 1. scaffold
  const made = await cli(['connector', 'new', 'acme-greeter', '--dir', plugins]);
  t.equal(made.code, 0, made.stderr);
  t.match(made.stdout, /created .*acme-greeter/);

  // 2. validate
  const valid = await cli(['connector', 'validate', dir]);
  t.equal(valid.code, 0, valid.stdout);
  t.match(valid.stdout, /acme-greeter 0\.1\.0: no problems/);

  // 3. its own test, as `npm install && npm test` would run it (offline: links instead of the registry)
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'quark'), 'dir');
  symlinkSync(join(root, 'node_modules', 'tap'), join(dir, 'node_modules', 'tap'), 'dir');
  mkdirSync(join(dir, 'node_modules', '@types'));
  symlinkSync(join(root, 'node_modules', 'typescript'), join(dir, 'node_modules', 'typescript'), 'dir');
  symlinkSync(join(root, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'), 'dir');
  const types = spawnSync(process.execPath, [join('node_modules', 'typescript', 'bin', 'tsc'), '-p', 'jsconfig.json'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  t.equal(types.status, 0, `npm run typecheck: the JSDoc types hold against quark/sdk\n${types.stdout}${types.stderr}`);
  const own = spawnSync(process.execPath, [join('test', 'connector.test.js')], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  t.equal(own.status, 0, `the generated test passes:\n${own.stdout.slice(-2000)}${own.stderr}`);
  t.match(own.stdout, /ok \d+ - operation:greet: operation greet answered each of 2 documents with exactly one result/);
  t.notMatch(own.stdout, /not ok/);

  // 4. load it from a plugin folder into a runtime
  const { home, ownerToken } = await initHome(t, { config: { plugins: { paths: [plugins] } } });
  const rt = await startRuntime(t, home);
  const env = rt.as(ownerToken);
  const listed = await cli(['--json', 'connectors', 'list'], env);
  t.equal(listed.code, 0, listed.stderr);
  const list = listed.json();
  t.match(list.loaded.find((c: any) => c.id === 'acme-greeter'), { id: 'acme-greeter', version: '0.1.0', source: 'config' });
  t.same(list.quarantined, [], 'nothing quarantined');

  // 5. a connection, tested
  const created = await cli(['connections', 'create', 'greeter', '--connector', 'acme-greeter', '--set', 'apiKey=k-tutorial-secret-1', '--set', 'style=shout'], env);
  t.equal(created.code, 0, created.stderr);
  t.notMatch(created.stdout, /k-tutorial-secret-1/, 'the secret is not shown');
  const tested = await cli(['test-connection', 'greeter'], env);
  t.equal(tested.code, 0, tested.stdout + tested.stderr);
  t.match(tested.stdout, /Test Connection OK/);

  // 6. a process that uses it, deployed and run
  const work = tempDir(t);
  const processFile = join(work, 'greet-names.json');
  writeFileSync(
    processFile,
    JSON.stringify({
      id: 'greet-names',
      name: 'Greet each name',
      start: { kind: 'documents', next: 'greet' },
      steps: [{ id: 'greet', kind: 'operation', connection: 'greeter', operation: 'greet', parameters: { punctuation: '?' } }],
    }),
  );
  const deployed = await cli(['deploy', processFile], env);
  t.equal(deployed.code, 0, deployed.stderr);
  t.match(deployed.stdout, /deployed greet-names version 1/);
  writeFileSync(join(work, 'name.txt'), 'Ada');
  const out = join(work, 'out');
  const ran = await cli(['run', 'greet-names', '--doc', join(work, 'name.txt'), '--output', out], env);
  t.equal(ran.code, 0, ran.stdout + ran.stderr);
  t.equal(readFileSync(join(out, 'output-1'), 'utf8'), 'HELLO, ADA?');
  t.match(JSON.parse(readFileSync(join(out, 'output-1.properties.json'), 'utf8')), { 'greeting.length': '11' });
  t.notMatch(rt.output(), /k-tutorial-secret-1/, 'the secret never reaches the runtime log');
});
