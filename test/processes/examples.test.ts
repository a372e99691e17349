// The example processes of processes/ deploy and run as processes/README.md says, with
// the CLI commands it shows; the S3 one against the embedded s3rver.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import S3rver from 's3rver';
import { cli, initHome, root, startRuntime, tempDir, type Running } from '../helpers/quark.js';

const file = (name: string) => join(root, 'processes', name);
const sample = file('orders-sample.json');

async function quark(rt: Running, token: string, args: string[]) {
  const result = await cli(['--json', ...args], rt.as(token));
  return { code: result.code, body: JSON.parse(result.stdout || result.stderr) };
}

t.test('orders-no-connector, enrich-order and process-call', async (t) => {
  const { home, ownerToken } = await initHome(t);
  const rt = await startRuntime(t, home);

  const deployed = await quark(rt, ownerToken, ['deploy', file('orders-no-connector.json')]);
  t.equal(deployed.code, 0, deployed.code === 0 ? 'deployed' : JSON.stringify(deployed.body));
  const orders = await quark(rt, ownerToken, ['run', 'orders-no-connector', '--doc', sample, '--wait']);
  t.equal(orders.code, 3, 'exit 3: complete with warnings (the large orders)');
  t.equal(orders.body.status, 'complete-with-warnings');
  t.match(orders.body.steps, { 'split-orders': { in: 1, out: 4 }, 'notify-small': { in: 2 }, 'notify-large': { in: 2 } });
  t.equal(orders.body.warnings, 2);
  const log = await cli(['logs', orders.body.id], rt.as(ownerToken));
  t.match(log.stdout, /WARN {2}\[notify-large\] LARGE order A-1002 from Brendan: total 179\.8/);
  t.match(log.stdout, /INFO {2}\[notify-small\] small order A-1001 from Ada: total 12\.5/);

  const test = await quark(rt, ownerToken, ['run', '--file', file('orders-no-connector.json'), '--doc', sample]);
  t.equal(test.body.trigger, 'test', 'runs without deploying too');

  const early = await quark(rt, ownerToken, ['deploy', file('process-call.json')]);
  t.equal(early.code, 2, 'the caller is refused before the called process is deployed');
  t.match(early.body.error.details.problems, [{ path: '/steps/1/process', message: /no deployed process "enrich-order"/ }]);
  t.equal((await quark(rt, ownerToken, ['deploy', file('enrich-order.json')])).code, 0);
  t.equal((await quark(rt, ownerToken, ['deploy', file('process-call.json')])).code, 0);
  const { status, body } = await rt.api('POST', '/api/v1/executions', ownerToken, { process: 'process-call', wait: true, documents: [{ body: readFileSync(sample, 'utf8') }] });
  t.equal(status, 200);
  t.equal(body.status, 'complete');
  t.match(body.steps, { enrich: { in: 4, out: 4 }, 'enrich>add-total': { in: 4, out: 4 }, 'enrich>mark': { out: 4 }, combine: { in: 4, out: 1 } });
  const combined = JSON.parse(Buffer.from(body.output[0].body, 'base64').toString('utf8'));
  t.same(combined.map((o: any) => [o.id, o.total, o.priority, o.enrichedBy]), [
    ['A-1001', 12.5, 'normal', 'enrich-order'],
    ['A-1002', 179.8, 'high', 'enrich-order'],
    ['A-1003', 22.5, 'normal', 'enrich-order'],
    ['A-1004', 284, 'high', 'enrich-order'],
  ]);
});

t.test('s3-archive against s3rver: inbox/ moved to archive/, a spilled body copied as is', async (t) => {
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: tempDir(t, 'quark-s3rver-'), configureBuckets: [{ name: 'demo-bucket', configs: [] }] });
  const { port } = await server.run();
  t.teardown(() => server.close());
  // bodies above 64 bytes are spilled to disk by Get: a map cannot see them
  const { home, ownerToken } = await initHome(t, { config: { limits: { spillBytes: 64 } } });
  const rt = await startRuntime(t, home);
  const op = async (operation: string, parameters: Record<string, unknown>, documents: unknown[] = [{}]) =>
    (await rt.api('POST', `/api/v1/connections/demo-s3/operations/${operation}`, ownerToken, { parameters, documents })).body.results;
  const keys = async (prefix: string) => ((await op('query', { prefix }))[0].documents ?? []).map((d: any) => d.properties['s3.key']);

  const config = { awsAccessKey: 'S3RVER', awsSecretKey: 'S3RVER', region: 'us-east-1', bucket: 'demo-bucket', endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true };
  t.equal((await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'demo-s3', connector: 'amazon-s3', config })).status, 201);
  const big = JSON.stringify({ id: 'big', note: 'x'.repeat(100) });
  await op('upsert', { key: 'inbox/small.json', contentType: 'application/json' }, [{ body: '{"id":"small"}' }]);
  await op('upsert', { key: 'inbox/big.json', contentType: 'application/json' }, [{ body: big }]);
  await op('upsert', { key: 'other/untouched.json' }, [{ body: '{}' }]);

  t.equal((await quark(rt, ownerToken, ['deploy', file('s3-archive.json')])).code, 0);
  const run = await quark(rt, ownerToken, ['run', 's3-archive', '--wait']);
  t.equal(run.code, 0, run.code === 0 ? 'exit 0' : JSON.stringify(run.body));
  t.equal(run.body.status, 'complete');
  t.match(run.body.steps, { start: { out: 2 }, 'body-visible': { in: 2, out: 2 }, wrap: { in: 1 }, archive: { in: 2, out: 2 }, 'delete-original': { out: 2 }, report: { out: 2 } });

  t.same(await keys('inbox/'), [], 'inbox/ is empty');
  t.same(await keys('archive/'), ['archive/big.json', 'archive/small.json']);
  t.same(await keys('other/'), ['other/untouched.json'], 'other prefixes are left alone');
  const [small] = await op('get', { key: 'archive/small.json' });
  const wrapped = JSON.parse(Buffer.from(small.documents[0].body, 'base64').toString('utf8'));
  t.match(wrapped, { archivedFrom: 'inbox/small.json', execution: run.body.id, content: { id: 'small' } });
  t.match(small.documents[0].properties, { 's3.contentType': 'application/json', 's3.meta.wrapped': 'yes' });
  const [copied] = await op('get', { key: 'archive/big.json' });
  t.equal(Buffer.from(copied.documents[0].body, 'base64').toString('utf8'), big, 'the spilled body is copied byte for byte');
  t.notOk(copied.documents[0].properties['s3.meta.wrapped']);
  const log = await cli(['logs', run.body.id], rt.as(ownerToken));
  t.match(log.stdout, /moved inbox\/big\.json to archive\/ \(\d+ bytes, copied as is\)/);
  t.match(log.stdout, /moved inbox\/small\.json to archive\/ \(\d+ bytes, wrapped\)/);
});

t.test('s3-backup against s3rver: reports/ copied to backup/ by the store', async (t) => {
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: tempDir(t, 'quark-s3rver-'), configureBuckets: [{ name: 'demo-bucket', configs: [] }] });
  const { port } = await server.run();
  t.teardown(() => server.close());
  const { home, ownerToken } = await initHome(t);
  const rt = await startRuntime(t, home);
  const op = async (operation: string, parameters: Record<string, unknown>, documents: unknown[] = [{}]) =>
    (await rt.api('POST', `/api/v1/connections/demo-s3/operations/${operation}`, ownerToken, { parameters, documents })).body.results;
  const keys = async (prefix: string) => ((await op('query', { prefix }))[0].documents ?? []).map((d: any) => d.properties['s3.key']);

  const config = { awsAccessKey: 'S3RVER', awsSecretKey: 'S3RVER', region: 'us-east-1', bucket: 'demo-bucket', endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true };
  t.equal((await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'demo-s3', connector: 'amazon-s3', config })).status, 201);
  await op('upsert', { key: 'reports/2026/q1.csv', contentType: 'text/csv', metadata: { team: 'ops' } }, [{ body: 'id,total\n1,42\n' }]);
  await op('upsert', { key: 'reports/q2.csv' }, [{ body: 'id,total\n2,7\n' }]);
  await op('upsert', { key: 'other/untouched.csv' }, [{ body: '' }]);

  t.equal((await quark(rt, ownerToken, ['deploy', file('s3-backup.json')])).code, 0);
  const run = await quark(rt, ownerToken, ['run', 's3-backup', '--wait']);
  t.equal(run.code, 0, run.code === 0 ? 'exit 0' : JSON.stringify(run.body));
  t.match(run.body.steps, { start: { out: 2 }, 'copy-object': { in: 2, out: 2 }, report: { out: 2 } });
  t.same(await keys('backup/'), ['backup/2026/q1.csv', 'backup/q2.csv']);
  t.same(await keys('reports/'), ['reports/2026/q1.csv', 'reports/q2.csv'], 'the originals stay');
  const [copy] = await op('get', { key: 'backup/2026/q1.csv' });
  t.equal(Buffer.from(copy.documents[0].body, 'base64').toString('utf8'), 'id,total\n1,42\n');
  t.match(copy.documents[0].properties, { 's3.contentType': 'text/csv', 's3.meta.team': 'ops' }, 'content type and metadata copied');
  const log = await cli(['logs', run.body.id], rt.as(ownerToken));
  t.match(log.stdout, /copied reports\/2026\/q1\.csv to backup\/2026\/q1\.csv \(14 bytes, in one request\)/);
});
