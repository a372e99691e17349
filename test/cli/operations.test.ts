import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, fixturePlugins, initHome, startRuntime, tempDir } from '../helpers/quark.js';

t.test('quark operations run: parameters typed by the schema, documents from files, results, output documents and errors', async (t) => {
  const { home, ownerToken } = await initHome(t, { config: { plugins: { paths: [join(fixturePlugins, 'process-kit')] } } });
  const rt = await startRuntime(t, home);
  const as = rt.as(ownerToken);
  t.equal((await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'kit', connector: 'process-kit', config: {} })).status, 201);
  const dir = tempDir(t);
  const binary = join(dir, 'input.bin');
  writeFileSync(binary, Buffer.from([0, 1, 2, 0xff, 0xfe, 0x41]));
  const text = join(dir, 'input.txt');
  writeFileSync(text, 'hello operations');

  const run = await cli(['operations', 'run', 'kit', 'echo', '--param', 'tag=hi', '--param', 'times=2', '--doc', text, '--doc', binary, '--property', 'p=v'], as);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /operation\s+echo \(process-kit\) on kit/);
  t.match(run.stdout, /results\s+2: 2 success, 0 not/);
  t.match(run.stdout, /documents out\s+4/);
  t.match(run.stdout, /1 ✔ success\n\s+document 1: properties \{"echo.tag":"hi","echo.copy":"0"\}\n\s+body \(16 bytes\): hello operations/, 'a text body as text');
  t.match(run.stdout, /body \(6 bytes, binary\): 00 01 02 ff fe 41/, 'a binary body as size and hex');

  const out = join(dir, 'out');
  const json = await cli(['--json', 'operations', 'run', 'kit', 'echo', '--param', 'tag=x', '--doc', binary, '--output', out], as);
  t.equal(json.code, 0, json.stderr);
  const answer = json.json();
  t.equal(answer.results.length, 1);
  t.equal(answer.results[0].status, 'success');
  t.same(readFileSync(join(out, 'output-1')), readFileSync(binary), '--output writes the body as it came');
  t.same(JSON.parse(readFileSync(join(out, 'output-1.properties.json'), 'utf8')), { 'echo.tag': 'x', 'echo.copy': '0' });

  const bad = await cli(['operations', 'run', 'kit', 'echo', '--param', 'tag=x', '--param', 'times=many'], as);
  t.equal(bad.code, 2, 'bad parameters: exit 2');
  t.match(bad.stderr, /QUARK_ERR_OPERATION_INVALID_PARAMETERS/);
  t.match(bad.stderr, /\/times/, 'with the parameter');
  const typed = await cli(['operations', 'run', 'kit', 'echo', '--param-json', 'tag="1"'], as);
  t.equal(typed.code, 0, `--param-json: ${typed.stderr}`);

  const marker = join(dir, 'flaky-marker');
  const failed = await cli(['operations', 'run', 'kit', 'flaky', '--param', `marker=${marker}`], as);
  t.equal(failed.code, 1, 'a failed result: exit 1');
  t.match(failed.stdout, /1 ✖ failure( \S+)?: flaky: the first attempt fails/, 'the failure with its message');
  t.ok(existsSync(marker));

  const unknown = await cli(['operations', 'run', 'kit', 'nope'], as);
  t.equal(unknown.code, 7, 'an unknown operation: not found');
  t.match(unknown.stderr, /QUARK_ERR_OPERATION_NOT_FOUND/);
});
