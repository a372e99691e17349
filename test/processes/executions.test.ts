import t from 'tap';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { postgresSkip } from '../helpers/postgres.js';
import { fixturePlugins, initHome, startRuntime, tempDir, cli, until } from '../helpers/quark.js';

const sleeper = (id: string, ms: number, extra: Record<string, unknown> = {}) => ({
  id,
  name: id,
  start: { kind: 'none', next: 'nap' },
  steps: [{ id: 'nap', kind: 'operation', connection: 'kit', operation: 'sleep', parameters: { ms, ...((extra.parameters as object) ?? {}) }, ...((extra.step as object) ?? {}) }],
  ...((extra.process as object) ?? {}),
});


async function kitRuntime(t: any, limits: Record<string, unknown> = {}, store?: 'sqlite' | 'postgres') {
  const { home, ownerToken } = await initHome(t, { config: { plugins: { paths: [join(fixturePlugins, 'process-kit')] }, limits }, ...(store ? { store } : {}) });
  const rt = await startRuntime(t, home);
  const api = (method: string, path: string, body?: unknown) => rt.api(method, `/api/v1${path}`, ownerToken, body);
  t.equal((await api('POST', '/connections', { name: 'kit', connector: 'process-kit', config: {} })).status, 201);
  const statusOf = async (id: string) => (await api('GET', `/executions/${id}`)).body;
  const ended = (id: string) => until(`execution ${id} to end`, async () => {
    const view = await statusOf(id);
    return ['queued', 'in-process'].includes(view.status) ? undefined : view;
  });
  return { home, ownerToken, rt, api, statusOf, ended };
}

t.test('limits: a full queue refuses at once; queued and running executions can be cancelled', async (t) => {
  const { api, ended, statusOf, rt, ownerToken } = await kitRuntime(t, { maxRunningExecutions: 1, maxQueuedExecutions: 1 });
  t.equal((await api('POST', '/deployments', sleeper('slow', 60_000))).status, 201);
  const first = (await api('POST', '/executions', { process: 'slow' })).body;
  t.ok(['queued', 'in-process'].includes(first.status), 'the answer comes at once, with the execution record');
  await until('the first to run', async () => ((await statusOf(first.id)).status === 'in-process' ? true : undefined));
  const second = (await api('POST', '/executions', { process: 'slow' })).body;
  t.equal((await statusOf(second.id)).status, 'queued', 'the second waits');
  const third = await api('POST', '/executions', { process: 'slow' });
  t.equal(third.status, 429, 'the third is refused: one running, one queued');
  t.equal(third.body.error.code, 'QUARK_ERR_EXECUTION_QUEUE_FULL');
  t.match(third.body.error.message, /refused, not queued/);
  const cliRefused = await cli(['run', 'slow'], rt.as(ownerToken));
  t.equal(cliRefused.code, 11, 'the CLI exits 11 (busy) on a full queue');
  t.equal((await api('GET', '/executions')).body.executions.length, 2, 'refused executions leave no record');

  const discarded = await cli(['--json', 'executions', 'cancel', second.id], rt.as(ownerToken));
  t.equal(discarded.json().status, 'discarded', 'a queued execution is discarded');
  t.equal((await api('POST', `/executions/${first.id}/cancel`)).status, 200);
  const aborted = await ended(first.id);
  t.equal(aborted.status, 'aborted');
  t.equal(aborted.errorCode, 'QUARK_ERR_EXECUTION_CANCELLED');
  t.match(aborted.errorMessage, /cancelled by acme/);
  const again = await api('POST', `/executions/${first.id}/cancel`);
  t.equal(again.body.error.code, 'QUARK_ERR_EXECUTION_FINISHED');
  const metrics = await rt.api('GET', '/metrics');
  t.match(metrics.body, /quark_executions_refused_total 2/);
  t.match(metrics.body, /quark_executions_finished_total\{status="aborted"\} 1/);
});

t.test('timeouts: an execution past its limit is aborted; a step past its limit fails its documents', async (t) => {
  const { api, ended } = await kitRuntime(t);
  await api('POST', '/deployments', sleeper('too-long', 60_000, { process: { options: { timeoutMs: 300 } } }));
  const view = await ended((await api('POST', '/executions', { process: 'too-long' })).body.id);
  t.equal(view.status, 'aborted');
  t.equal(view.errorCode, 'QUARK_ERR_EXECUTION_TIMEOUT');
  t.match(view.errorMessage, /time limit of 300 ms/);

  await api('POST', '/deployments', sleeper('slow-step', 60_000, { step: { timeoutMs: 300 } }));
  const step = await ended((await api('POST', '/executions', { process: 'slow-step' })).body.id);
  t.equal(step.status, 'error');
  t.equal(step.errors[0].step, 'nap');
  t.equal(step.errors[0].code, 'QUARK_ERR_PLUGIN_TIMEOUT');
});

t.test('kill -9: after a restart deployments, connections and schedules are intact and the running execution is aborted with its work files gone', async (t) => {
  const markers = tempDir(t, 'quark-markers-');
  const marker = join(markers, 'sleeping');
  const { home, ownerToken, rt, api, statusOf } = await kitRuntime(t, { spillBytes: 1024 });
  const long = {
    id: 'long',
    name: 'long',
    start: { kind: 'documents', next: 'copy' },
    steps: [
      // the copy's 100 KB body is larger than spillBytes: it waits in the execution's work directory
      { id: 'copy', kind: 'operation', connection: 'kit', operation: 'echo', parameters: { tag: 'copy' }, next: 'nap' },
      { id: 'nap', kind: 'operation', connection: 'kit', operation: 'sleep', parameters: { ms: 60_000, marker } },
    ],
  };
  t.equal((await api('POST', '/deployments', long)).status, 201);
  t.equal((await api('POST', '/deployments', { id: 'nightly', name: 'n', start: { kind: 'none', next: 'm' }, steps: [{ id: 'm', kind: 'map', expression: '"x"' }] })).status, 201);
  t.equal((await api('PUT', '/deployments/nightly/schedules', { schedules: [{ cron: '0 3 * * *', timezone: 'Europe/Paris' }] })).status, 200);
  const running = (await api('POST', '/executions', { process: 'long', documents: [{ body: 'x'.repeat(100_000) }] })).body;
  await until('the step to start', async () => (existsSync(marker) ? true : undefined));
  t.equal((await statusOf(running.id)).status, 'in-process');
  t.ok(readdirSync(join(home, 'work', running.id)).length > 0, 'the execution has work files while it runs');
  t.equal(await rt.stop('SIGKILL'), null);

  const again = await startRuntime(t, home);
  const api2 = (method: string, path: string, body?: unknown) => again.api(method, `/api/v1${path}`, ownerToken, body);
  const view = (await api2('GET', `/executions/${running.id}`)).body;
  t.equal(view.status, 'aborted', 'the interrupted execution is accounted for');
  t.equal(view.errorCode, 'QUARK_ERR_EXECUTION_INTERRUPTED');
  t.match(view.errorMessage, /runtime stopped/);
  t.same(readdirSync(join(home, 'work')), [], 'its work files are gone');
  const log = (await api2('GET', `/executions/${running.id}/log`)).body;
  t.match(typeof log === 'string' ? log : JSON.stringify(log), /aborted: the runtime stopped/, 'its log says why');
  const deployments = (await api2('GET', '/deployments')).body.deployments.map((d: any) => [d.process, d.activeVersion, d.schedules]);
  t.same(deployments, [['long', 1, []], ['nightly', 1, [{ cron: '0 3 * * *', timezone: 'Europe/Paris' }]]], 'deployments and schedules are intact');
  t.match((await api2('GET', '/deployments/nightly')).body.nextRuns[0], /T0[12]:00:00.000Z$/, 'the schedule is armed again (03:00 Paris)');
  t.equal((await api2('GET', '/connections/kit')).status, 200, 'the connection is intact');
});

t.test('schedules fire executions with trigger schedule; bad cron expressions are refused', async (t) => {
  const { api, rt, ownerToken } = await kitRuntime(t);
  await api('POST', '/deployments', { id: 'tick', name: 'tick', start: { kind: 'none', next: 'm' }, steps: [{ id: 'm', kind: 'map', expression: '$now()' }] });
  const bad = await api('PUT', '/deployments/tick/schedules', { schedules: [{ cron: '61 * * * *' }] });
  t.equal(bad.status, 400);
  t.equal(bad.body.error.code, 'QUARK_ERR_SCHEDULE_INVALID');
  t.equal(bad.body.error.details.problems[0].path, '/schedules/0/cron', 'the pointer names the field');
  const set = await cli(['--json', 'schedules', 'set', 'tick', '* * * * * *'], rt.as(ownerToken));
  t.equal(set.code, 0, set.stderr);
  const runs = await until('two scheduled runs', async () => {
    const list = (await api('GET', '/executions?process=tick&status=complete')).body.executions;
    return list.length >= 2 ? list : undefined;
  });
  t.ok(runs.every((e: any) => e.trigger === 'schedule'));
  t.equal((await cli(['schedules', 'clear', 'tick'], rt.as(ownerToken))).code, 0);
});

t.test('history older than purgeDays is purged at start, with its logs', async (t) => {
  const { home, api, ended, rt, ownerToken } = await kitRuntime(t, { purgeDays: 1 });
  await api('POST', '/deployments', { id: 'quick', name: 'q', start: { kind: 'none', next: 'm' }, steps: [{ id: 'm', kind: 'map', expression: '1' }] });
  const old = await ended((await api('POST', '/executions', { process: 'quick' })).body.id);
  const recent = await ended((await api('POST', '/executions', { process: 'quick' })).body.id);
  await rt.stop();
  const db = new Database(join(home, 'quark.db'));
  db.prepare('UPDATE executions SET queued_at = ?, ended_at = ? WHERE id = ?').run('2020-01-01T00:00:00.000Z', '2020-01-01T00:00:01.000Z', old.id);
  db.close();
  const again = await startRuntime(t, home);
  const ids = (await again.api('GET', '/api/v1/executions', ownerToken)).body.executions.map((e: any) => e.id);
  t.same(ids, [recent.id], 'the old execution is purged, the recent one kept');
  t.equal((await again.api('GET', `/api/v1/executions/${old.id}`, ownerToken)).body.error.code, 'QUARK_ERR_EXECUTION_NOT_FOUND');
  await again.stop();
  const check = new Database(join(home, 'quark.db'), { readonly: true });
  const logRows = (id: string) => (check.prepare('SELECT COUNT(*) AS n FROM execution_logs WHERE execution_id = ?').get(id) as { n: number }).n;
  t.equal(logRows(old.id), 0, 'the old log is gone');
  t.ok(logRows(recent.id) > 0, 'the recent log stays');
  check.close();
});


t.test('SIGTERM: running executions are aborted with the reason; queued ones stay queued and run after the restart', async (t) => {
  const release = join(tempDir(t, 'quark-release-'), 'go');
  const { home, ownerToken, rt, api, statusOf } = await kitRuntime(t, { maxRunningExecutions: 1, shutdownGraceMs: 5000 });
  await api('POST', '/deployments', sleeper('nap', 60_000, { parameters: { release } }));
  const running = (await api('POST', '/executions', { process: 'nap' })).body;
  await until('it to run', async () => ((await statusOf(running.id)).status === 'in-process' ? true : undefined));
  const queued = (await api('POST', '/executions', { process: 'nap' })).body;
  t.equal(queued.status, 'queued');
  t.equal(await rt.stop('SIGTERM'), 0, 'a clean exit');
  writeFileSync(release, 'go');
  const again = await startRuntime(t, home);
  const view = async (id: string) => (await again.api('GET', `/api/v1/executions/${id}`, ownerToken)).body;
  t.same([(await view(running.id)).status, (await view(running.id)).errorMessage], ['aborted', 'the runtime shut down']);
  const done = await until('the queued one to run after the restart', async () => {
    const v = await view(queued.id);
    return ['queued', 'in-process'].includes(v.status) ? undefined : v;
  });
  t.equal(done.status, 'complete', 'it ran to completion');
  const log = async (id: string) => {
    const { body } = await again.api('GET', `/api/v1/executions/${id}/log`, ownerToken);
    return typeof body === 'string' ? body : JSON.stringify(body);
  };
  t.match(await log(running.id), /execution ended aborted: the runtime shut down/, 'the running one ends its log saying why');
  t.match(await log(queued.id), /the runtime shut down before this execution started: it stays queued[\s\S]*execution ended complete/, 'the queued one says it waited, then ran');
});

t.test('a queued test-mode run is not kept across a restart: SIGTERM discards it at once, a kill -9 at the next start, each saying why', async (t) => {
  const release = join(tempDir(t, 'quark-release-'), 'go');
  const { home, ownerToken, rt, api, statusOf } = await kitRuntime(t, { maxRunningExecutions: 1, shutdownGraceMs: 5000 });
  await api('POST', '/deployments', sleeper('nap', 60_000, { parameters: { release } }));
  const queueTestRun = async (call: typeof api, status: (id: string) => Promise<any>) => {
    const running = (await call('POST', '/executions', { process: 'nap' })).body;
    await until('it to run', async () => ((await status(running.id)).status === 'in-process' ? true : undefined));
    const tried = (await call('POST', '/executions', { definition: sleeper('draft', 10) })).body;
    t.match(tried, { status: 'queued', trigger: 'test', version: null }, 'a test-mode run waits behind it');
    return tried.id as string;
  };
  const notKept = /a test-mode run of an undeployed definition is not kept across a restart .*: run it again/;

  const first = await queueTestRun(api, statusOf);
  t.equal(await rt.stop('SIGTERM'), 0);
  const again = await startRuntime(t, home);
  const api2 = (method: string, path: string, body?: unknown) => again.api(method, `/api/v1${path}`, ownerToken, body);
  const status2 = async (id: string) => (await api2('GET', `/executions/${id}`)).body;
  t.match(await status2(first), { status: 'discarded', errorCode: 'QUARK_ERR_EXECUTION_INTERRUPTED', errorMessage: /^the runtime shut down before it started; / }, 'SIGTERM: discarded, with the code');
  t.match((await status2(first)).errorMessage, notKept, 'and why');
  const log = async (id: string) => JSON.stringify((await api2('GET', `/executions/${id}/log`)).body);
  t.match(await log(first), /discarded before it started/, 'its log says so');
  t.notMatch(await log(first), /stays queued/, 'and does not promise a run after the restart');

  const second = await queueTestRun(api2, status2);
  t.equal(await again.stop('SIGKILL'), null);
  const third = await startRuntime(t, home);
  const view = (await third.api('GET', `/api/v1/executions/${second}`, ownerToken)).body;
  t.match(view, { status: 'discarded', errorCode: 'QUARK_ERR_EXECUTION_INTERRUPTED', errorMessage: /^queued before the runtime restarted, but it cannot run: / }, 'kill -9: discarded at the next start, with the code');
  t.match(view.errorMessage, notKept, 'and why');
  const queuedFiles = join(home, 'work', 'queued');
  t.same(existsSync(queuedFiles) ? readdirSync(queuedFiles) : [], [], 'no stored input files are left behind');
});

/** Kill -9 under 50 running and 50 queued executions of a home on `store`; the restart aborts the first and runs the second. */
async function killNineWithFiftyAndFifty(t: any, store: 'sqlite' | 'postgres'): Promise<void> {
  const release = join(tempDir(t, 'quark-release-'), 'go');
  const { home, ownerToken, rt, api } = await kitRuntime(t, { maxRunningExecutions: 50, maxQueuedExecutions: 60 }, store);
  t.equal(JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')).store?.kind ?? 'sqlite', store, `the home's store is ${store}`);
  const relay = {
    id: 'relay',
    name: 'relay',
    start: { kind: 'documents', next: 'nap' },
    steps: [{ id: 'nap', kind: 'operation', connection: 'kit', operation: 'sleep', parameters: { ms: 600_000, release } }],
  };
  t.equal((await api('POST', '/deployments', relay)).status, 201);
  // a small body is stored inline with the record, a large one (above 64 KiB) as a file under work/queued/
  const documents = [{ body: '{"n":1}' }, { body: 'q'.repeat(100_000) }];
  const ids: string[] = [];
  for (let i = 0; i < 100; i++) {
    const started = await api('POST', '/executions', { process: 'relay', documents });
    t.equal(started.status, 202, `start ${i} answered`);
    ids.push(started.body.id);
  }
  const statuses = async (call: typeof api) => {
    const list = (await call('GET', '/executions?process=relay&limit=1000')).body.executions as { id: string; status: string }[];
    return new Map(list.map((e) => [e.id, e.status]));
  };
  const before = await until('50 to run', async () => {
    const map = await statuses(api);
    return [...map.values()].filter((s) => s === 'in-process').length === 50 ? map : undefined;
  });
  const running = ids.filter((id) => before.get(id) === 'in-process');
  const queued = ids.filter((id) => before.get(id) === 'queued');
  t.equal(queued.length, 50, 'and 50 wait');
  t.equal(readdirSync(join(home, 'work', 'queued')).length, 50, 'each queued execution has its large input on disk');
  t.equal(await rt.stop('SIGKILL'), null);

  writeFileSync(release, 'go');
  const again = await startRuntime(t, home);
  const api2 = (method: string, path: string, body?: unknown) => again.api(method, `/api/v1${path}`, ownerToken, body);
  const after = await until('the queued ones to finish', async () => {
    const map = await statuses(api2);
    return queued.every((id) => !['queued', 'in-process'].includes(map.get(id)!)) ? map : undefined;
  });
  t.same(running.map((id) => after.get(id)), running.map(() => 'aborted'), 'the 50 running ones are aborted');
  t.same(queued.map((id) => after.get(id)), queued.map(() => 'complete'), 'the 50 queued ones ran to completion');
  const aborted = (await api2('GET', `/executions/${running[0]}`)).body;
  t.equal(aborted.errorCode, 'QUARK_ERR_EXECUTION_INTERRUPTED');
  t.match(aborted.errorMessage, /runtime stopped \(killed, crashed or shut down\) while this execution was running/);
  const ran = (await api2('GET', `/executions/${queued[0]}`)).body;
  t.match(ran, { documentsIn: 2, documentsOut: 2, steps: { nap: { in: 2, out: 2, errors: 0 } } }, 'with both of its documents');
  t.same(readdirSync(join(home, 'work', 'queued')), [], 'their stored input files are gone');
}

const killNine = 'kill -9 with 50 running and 50 queued executions: after the restart the running ones are aborted with the reason, the queued ones run to completion with their documents';
t.test(`${killNine} (SQLite store)`, (t) => killNineWithFiftyAndFifty(t, 'sqlite'));
t.test(`${killNine} (PostgreSQL store)`, { skip: postgresSkip }, (t) => killNineWithFiftyAndFifty(t, 'postgres'));

t.test('a map over a body spilled to disk fails the document instead of losing the body; $body tells', async (t) => {
  const { api } = await kitRuntime(t, { spillBytes: 1024 });
  const definition = {
    id: 'spilled',
    name: 'spilled',
    start: { kind: 'documents', next: 'copy' },
    steps: [
      { id: 'copy', kind: 'operation', connection: 'kit', operation: 'echo', parameters: { tag: 'c' }, next: 'size' },
      { id: 'size', kind: 'set-properties', document: { spilled: { $expr: '$body.spilled' }, size: { $expr: '$body.size' } }, next: 'wrap' },
      { id: 'wrap', kind: 'map', expression: '{"content": $}' },
    ],
  };
  t.equal((await api('POST', '/deployments', definition)).status, 201);
  const view = (await api('POST', '/executions', { process: 'spilled', wait: true, documents: [{ body: '{"small":true}' }, { body: JSON.stringify({ big: 'x'.repeat(5000) }) }] })).body;
  t.equal(view.status, 'error');
  t.same(view.steps.wrap, { in: 2, out: 1, errors: 1 });
  t.match(view.errors[0].message, /wrap: the body \(5010 bytes\) is larger than limits.spillBytes and was spilled to disk; a map cannot read it/);
  t.same(view.output[0].properties.spilled, 'false');
  t.same(Buffer.from(view.output[0].body, 'base64').toString(), '{"content":{"small":true}}');
});
