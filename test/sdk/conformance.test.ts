import t from 'tap';
import { join } from 'node:path';
import S3rver from 's3rver';
import { runConformance, assertConformance, type ConformanceReport } from '../../runtime/sdk/testing/index.js';
import { root, tempDir } from '../helpers/quark.js';

const builtIn = (id: string) => join(root, 'dist', 'connectors', id);
const byId = (report: ConformanceReport) => Object.fromEntries(report.checks.map((c) => [c.id, c]));

t.test('local-files passes the conformance kit', async (t) => {
  const folder = tempDir(t);
  const report = await assertConformance(t, { dir: builtIn('local-files'), config: { folder }, savedConfigs: [{ folder, createFolder: true, minFreeSpace: 10 }] });
  t.equal(byId(report)['saved-config-1']!.ok, true, 'a configuration saved earlier still validates');
  const old = await runConformance({ dir: builtIn('local-files'), config: { folder }, savedConfigs: [{ folder, retired: 'field' }] });
  t.match(byId(old)['saved-config-1']!, { ok: false, message: /"retired" is not a known field \(\/retired\)/ });
  t.ok(report.ok, 'conforms');
  const checks = byId(report);
  t.match(checks['test-connection-garbage-1']!.message, /folder: failed/, 'a nonsense folder was tried, and failed a check without throwing');
});

t.test('amazon-s3 passes the conformance kit against the embedded s3rver', async (t) => {
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: tempDir(t, 'quark-s3rver-'), configureBuckets: [{ name: 'quark-kit', configs: [] }] });
  const { port } = (await server.run()) as { port: number };
  t.teardown(() => server.close());
  const config = { awsAccessKey: 'S3RVER', awsSecretKey: 'S3RVER', region: 'us-east-1', bucket: 'quark-kit', endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true };
  const report = await assertConformance(t, {
    dir: builtIn('amazon-s3'),
    config,
    timeoutMs: 20_000,
    operations: {
      // the abort checks cancel a call with the first document: on s3rver a PutObject cut
      // short leaves an object whose size disagrees with its bytes, so that one is scratch
      upsert: { parameters: {}, documents: [{ body: 'first', properties: { 's3.key': 'kit/scratch.txt' } }, { body: 'second', properties: { 's3.key': 'kit/a.txt' } }] },
      get: { parameters: {}, documents: [{ properties: { 's3.key': 'kit/a.txt' } }, { properties: { 's3.key': 'kit/missing.txt' } }] },
      query: { parameters: { prefix: 'kit/' } },
      create: { parameters: { keyPrefix: 'kit/created-' }, documents: [{ body: 'one' }, { body: 'two' }] },
      copy: { parameters: { key: 'kit/copy.txt' }, documents: [{ properties: { 's3.key': 'kit/a.txt' } }, { properties: { 's3.key': 'kit/missing.txt' } }] },
      delete: { parameters: { key: 'kit/a.txt' } },
    },
  });
  t.ok(report.ok, 'conforms');
  t.notOk(report.checks.some((c) => c.skipped && c.id.startsWith('operation:')), 'every operation ran');
  t.match(byId(report)['operation:get']!.message, /\(success, application-error\)/, 'get read back what upsert wrote, and refused the missing key');
  t.match(byId(report)['operation:copy']!.message, /\(success, application-error\)/, 'copy copied what upsert wrote, and refused the missing source');
  t.ok(report.checks.filter((c) => /^test-connection-garbage-\d+$/.test(c.id)).length >= 3, 'garbage configurations were tried (wrong secret, nonsense endpoint, …)');
});

t.test('the kit catches a connector that breaks the rules', async (t) => {
  const report = await runConformance({
    dir: join(root, 'test', 'fixtures', 'conformance', 'faulty'),
    config: { user: 'ada', password: 'right-password' },
    abortGraceMs: 500,
    operations: { drops: {}, throws: {}, ignoresAbort: { documents: [{ body: 'x' }] }, leaks: { skipAbort: true } },
  });
  const checks = byId(report);
  t.equal(report.ok, false);
  t.equal(checks.spec!.ok, true, 'the spec itself is fine');
  t.equal(checks['test-connection']!.ok, true, 'the given configuration passes');
  t.equal(checks['test-connection-secrets']!.ok, false, 'the secret logged by Test Connection is found');
  t.equal(checks['test-connection-garbage-1']!.ok, false, 'throwing on a wrong password is caught');
  t.match(checks['test-connection-garbage-1']!.message, /threw instead of returning a failed check: login refused/);
  t.equal(checks['operation:drops']!.ok, false);
  t.match(checks['operation:drops']!.message, /is not one result/);
  t.equal(checks['operation:throws']!.ok, false);
  t.match(checks['operation:throws']!.message, /threw boom/);
  t.equal(checks['operation:ignoresAbort']!.ok, true, 'it answers');
  t.equal(checks['operation:ignoresAbort-abort']!.ok, false, 'but does not stop when aborted');
  t.equal(checks['operation:leaks-secrets']!.ok, false, 'a secret in a result body is found');
  t.equal(checks['operation:leaks-abort']!.skipped, true);
});

t.test('the kit reports spec problems and an unstructured Test Connection result', async (t) => {
  const bad = await runConformance({ dir: join(root, 'test', 'fixtures', 'plugins', 'bad-result'), config: {} });
  t.equal(byId(bad)['test-connection']!.ok, false);
  t.match(byId(bad)['test-connection']!.message, /not \{ checks/);
  const dangling = await runConformance({ dir: join(root, 'test', 'fixtures', 'plugins', 'dangling-ref'), config: {} });
  t.equal(byId(dangling).spec!.ok, false);
  t.match(byId(dangling).spec!.problems![0], { path: '/properties/host/$ref', rule: 'ref' });
});
