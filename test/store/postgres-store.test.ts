import t, { type Test } from 'tap';
import pg from 'pg';
import { migrations, openPostgresStore, postgresAddress, redactPostgresUrl, PURGE_LOCK } from '../../runtime/store/postgres-store.js';
import { StoreUnavailableError } from '../../runtime/store/errors.js';
import type { Store } from '../../runtime/store/types.js';
import { adminQuery, closedPort, freshDatabase, freshSchema, postgresSkip, postgresUrl } from '../helpers/postgres.js';
import { connection, deploying, deployment, execution, owner, storeContract, tenant, token } from './contract.js';

async function openFresh(t: Test): Promise<Store> {
  const schema = await freshSchema(t);
  const store = await openPostgresStore({ url: postgresUrl!, schema, poolSize: 4 });
  t.teardown(() => store.close());
  return store;
}

/** A loopback port nothing listens on (taken, then given back). */
t.test('a server that is not there: StoreUnavailableError naming host and port, never the password', async (t) => {
  const port = await closedPort();
  const url = `postgres://quark:hunter2-secret@127.0.0.1:${port}/quark`;
  const error = await openPostgresStore({ url, connectTimeoutMs: 2000 }).catch((e: unknown) => e);
  t.ok(error instanceof StoreUnavailableError, 'typed as unavailable');
  t.match((error as Error).message, `PostgreSQL at 127.0.0.1:${port} is not reachable`);
  t.notMatch(`${(error as Error).message} ${(error as Error).stack}`, /hunter2/, 'the password is in neither message nor stack');
});

t.test('URLs for people: the address without credentials, the URL with its password redacted', async (t) => {
  t.equal(postgresAddress('postgres://u:p@db.example:6543/x'), 'db.example:6543');
  t.equal(postgresAddress('postgres://db.example/x'), 'db.example:5432', 'the default port');
  t.equal(redactPostgresUrl('postgres://u:s3cret@127.0.0.1:5432/quark?sslmode=require'), 'postgres://u:***@127.0.0.1:5432/quark?sslmode=require');
  t.equal(redactPostgresUrl('postgres://u@127.0.0.1/quark?password=s3cret'), 'postgres://u@127.0.0.1/quark?password=***', 'a password given as a parameter too');
  t.equal(redactPostgresUrl('not a url with s3cret'), '(a URL that cannot be read)', 'an unreadable one is not echoed');
});

t.test('the PostgreSQL store keeps the Store contract', { skip: postgresSkip }, async (t) => {
  storeContract(t, openFresh);
});

/**
 * Rows written with the schema of the migration that created their tables, by raw SQL as
 * an older quark wrote them. Index i seeds right after migration i ran.
 */
const seeds: Record<number, (q: (sql: string, values: unknown[]) => Promise<unknown>) => Promise<void>> = {
  0: async (q) => {
    for (const a of [owner, tenant]) await q('INSERT INTO accounts (id, name, relation, created_at) VALUES ($1, $2, $3, $4)', [a.id, a.name, a.relation, a.createdAt]);
    const k = token('tok_1', owner.id, '2026-01-03T00:00:00.000Z');
    await q('INSERT INTO tokens (id, account_id, name, hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)', [k.id, k.accountId, k.name, k.hash, k.createdAt, k.revokedAt]);
    const c = connection('conn_1', owner.id, 'files');
    await q('INSERT INTO connections (id, account_id, connector_id, name, config, secrets, created_at, updated_at, revision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
      c.id, c.accountId, c.connectorId, c.name, JSON.stringify(c.config), JSON.stringify(c.secrets), c.createdAt, c.updatedAt, c.revision,
    ]);
  },
  1: async (q) => {
    const d = deployment(owner.id, 'orders', 1);
    await q('INSERT INTO deployments (account_id, process_id, version, name, definition, deployed_at, deployed_by, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
      d.accountId, d.processId, d.version, d.name, JSON.stringify(d.definition), d.deployedAt, d.deployedBy, d.note,
    ]);
    await q('INSERT INTO processes (account_id, process_id, active_version, schedules, properties, updated_at) VALUES ($1, $2, $3, $4, $5, $6)', [
      owner.id, 'orders', 1, JSON.stringify([{ cron: '0 * * * *' }]), JSON.stringify({ counter: 7 }), d.deployedAt,
    ]);
    const e = execution('exe_1', owner.id, 'orders', '2026-05-01T00:00:00.000Z', 'complete');
    await q('INSERT INTO executions (id, account_id, process_id, version, trigger, status, queued_at, started_at, ended_at, steps) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)', [
      e.id, e.accountId, e.processId, e.version, e.trigger, e.status, e.queuedAt, e.startedAt, e.endedAt, JSON.stringify({ read: { in: 1, out: 1, errors: 0 } }),
    ]);
    await q("INSERT INTO executions (id, account_id, process_id, version, trigger, status, queued_at) VALUES ('exe_waiting', $1, 'orders', 1, 'manual', 'queued', '2026-05-02T00:00:00.000Z')", [owner.id]);
    await q('INSERT INTO execution_errors (execution_id, seq, step, code, message) VALUES ($1, $2, $3, $4, $5)', [e.id, 0, 'read', 'QUARK_ERR_X', 'x']);
  },
  2: async (q) => {
    await q('INSERT INTO execution_logs (execution_id, lines) VALUES ($1, $2)', ['exe_1', '{"msg":"from an older quark"}\n']);
  },
  3: async (q) => {
    await q('INSERT INTO schedule_fires (account_id, process_id, cron, timezone, last_fired_at) VALUES ($1, $2, $3, $4, $5)', [owner.id, 'orders', '0 * * * *', '', '2026-05-01T01:00:00.000Z']);
  },
  4: async (q) => {
    await q("INSERT INTO held_resources (id, account_id, connection_id, connector_id, kind, data, created_at) VALUES ('res_1', $1, 'conn_1', 'amazon-s3', 'multipart-upload', $2, '2026-05-01T00:00:00.000Z')", [
      owner.id, JSON.stringify({ uploadId: 'u-1' }),
    ]);
  },
  8: async (q) => {
    await q("INSERT INTO executions (id, account_id, process_id, version, trigger, status, queued_at, started_at, owner) VALUES ('exe_running', $1, 'orders', 1, 'api', 'in-process', '2026-05-03T00:00:00.000Z', '2026-05-03T00:00:01.000Z', 'node-z')", [owner.id]);
    await q('INSERT INTO execution_step_documents (execution_id, step, seq, properties, input_properties, body, size) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      'exe_1', 'read', 0, JSON.stringify({ 'file.name': 'a.csv' }), null, Buffer.from('id,n\n'), 1200,
    ]);
    await q('INSERT INTO execution_definitions (execution_id, definition) VALUES ($1, $2)', ['exe_1', JSON.stringify({ id: 'orders', steps: [] })]);
  },
};

/** What the seeds of migrations before `version` wrote must read back through the Store. */
async function checkSeeded(t: Test, store: Store, version: number): Promise<void> {
  if (version > 0) {
    t.same(await store.accounts.list(), [owner, tenant], 'accounts survived');
    t.same(await store.tokens.findByHash('hash-of-tok_1'), token('tok_1', owner.id, '2026-01-03T00:00:00.000Z'), 'tokens survived');
    t.same(await store.connections.get(owner.id, 'conn_1'), connection('conn_1', owner.id, 'files'), 'connections survived');
  }
  if (version > 1) {
    t.same(await store.processes.version(owner.id, 'orders', 1), deployment(owner.id, 'orders', 1), 'deployments survived');
    t.match(await store.processes.get(owner.id, 'orders'), { activeVersion: 1, schedules: [{ cron: '0 * * * *' }], properties: { counter: 7 } }, 'processes survived');
    t.match(await store.executions.get(owner.id, 'exe_1'), { status: 'complete', steps: { read: { in: 1, out: 1, errors: 0 } }, owner: null, attempt: 1 }, 'executions survived');
    t.same(await store.executions.errors('exe_1', 10), [{ step: 'read', code: 'QUARK_ERR_X', message: 'x' }], 'execution errors survived');
    const waiting = await store.executions.get(owner.id, 'exe_waiting');
    // seeded before migration 6, which discards it (its inputs were in that quark's memory only)
    t.match(waiting, { status: 'discarded', errorCode: 'QUARK_ERR_EXECUTION_INTERRUPTED', errorMessage: /inputs of queued executions in memory only/ }, 'a queued one of an older quark is discarded');
  }
  if (version > 2) t.same(await store.executions.log('exe_1'), ['{"msg":"from an older quark"}\n'], 'execution logs survived');
  if (version > 3) t.same(await store.processes.lastFires(owner.id, 'orders'), [{ cron: '0 * * * *', lastFiredAt: '2026-05-01T01:00:00.000Z' }], 'schedule fires survived');
  if (version > 4) t.match(await store.resources.get('res_1'), { kind: 'multipart-upload', data: { uploadId: 'u-1' }, attempts: 0 }, 'held resources survived');
  if (version > 8) {
    t.same(await store.executions.cancelsRequested('node-z'), [], 'a running execution of an older quark has no cancel requested');
    t.equal(await store.executions.requestCancel('exe_running', '2026-06-01T00:00:00.000Z', 'owner'), true, 'migration 10: a cancel of it is kept');
    t.same(await store.executions.cancelsRequested('node-z'), [{ id: 'exe_running', accountId: owner.id, by: 'owner', at: '2026-06-01T00:00:00.000Z' }], 'and listed for its owner');
  }
  if (version > 8) {
    t.same(await store.stepData.list('exe_1', 'read', { after: -1, limit: 10 }), [{ seq: 0, step: 'read', properties: { 'file.name': 'a.csv' }, body: new Uint8Array(Buffer.from('id,n\n')), size: 1200 }], 'step data survived');
    t.same(await store.executions.definition('exe_1'), { id: 'orders', steps: [] }, 'a kept test-mode definition survived');
  }
}

/** A schema as a quark whose last migration was `version` left it, with data. */
async function schemaAt(schema: string, version: number): Promise<void> {
  const q = (sql: string, values: unknown[] = []) => adminQuery(sql, values, withSchema(schema));
  await q('CREATE TABLE quark_schema (version INTEGER PRIMARY KEY, applied_at TEXT COLLATE "C" NOT NULL, quark_version TEXT NOT NULL)');
  for (let i = 0; i < version; i++) {
    await q(migrations[i]!);
    await seeds[i]?.(q);
    await q('INSERT INTO quark_schema (version, applied_at, quark_version) VALUES ($1, $2, $3)', [i + 1, '2026-01-01T00:00:00.000Z', 'an older quark']);
  }
}

/** The test URL with a search_path of `schema` for every connection. */
function withSchema(schema: string): string {
  const url = new URL(postgresUrl!);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
}

async function appliedVersions(schema: string): Promise<number[]> {
  return (await adminQuery(`SELECT version FROM ${schema}.quark_schema ORDER BY version`)).rows.map((row: { version: number }) => row.version);
}

/** The indexes of the executions table now: none on status alone (executions_queued leads with it). */
const currentExecutionIndexes = ['executions_by_account', 'executions_cancel_requested', 'executions_pkey', 'executions_queued', 'executions_schedule_key'];

async function executionIndexes(schema: string): Promise<string[]> {
  return (await adminQuery("SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'executions' ORDER BY indexname", [schema])).rows.map((row: { indexname: string }) => row.indexname);
}

t.test('every earlier schema version migrates to the current one and keeps its data', { skip: postgresSkip }, async (t) => {
  t.ok(migrations.length >= 6, 'there are migrations to test');
  for (let version = 0; version <= migrations.length; version++) {
    t.test(`from schema version ${version}`, async (t) => {
      const schema = await freshSchema(t);
      await schemaAt(schema, version);
      const store = await openPostgresStore({ url: postgresUrl!, schema, poolSize: 2 });
      t.teardown(() => store.close());
      t.same(await appliedVersions(schema), migrations.map((_, i) => i + 1), 'every later migration ran, each recorded once');
      t.same(await executionIndexes(schema), currentExecutionIndexes, 'the indexes of executions are the current ones (migration 11 dropped executions_by_status, 12 made executions_schedule_key partial)');
      const [scheduleKey] = (await adminQuery("SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'executions_schedule_key'", [schema])).rows as { indexdef: string }[];
      t.match(scheduleKey?.indexdef, /WHERE \(schedule_key IS NOT NULL\)$/, 'executions_schedule_key holds the scheduled runs only (migration 12): an unscheduled execution writes no entry in it');
      await checkSeeded(t, store, version);
      if (version === 0) await store.accounts.insert(tenant);
      await store.tokens.insert(token('tok_new', tenant.id, '2026-06-01T00:00:00.000Z'));
      t.ok(await store.tokens.get('tok_new'), 'and the migrated store takes new rows');
      await store.executions.insert(execution('exe_new', tenant.id, 'orders', '2026-06-01T00:00:00.000Z', 'complete'));
      await store.stepData.insert('exe_new', [{ step: 'write', properties: {}, body: new Uint8Array([1]), size: 1 }]);
      t.same(await store.stepData.steps('exe_new'), [{ step: 'write', count: 1 }], 'step data too');
      await store.executions.saveDefinition('exe_new', { id: 'orders' });
      t.same(await store.executions.definition('exe_new'), { id: 'orders' }, 'and test-mode definitions');
    });
  }
});

t.test('stores opened at once on a new schema: the advisory lock lets one migrate, the others wait', { skip: postgresSkip }, async (t) => {
  const schema = await freshSchema(t);
  const stores = await Promise.all([1, 2, 3, 4].map(() => openPostgresStore({ url: postgresUrl!, schema, poolSize: 1 })));
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  t.same(await appliedVersions(schema), migrations.map((_, i) => i + 1), 'each migration applied once');
  await stores[0]!.accounts.insert(owner);
  t.same(await stores[3]!.accounts.get(owner.id), owner, 'they share the tables');
});

t.test('a schema migrated by a newer quark is refused with QUARK_ERR_STORE_TOO_NEW', { skip: postgresSkip }, async (t) => {
  const schema = await freshSchema(t);
  const store = await openPostgresStore({ url: postgresUrl!, schema });
  await store.close();
  await adminQuery(`INSERT INTO ${schema}.quark_schema (version, applied_at, quark_version) VALUES ($1, '2027-01-01T00:00:00.000Z', 'quark 9.0.0')`, [migrations.length + 1]);
  await t.rejects(openPostgresStore({ url: postgresUrl!, schema }, '0.1.0'), {
    code: 'QUARK_ERR_STORE_TOO_NEW',
    message: new RegExp(`schema version ${migrations.length + 1}, newer than this quark 0.1.0 knows \\(${migrations.length}\\)`),
  });
});

t.test('a query after the server ended the connections: StoreUnavailableError or a reconnect, no crash; healthy once it answers', { skip: postgresSkip }, async (t) => {
  const schema = await freshSchema(t);
  const url = new URL(postgresUrl!);
  url.searchParams.set('application_name', schema);
  const store = await openPostgresStore({ url: url.toString(), schema, poolSize: 2 });
  t.teardown(() => store.close());
  await store.accounts.insert(owner);
  const ended = await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [schema]);
  t.ok(ended.rowCount! > 0, 'the store had connections, now ended');
  const outcome = await store.accounts.get(owner.id).then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if ('error' in outcome) {
    t.ok(outcome.error instanceof StoreUnavailableError, 'a failed query is typed as unavailable');
    t.equal(store.healthy(), false, 'and the store is not healthy');
  } else {
    t.same(outcome.value, owner, 'the pool had noticed and reconnected');
  }
  await store.ping();
  t.equal(store.healthy(), true, 'healthy once it answers');
  t.same(await store.accounts.get(owner.id), owner, 'nothing lost');
});

t.test('three stores migrating an empty database at once: each migration applied once, all three open', { skip: postgresSkip }, async (t) => {
  const url = await freshDatabase(t);
  const stores = await Promise.all([1, 2, 3].map(() => openPostgresStore({ url, poolSize: 1 })));
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  const applied = (await adminQuery('SELECT version FROM quark_schema ORDER BY version', [], url)).rows.map((row: { version: number }) => row.version);
  t.same(applied, migrations.map((_, i) => i + 1), 'each migration recorded once');
  await stores[1]!.accounts.insert(owner);
  t.same(await stores[2]!.accounts.get(owner.id), owner, 'they share the tables');
});

t.test('purge runs under an advisory lock: while another node holds it, a purge deletes nothing; after, it purges', { skip: postgresSkip }, async (t) => {
  const schema = await freshSchema(t);
  const store = await openPostgresStore({ url: postgresUrl!, schema, poolSize: 2 });
  t.teardown(() => store.close());
  await store.accounts.insert(owner);
  await store.executions.insert(execution('exe_old', owner.id, 'p', '2026-05-01T00:00:00.000Z', 'complete'));
  const other = new pg.Client({ connectionString: withSchema(schema) });
  await other.connect();
  t.teardown(() => other.end());
  await other.query('SELECT pg_advisory_lock(hashtext($1 || current_schema()))', [PURGE_LOCK]);
  t.same(await store.executions.purge('2026-05-05T00:00:00.000Z'), [], 'another purge is under way: this one leaves it to that one');
  t.ok(await store.executions.get(owner.id, 'exe_old'), 'and the execution is still there');
  await other.query('SELECT pg_advisory_unlock(hashtext($1 || current_schema()))', [PURGE_LOCK]);
  t.same(await store.executions.purge('2026-05-05T00:00:00.000Z'), ['exe_old'], 'the lock free: purged');
});

/** Handlers that record what they hear, with a promise for the next of each kind. */
function hearing() {
  const heard = { messages: [] as string[], dropped: 0, resumed: 0 };
  const waiters: { kind: 'message' | 'dropped' | 'resumed'; resolve(): void }[] = [];
  const wake = (kind: 'message' | 'dropped' | 'resumed') => {
    for (const w of waiters.filter((x) => x.kind === kind)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  return {
    heard,
    handlers: {
      message: (payload: string) => {
        heard.messages.push(payload);
        wake('message');
      },
      dropped: () => {
        heard.dropped += 1;
        wake('dropped');
      },
      resumed: () => {
        heard.resumed += 1;
        wake('resumed');
      },
    },
    next: (kind: 'message' | 'dropped' | 'resumed') => new Promise<void>((resolve) => waiters.push({ kind, resolve })),
  };
}

t.test('notifications reach every store of the schema, none of another schema', { skip: postgresSkip }, async (t) => {
  const schema = await freshSchema(t);
  const elsewhere = await freshSchema(t);
  const [a, b, c] = await Promise.all([schema, schema, elsewhere].map((s) => openPostgresStore({ url: postgresUrl!, schema: s, poolSize: 1 })));
  t.teardown(() => Promise.all([a, b, c].map((s) => s!.close())));
  const [onA, onB, onC] = [hearing(), hearing(), hearing()];
  await a!.notifications!.listen('schedules', onA.handlers);
  const stopB = await b!.notifications!.listen('schedules', onB.handlers);
  await c!.notifications!.listen('schedules', onC.handlers);
  const both = Promise.all([onA.next('message'), onB.next('message')]);
  await a!.notifications!.notify('schedules', '{"process":"orders"}');
  await both;
  t.same([onA.heard.messages, onB.heard.messages], [['{"process":"orders"}'], ['{"process":"orders"}']], 'the sender hears it too');
  stopB();
  const onlyA = onA.next('message');
  await c!.notifications!.notify('schedules', 'from elsewhere');
  await b!.notifications!.notify('schedules', 'second');
  await onlyA;
  t.same(onA.heard.messages, ['{"process":"orders"}', 'second'], 'a message of another schema is not heard');
  t.same(onB.heard.messages, ['{"process":"orders"}'], 'a listener that stopped hears no more');
  t.same(onC.heard.messages, ['from elsewhere'], 'the other schema hears its own');
  await t.rejects(a!.notifications!.notify('schedules', 'x'.repeat(8000)), /at most 7999 bytes/, 'a payload too large for NOTIFY is refused before it is sent');
  await t.rejects(a!.notifications!.listen('Bad Channel', onA.handlers), /lower-case letters/, 'a channel name is checked');
});

t.test('a listening connection the server ends: dropped, then opened again and resumed; messages flow again', { skip: postgresSkip }, async (t) => {
  const url = await freshDatabase(t);
  const [a, b] = await Promise.all([1, 2].map(() => openPostgresStore({ url, poolSize: 1, listenRetryMs: 100 })));
  t.teardown(() => Promise.all([a, b].map((s) => s!.close())));
  const onB = hearing();
  await b!.notifications!.listen('schedules', onB.handlers);
  const dropped = onB.next('dropped');
  const resumed = onB.next('resumed');
  const ended = await adminQuery("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'quark-listen'", [], url);
  t.equal(ended.rowCount, 1, 'the one listening connection was ended');
  await dropped;
  await resumed;
  t.same([onB.heard.dropped, onB.heard.resumed], [1, 1], 'told once of each');
  const next = onB.next('message');
  await a!.notifications!.notify('schedules', 'after the gap');
  await next;
  t.same(onB.heard.messages, ['after the gap'], 'listening again');
});

t.test('damaged persisted properties (stored JSON that is not an object) are flagged as unreadable, and the next merge writes them anew', { skip: postgresSkip }, async (t) => {
  const schema = await freshSchema(t);
  const store = await openPostgresStore({ url: postgresUrl!, schema, poolSize: 2 });
  t.teardown(() => store.close());
  await store.accounts.insert(owner);
  for (const [damage, label] of [['[1, 2]', 'an array'], ['"count: 4"', 'a string'], ['7', 'a number'], ['null', 'a JSON null']] as const) {
    await store.processes.deploy({ ...deploying(owner.id, 'counter', 1), note: label });
    await store.processes.mergeProperties(owner.id, 'counter', new Map([['count', 4]]));
    await adminQuery(`UPDATE ${schema}.processes SET properties = $1::jsonb WHERE process_id = 'counter'`, [damage]);
    t.match(await store.processes.get(owner.id, 'counter'), { properties: {}, propertiesUnreadable: true }, `${label}: read as none, flagged`);
    t.match((await store.processes.list(owner.id))[0], { propertiesUnreadable: true }, `${label}: flagged in the list too`);
    await store.processes.mergeProperties(owner.id, 'counter', new Map<string, unknown>([['count', 1], ['gone', undefined]]));
    const repaired = await store.processes.get(owner.id, 'counter');
    t.same(repaired?.properties, { count: 1 }, `${label}: a merge starts them again from {}`);
    t.notOk(repaired?.propertiesUnreadable, `${label}: no longer flagged`);
  }
});

t.test('node loss: lost nodes\' runs found by heartbeat, requeued or abandoned once, on the lease epoch; the lost node\'s writes fenced', { skip: postgresSkip }, async (t) => {
  const store = await openFresh(t);
  const cluster = store.cluster!;
  await store.accounts.insert(owner);
  const at = '2026-05-01T00:00:00.000Z';
  await cluster.upsertNode({ id: 'node-a', address: null, version: '1', pid: 1, startedAt: at, heartbeatAt: at, running: 1, draining: false });
  await cluster.upsertNode({ id: 'node-b', address: null, version: '1', pid: 2, startedAt: at, heartbeatAt: '2026-05-01T00:01:00.000Z', running: 0, draining: false });
  const queued = execution('exe_lost1', owner.id, 'p', at);
  await store.executions.insert({ ...queued, documentsIn: 1 }, [{ seq: 0, properties: {}, body: { kind: 'inline', base64: 'aGk=' } }]);
  await store.executions.insert(execution('exe_lost2', owner.id, 'p', '2026-05-01T00:00:01.000Z'));
  const claimed = (await store.executions.claim('exe_lost1', 'node-a', at))!;
  await store.executions.claim('exe_lost2', 'node-a', at);
  await store.executions.insertErrors('exe_lost1', [{ step: 's', code: 'X', message: 'of attempt 1' }]);

  t.same((await cluster.lostRuns({ staleBefore: '2026-05-01T00:00:30.000Z', except: 'node-b', limit: 10 })).map((r) => r.id), ['exe_lost1', 'exe_lost2'], 'node-a\'s heartbeat is stale: its two runs');
  t.same(await cluster.lostRuns({ staleBefore: '2026-05-01T00:00:30.000Z', except: 'node-a', limit: 10 }), [], 'never the asking node\'s own');
  t.same(await cluster.lostRuns({ staleBefore: at, except: 'node-b', limit: 10 }), [], 'a fresh heartbeat: none');

  const requeued = await cluster.requeue('exe_lost1', claimed.leaseEpoch);
  t.match(requeued, { status: 'queued', owner: null, startedAt: null, attempt: 2, leaseEpoch: claimed.leaseEpoch + 1 }, 'requeued as attempt 2, the epoch raised');
  t.equal(await cluster.requeue('exe_lost1', claimed.leaseEpoch), undefined, 'a second node that tries too: nothing');
  t.same(await store.executions.errors('exe_lost1', 10), [], 'the lost attempt\'s errors are gone');
  t.equal((await store.executions.inputs('exe_lost1')).length, 1, 'its inputs are kept for attempt 2');
  await t.rejects(store.executions.update({ ...claimed, status: 'complete', endedAt: at }), { name: 'StoreFencedError' }, 'the lost node, alive after all, cannot write its end');

  const second = (await store.executions.get(owner.id, 'exe_lost2'))!;
  t.equal(await cluster.abandon('exe_lost2', second.leaseEpoch, at, 'QUARK_ERR_EXECUTION_NODE_LOST', 'lost'), true, 'abandoned');
  t.equal(await cluster.abandon('exe_lost2', second.leaseEpoch, at, 'QUARK_ERR_EXECUTION_NODE_LOST', 'lost'), false, 'once');
  t.match(await store.executions.get(owner.id, 'exe_lost2'), { status: 'aborted', errorCode: 'QUARK_ERR_EXECUTION_NODE_LOST' });
  await t.rejects(store.executions.update({ ...second, steps: {} }), { name: 'StoreFencedError' }, 'and fenced');
  await cluster.setDraining('node-b', true);
  t.match((await cluster.nodes()).find((n) => n.id === 'node-b'), { draining: true });
});
