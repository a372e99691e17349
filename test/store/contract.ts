/**
 * The Store contract: what every implementation of runtime/store/types.ts must do. The
 * SQLite store runs it (sqlite-store.test.ts); a clustered store runs the same suite.
 */
import type { Test } from 'tap';
import type { AccountRecord, ConnectionRecord, DeploymentRecord, ExecutionRecord, Store, TokenRecord } from '../../runtime/store/types.js';

export type OpenStore = (t: Test) => Store;

export const owner: AccountRecord = { id: 'acc_owner', name: 'owner', relation: 'owner', createdAt: '2026-01-01T00:00:00.000Z' };
export const tenant: AccountRecord = { id: 'acc_tenant', name: 'tenant', relation: 'tenant', createdAt: '2026-01-02T00:00:00.000Z' };

export function token(id: string, accountId: string, createdAt: string): TokenRecord {
  return { id, accountId, name: `token ${id}`, hash: `hash-of-${id}`, createdAt, revokedAt: null };
}

export function connection(id: string, accountId: string, name: string): ConnectionRecord {
  return {
    id,
    accountId,
    connectorId: 'local-files',
    name,
    config: { folder: `/data/${name}`, nested: { depth: 2 } },
    secrets: { '/password': 'sealed-value' },
    createdAt: '2026-02-01T00:00:00.000Z',
    updatedAt: '2026-02-01T00:00:00.000Z',
    revision: 1,
  };
}

export function deployment(accountId: string, processId: string, version: number): DeploymentRecord {
  return {
    accountId,
    processId,
    version,
    name: `${processId} v${version}`,
    definition: { id: processId, steps: [{ id: 'a', version }] },
    deployedAt: `2026-03-0${version}T00:00:00.000Z`,
    deployedBy: 'owner',
    note: version > 1 ? `version ${version}` : null,
  };
}

export function execution(id: string, accountId: string, processId: string, queuedAt: string, status: ExecutionRecord['status'] = 'queued'): ExecutionRecord {
  const ended = status !== 'queued' && status !== 'in-process';
  return {
    id,
    accountId,
    processId,
    version: 1,
    trigger: 'manual',
    status,
    queuedAt,
    startedAt: status === 'queued' ? null : queuedAt,
    endedAt: ended ? queuedAt : null,
    errorCode: null,
    errorMessage: null,
    steps: {},
    documentsIn: 0,
    documentsOut: 0,
    documentsFailed: 0,
    warnings: 0,
  };
}

function withAccounts(open: OpenStore, t: Test): Store {
  const store = open(t);
  store.accounts.insert(owner);
  store.accounts.insert(tenant);
  return store;
}

function accountsContract(t: Test, open: OpenStore): void {
  t.test('accounts: insert, get, findByName, list in creation order', async (t) => {
    const store = open(t);
    store.accounts.insert(tenant);
    store.accounts.insert(owner);
    t.same(store.accounts.get(owner.id), owner);
    t.same(store.accounts.findByName('tenant'), tenant);
    t.equal(store.accounts.get('acc_missing'), undefined, 'an unknown id: undefined');
    t.equal(store.accounts.findByName('nobody'), undefined, 'an unknown name: undefined');
    t.same(store.accounts.list(), [owner, tenant], 'ordered by creation time');
    t.throws(() => store.accounts.insert({ ...tenant, id: 'acc_other' }), 'an account name is unique');
  });
}

function tokensContract(t: Test, open: OpenStore): void {
  t.test('tokens: insert, findByHash, get, list all or per account, revoke once', async (t) => {
    const store = withAccounts(open, t);
    const first = token('tok_1', owner.id, '2026-01-03T00:00:00.000Z');
    const second = token('tok_2', tenant.id, '2026-01-04T00:00:00.000Z');
    const third = token('tok_3', owner.id, '2026-01-05T00:00:00.000Z');
    for (const record of [third, first, second]) store.tokens.insert(record);
    t.same(store.tokens.findByHash('hash-of-tok_2'), second);
    t.equal(store.tokens.findByHash('hash-of-nothing'), undefined);
    t.same(store.tokens.get('tok_1'), first);
    t.equal(store.tokens.get('tok_missing'), undefined);
    t.same(store.tokens.list(), [first, second, third], 'every token, oldest first');
    t.same(store.tokens.list(owner.id), [first, third], 'one account: only its tokens');
    store.tokens.revoke('tok_1', '2026-01-06T00:00:00.000Z');
    store.tokens.revoke('tok_1', '2026-01-07T00:00:00.000Z');
    t.equal(store.tokens.get('tok_1')?.revokedAt, '2026-01-06T00:00:00.000Z', 'the first revocation time is kept');
    t.throws(() => store.tokens.insert({ ...third, id: 'tok_4' }), 'a token hash is unique');
  });
}

function connectionsContract(t: Test, open: OpenStore): void {
  t.test('connections: insert, get and findByName per account, list by name', async (t) => {
    const store = withAccounts(open, t);
    const zeta = connection('conn_z', owner.id, 'zeta');
    const alpha = connection('conn_a', owner.id, 'alpha');
    const theirs = connection('conn_t', tenant.id, 'alpha');
    for (const record of [zeta, alpha, theirs]) store.connections.insert(record);
    t.same(store.connections.get(owner.id, 'conn_a'), alpha, 'config and secrets come back as objects');
    t.equal(store.connections.get(tenant.id, 'conn_a'), undefined, "another account's connection is not found");
    t.same(store.connections.findByName(tenant.id, 'alpha'), theirs, 'names are per account');
    t.equal(store.connections.findByName(owner.id, 'missing'), undefined);
    t.same(store.connections.list(owner.id), [alpha, zeta], 'ordered by name');
    t.throws(() => store.connections.insert({ ...alpha, id: 'conn_a2' }), 'a name is unique within an account');
  });

  t.test('connections: update only at the expected revision, delete per account', async (t) => {
    const store = withAccounts(open, t);
    const original = connection('conn_1', owner.id, 'files');
    store.connections.insert(original);
    const changed = { ...original, name: 'files-2', config: { folder: '/other' }, updatedAt: '2026-02-02T00:00:00.000Z', revision: 2 };
    t.equal(store.connections.update(changed, 1), true, 'at revision 1: replaced');
    t.same(store.connections.get(owner.id, 'conn_1'), changed);
    t.equal(store.connections.update({ ...changed, name: 'lost', revision: 3 }, 1), false, 'a stale revision: refused');
    t.equal(store.connections.get(owner.id, 'conn_1')?.name, 'files-2', 'and nothing changed');
    t.equal(store.connections.update({ ...changed, accountId: tenant.id, revision: 3 }, 2), false, 'another account cannot update it');
    t.equal(store.connections.delete(tenant.id, 'conn_1'), false, 'nor delete it');
    t.equal(store.connections.delete(owner.id, 'conn_1'), true);
    t.equal(store.connections.delete(owner.id, 'conn_1'), false, 'deleted once');
    t.same(store.connections.list(owner.id), []);
  });
}

function processesContract(t: Test, open: OpenStore): void {
  t.test('processes: deploy versions, the active one, versions and latestVersion', async (t) => {
    const store = withAccounts(open, t);
    t.equal(store.processes.latestVersion(owner.id, 'orders'), 0, 'never deployed: 0');
    t.equal(store.processes.get(owner.id, 'orders'), undefined);
    store.processes.deploy(deployment(owner.id, 'orders', 1));
    store.processes.deploy(deployment(owner.id, 'orders', 2));
    store.processes.deploy(deployment(tenant.id, 'orders', 1));
    t.equal(store.processes.latestVersion(owner.id, 'orders'), 2);
    t.same(store.processes.version(owner.id, 'orders', 2), deployment(owner.id, 'orders', 2), 'the definition comes back as an object');
    t.equal(store.processes.version(owner.id, 'orders', 3), undefined);
    t.same(store.processes.versions(owner.id, 'orders'), [deployment(owner.id, 'orders', 1), deployment(owner.id, 'orders', 2)]);
    const record = store.processes.get(owner.id, 'orders');
    t.same(record, { accountId: owner.id, processId: 'orders', activeVersion: 2, schedules: [], properties: {}, updatedAt: deployment(owner.id, 'orders', 2).deployedAt });
    t.throws(() => store.processes.deploy(deployment(owner.id, 'orders', 2)), 'a version is recorded once');
    t.equal(store.processes.get(owner.id, 'orders')?.activeVersion, 2, 'a failed deploy changes nothing');
  });

  t.test('processes: list per account or all, setActive, setSchedules, setProperties', async (t) => {
    const store = withAccounts(open, t);
    store.processes.deploy(deployment(owner.id, 'zeta', 1));
    store.processes.deploy(deployment(owner.id, 'alpha', 1));
    store.processes.deploy(deployment(tenant.id, 'beta', 1));
    t.same(store.processes.list(owner.id).map((p) => p.processId), ['alpha', 'zeta'], 'one account, by id');
    t.same(store.processes.list().map((p) => `${p.accountId}/${p.processId}`), ['acc_owner/alpha', 'acc_owner/zeta', 'acc_tenant/beta'], 'every account');
    store.processes.setActive(owner.id, 'alpha', null, '2026-04-01T00:00:00.000Z');
    t.equal(store.processes.get(owner.id, 'alpha')?.activeVersion, null, 'undeployed');
    t.equal(store.processes.get(owner.id, 'alpha')?.updatedAt, '2026-04-01T00:00:00.000Z');
    t.equal(store.processes.versions(owner.id, 'alpha').length, 1, 'its history is kept');
    const schedules = [{ cron: '0 * * * *' }, { cron: '30 6 * * 1', timezone: 'Europe/Paris' }];
    store.processes.setSchedules(owner.id, 'zeta', schedules, '2026-04-02T00:00:00.000Z');
    t.same(store.processes.get(owner.id, 'zeta')?.schedules, schedules);
    store.processes.setProperties(owner.id, 'zeta', { counter: 3, last: 'A-1001' });
    t.same(store.processes.get(owner.id, 'zeta')?.properties, { counter: 3, last: 'A-1001' });
    t.same(store.processes.get(tenant.id, 'beta')?.properties, {}, "another account's process is untouched");
  });
}

function scheduleFiresContract(t: Test, open: OpenStore): void {
  t.test('processes: schedule fires, kept across setSchedules for a schedule that stays', async (t) => {
    const store = withAccounts(open, t);
    store.processes.deploy(deployment(owner.id, 'orders', 1));
    const hourly = { cron: '0 * * * *' };
    const paris = { cron: '30 6 * * 1', timezone: 'Europe/Paris' };
    const nightly = { cron: '0 2 * * *' };
    const byCron = <T extends { cron: string }>(fires: T[]) => [...fires].sort((a, b) => a.cron.localeCompare(b.cron));
    t.same(store.processes.lastFires(owner.id, 'orders'), [], 'no schedules: no fires');
    store.processes.setSchedules(owner.id, 'orders', [hourly, paris], '2026-04-01T00:00:00.000Z');
    t.same(byCron(store.processes.lastFires(owner.id, 'orders')), byCron([
      { ...hourly, lastFiredAt: '2026-04-01T00:00:00.000Z' },
      { ...paris, lastFiredAt: '2026-04-01T00:00:00.000Z' },
    ]), 'a new schedule counts from when it was set, with its time zone');
    store.processes.recordFire(owner.id, 'orders', hourly, '2026-04-01T05:00:00.000Z');
    store.processes.setSchedules(owner.id, 'orders', [hourly, nightly], '2026-04-02T00:00:00.000Z');
    t.same(byCron(store.processes.lastFires(owner.id, 'orders')), byCron([
      { ...hourly, lastFiredAt: '2026-04-01T05:00:00.000Z' },
      { ...nightly, lastFiredAt: '2026-04-02T00:00:00.000Z' },
    ]), 'the one that stays keeps its last fire, a removed one is forgotten');
    t.same(store.processes.lastFires(tenant.id, 'orders'), [], "another account's process has none");
  });
}

function executionsContract(t: Test, open: OpenStore): void {
  t.test('executions: insert, update, get per account, list with filters, newest first', async (t) => {
    const store = withAccounts(open, t);
    const first = execution('exe_1', owner.id, 'orders', '2026-05-01T00:00:00.000Z');
    const second = execution('exe_2', owner.id, 'billing', '2026-05-02T00:00:00.000Z', 'complete');
    const third = execution('exe_3', owner.id, 'orders', '2026-05-03T00:00:00.000Z', 'error');
    const theirs = execution('exe_4', tenant.id, 'orders', '2026-05-04T00:00:00.000Z');
    for (const record of [first, second, third, theirs]) store.executions.insert(record);
    t.same(store.executions.get(owner.id, 'exe_1'), first);
    t.equal(store.executions.get(tenant.id, 'exe_1'), undefined, "another account's execution is not found");
    const ids = (filter: Parameters<Store['executions']['list']>[1]) => store.executions.list(owner.id, filter).map((e) => e.id);
    t.same(ids({ limit: 10 }), ['exe_3', 'exe_2', 'exe_1'], 'newest first, one account');
    t.same(ids({ limit: 2 }), ['exe_3', 'exe_2'], 'limited');
    t.same(ids({ processId: 'orders', limit: 10 }), ['exe_3', 'exe_1'], 'by process');
    t.same(ids({ status: 'complete', limit: 10 }), ['exe_2'], 'by status');
    t.same(ids({ processId: 'billing', status: 'error', limit: 10 }), [], 'both filters');
    t.same(ids({ search: 'BILL', limit: 10 }), ['exe_2'], 'search: in the process id, ignoring case');
    t.same(ids({ search: 'exe_3', limit: 10 }), ['exe_3'], 'search: in the execution id');
    t.same(ids({ before: { queuedAt: third.queuedAt, id: third.id }, limit: 1 }), ['exe_2'], 'a page after exe_3');
    t.same(ids({ before: { queuedAt: second.queuedAt, id: second.id }, limit: 10 }), ['exe_1'], 'and after exe_2');
    const twin = execution('exe_0', owner.id, 'orders', third.queuedAt);
    store.executions.insert(twin);
    t.same(ids({ before: { queuedAt: third.queuedAt, id: third.id }, limit: 10 }), ['exe_0', 'exe_2', 'exe_1'], 'the same queued time: the id decides, nothing skipped or repeated');
    t.same(ids({ processId: 'orders', before: { queuedAt: third.queuedAt, id: 'exe_0' }, limit: 10 }), ['exe_1'], 'with a filter');
    const finished: ExecutionRecord = {
      ...first,
      status: 'complete-with-warnings',
      startedAt: '2026-05-01T00:00:01.000Z',
      endedAt: '2026-05-01T00:00:02.000Z',
      errorCode: 'QUARK_ERR_X',
      errorMessage: 'a warning',
      steps: { read: { in: 2, out: 2, errors: 0 }, write: { in: 2, out: 1, errors: 1 } },
      documentsIn: 2,
      documentsOut: 1,
      documentsFailed: 1,
      warnings: 1,
    };
    store.executions.update(finished);
    t.same(store.executions.get(owner.id, 'exe_1'), finished, 'every changing field is written, steps as an object');
  });

  t.test('executions: errors and log lines, in order', async (t) => {
    const store = withAccounts(open, t);
    store.executions.insert(execution('exe_1', owner.id, 'orders', '2026-05-01T00:00:00.000Z'));
    const errors = [1, 2, 3].map((n) => ({ step: `s${n}`, code: `QUARK_ERR_N${n}`, message: `error ${n}` }));
    store.executions.insertErrors('exe_1', errors);
    t.same(store.executions.errors('exe_1', 10), errors);
    t.same(store.executions.errors('exe_1', 2), errors.slice(0, 2), 'limited, first ones first');
    t.same(store.executions.errors('exe_missing', 10), []);
    store.executions.appendLog('exe_1', '{"msg":"one"}\n');
    store.executions.appendLog('exe_1', '{"msg":"two"}\n{"msg":"three"}\n');
    t.same(store.executions.log('exe_1'), ['{"msg":"one"}\n', '{"msg":"two"}\n{"msg":"three"}\n']);
    t.same(store.executions.log('exe_missing'), []);
  });

  t.test('executions: interrupt marks running ones aborted and queued ones discarded', async (t) => {
    const store = withAccounts(open, t);
    store.executions.insert(execution('exe_q', owner.id, 'p', '2026-05-01T00:00:00.000Z', 'queued'));
    store.executions.insert(execution('exe_r', tenant.id, 'p', '2026-05-02T00:00:00.000Z', 'in-process'));
    store.executions.insert(execution('exe_done', owner.id, 'p', '2026-05-03T00:00:00.000Z', 'complete'));
    const touched = store.executions.interrupt('2026-05-04T00:00:00.000Z', 'QUARK_ERR_EXECUTION_INTERRUPTED', 'the runtime stopped');
    t.same([...touched].sort((a, b) => a.id.localeCompare(b.id)), [
      { id: 'exe_q', status: 'discarded' },
      { id: 'exe_r', status: 'aborted' },
    ]);
    const running = store.executions.get(tenant.id, 'exe_r');
    t.match(running, { status: 'aborted', endedAt: '2026-05-04T00:00:00.000Z', errorCode: 'QUARK_ERR_EXECUTION_INTERRUPTED', errorMessage: 'the runtime stopped' });
    t.equal(store.executions.get(owner.id, 'exe_q')?.status, 'discarded');
    t.same(store.executions.get(owner.id, 'exe_done'), execution('exe_done', owner.id, 'p', '2026-05-03T00:00:00.000Z', 'complete'), 'a finished one is untouched');
    t.same(store.executions.interrupt('2026-05-05T00:00:00.000Z', 'QUARK_ERR_EXECUTION_INTERRUPTED', 'again'), [], 'nothing left to interrupt');
  });

  t.test('executions: purge deletes finished ones that ended before, with their errors and logs', async (t) => {
    const store = withAccounts(open, t);
    store.executions.insert(execution('exe_old', owner.id, 'p', '2026-05-01T00:00:00.000Z', 'complete'));
    store.executions.insert(execution('exe_new', owner.id, 'p', '2026-05-10T00:00:00.000Z', 'error'));
    store.executions.insert(execution('exe_waiting', owner.id, 'p', '2026-05-01T00:00:00.000Z', 'queued'));
    store.executions.insertErrors('exe_old', [{ step: 's', code: 'QUARK_ERR_X', message: 'x' }]);
    store.executions.appendLog('exe_old', '{"msg":"old"}\n');
    t.same(store.executions.purge('2026-05-05T00:00:00.000Z'), ['exe_old']);
    t.equal(store.executions.get(owner.id, 'exe_old'), undefined);
    t.same(store.executions.errors('exe_old', 10), [], 'its errors are gone');
    t.same(store.executions.log('exe_old'), [], 'its log is gone');
    t.same(store.executions.list(owner.id, { limit: 10 }).map((e) => e.id).sort(), ['exe_new', 'exe_waiting'], 'newer and unfinished ones stay');
  });
}

function lifecycleContract(t: Test, open: OpenStore): void {
  t.test('transaction: all or nothing, and it returns what the work returns', async (t) => {
    const store = withAccounts(open, t);
    const value = store.transaction(() => {
      store.tokens.insert(token('tok_1', owner.id, '2026-01-03T00:00:00.000Z'));
      return 42;
    });
    t.equal(value, 42);
    t.ok(store.tokens.get('tok_1'), 'committed');
    t.throws(
      () =>
        store.transaction(() => {
          store.tokens.insert(token('tok_2', owner.id, '2026-01-04T00:00:00.000Z'));
          throw new Error('half-way');
        }),
      { message: 'half-way' },
    );
    t.equal(store.tokens.get('tok_2'), undefined, 'rolled back');
  });

  t.test('healthy until closed', async (t) => {
    const store = open(t);
    t.equal(store.healthy(), true);
    store.close();
    t.equal(store.healthy(), false);
  });
}

/** Runs the whole contract against stores made by `open` (each test gets a fresh, empty one). */
export function storeContract(t: Test, open: OpenStore): void {
  accountsContract(t, open);
  tokensContract(t, open);
  connectionsContract(t, open);
  processesContract(t, open);
  scheduleFiresContract(t, open);
  executionsContract(t, open);
  lifecycleContract(t, open);
}
