import t from 'tap';
import { join } from 'node:path';
import { pino } from 'pino';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../runtime/store/sqlite-store.js';
import { createScheduler, missedFires, nominalFire, scheduledFire, scheduleProblem } from '../../runtime/processes/scheduler.js';
import { Cron } from 'croner';
import type { ScheduledFire, ScheduleRecord, Store } from '../../runtime/store/types.js';
import { tempDir, until } from '../helpers/quark.js';
import { openPostgresStore } from '../../runtime/store/postgres-store.js';
import { adminQuery, freshDatabase, postgresSkip } from '../helpers/postgres.js';

const silent = pino({ level: 'silent' });

/** A store with one deployed process whose schedules were set at `setAt`. */
async function storeWith(t: any, schedules: ScheduleRecord[], setAt: string, file = join(tempDir(t), 'quark.db')): Promise<Store> {
  const store = openSqliteStore(file);
  t.teardown(() => store.close());
  await store.accounts.insert({ id: 'acc_1', name: 'acme', relation: 'owner', createdAt: setAt });
  await store.processes.deploy({ accountId: 'acc_1', processId: 'hourly', name: 'hourly', definition: { id: 'hourly' }, deployedAt: setAt, deployedBy: 'acme', note: null });
  await store.processes.setSchedules('acc_1', 'hourly', schedules, setAt);
  return store;
}

function schedulerAt(store: Store, now: string) {
  const fired: string[] = [];
  const fires: ScheduledFire[] = [];
  const scheduler = createScheduler({
    store,
    logger: silent,
    now: () => new Date(now),
    fire: (_account, process, fire) => {
      fired.push(process);
      fires.push(fire);
    },
  });
  return { scheduler, fired, fires };
}

t.test('catch-up once: one run at start when at least one fire was missed while stopped', async (t) => {
  const store = await storeWith(t, [{ cron: '0 * * * *', timezone: 'UTC', catchUp: 'once' }], '2026-01-01T10:30:00.000Z');
  // stopped from 10:30 to 13:10: 11:00, 12:00 and 13:00 were missed
  const { scheduler, fired, fires } = schedulerAt(store, '2026-01-01T13:10:00.000Z');
  await scheduler.start();
  t.teardown(() => scheduler.stop());
  t.same(fired, ['hourly'], 'exactly one catch-up run, not three');
  t.same(fires, [{ at: '2026-01-01T13:00:00.000Z', key: '2026-01-01T13:00:00.000Z 0 * * * * UTC' }], 'for the last missed fire: the same on every node that starts now');
  t.same(await store.processes.lastFires('acc_1', 'hourly'), [{ cron: '0 * * * *', timezone: 'UTC', lastFiredAt: '2026-01-01T13:00:00.000Z' }], 'the fire is recorded at its nominal time');
  scheduler.stop();

  const again = schedulerAt(store, '2026-01-01T13:40:00.000Z');
  await again.scheduler.start();
  again.scheduler.stop();
  t.same(again.fired, [], 'started again before the next fire: nothing to catch up');
});

t.test('catch-up skip (the default): missed fires are not run, and the schedule counts from now', async (t) => {
  const store = await storeWith(t, [{ cron: '0 * * * *' }], '2026-01-01T10:30:00.000Z');
  const { scheduler, fired } = schedulerAt(store, '2026-01-01T13:10:00.000Z');
  await scheduler.start();
  scheduler.stop();
  t.same(fired, []);
  t.equal((await store.processes.lastFires('acc_1', 'hourly'))[0]!.lastFiredAt, '2026-01-01T13:00:00.000Z', 'counted from the last skipped fire');
  await store.processes.setSchedules('acc_1', 'hourly', [{ cron: '0 * * * *', catchUp: 'once' }], '2026-01-01T13:20:00.000Z');
  t.equal((await store.processes.lastFires('acc_1', 'hourly'))[0]!.lastFiredAt, '2026-01-01T13:00:00.000Z', 'a kept schedule keeps its last fire');
  const later = schedulerAt(store, '2026-01-01T13:50:00.000Z');
  await later.scheduler.start();
  later.scheduler.stop();
  t.same(later.fired, [], 'skipped fires are not caught up later by switching to once');
});

t.test('no catch-up within the first interval, nor for a process no longer deployed', async (t) => {
  const store = await storeWith(t, [{ cron: '0 * * * *', catchUp: 'once' }], '2026-01-01T10:30:00.000Z');
  const early = schedulerAt(store, '2026-01-01T10:59:59.000Z');
  await early.scheduler.start();
  early.scheduler.stop();
  t.same(early.fired, []);
  await store.processes.setActive('acc_1', 'hourly', null, '2026-01-01T11:00:00.000Z');
  const undeployed = schedulerAt(store, '2026-01-01T15:00:00.000Z');
  await undeployed.scheduler.start();
  undeployed.scheduler.stop();
  t.same(undeployed.fired, []);
});

t.test('a stored schedule that cannot be armed is reported; the others of the process are armed', async (t) => {
  const store = await storeWith(t, [{ cron: '0 * * * *', timezone: 'Mars/Base', catchUp: 'once' }, { cron: '0 3 * * *', timezone: 'UTC' }], '2026-01-01T10:30:00.000Z');
  const { scheduler, fired } = schedulerAt(store, '2026-01-01T13:10:00.000Z');
  await scheduler.start();
  t.teardown(() => scheduler.stop());
  t.same(fired, [], 'the unarmed schedule does not catch up either');
  t.match(scheduler.problems('acc_1', 'hourly'), [{ path: '/schedules/0', code: 'QUARK_ERR_SCHEDULE_INVALID', message: /Invalid time zone specified: Mars\/Base/ }]);
  t.equal(scheduler.problemCount(), 1);
  const next = scheduler.next('acc_1', 'hourly');
  t.equal(next[0], null);
  t.match(next[1], /T03:00:00\.000Z$/);
});

t.test('damaged stored schedules are reported for their process; the other processes are armed', async (t) => {
  const file = join(tempDir(t), 'quark.db');
  const store = await storeWith(t, [{ cron: '0 * * * *' }], '2026-01-01T10:30:00.000Z', file);
  await store.processes.deploy({ accountId: 'acc_1', processId: 'daily', name: 'daily', definition: { id: 'daily' }, deployedAt: '2026-01-01T10:30:00.000Z', deployedBy: 'acme', note: null });
  await store.processes.setSchedules('acc_1', 'daily', [{ cron: '0 3 * * *', timezone: 'UTC' }], '2026-01-01T10:30:00.000Z');
  const raw = new Database(file);
  raw.prepare("UPDATE processes SET schedules = '[{\"cron\": 5', properties = 'nope' WHERE process_id = 'hourly'").run();
  raw.close();
  t.match(await store.processes.get('acc_1', 'hourly'), { properties: {}, propertiesUnreadable: true }, 'damaged properties read as none, flagged');
  const { scheduler } = schedulerAt(store, '2026-01-01T11:10:00.000Z');
  await scheduler.start();
  t.teardown(() => scheduler.stop());
  t.match(scheduler.problems('acc_1', 'hourly'), [{ path: '/schedules', code: 'QUARK_ERR_SCHEDULE_INVALID', message: /cannot be read/ }]);
  t.match(scheduler.next('acc_1', 'daily')[0], /T03:00:00\.000Z$/, 'the other process is armed');
});

t.test('scheduleProblem and missedFires are what the scheduler arms with', async (t) => {
  t.equal(scheduleProblem({ cron: '0 * * * *', timezone: 'Europe/Paris' }), undefined);
  t.match(scheduleProblem({ cron: '0 * * * *', timezone: 'Mars/Base' }), /Invalid time zone/);
  t.match(scheduleProblem({ cron: '0 0 30 2 *' }), /never fires/);
  t.match(scheduleProblem({ cron: '61 * * * *' }), /minute/);
  t.equal(missedFires({ cron: '0 * * * *', timezone: 'UTC' }, new Date('2026-01-01T10:30:00Z'), new Date('2026-01-01T13:00:00Z')), 3, 'a fire at exactly now counts');
  t.equal(missedFires({ cron: '* * * * * *' }, new Date('2026-01-01T00:00:00Z'), new Date('2026-01-02T00:00:00Z')), 1000, 'counting stops at 1000');
});

t.test('the nominal fire time: the pattern\'s last time not after the clock, whatever the lag or skew within the period', async (t) => {
  const job = new Cron('*/2 * * * * *', { paused: true });
  t.teardown(() => job.stop());
  const since = new Date('2026-01-01T00:00:00.500Z');
  t.same(nominalFire(job, since, new Date('2026-01-01T00:00:02.001Z')), new Date('2026-01-01T00:00:02.000Z'), 'fired on time');
  t.same(nominalFire(job, since, new Date('2026-01-01T00:00:03.900Z')), new Date('2026-01-01T00:00:02.000Z'), 'a node whose clock is 1.9 s ahead finds the same');
  t.same(nominalFire(job, since, new Date('2026-01-01T00:00:07.000Z')), new Date('2026-01-01T00:00:06.000Z'), 'a timer held up past later fires: the latest one');
  t.equal(nominalFire(job, since, new Date('2026-01-01T00:00:01.999Z')), undefined, 'none due yet (a clock set back)');
  t.same(scheduledFire({ cron: '0 6 * * 1' }, new Date('2026-01-05T06:00:00.000Z')), { at: '2026-01-05T06:00:00.000Z', key: '2026-01-05T06:00:00.000Z 0 6 * * 1' });
  t.same(scheduledFire({ cron: '0 6 * * 1', timezone: 'Europe/Paris' }, new Date('2026-01-05T05:00:00.000Z')).key, '2026-01-05T05:00:00.000Z 0 6 * * 1 Europe/Paris', 'the time zone is part of the key');
});

t.test('nodes starting together after a stop catch up the same fire: one key, so the store lets one of them run it', async (t) => {
  const store = await storeWith(t, [{ cron: '0 * * * *', catchUp: 'once' }], '2026-01-01T10:30:00.000Z');
  const nodes = [schedulerAt(store, '2026-01-01T13:10:00.000Z'), schedulerAt(store, '2026-01-01T13:10:01.000Z')];
  await Promise.all(nodes.map((n) => n.scheduler.start()));
  for (const n of nodes) n.scheduler.stop();
  t.same(nodes.map((n) => n.fires.map((f) => f.key)), [['2026-01-01T13:00:00.000Z 0 * * * *'], ['2026-01-01T13:00:00.000Z 0 * * * *']]);
});

t.test('a timer firing for real hands over its nominal time, on the second', async (t) => {
  const store = await storeWith(t, [], '2026-01-01T10:30:00.000Z');
  await store.processes.setSchedules('acc_1', 'hourly', [{ cron: '* * * * * *' }], new Date().toISOString());
  let resolveFire!: (f: { fire: ScheduledFire; when: number }) => void;
  const first = new Promise<{ fire: ScheduledFire; when: number }>((r) => (resolveFire = r));
  const scheduler = createScheduler({ store, logger: silent, fire: (_a, _p, fire) => resolveFire({ fire, when: Date.now() }) });
  t.teardown(() => scheduler.stop());
  await scheduler.start();
  const { fire, when } = await first;
  scheduler.stop();
  t.match(fire.at, /\.000Z$/, 'a whole second of the pattern, not the clock');
  t.ok(Date.parse(fire.at) <= when, 'not after the firing');
  t.equal(fire.key, `${fire.at} * * * * * *`);
});

t.test('resync: schedules another node changed in the store are armed here; a process undeployed there is disarmed', async (t) => {
  const store = await storeWith(t, [{ cron: '0 3 * * *', timezone: 'UTC' }], '2026-01-01T10:30:00.000Z');
  const scheduler = createScheduler({ store, logger: silent, fire: () => undefined });
  t.teardown(() => scheduler.stop());
  await scheduler.start();
  t.match(scheduler.next('acc_1', 'hourly'), [/T03:00:00\.000Z$/]);
  // as another node would: straight into the shared store, with no word to this one
  await store.processes.setSchedules('acc_1', 'hourly', [{ cron: '0 5 * * *', timezone: 'UTC' }, { cron: '30 6 * * *', timezone: 'UTC' }], '2026-01-01T11:00:00.000Z');
  t.match(scheduler.next('acc_1', 'hourly'), [/T03:00:00\.000Z$/], 'not seen yet');
  await scheduler.resync();
  t.match(scheduler.next('acc_1', 'hourly'), [/T05:00:00\.000Z$/, /T06:30:00\.000Z$/], 'armed after the resync');
  await store.processes.setActive('acc_1', 'hourly', null, '2026-01-01T12:00:00.000Z');
  await scheduler.resync();
  t.same(scheduler.next('acc_1', 'hourly'), [], 'undeployed elsewhere: disarmed here');
});

/** A logger whose messages a test can wait for. */
function listeningLogger() {
  const waiters: { pattern: RegExp; resolve(): void }[] = [];
  const logger = pino({ level: 'debug' }, {
    write(line: string) {
      const msg = (JSON.parse(line) as { msg: string }).msg;
      for (const w of waiters.filter((x) => x.pattern.test(msg))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    },
  });
  return { logger, next: (pattern: RegExp) => new Promise<void>((resolve) => waiters.push({ pattern, resolve })) };
}

t.test('PostgreSQL: a change made on one node while another lost its listening connection is armed there once it listens again', { skip: postgresSkip }, async (t) => {
  const url = await freshDatabase(t);
  const [storeA, storeB] = await Promise.all([1, 2].map(() => openPostgresStore({ url, poolSize: 2, listenRetryMs: 1000 })));
  t.teardown(() => Promise.all([storeA!.close(), storeB!.close()]));
  await storeA!.accounts.insert({ id: 'acc_1', name: 'acme', relation: 'owner', createdAt: '2026-01-01T00:00:00.000Z' });
  await storeA!.processes.deploy({ accountId: 'acc_1', processId: 'p', name: 'p', definition: { id: 'p' }, deployedAt: '2026-01-01T00:00:00.000Z', deployedBy: 'acme', note: null });
  await storeA!.processes.setSchedules('acc_1', 'p', [{ cron: '0 3 * * *', timezone: 'UTC' }], '2026-01-01T00:00:00.000Z');
  const onB = listeningLogger();
  const a = createScheduler({ store: storeA!, logger: silent, nodeId: 'node-a', fire: () => undefined });
  const b = createScheduler({ store: storeB!, logger: onB.logger, nodeId: 'node-b', fire: () => undefined });
  t.teardown(() => [a, b].forEach((s) => s.stop()));
  await Promise.all([a.start(), b.start()]);

  const heard = onB.next(/a schedule change from another node/);
  await storeA!.processes.setSchedules('acc_1', 'p', [{ cron: '0 4 * * *', timezone: 'UTC' }], '2026-01-01T01:00:00.000Z');
  await a.refresh('acc_1', 'p');
  await heard;
  await until('B armed the change it heard', () => (/T04:00:00\.000Z$/.test(b.next('acc_1', 'p')[0] ?? '') ? true : undefined));

  const lost = onB.next(/was lost/);
  const resumed = onB.next(/hearing schedule changes again/);
  await adminQuery("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'quark-listen'", [], url);
  await lost;
  // in the gap: B cannot hear this
  await storeA!.processes.setSchedules('acc_1', 'p', [{ cron: '0 5 * * *', timezone: 'UTC' }], '2026-01-01T02:00:00.000Z');
  await a.refresh('acc_1', 'p');
  await resumed;
  await until('B read the schedules again', () => (/T05:00:00\.000Z$/.test(b.next('acc_1', 'p')[0] ?? '') ? true : undefined));
  t.pass('the change made in the gap (the listening connection is opened again only after 1 s) is armed on B');
});
