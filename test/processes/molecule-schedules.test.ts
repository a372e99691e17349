/**
 * Schedules in a molecule: three `quark start` nodes on one PostgreSQL database, no head
 * node. A schedule set on one node is armed on all (LISTEN/NOTIFY); every fire, every
 * 2 s, has exactly one execution, also after one node is killed halfway.
 */
import t from 'tap';
import { cpSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cli, startRuntime, tempDir, until, type Running } from '../helpers/quark.js';
import { adminQuery, freshDatabase, postgresSkip } from '../helpers/postgres.js';

const mapProcess = { id: 'tick', name: 'tick', start: { kind: 'none', next: 'm' }, steps: [{ id: 'm', kind: 'map', expression: '1' }] };
const everyTwoSeconds = '*/2 * * * * *';

/** Another node of the home's cluster: a copy of the home (config and master key) without its node id or lock. */
function joinedHome(t: Parameters<typeof tempDir>[0], home: string): string {
  const copy = join(tempDir(t), 'home');
  cpSync(home, copy, { recursive: true });
  for (const own of ['node-id', 'lock.db', 'runtime.pid', 'work']) rmSync(join(copy, own), { recursive: true, force: true });
  return copy;
}

/** The nominal fire times of the process's executions, in order, as the store holds them (duplicates kept). */
async function fireTimes(url: string): Promise<{ at: string; owner: string | null }[]> {
  const rows = await adminQuery("SELECT scheduled_at, owner FROM executions WHERE process_id = 'tick' AND trigger = 'schedule' ORDER BY scheduled_at", [], url);
  return rows.rows.map((row: { scheduled_at: string; owner: string | null }) => ({ at: row.scheduled_at, owner: row.owner }));
}

t.test('a schedule every 2 s on three nodes, one killed halfway: one execution per fire time, none missing', { skip: postgresSkip, timeout: 180_000 }, async (t) => {
  const url = await freshDatabase(t);
  const home = join(tempDir(t), 'home');
  const init = await cli(['--json', 'init', '--home', home, '--owner', 'acme', '--port', '0', '--store', url]);
  t.equal(init.code, 0, init.stderr);
  const token: string = init.json().ownerToken;
  const homes = [home, joinedHome(t, home), joinedHome(t, home)];
  const nodes: Running[] = [];
  for (const h of homes) nodes.push(await startRuntime(t, h));
  t.teardown(() => Promise.all(nodes.map((n) => n.stop('SIGKILL'))));
  const [a, b, c] = nodes as [Running, Running, Running];

  const api = (node: Running, method: string, path: string, body?: unknown) => node.api(method, `/api/v1${path}`, token, body);

  t.equal((await api(a, 'POST', '/deployments', mapProcess)).status, 201, 'deployed on node A');
  // the deploy was told to the others too: the schedule change is the next message they hear
  const heard = (node: Running) => node.output().match(/"msg":"a schedule change from another node: arming it here"/g)?.length ?? 0;
  await until('the deploy heard on B and C', () => (heard(b) >= 1 && heard(c) >= 1 ? true : undefined));
  t.equal((await api(a, 'PUT', '/deployments/tick/schedules', { schedules: [{ cron: everyTwoSeconds }] })).status, 200, 'scheduled on node A');
  await until('the schedule change heard on B and C', () => (heard(b) >= 2 && heard(c) >= 2 ? true : undefined));
  for (const node of [b, c]) t.match((await api(node, 'GET', '/deployments/tick')).body.nextRuns, [/:\d[02468]\.000Z$/], 'the other nodes armed it');

  // about 30 s of fires: the node that ran the 7th is killed, the others go on
  const first = Date.parse((await until('the first scheduled execution', async () => (await fireTimes(url))[0]))!.at);
  const seventh = await until('seven fires', async () => (await fireTimes(url))[6]);
  const nodeIds = homes.map((h) => readFileSync(join(h, 'node-id'), 'utf8').trim());
  const winner = nodeIds.indexOf(seventh.owner ?? '');
  t.ok(winner >= 0, 'the 7th fire ran on one of the nodes');
  t.equal(await nodes[winner]!.stop('SIGKILL'), null, `the node that ran it (${'ABC'[winner]}) killed (-9)`);
  const survivor = nodes[winner === 0 ? 1 : 0]!;
  const last = first + 28_000;
  await until('fires up to 28 s after the first', async () => ((await fireTimes(url)).some((f) => Date.parse(f.at) >= last) ? true : undefined));
  t.equal((await api(survivor, 'PUT', '/deployments/tick/schedules', { schedules: [] })).status, 200, 'schedules cleared');

  const fires = (await fireTimes(url)).filter((f) => Date.parse(f.at) <= last);
  const times = fires.map((f) => f.at);
  const expected = Array.from({ length: 15 }, (_, i) => new Date(first + i * 2000).toISOString());
  t.same(times, expected, 'one execution for each fire time from the first to 28 s later: no duplicate, no gap');
  const byNode = new Map<string, number>();
  for (const f of fires) byNode.set(f.owner ?? 'none', (byNode.get(f.owner ?? 'none') ?? 0) + 1);
  t.comment(`executions per node: ${JSON.stringify(Object.fromEntries(byNode))}`);
  t.ok(new Set(fires.map((f) => f.owner)).size >= 2, 'the fires after the kill ran on another node');
  const lost = nodes.map((n) => n.output().match(/another node started this schedule fire/g)?.length ?? 0);
  t.ok(lost.reduce((x, y) => x + y, 0) > 0, 'the nodes that lost a fire said so (at debug) and did nothing');
});
