import t from 'tap';
import { spawnSync } from 'node:child_process';
import { root } from '../helpers/quark.js';

const resolveFrom = (specifier: string) =>
  spawnSync(process.execPath, ['--input-type=module', '-e', `import(${JSON.stringify(specifier)}).then(m => console.log(Object.keys(m).sort().join(',')), e => { console.error(e.code); process.exit(3); })`], { cwd: root, encoding: 'utf8' });

t.test('quark/sdk is the one door into the package', async (t) => {
  const sdk = resolveFrom('quark/sdk');
  t.equal(sdk.status, 0, sdk.stderr);
  t.match(sdk.stdout, /RUNTIME_API_VERSION.*check.*defineConnector/s);
  const kit = resolveFrom('quark/sdk/testing');
  t.equal(kit.status, 0, kit.stderr);
  t.match(kit.stdout, /assertConformance.*lintConnector.*runConformance/s, 'the conformance kit is exported as quark/sdk/testing');
  for (const inner of ['quark', 'quark/dist/runtime/store/sqlite-store.js', 'quark/runtime/index.js']) {
    const r = resolveFrom(inner);
    t.equal(r.status, 3, `${inner} is not importable`);
    t.match(r.stderr, /ERR_PACKAGE_PATH_NOT_EXPORTED/);
  }
});

t.test('defineConnector checks its input and brands the result', async (t) => {
  const { defineConnector, isConnector, overallStatus, check } = await import('../../runtime/sdk/index.js');
  t.throws(() => defineConnector(null as never), TypeError);
  t.throws(() => defineConnector({ testConnection: 'yes' } as never), /testConnection must be a function/);
  const c = defineConnector({ async testConnection() { return { checks: [check.ok('a', 'fine')] }; } });
  t.ok(isConnector(c));
  t.notOk(isConnector({ testConnection() {} }));
  t.equal(overallStatus([check.ok('a', ''), check.warning('b', '')]), 'warning');
  t.equal(overallStatus([check.warning('b', ''), check.failed('c', '')]), 'failed');
  t.equal(overallStatus([check.ok('a', ''), check.skipped('s', '')]), 'ok');
});

t.test('sdk/ (the kit included) imports nothing of the runtime outside sdk/', async (t) => {
  const { readdirSync, readFileSync } = await import('node:fs');
  const { join, resolve, relative } = await import('node:path');
  const sdkDir = join(root, 'runtime', 'sdk');
  const files = readdirSync(sdkDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  t.ok(files.includes(join('testing', 'spec-rules.ts')), 'the kit is inside sdk/');
  for (const file of files) {
    const text = readFileSync(join(sdkDir, file), 'utf8');
    for (const [, specifier] of text.matchAll(/from '([^']+)'/g)) {
      if (!specifier!.startsWith('.')) continue;
      const target = relative(sdkDir, resolve(sdkDir, file, '..', specifier!));
      t.notOk(target.startsWith('..'), `${file} imports ${specifier}, inside sdk/`);
    }
  }
});
