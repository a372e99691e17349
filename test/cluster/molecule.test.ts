// A molecule of real `quark start` processes on one fresh PostgreSQL database and a BullMQ
// prefix of their own on Redis: set-up, dispatch across nodes exactly once, the reconciler
// after a crash between commit and enqueue, a wrong master key, concurrent migrations.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateMasterKey } from '../../runtime/secrets/secret-box.js';
import { openPostgresStore, migrations } from '../../runtime/store/postgres-store.js';
import { checkRedis, unsafeSettings } from '../../runtime/cluster/redis.js';
import { adminQuery, closedPort, freshDatabase } from '../helpers/postgres.js';
import { cli, until, type Running } from '../helpers/quark.js';
import { apiOf, counting, ended, moleculeHomes, moleculeSkip, startMolecule, tagged } from '../helpers/molecule.js';

const skip = moleculeSkip;

t.test('a molecule of three nodes: set-up, nodes list, a deploy and a connection made on A run on B and C, 60 executions across nodes exactly once', { skip }, async (t) => {
  // started with no connection made: the test makes it on A
  const { nodes, api, start, counter, ownerToken } = await startMolecule(t, 3, { start: [] });
  await Promise.all([0, 1, 2].map((i) => start(i)));
  const [a, b, c] = [api(0), api(1), api(2)];

  const listed = await until('three nodes with their addresses', async () => {
    const list = (await b('GET', '/nodes')).body as any[];
    return list.length === 3 && list.every((n) => n.address) ? list : undefined;
  });
  t.same(listed.map((n) => n.address).sort(), nodes.map((n) => n.url).sort(), 'every node, from any node, with its address');
  t.match(listed[0], { id: /^node_/, version: /\d/, startedAt: /Z$/, heartbeatAt: /Z$/, running: 0, draining: false });
  const cliList = await cli(['--json', 'nodes', 'list'], nodes[2]!.as(ownerToken));
  t.equal(cliList.code, 0, 'quark nodes list');
  t.equal(cliList.json().length, 3);

  t.equal((await a('POST', '/connections', { name: 'counter', connector: 'counter-kit', config: { url: counter.url } })).status, 201, 'a connection made on A');
  t.equal((await a('POST', '/deployments', counting('count-it', 100))).status, 201, 'a deploy on A');
  for (const [name, api] of [['B', b], ['C', c]] as const) {
    t.match((await api('GET', '/connections')).body.connections, [{ name: 'counter' }], `the connection is visible on ${name}`);
    t.match((await api('GET', '/deployments/count-it')).body, { process: 'count-it', version: 1 }, `the deployment is visible on ${name}`);
    const run = await api('POST', '/executions', { process: 'count-it', wait: true, ...tagged(`on-${name}`) });
    t.match(run.body, { status: 'complete' }, `and runnable on ${name}`);
  }
  t.equal(counter.counts.get('on-B'), 1);
  t.equal(counter.counts.get('on-C'), 1);

  const tags = Array.from({ length: 60 }, (_, i) => `run-${i}`);
  const started = [];
  for (const tag of tags) {
    const answer = await a('POST', '/executions', { process: 'count-it', ...tagged(tag) });
    t.equal(answer.status, 202);
    started.push(answer.body.id as string);
  }
  const views = await Promise.all(started.map((id) => ended(a, id)));
  t.ok(views.every((v) => v.status === 'complete'), 'all 60 complete');
  const owners = new Set(views.map((v) => v.owner));
  t.ok(owners.size >= 2, `they ran on ${owners.size} nodes`);
  t.same(tags.filter((tag) => counter.counts.get(tag) !== 1), [], 'each counted exactly once');
  t.equal([...counter.counts.values()].reduce((sum, n) => sum + n, 0), 62, 'and nothing else ran');
});

t.test('a node that exits right after the commit, before the enqueue: the reconciler of another node still runs the execution, once', { skip }, async (t) => {
  const { nodes, api: apiAt, counter, ownerToken } = await startMolecule(t, 2, { env: (i) => (i === 1 ? { QUARK_TEST_FAULT: 'exit-after-commit' } : undefined) });
  const [survivor, doomed] = nodes as [Running, Running];
  const api = apiAt(0);
  t.equal((await api('POST', '/deployments', counting('after-crash'))).status, 201);
  const exited = new Promise<number | null>((resolve) => doomed.child.once('exit', (code) => resolve(code)));
  await t.rejects(apiOf(doomed, ownerToken)('POST', '/executions', { process: 'after-crash', ...tagged('crashed-before-enqueue') }), Error, 'the node died before it answered');
  t.equal(await exited, 70, 'it exited at the fault hook');
  const record = await until('the committed execution', async () => ((await api('GET', '/executions?process=after-crash')).body.executions as any[])[0]);
  const final = await ended(api, record.id);
  t.match(final, { status: 'complete', owner: (await api('GET', '/nodes')).body.find((n: any) => n.address === survivor.url).id }, 'it ran, on the surviving node');
  t.equal(counter.counts.get('crashed-before-enqueue'), 1, 'once');
});

t.test('a node whose master key is not the cluster\'s refuses to start, saying so; --join refuses it too', { skip }, async (t) => {
  const { homes, storeUrl } = await moleculeHomes(t, 2);
  writeFileSync(join(homes[1]!, 'master.key'), generateMasterKey().toString('base64') + '\n', { mode: 0o600 });
  const start = await cli(['start', '--home', homes[1]!, '--port', '0']);
  t.not(start.code, 0, 'it does not start');
  t.match(start.stderr, /QUARK_ERR_CLUSTER_KEY_MISMATCH/);
  t.match(start.stderr, /master\.key is not the master key of molecule/);
  const joined = await cli(['init', '--home', join(homes[1]!, '..', 'another'), '--join', storeUrl, '--key-file', join(homes[1]!, 'master.key')]);
  t.not(joined.code, 0);
  t.match(joined.stderr, /QUARK_ERR_CLUSTER_KEY_MISMATCH/);
  const stored = await adminQuery('SELECT * FROM cluster', [], storeUrl);
  t.equal(stored.rows.length, 1, 'one cluster row');
  t.notMatch(JSON.stringify(stored.rows), /redis:\/\//, 'the queue URL is sealed, not in clear');
  t.match(stored.rows[0].key_fingerprint, /^[0-9a-f]{64}$/, 'a fingerprint, not the key');
});

t.test('--queue needs a molecule on PostgreSQL; --join needs a molecule', { skip }, async (t) => {
  const onSqlite = await cli(['init', '--home', join(t.testdirName, 'a'), '--kind', 'molecule', '--queue', 'redis://127.0.0.1:1']);
  t.not(onSqlite.code, 0);
  t.match(onSqlite.stderr, /QUARK_ERR_CONFIG_INVALID.*\/store/s);
  const empty = await freshDatabase(t);
  const none = await cli(['init', '--home', join(t.testdirName, 'b'), '--join', empty, '--key-file', join(t.testdirName, 'missing.key')]);
  t.match(none.stderr, /QUARK_ERR_MASTER_KEY_INVALID/, 'an unreadable key file is said as such');
});

t.test('Redis: unsafe settings and an unreachable server are refused with their codes', { skip }, async (t) => {
  t.same(unsafeSettings('maxmemory_policy:noeviction\r\naof_enabled:1\r\n'), [], 'noeviction and AOF: safe');
  t.match(unsafeSettings('maxmemory_policy:allkeys-lru\r\naof_enabled:0\r\n'), [{ setting: 'maxmemory-policy', value: 'allkeys-lru' }, { setting: 'appendonly', value: 'no' }]);
  await t.resolves(checkRedis(process.env.QUARK_TEST_REDIS_URL!), 'the test Redis runs as a molecule needs');
  await t.rejects(checkRedis(`redis://127.0.0.1:${await closedPort()}`, 2000), { code: 'QUARK_ERR_QUEUE_UNAVAILABLE' });
});

t.test('three nodes migrating an empty database at once: each migration applied once, every store works', { skip }, async (t) => {
  const url = await freshDatabase(t);
  const stores = await Promise.all([1, 2, 3].map(() => openPostgresStore({ url, poolSize: 2 }, 'test')));
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  const applied = await adminQuery('SELECT version FROM quark_schema ORDER BY version', [], url);
  t.same(applied.rows.map((r) => r.version), migrations.map((_, i) => i + 1), 'every migration once');
  for (const store of stores) t.same(await store.accounts.list(), []);
});
