import t, { type Test } from 'tap';
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { migrations, openSqliteStore } from '../../runtime/store/sqlite-store.js';
import type { Store } from '../../runtime/store/types.js';
import { tempDir } from '../helpers/quark.js';
import { connection, deployment, execution, owner, storeContract, tenant, token } from './contract.js';

function openTemp(t: Test): Store {
  const store = openSqliteStore(join(tempDir(t, 'quark-store-'), 'quark.db'));
  t.teardown(() => store.close());
  return store;
}

t.test('the SQLite store keeps the Store contract', async (t) => {
  storeContract(t, openTemp);
});

t.test('a file that is not a database: QUARK_ERR_HOME_STORE_UNREADABLE naming the file', async (t) => {
  const file = join(tempDir(t, 'quark-store-'), 'quark.db');
  writeFileSync(file, 'this is not an SQLite database, and it is long enough to have a header. '.repeat(20));
  t.throws(() => openSqliteStore(file), { code: 'QUARK_ERR_HOME_STORE_UNREADABLE', message: new RegExp(`cannot open the store ${file}`) });
});

t.test('a store with a newer schema than this quark knows: QUARK_ERR_STORE_TOO_NEW naming both versions, nothing changed', async (t) => {
  const file = join(tempDir(t, 'quark-store-'), 'quark.db');
  const db = new Database(file);
  db.pragma(`user_version = ${migrations.length + 1}`);
  db.close();
  t.throws(() => openSqliteStore(file), {
    code: 'QUARK_ERR_STORE_TOO_NEW',
    message: `the store ${file} has schema version ${migrations.length + 1}, newer than this quark knows (${migrations.length}): a newer quark wrote it; run that version, or restore a backup`,
    details: { schemaVersion: migrations.length + 1, known: migrations.length },
  });
  t.equal(userVersion(file), migrations.length + 1, 'the version is left as it was');
});

/**
 * Rows written with the schema of the migration that created their tables, by raw SQL as
 * an older quark wrote them. Index i seeds right after migration i ran; a migration with
 * no seed (one that only alters or adds) is still applied on the way.
 */
const seeds: Record<number, (db: Database.Database) => void> = {
  0: (db) => {
    const a = db.prepare('INSERT INTO accounts (id, name, relation, created_at) VALUES (?, ?, ?, ?)');
    for (const acc of [owner, tenant]) a.run(acc.id, acc.name, acc.relation, acc.createdAt);
    const k = token('tok_1', owner.id, '2026-01-03T00:00:00.000Z');
    db.prepare('INSERT INTO tokens (id, account_id, name, hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)').run(k.id, k.accountId, k.name, k.hash, k.createdAt, k.revokedAt);
    const c = connection('conn_1', owner.id, 'files');
    db.prepare('INSERT INTO connections (id, account_id, connector_id, name, config, secrets, created_at, updated_at, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
      c.id, c.accountId, c.connectorId, c.name, JSON.stringify(c.config), JSON.stringify(c.secrets), c.createdAt, c.updatedAt, c.revision,
    );
  },
  1: (db) => {
    const d = deployment(owner.id, 'orders', 1);
    db.prepare('INSERT INTO deployments (account_id, process_id, version, name, definition, deployed_at, deployed_by, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
      d.accountId, d.processId, d.version, d.name, JSON.stringify(d.definition), d.deployedAt, d.deployedBy, d.note,
    );
    db.prepare('INSERT INTO processes (account_id, process_id, active_version, schedules, properties, updated_at) VALUES (?, ?, ?, ?, ?, ?)').run(
      owner.id, 'orders', 1, JSON.stringify([{ cron: '0 * * * *' }]), JSON.stringify({ counter: 7 }), d.deployedAt,
    );
    const e = execution('exe_1', owner.id, 'orders', '2026-05-01T00:00:00.000Z', 'complete');
    db.prepare('INSERT INTO executions (id, account_id, process_id, version, trigger, status, queued_at, started_at, ended_at, steps) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
      e.id, e.accountId, e.processId, e.version, e.trigger, e.status, e.queuedAt, e.startedAt, e.endedAt, JSON.stringify({ read: { in: 1, out: 1, errors: 0 } }),
    );
    db.prepare('INSERT INTO execution_errors (execution_id, seq, step, code, message) VALUES (?, ?, ?, ?, ?)').run(e.id, 0, 'read', 'QUARK_ERR_X', 'x');
  },
  2: (db) => {
    db.prepare('INSERT INTO execution_logs (execution_id, lines) VALUES (?, ?)').run('exe_1', '{"msg":"from an older quark"}\n');
  },
  3: (db) => {
    db.prepare('INSERT INTO schedule_fires (account_id, process_id, cron, timezone, last_fired_at) VALUES (?, ?, ?, ?, ?)').run(owner.id, 'orders', '0 * * * *', '', '2026-05-01T01:00:00.000Z');
  },
  4: (db) => {
    // what a quark before migration 6 left when it was killed: no owner, queued inputs in memory only
    const insert = db.prepare('INSERT INTO executions (id, account_id, process_id, version, trigger, status, queued_at, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    insert.run('exe_legacy_q', owner.id, 'orders', 1, 'api', 'queued', '2026-05-02T00:00:00.000Z', null);
    insert.run('exe_legacy_r', owner.id, 'orders', 1, 'api', 'in-process', '2026-05-02T00:00:00.000Z', '2026-05-02T00:00:01.000Z');
  },
  8: (db) => {
    db.prepare("INSERT INTO executions (id, account_id, process_id, version, trigger, status, queued_at, started_at, owner) VALUES ('exe_running', ?, 'orders', 1, 'api', 'in-process', '2026-05-03T00:00:00.000Z', '2026-05-03T00:00:01.000Z', 'node-z')").run(owner.id);
    db.prepare('INSERT INTO execution_step_documents (execution_id, step, seq, properties, input_properties, body, size) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
      'exe_1', 'read', 0, JSON.stringify({ 'file.name': 'a.csv' }), null, Buffer.from('id,n\n'), 1200,
    );
    db.prepare('INSERT INTO execution_definitions (execution_id, definition) VALUES (?, ?)').run('exe_1', JSON.stringify({ id: 'orders', steps: [] }));
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
    t.match(await store.executions.get(owner.id, 'exe_1'), { status: 'complete', steps: { read: { in: 1, out: 1, errors: 0 } } }, 'executions survived');
    t.same(await store.executions.errors('exe_1', 10), [{ step: 'read', code: 'QUARK_ERR_X', message: 'x' }], 'execution errors survived');
  }
  if (version > 2) t.same(await store.executions.log('exe_1'), ['{"msg":"from an older quark"}\n'], 'execution logs survived');
  if (version > 3) t.same(await store.processes.lastFires(owner.id, 'orders'), [{ cron: '0 * * * *', lastFiredAt: '2026-05-01T01:00:00.000Z' }], 'schedule fires survived');
  if (version > 4) {
    t.match(await store.executions.get(owner.id, 'exe_legacy_q'), { status: 'discarded', errorCode: 'QUARK_ERR_EXECUTION_INTERRUPTED', owner: null, attempt: 1 }, 'a queued execution of an older quark, whose inputs are lost, is discarded');
    t.same(await store.executions.queued(10), [], 'so nothing is left to run');
    t.same(await store.executions.interrupt('node-a', '2026-06-01T00:00:00.000Z', 'QUARK_ERR_EXECUTION_INTERRUPTED', 'stopped'), [{ id: 'exe_legacy_r', status: 'aborted' }], 'a running one without an owner is this node\'s');
  }
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

/** A database file as a quark whose last migration was `version` left it, with data. */
function databaseAt(file: string, version: number): void {
  const db = new Database(file);
  try {
    for (let i = 0; i < version; i++) {
      db.exec(migrations[i]!);
      seeds[i]?.(db);
      db.pragma(`user_version = ${i + 1}`);
    }
  } finally {
    db.close();
  }
}

function userVersion(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

/** The indexes of the executions table now: none on status alone (executions_queued leads with it). */
const currentExecutionIndexes = ['executions_by_account', 'executions_cancel_requested', 'executions_queued', 'executions_schedule_key'];

function executionIndexes(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'executions' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((row) => row.name);
  } finally {
    db.close();
  }
}

/** The definition of one index, as SQLite keeps it. */
function indexSql(file: string, name: string): string {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?").get(name) as { sql: string }).sql;
  } finally {
    db.close();
  }
}

t.test('lookups of executions by status alone use executions_queued, whose first column is status (EXPLAIN QUERY PLAN)', async (t) => {
  const file = join(tempDir(t, 'quark-store-'), 'quark.db');
  await openSqliteStore(file).close();
  const db = new Database(file, { readonly: true });
  t.teardown(() => db.close());
  const plan = (sql: string) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((row) => row.detail).join('; ');
  t.match(plan("SELECT id FROM executions WHERE status = 'in-process' AND (owner = 'n' OR owner IS NULL)"), /USING INDEX executions_queued \(status=\?\)/, 'the interrupt of a node\'s runs');
  t.match(plan("SELECT * FROM executions WHERE status = 'queued' ORDER BY queued_at, id LIMIT 10"), /USING INDEX executions_queued \(status=\?\)/, 'the queued ones, in order');
  t.match(plan("SELECT COUNT(*) FROM executions WHERE status = 'queued'"), /USING COVERING INDEX executions_queued \(status=\?\)/, 'a count by status');
});

t.test('every earlier schema version migrates to the current one and keeps its data', async (t) => {
  t.ok(migrations.length >= 3, 'there are migrations to test');
  for (let version = 0; version < migrations.length; version++) {
    t.test(`from user_version ${version}`, async (t) => {
      const file = join(tempDir(t, 'quark-store-'), 'quark.db');
      databaseAt(file, version);
      const store = openSqliteStore(file);
      t.teardown(() => store.close());
      t.equal(userVersion(file), migrations.length, 'every later migration ran');
      t.same(executionIndexes(file), currentExecutionIndexes, 'the indexes of executions are the current ones (migration 11 dropped executions_by_status, 12 made executions_schedule_key partial)');
      t.match(indexSql(file, 'executions_schedule_key'), /WHERE schedule_key IS NOT NULL$/, 'executions_schedule_key holds the scheduled runs only (migration 12): an unscheduled execution writes no entry in it');
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

t.test('an up-to-date store opens again without migrating or losing anything', async (t) => {
  const file = join(tempDir(t, 'quark-store-'), 'quark.db');
  databaseAt(file, migrations.length);
  const store = openSqliteStore(file);
  t.teardown(() => store.close());
  t.equal(userVersion(file), migrations.length);
  await checkSeeded(t, store, migrations.length);
});

t.test('calls made together run in the order made, and each write is committed when its promise resolves (another connection sees it)', async (t) => {
  const file = join(tempDir(t, 'quark-store-'), 'quark.db');
  const store = openSqliteStore(file);
  t.teardown(() => store.close());
  await store.accounts.insert(owner);
  const queued = execution('exe_a', owner.id, 'p', '2026-05-01T00:00:00.000Z');
  const inserted = store.executions.insert(queued);
  const seenQueued = store.executions.get(owner.id, 'exe_a');
  const updated = store.executions.update({ ...queued, status: 'in-process', startedAt: '2026-05-01T00:00:01.000Z', owner: 'node-a' });
  const seenRunning = store.executions.get(owner.id, 'exe_a');
  const transaction = store.transaction(async (tx) => (await tx.executions.get(owner.id, 'exe_a'))?.status);
  const afterTransaction = store.executions.appendLog('exe_a', '{"msg":"after"}\n');
  t.equal((await seenQueued)?.status, 'queued', 'a read after the insert sees it');
  t.equal((await seenRunning)?.status, 'in-process', 'a read after the update sees that');
  t.equal(await transaction, 'in-process', 'a transaction asked for after them sees both');
  await Promise.all([inserted, updated, afterTransaction]);
  const other = new Database(file, { readonly: true });
  t.teardown(() => other.close());
  t.same(other.prepare('SELECT status, owner FROM executions WHERE id = ?').get('exe_a'), { status: 'in-process', owner: 'node-a' }, 'committed: another connection reads it');
  t.same(other.prepare('SELECT lines FROM execution_logs WHERE execution_id = ?').all('exe_a'), [{ lines: '{"msg":"after"}\n' }]);
});
