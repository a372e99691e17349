// `quark run --stream` and `--output`: the streamed answer of the API, each output document
// printed or written as it comes; a body larger than one line arrives in parts, written to
// its file part by part.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, fixturePlugins, initHome, startRuntime, tempDir } from '../helpers/quark.js';

t.test('quark run --stream prints each output document, --output writes them whole (a 2 MiB spilled body in parts), --json passes the lines on', async (t) => {
  const { home, ownerToken } = await initHome(t, { config: { plugins: { paths: [join(fixturePlugins, 'process-kit')] }, limits: { spillBytes: 65536 } } });
  const rt = await startRuntime(t, home);
  const as = rt.as(ownerToken);
  t.equal((await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'kit', connector: 'process-kit', config: {} })).status, 201);
  const dir = tempDir(t);
  const definition = join(dir, 'copy.json');
  writeFileSync(definition, JSON.stringify({ id: 'copy', name: 'copy', start: { kind: 'documents', next: 'echo' }, steps: [{ id: 'echo', kind: 'operation', connection: 'kit', operation: 'echo', parameters: { tag: 'c' } }] }));
  t.equal((await cli(['deploy', definition], as)).code, 0);
  const big = join(dir, 'big.bin');
  writeFileSync(big, Buffer.concat(Array.from({ length: 2048 }, (_, i) => Buffer.alloc(1024, i % 253))));
  const small = join(dir, 'small.txt');
  writeFileSync(small, 'small one');

  const out = join(dir, 'out');
  const run = await cli(['run', 'copy', '--doc', big, '--doc', small, '--stream', '--output', out], as);
  t.equal(run.code, 0, run.stderr);
  t.match(run.stdout, /document 1: properties \{"echo.tag":"c","echo.copy":"0"\}\n\s+body \(2097152 bytes, in 3 parts\)/);
  t.match(run.stdout, /document 2: properties .*\n\s+body \(9 bytes\): small one/);
  t.match(run.stdout, /status\s+complete/);
  t.match(run.stdout, /2 output document\(s\) written to/);
  t.ok(readFileSync(join(out, 'output-1')).equals(readFileSync(big)), 'the large body written whole, from its parts');
  t.equal(readFileSync(join(out, 'output-2'), 'utf8'), 'small one');
  t.same(JSON.parse(readFileSync(join(out, 'output-2.properties.json'), 'utf8')), { 'echo.tag': 'c', 'echo.copy': '0' });

  const json = await cli(['--json', 'run', 'copy', '--doc', small, '--stream'], as);
  t.equal(json.code, 0, json.stderr);
  const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l));
  t.same(lines.map((l) => l.type), ['execution', 'document', 'end'], 'the lines as the API streamed them');
  t.equal(Buffer.from(lines[1].body, 'base64').toString(), 'small one');

  const missing = await cli(['run', 'nope', '--stream'], as);
  t.equal(missing.code, 7, 'an unknown process: the usual not-found exit');
  t.match(missing.stderr, /QUARK_ERR_PROCESS_NOT_FOUND/);
});
