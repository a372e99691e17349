import t from 'tap';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { cli, fixturePlugins, initHome, startRuntime, until } from '../helpers/quark.js';

const mapProcess = (id: string) => ({ id, name: id, start: { kind: 'none', next: 'm' }, steps: [{ id: 'm', kind: 'map', expression: '1' }] });


async function runtimeWith(t: any, config: Record<string, unknown> = {}) {
  const { home, ownerToken } = await initHome(t, { config });
  const rt = await startRuntime(t, home);
  const api = (method: string, path: string, body?: unknown) => rt.api(method, `/api/v1${path}`, ownerToken, body);
  return { home, ownerToken, rt, api };
}

t.test('a time zone or cron the scheduler cannot arm is refused with its pointer before anything is stored', async (t) => {
  const { api, rt, ownerToken } = await runtimeWith(t);
  t.equal((await api('POST', '/deployments', mapProcess('p'))).status, 201);
  for (const timezone of ['Mars/Base', 'Local']) {
    const bad = await api('PUT', '/deployments/p/schedules', { schedules: [{ cron: '0 3 * * *' }, { cron: '0 * * * *', timezone }] });
    t.equal(bad.status, 400, `${timezone}: 400, not 500`);
    t.equal(bad.body.error.code, 'QUARK_ERR_SCHEDULE_INVALID');
    t.same(bad.body.error.details.problems.map((p: any) => p.path), ['/schedules/1/timezone'], 'the pointer names the field');
    t.match(bad.body.error.details.problems[0].message, /is not a time zone the scheduler knows .*Invalid time zone specified/);
  }
  const cron = await api('PUT', '/deployments/p/schedules', { schedules: [{ cron: '0 0 30 2 *' }, { cron: '61 * * * *', timezone: 'Mars/Base' }] });
  t.same(cron.body.error.details.problems.map((p: any) => p.path), ['/schedules/0/cron', '/schedules/1/cron'], 'a cron that never fires, and a bad cron (its zone is not looked at)');
  t.match(cron.body.error.details.problems[0].message, /never fires/);

  const shown = await cli(['schedules', 'set', 'p', '0 * * * *', '--timezone', 'Mars/Base'], rt.as(ownerToken));
  t.equal(shown.code, 2, 'the CLI exits with invalid input');
  t.match(shown.stderr, /QUARK_ERR_SCHEDULE_INVALID.*\n {2}- \/schedules\/0\/timezone: /);

  // "+02:00" is what Intl makes of it on this Node: refused here, or accepted and armed
  const offset = await api('PUT', '/deployments/p/schedules', { schedules: [{ cron: '0 * * * *', timezone: '+02:00' }] });
  if (offset.status === 400) {
    t.equal(offset.body.error.details.problems[0].path, '/schedules/0/timezone', '+02:00 refused (this Node has no offset time zones)');
  } else {
    t.equal(offset.status, 200, '+02:00 accepted: this Node arms offset time zones');
    t.match((await api('GET', '/deployments/p')).body.nextRuns[0], /T\d\d:00:00\.000Z$/, 'and it is armed');
    t.equal((await api('PUT', '/deployments/p/schedules', { schedules: [] })).status, 200);
  }
  t.same((await api('GET', '/deployments')).body.deployments[0].schedules, [], 'nothing refused was stored');
  t.equal((await api('POST', '/deployments', mapProcess('p'))).status, 201, 'deploys still work');
  t.equal(await rt.stop(), 0);
});

t.test('a start never fails on one bad stored record: a schedule, a deployment, a connection are reported and the rest runs', async (t) => {
  const { home, ownerToken, rt, api } = await runtimeWith(t, { plugins: { paths: [join(fixturePlugins, 'process-kit')] } });
  for (const id of ['bad-zone', 'broken', 'tick']) t.equal((await api('POST', '/deployments', mapProcess(id))).status, 201);
  t.equal((await api('PUT', '/deployments/tick/schedules', { schedules: [{ cron: '* * * * * *' }] })).status, 200);
  t.equal((await api('POST', '/connections', { name: 'kit', connector: 'process-kit', config: {} })).status, 201);
  const usesKit = { id: 'uses-kit', name: 'uses-kit', start: { kind: 'none', next: 'echo' }, steps: [{ id: 'echo', kind: 'operation', connection: 'kit', operation: 'echo', parameters: { tag: 'x' } }] };
  t.equal((await api('POST', '/deployments', usesKit)).status, 201);
  t.equal(await rt.stop(), 0);

  // what an older version stored, or a damaged store holds
  const db = new Database(join(home, 'quark.db'));
  db.prepare("UPDATE processes SET schedules = ? WHERE process_id = 'bad-zone'").run(JSON.stringify([{ cron: '0 * * * *', timezone: 'Mars/Base' }, { cron: '0 3 * * *', timezone: 'UTC' }]));
  db.prepare("UPDATE deployments SET definition = '{\"id\": \"broken\", trunc' WHERE process_id = 'broken'").run();
  db.prepare("UPDATE connections SET connector_id = 'gone-connector' WHERE name = 'kit'").run();
  db.close();

  const again = await startRuntime(t, home);
  const api2 = (method: string, path: string, body?: unknown) => again.api(method, `/api/v1${path}`, ownerToken, body);
  const badZone = (await api2('GET', '/deployments/bad-zone')).body;
  t.match(badZone.problems, [{ path: '/schedules/0', code: 'QUARK_ERR_SCHEDULE_INVALID', message: /cannot be armed: Invalid time zone specified: Mars\/Base/ }]);
  t.equal(badZone.problems.length, 1);
  t.equal(badZone.nextRuns[0], null, 'the bad schedule is not armed');
  t.match(badZone.nextRuns[1], /T03:00:00\.000Z$/, 'its other schedule is');

  const broken = (await api2('GET', '/deployments/broken')).body;
  t.equal(broken.definition, null);
  t.match(broken.problems, [{ path: '/activeVersion', code: 'QUARK_ERR_PROCESS_UNREADABLE' }]);
  const run = await api2('POST', '/executions', { process: 'broken' });
  t.equal(run.status, 500);
  t.equal(run.body.error.code, 'QUARK_ERR_PROCESS_UNREADABLE');
  const list = (await api2('GET', '/deployments')).body.deployments;
  t.same(list.map((d: any) => [d.process, d.problems?.length ?? 0]), [['bad-zone', 1], ['broken', 1], ['tick', 0], ['uses-kit', 1]], 'deployments list works and marks them');
  t.match((await api2('GET', '/deployments/uses-kit')).body.problems, [{ path: '/steps/0/connection', code: 'QUARK_ERR_CONNECTOR_NOT_FOUND', message: /connection "kit" uses connector "gone-connector", which is not loaded/ }], 'a process whose connection lost its connector says so');

  const show = await cli(['deployments', 'show', 'bad-zone'], again.as(ownerToken));
  t.equal(show.code, 0, show.stderr);
  t.match(show.stdout, /problem {2}\/schedules\/0 QUARK_ERR_SCHEDULE_INVALID: cannot be armed: Invalid time zone specified: Mars\/Base/);
  const showBroken = await cli(['deployments', 'show', 'broken'], again.as(ownerToken));
  t.match(showBroken.stdout, /the stored definition cannot be read/);

  const output = again.output();
  t.match(output, /"level":50[^\n]*"process":"bad-zone"[^\n]*a stored schedule cannot be armed/, 'the schedule, at error level');
  t.match(output, /"level":50[^\n]*"process":"broken"[^\n]*QUARK_ERR_PROCESS_UNREADABLE/, 'the deployment, at error level');
  t.match(output, /"level":50[^\n]*connection \\"kit\\" uses connector \\"gone-connector\\", which is not loaded/, 'the connection, at error level');
  const metrics = (await again.api('GET', '/metrics')).body as string;
  t.match(metrics, /quark_load_problems\{kind="schedule"\} 1/);
  t.match(metrics, /quark_load_problems\{kind="deployment"\} 1/);
  t.match(metrics, /quark_load_problems\{kind="connection"\} 1/);
  t.equal((await api2('GET', '/connections/kit')).status, 200, 'the orphan connection can still be read (and deleted)');

  const redeploy = await api2('POST', '/deployments', mapProcess('bad-zone'));
  t.equal(redeploy.status, 201, 'a deploy of the process with the bad stored schedule works (it answered 500 before)');
  t.equal((await api2('POST', '/deployments/bad-zone/rollback', { version: 1 })).status, 201, 'and so does a rollback');
  t.equal((await api2('GET', '/deployments/bad-zone')).body.problems.length, 1, 'the schedule is still reported');
  await until('the healthy schedule to fire twice', async () => {
    const runs = (await api2('GET', '/executions?process=tick&status=complete')).body.executions;
    return runs.length >= 2 ? runs : undefined;
  });
  // ways out: set good schedules, undeploy the damaged process
  t.equal((await api2('PUT', '/deployments/bad-zone/schedules', { schedules: [{ cron: '0 * * * *', timezone: 'Europe/Paris' }] })).status, 200);
  t.notOk((await api2('GET', '/deployments/bad-zone')).body.problems, 'fixed schedules are armed and the problem is gone');
  t.equal((await api2('DELETE', '/deployments/broken')).status, 200, 'a damaged process can be undeployed');
  const after = (await again.api('GET', '/metrics')).body as string;
  t.match(after, /quark_load_problems\{kind="schedule"\} 0/);
  t.match(after, /quark_load_problems\{kind="deployment"\} 0/);
});

t.test('undeploy removes the schedules and a later deploy says it has none; a new version keeps them and says so', async (t) => {
  const { api, rt, ownerToken } = await runtimeWith(t);
  const first = await api('POST', '/deployments', mapProcess('nightly'));
  t.same(first.body.schedules, [], 'the deploy answer lists the schedules: none yet');
  const set = { cron: '0 3 * * *', timezone: 'Europe/Paris', catchUp: 'once' };
  t.equal((await api('PUT', '/deployments/nightly/schedules', { schedules: [set] })).status, 200);
  const second = await cli(['deploy', '-'], rt.as(ownerToken), JSON.stringify(mapProcess('nightly')));
  t.equal(second.code, 0, second.stderr);
  t.match(second.stdout, /deployed nightly version 2 \(nightly\)\nschedules kept: 0 3 \* \* \* \(Europe\/Paris\) catch-up once/);

  const undeploy = await cli(['undeploy', 'nightly'], rt.as(ownerToken));
  t.match(undeploy.stdout, /undeployed nightly \(latest version 2\); schedules removed: 0 3 \* \* \* \(Europe\/Paris\) catch-up once/);
  t.same((await api('GET', '/deployments/nightly')).body.schedules, []);
  const third = await api('POST', '/deployments', mapProcess('nightly'));
  t.same(third.body.schedules, [], 'deployed again: no schedule re-armed behind the user\'s back');
  t.same((await api('GET', '/deployments/nightly')).body.nextRuns, []);
  const shown = await cli(['rollback', 'nightly', '1'], rt.as(ownerToken));
  t.match(shown.stdout, /no schedules \(set them with quark schedules set\)/);
  const refused = await api('PUT', '/deployments/nightly/schedules', { schedules: [{ cron: '0 3 * * *', catchUp: 'always' }] });
  t.equal(refused.status, 400, 'catchUp is skip or once');
});

t.test('fires missed while stopped: catchUp once runs the process once at start, skip does not', async (t) => {
  const { home, ownerToken, rt, api } = await runtimeWith(t);
  // yearly: it fires in no test run, but was missed if the runtime slept through a new year
  for (const [id, catchUp] of [['caught', 'once'], ['skipped', 'skip']] as const) {
    t.equal((await api('POST', '/deployments', mapProcess(id))).status, 201);
    t.equal((await api('PUT', `/deployments/${id}/schedules`, { schedules: [{ cron: '0 0 1 1 *', timezone: 'UTC', catchUp }] })).status, 200);
  }
  t.equal(await rt.stop(), 0);
  const twoYearsAgo = new Date(Date.now() - 2 * 365 * 86_400_000).toISOString();
  const db = new Database(join(home, 'quark.db'));
  t.equal(db.prepare('UPDATE schedule_fires SET last_fired_at = ?').run(twoYearsAgo).changes, 2, 'each schedule has its last fire time in the store');
  db.close();

  const again = await startRuntime(t, home);
  const api2 = (method: string, path: string, body?: unknown) => again.api(method, `/api/v1${path}`, ownerToken, body);
  const runs = await until('the catch-up run', async () => {
    const list = (await api2('GET', '/executions?process=caught')).body.executions;
    return list.length > 0 && list.every((e: any) => !['queued', 'in-process'].includes(e.status)) ? list : undefined;
  });
  t.same(runs.map((e: any) => [e.trigger, e.status]), [['schedule', 'complete']], 'one run, though more than one fire was missed');
  t.same((await api2('GET', '/executions?process=skipped')).body.executions, [], 'skip runs nothing');
  t.match(again.output(), /"level":40[^\n]*"process":"skipped"[^\n]*"missed":"\d"[^\n]*skipped \(catchUp: skip\)/, 'and says what it skipped');
  t.equal(await again.stop(), 0);
  const db2 = new Database(join(home, 'quark.db'));
  const fires = db2.prepare('SELECT process_id, last_fired_at FROM schedule_fires ORDER BY process_id').all() as { process_id: string; last_fired_at: string }[];
  db2.close();
  t.ok(fires.every((f) => f.last_fired_at > twoYearsAgo), 'both count from this start now');
  const third = await startRuntime(t, home);
  t.equal((await third.api('GET', '/api/v1/executions?process=caught', ownerToken)).body.executions.length, 1, 'the next start catches up nothing more');
});
