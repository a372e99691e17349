/**
 * The Store contract: what every implementation of runtime/store/types.ts must do. The
 * SQLite store runs it (sqlite-store.test.ts); a clustered store runs the same suite.
 */
import type { Test } from 'tap';
import { StoreConflictError, StoreRaceError, StoreUnavailableError } from '../../runtime/store/errors.js';
import { concurrencyContract } from './contract-concurrency.js';
import { textContract } from './contract-text.js';
import type { AccountRecord, ConnectionRecord, DeploymentRecord, ExecutionRecord, QueuedInputRecord, Store, TokenRecord } from '../../runtime/store/types.js';

export type OpenStore = (t: Test) => Store | Promise<Store>;

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

/** What a deploy records: the version is the store's to allocate. */
export function deploying(accountId: string, processId: string, version: number): Omit<DeploymentRecord, 'version'> {
  const { version: _allocated, ...rest } = deployment(accountId, processId, version);
  return rest;
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
    owner: status === 'in-process' ? 'node-a' : null,
    attempt: 1,
    leaseEpoch: 0,
  };
}

async function withAccounts(open: OpenStore, t: Test): Promise<Store> {
  const store = await open(t);
  await store.accounts.insert(owner);
  await store.accounts.insert(tenant);
  return store;
}

function accountsContract(t: Test, open: OpenStore): void {
  t.test('accounts: insert, get, findByName, list in creation order', async (t) => {
    const store = await open(t);
    await store.accounts.insert(tenant);
    await store.accounts.insert(owner);
    t.same(await store.accounts.get(owner.id), owner);
    t.same(await store.accounts.findByName('tenant'), tenant);
    t.equal(await store.accounts.get('acc_missing'), undefined, 'an unknown id: undefined');
    t.equal(await store.accounts.findByName('nobody'), undefined, 'an unknown name: undefined');
    t.same(await store.accounts.list(), [owner, tenant], 'ordered by creation time');
    await t.rejects(store.accounts.insert({ ...tenant, id: 'acc_other' }), { name: 'StoreConflictError', constraint: 'account-name' }, 'an account name is unique: a typed conflict');
    await t.rejects(store.accounts.insert({ ...tenant, name: 'other' }), { name: 'StoreConflictError', constraint: 'id' }, 'so is an id');
  });
}

function tokensContract(t: Test, open: OpenStore): void {
  t.test('tokens: insert, findByHash, get, list all or per account, revoke once', async (t) => {
    const store = await withAccounts(open, t);
    const first = token('tok_1', owner.id, '2026-01-03T00:00:00.000Z');
    const second = token('tok_2', tenant.id, '2026-01-04T00:00:00.000Z');
    const third = token('tok_3', owner.id, '2026-01-05T00:00:00.000Z');
    for (const record of [third, first, second]) await store.tokens.insert(record);
    t.same(await store.tokens.findByHash('hash-of-tok_2'), second);
    t.equal(await store.tokens.findByHash('hash-of-nothing'), undefined);
    t.same(await store.tokens.get('tok_1'), first);
    t.equal(await store.tokens.get('tok_missing'), undefined);
    t.same(await store.tokens.list(), [first, second, third], 'every token, oldest first');
    t.same(await store.tokens.list(owner.id), [first, third], 'one account: only its tokens');
    await store.tokens.revoke('tok_1', '2026-01-06T00:00:00.000Z');
    await store.tokens.revoke('tok_1', '2026-01-07T00:00:00.000Z');
    t.equal((await store.tokens.get('tok_1'))?.revokedAt, '2026-01-06T00:00:00.000Z', 'the first revocation time is kept');
    await t.rejects(store.tokens.insert({ ...third, id: 'tok_4' }), { name: 'StoreConflictError', constraint: 'token-hash' }, 'a token hash is unique');
  });
}

function connectionsContract(t: Test, open: OpenStore): void {
  t.test('connections: insert, get and findByName per account, list by name', async (t) => {
    const store = await withAccounts(open, t);
    const zeta = connection('conn_z', owner.id, 'zeta');
    const alpha = connection('conn_a', owner.id, 'alpha');
    const theirs = connection('conn_t', tenant.id, 'alpha');
    for (const record of [zeta, alpha, theirs]) await store.connections.insert(record);
    t.same(await store.connections.get(owner.id, 'conn_a'), alpha, 'config and secrets come back as objects');
    t.equal(await store.connections.get(tenant.id, 'conn_a'), undefined, "another account's connection is not found");
    t.same(await store.connections.findByName(tenant.id, 'alpha'), theirs, 'names are per account');
    t.equal(await store.connections.findByName(owner.id, 'missing'), undefined);
    t.same(await store.connections.list(owner.id), [alpha, zeta], 'ordered by name');
    await t.rejects(store.connections.insert({ ...alpha, id: 'conn_a2' }), { name: 'StoreConflictError', constraint: 'connection-name' }, 'a name is unique within an account');
  });

  t.test('connections: update only at the expected revision, delete per account', async (t) => {
    const store = await withAccounts(open, t);
    const original = connection('conn_1', owner.id, 'files');
    await store.connections.insert(original);
    const changed = { ...original, name: 'files-2', config: { folder: '/other' }, updatedAt: '2026-02-02T00:00:00.000Z', revision: 2 };
    t.equal(await store.connections.update(changed, 1), true, 'at revision 1: replaced');
    t.same(await store.connections.get(owner.id, 'conn_1'), changed);
    await t.rejects(store.connections.update({ ...changed, name: 'lost', revision: 3 }, 1), StoreRaceError, 'a stale revision: a lost race');
    t.equal((await store.connections.get(owner.id, 'conn_1'))?.name, 'files-2', 'and nothing changed');
    t.equal(await store.connections.update({ ...changed, accountId: tenant.id, revision: 3 }, 2), false, 'another account cannot update it: not found');
    t.equal(await store.connections.delete(tenant.id, 'conn_1'), false, 'nor delete it');
    t.equal(await store.connections.delete(owner.id, 'conn_1'), true);
    t.equal(await store.connections.delete(owner.id, 'conn_1'), false, 'deleted once');
    t.same(await store.connections.list(owner.id), []);
  });
}

function processesContract(t: Test, open: OpenStore): void {
  t.test('processes: deploy versions, the active one, versions and latestVersion', async (t) => {
    const store = await withAccounts(open, t);
    t.equal(await store.processes.latestVersion(owner.id, 'orders'), 0, 'never deployed: 0');
    t.equal(await store.processes.get(owner.id, 'orders'), undefined);
    t.equal(await store.processes.deploy(deploying(owner.id, 'orders', 1)), 1, 'the first version is 1');
    t.equal(await store.processes.deploy(deploying(owner.id, 'orders', 2)), 2, 'the next one 2');
    t.equal(await store.processes.deploy(deploying(tenant.id, 'orders', 1)), 1, 'versions count per account and process');
    t.equal(await store.processes.latestVersion(owner.id, 'orders'), 2);
    t.same(await store.processes.version(owner.id, 'orders', 2), deployment(owner.id, 'orders', 2), 'the definition comes back as an object');
    t.equal(await store.processes.version(owner.id, 'orders', 3), undefined);
    t.same(await store.processes.versions(owner.id, 'orders'), [deployment(owner.id, 'orders', 1), deployment(owner.id, 'orders', 2)]);
    const record = await store.processes.get(owner.id, 'orders');
    t.same(record, { accountId: owner.id, processId: 'orders', activeVersion: 2, schedules: [], properties: {}, updatedAt: deployment(owner.id, 'orders', 2).deployedAt });
  });

  t.test('processes: parallel deploys of one process get distinct versions, 1 to 10, each active in turn', async (t) => {
    const store = await withAccounts(open, t);
    const versions = await Promise.all(Array.from({ length: 10 }, (_, i) => store.processes.deploy({ ...deploying(owner.id, 'orders', 1), note: `deploy ${i}` })));
    t.same([...versions].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'no version twice, none lost, no error');
    t.same((await store.processes.versions(owner.id, 'orders')).map((d) => d.version), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    t.equal((await store.processes.get(owner.id, 'orders'))?.activeVersion, 10, 'the last one recorded is active');
  });

  t.test('processes: list per account or all, setActive, setSchedules, mergeProperties', async (t) => {
    const store = await withAccounts(open, t);
    await store.processes.deploy(deploying(owner.id, 'zeta', 1));
    await store.processes.deploy(deploying(owner.id, 'alpha', 1));
    await store.processes.deploy(deploying(tenant.id, 'beta', 1));
    t.same((await store.processes.list(owner.id)).map((p) => p.processId), ['alpha', 'zeta'], 'one account, by id');
    t.same((await store.processes.list()).map((p) => `${p.accountId}/${p.processId}`), ['acc_owner/alpha', 'acc_owner/zeta', 'acc_tenant/beta'], 'every account');
    await store.processes.setActive(owner.id, 'alpha', null, '2026-04-01T00:00:00.000Z');
    t.equal((await store.processes.get(owner.id, 'alpha'))?.activeVersion, null, 'undeployed');
    t.equal((await store.processes.get(owner.id, 'alpha'))?.updatedAt, '2026-04-01T00:00:00.000Z');
    t.equal((await store.processes.versions(owner.id, 'alpha')).length, 1, 'its history is kept');
    const schedules = [{ cron: '0 * * * *' }, { cron: '30 6 * * 1', timezone: 'Europe/Paris' }];
    await store.processes.setSchedules(owner.id, 'zeta', schedules, '2026-04-02T00:00:00.000Z');
    t.same((await store.processes.get(owner.id, 'zeta'))?.schedules, schedules);
    await store.processes.mergeProperties(owner.id, 'zeta', new Map<string, unknown>([['counter', 3], ['last', 'A-1001'], ['gone', true]]));
    await store.processes.mergeProperties(owner.id, 'zeta', new Map<string, unknown>([['counter', 4], ['gone', undefined], ['nested', { a: [1, 2] }]]));
    t.same((await store.processes.get(owner.id, 'zeta'))?.properties, { counter: 4, last: 'A-1001', nested: { a: [1, 2] } }, 'merged one by one; undefined removes one');
    t.same((await store.processes.get(tenant.id, 'beta'))?.properties, {}, "another account's process is untouched");
  });
}

function scheduleFiresContract(t: Test, open: OpenStore): void {
  t.test('processes: schedule fires, kept across setSchedules for a schedule that stays', async (t) => {
    const store = await withAccounts(open, t);
    await store.processes.deploy(deploying(owner.id, 'orders', 1));
    const hourly = { cron: '0 * * * *' };
    const paris = { cron: '30 6 * * 1', timezone: 'Europe/Paris' };
    const nightly = { cron: '0 2 * * *' };
    const byCron = <T extends { cron: string }>(fires: T[]) => [...fires].sort((a, b) => a.cron.localeCompare(b.cron));
    t.same(await store.processes.lastFires(owner.id, 'orders'), [], 'no schedules: no fires');
    await store.processes.setSchedules(owner.id, 'orders', [hourly, paris], '2026-04-01T00:00:00.000Z');
    t.same(byCron(await store.processes.lastFires(owner.id, 'orders')), byCron([
      { ...hourly, lastFiredAt: '2026-04-01T00:00:00.000Z' },
      { ...paris, lastFiredAt: '2026-04-01T00:00:00.000Z' },
    ]), 'a new schedule counts from when it was set, with its time zone');
    await store.processes.recordFire(owner.id, 'orders', hourly, '2026-04-01T05:00:00.000Z');
    await store.processes.setSchedules(owner.id, 'orders', [hourly, nightly], '2026-04-02T00:00:00.000Z');
    t.same(byCron(await store.processes.lastFires(owner.id, 'orders')), byCron([
      { ...hourly, lastFiredAt: '2026-04-01T05:00:00.000Z' },
      { ...nightly, lastFiredAt: '2026-04-02T00:00:00.000Z' },
    ]), 'the one that stays keeps its last fire, a removed one is forgotten');
    t.same(await store.processes.lastFires(tenant.id, 'orders'), [], "another account's process has none");
  });

  t.test('processes: a fire recorded after a later one does not move the last fire time back', async (t) => {
    const store = await withAccounts(open, t);
    await store.processes.deploy(deploying(owner.id, 'orders', 1));
    const everyTwo = { cron: '*/2 * * * * *' };
    await store.processes.setSchedules(owner.id, 'orders', [everyTwo], '2026-04-01T00:00:00.000Z');
    await store.processes.recordFire(owner.id, 'orders', everyTwo, '2026-04-01T00:00:04.000Z');
    await store.processes.recordFire(owner.id, 'orders', everyTwo, '2026-04-01T00:00:02.000Z');
    t.same(await store.processes.lastFires(owner.id, 'orders'), [{ ...everyTwo, lastFiredAt: '2026-04-01T00:00:04.000Z' }], 'the later one stays');
  });
}

/** A run a schedule started: its nominal fire time and key. */
function scheduled(id: string, accountId: string, processId: string, at: string, cron = '*/2 * * * * *'): ExecutionRecord {
  return { ...execution(id, accountId, processId, at), trigger: 'schedule', schedule: { at, key: `${at} ${cron}` } };
}

function scheduledExecutionsContract(t: Test, open: OpenStore): void {
  t.test('executions: one per schedule fire and process; the second insert of a fire is a schedule-fire conflict', async (t) => {
    const store = await withAccounts(open, t);
    const first = scheduled('exe_1', owner.id, 'orders', '2026-05-01T00:00:02.000Z');
    await store.executions.insert(first);
    t.same(await store.executions.get(owner.id, 'exe_1'), first, 'read back with its fire');
    await t.rejects(store.executions.insert({ ...scheduled('exe_2', owner.id, 'orders', '2026-05-01T00:00:02.000Z'), status: 'in-process', owner: 'node-b' }), { name: 'StoreConflictError', constraint: 'schedule-fire' }, 'the same fire again, from another node: refused');
    await t.rejects(
      store.executions.insert(scheduled('exe_3', owner.id, 'orders', '2026-05-01T00:00:02.000Z'), [{ seq: 0, properties: {}, body: { kind: 'inline', base64: '' } }]),
      { name: 'StoreConflictError', constraint: 'schedule-fire' },
      'with inputs too',
    );
    t.equal(await store.executions.get(owner.id, 'exe_2'), undefined, 'the loser left nothing');
    t.same(await store.executions.inputs('exe_3'), [], 'not even its inputs');
    await store.executions.insert(scheduled('exe_4', owner.id, 'orders', '2026-05-01T00:00:04.000Z'));
    await store.executions.insert(scheduled('exe_5', owner.id, 'orders', '2026-05-01T00:00:02.000Z', '0/2 * * * * *'));
    await store.executions.insert(scheduled('exe_6', owner.id, 'billing', '2026-05-01T00:00:02.000Z'));
    await store.executions.insert(scheduled('exe_7', tenant.id, 'orders', '2026-05-01T00:00:02.000Z'));
    await store.executions.insert(execution('exe_8', owner.id, 'orders', '2026-05-01T00:00:02.000Z'));
    await store.executions.insert(execution('exe_9', owner.id, 'orders', '2026-05-01T00:00:02.000Z'));
    const ids = (await store.executions.list(owner.id, { limit: 10 })).map((e) => e.id).sort();
    t.same(ids, ['exe_1', 'exe_4', 'exe_5', 'exe_6', 'exe_8', 'exe_9'], 'another time, schedule, process or account is another fire; runs no schedule started never clash');
    await store.executions.update({ ...first, status: 'complete', endedAt: '2026-05-01T00:00:03.000Z' });
    t.same((await store.executions.get(owner.id, 'exe_1'))?.schedule, first.schedule, 'an update keeps the fire');
  });
}

function executionsContract(t: Test, open: OpenStore): void {
  t.test('executions: insert, update, get per account, list with filters, newest first', async (t) => {
    const store = await withAccounts(open, t);
    const first = execution('exe_1', owner.id, 'orders', '2026-05-01T00:00:00.000Z');
    const second = execution('exe_2', owner.id, 'billing', '2026-05-02T00:00:00.000Z', 'complete');
    const third = execution('exe_3', owner.id, 'orders', '2026-05-03T00:00:00.000Z', 'error');
    const theirs = execution('exe_4', tenant.id, 'orders', '2026-05-04T00:00:00.000Z');
    for (const record of [first, second, third, theirs]) await store.executions.insert(record);
    t.same(await store.executions.get(owner.id, 'exe_1'), first);
    await t.rejects(store.executions.insert(first), { name: 'StoreConflictError', constraint: 'id' }, 'an id is unique');
    t.equal(await store.executions.get(tenant.id, 'exe_1'), undefined, "another account's execution is not found");
    const ids = async (filter: Parameters<Store['executions']['list']>[1]) => (await store.executions.list(owner.id, filter)).map((e) => e.id);
    t.same(await ids({ limit: 10 }), ['exe_3', 'exe_2', 'exe_1'], 'newest first, one account');
    t.same(await ids({ limit: 2 }), ['exe_3', 'exe_2'], 'limited');
    t.same(await ids({ processId: 'orders', limit: 10 }), ['exe_3', 'exe_1'], 'by process');
    t.same(await ids({ status: 'complete', limit: 10 }), ['exe_2'], 'by status');
    t.same(await ids({ processId: 'billing', status: 'error', limit: 10 }), [], 'both filters');
    t.same(await ids({ search: 'BILL', limit: 10 }), ['exe_2'], 'search: in the process id, ignoring case');
    t.same(await ids({ search: 'EXE_3', limit: 10 }), ['exe_3'], 'search: in the execution id, ignoring case');
    t.same(await ids({ search: 'rder', limit: 10 }), ['exe_3', 'exe_1'], 'search: a part of the id');
    t.same(await ids({ search: '%', limit: 10 }), [], 'search: a LIKE wildcard is a plain character');
    t.same(await ids({ before: { queuedAt: third.queuedAt, id: third.id }, limit: 1 }), ['exe_2'], 'a page after exe_3');
    t.same(await ids({ before: { queuedAt: second.queuedAt, id: second.id }, limit: 10 }), ['exe_1'], 'and after exe_2');
    const twin = execution('exe_0', owner.id, 'orders', third.queuedAt);
    await store.executions.insert(twin);
    t.same(await ids({ before: { queuedAt: third.queuedAt, id: third.id }, limit: 10 }), ['exe_0', 'exe_2', 'exe_1'], 'the same queued time: the id decides, nothing skipped or repeated');
    t.same(await ids({ processId: 'orders', before: { queuedAt: third.queuedAt, id: 'exe_0' }, limit: 10 }), ['exe_1'], 'with a filter');
    t.same(await ids({ search: 'orders', status: 'queued', before: { queuedAt: third.queuedAt, id: third.id }, limit: 10 }), ['exe_0', 'exe_1'], 'search, status and position together');
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
      owner: 'node-a',
      attempt: 2,
      leaseEpoch: 0,
    };
    await store.executions.update(finished);
    t.same(await store.executions.get(owner.id, 'exe_1'), finished, 'every changing field is written, steps as an object');
  });

  t.test('executions: a claim takes a queued one once, raising its lease epoch; a write with an old epoch is refused; withdraw discards a queued one', async (t) => {
    const store = await withAccounts(open, t);
    await store.executions.insert(execution('exe_1', owner.id, 'orders', '2026-05-01T00:00:00.000Z', 'queued'));
    await store.executions.insert(execution('exe_2', owner.id, 'orders', '2026-05-01T00:00:01.000Z', 'queued'));
    const claimed = await store.executions.claim('exe_1', 'node-b', '2026-05-01T00:00:05.000Z');
    t.match(claimed, { id: 'exe_1', status: 'in-process', owner: 'node-b', startedAt: '2026-05-01T00:00:05.000Z', leaseEpoch: 1 }, 'the claimed record, epoch raised');
    t.equal(await store.executions.claim('exe_1', 'node-c', '2026-05-01T00:00:06.000Z'), undefined, 'a second claim (a duplicate delivery) gets nothing');
    await t.rejects(store.executions.update({ ...claimed!, leaseEpoch: 0, status: 'complete' }), { name: 'StoreFencedError' }, 'a write carrying the epoch before the claim is refused');
    t.match(await store.executions.get(owner.id, 'exe_1'), { status: 'in-process', owner: 'node-b' }, 'and changed nothing');
    await store.executions.update({ ...claimed!, status: 'complete', endedAt: '2026-05-01T00:00:07.000Z' });
    t.match(await store.executions.get(owner.id, 'exe_1'), { status: 'complete' }, 'the holder of the epoch writes');
    t.equal(await store.executions.withdraw('exe_2', '2026-05-01T00:00:08.000Z', 'QUARK_ERR_EXECUTION_CANCELLED', 'cancelled'), true, 'a queued one is withdrawn');
    t.match(await store.executions.get(owner.id, 'exe_2'), { status: 'discarded', errorCode: 'QUARK_ERR_EXECUTION_CANCELLED' });
    t.equal(await store.executions.withdraw('exe_2', '2026-05-01T00:00:09.000Z', 'QUARK_ERR_EXECUTION_CANCELLED', 'again'), false, 'once');
    t.equal(await store.executions.claim('exe_2', 'node-b', '2026-05-01T00:00:10.000Z'), undefined, 'a withdrawn one cannot be claimed');
  });

  t.test("executions: a run's log lines and error rows carry its lease epoch: once another node claimed it, they are refused and nothing is written", async (t) => {
    const store = await withAccounts(open, t);
    await store.executions.insert(execution('exe_1', owner.id, 'orders', '2026-05-01T00:00:00.000Z', 'queued'));
    await store.executions.appendLog('exe_1', '{"msg":"queued"}\n', 0);
    const claimed = await store.executions.claim('exe_1', 'node-b', '2026-05-01T00:00:05.000Z');
    const error = { step: 's', code: 'QUARK_ERR_X', message: 'x' };
    await t.rejects(store.executions.appendLog('exe_1', '{"msg":"from the node that lost it"}\n', 0), { name: 'StoreFencedError' }, 'a log line at the epoch before the claim is refused');
    await t.rejects(store.executions.insertErrors('exe_1', [error], 0), { name: 'StoreFencedError' }, 'so is an error row');
    t.same(await store.executions.log('exe_1'), ['{"msg":"queued"}\n'], 'the refused line is not in the log');
    t.same(await store.executions.errors('exe_1', 10), [], 'nor the refused error');
    await store.executions.appendLog('exe_1', '{"msg":"from the holder"}\n', claimed!.leaseEpoch);
    await store.executions.insertErrors('exe_1', [error], claimed!.leaseEpoch);
    await store.executions.appendLog('exe_1', '{"msg":"unfenced: the node that accounts for it"}\n');
    t.same(await store.executions.log('exe_1'), ['{"msg":"queued"}\n', '{"msg":"from the holder"}\n', '{"msg":"unfenced: the node that accounts for it"}\n'], "the holder's lines, and a line without an epoch, are written");
    t.same(await store.executions.errors('exe_1', 10), [error], "the holder's error row is written");
    await t.rejects(store.executions.appendLog('exe_missing', '{"msg":"x"}\n', 0), { name: 'StoreFencedError' }, 'a line with an epoch for a record that is gone is refused');
  });

  t.test('executions: a cancel requested for an in-process one is kept until its owner reads it; the first request stays', async (t) => {
    const store = await withAccounts(open, t);
    await store.executions.insert(execution('exe_1', owner.id, 'orders', '2026-05-01T00:00:00.000Z', 'queued'));
    await store.executions.insert(execution('exe_2', owner.id, 'orders', '2026-05-01T00:00:01.000Z', 'queued'));
    t.equal(await store.executions.requestCancel('exe_1', '2026-05-01T00:00:02.000Z', 'acme'), false, 'a queued one is not cancelled this way (withdraw is)');
    const claimed = await store.executions.claim('exe_1', 'node-b', '2026-05-01T00:00:05.000Z');
    await store.executions.claim('exe_2', 'node-c', '2026-05-01T00:00:05.000Z');
    t.same(await store.executions.cancelsRequested('node-b'), [], 'none requested yet');
    t.equal(await store.executions.requestCancel('exe_1', '2026-05-01T00:00:06.000Z', 'acme'), true, 'an in-process one keeps the request');
    t.equal(await store.executions.requestCancel('exe_1', '2026-05-01T00:00:07.000Z', 'someone else'), true, 'a second request is taken too');
    t.same(await store.executions.cancelsRequested('node-b'), [{ id: 'exe_1', accountId: owner.id, by: 'acme', at: '2026-05-01T00:00:06.000Z' }], "its owner's list has it, with the first request");
    t.same(await store.executions.cancelsRequested('node-c'), [], "another node's list does not");
    t.match(await store.executions.get(owner.id, 'exe_1'), { cancelRequestedAt: '2026-05-01T00:00:06.000Z' }, 'the record says when');
    await store.executions.update({ ...claimed!, status: 'aborted', endedAt: '2026-05-01T00:00:08.000Z' });
    t.same(await store.executions.cancelsRequested('node-b'), [], 'once it ended, it is not listed');
    t.equal(await store.executions.requestCancel('exe_1', '2026-05-01T00:00:09.000Z', 'acme'), false, 'nor can an ended one be cancelled');
  });

  t.test('executions: errors and log lines, in order', async (t) => {
    const store = await withAccounts(open, t);
    await store.executions.insert(execution('exe_1', owner.id, 'orders', '2026-05-01T00:00:00.000Z'));
    const errors = [1, 2, 3].map((n) => ({ step: `s${n}`, code: `QUARK_ERR_N${n}`, message: `error ${n}` }));
    await store.executions.insertErrors('exe_1', errors);
    t.same(await store.executions.errors('exe_1', 10), errors);
    t.same(await store.executions.errors('exe_1', 2), errors.slice(0, 2), 'limited, first ones first');
    t.same(await store.executions.errors('exe_missing', 10), []);
    await store.executions.appendLog('exe_1', '{"msg":"one"}\n');
    await store.executions.appendLog('exe_1', '{"msg":"two"}\n{"msg":"three"}\n');
    t.same(await store.executions.log('exe_1'), ['{"msg":"one"}\n', '{"msg":"two"}\n{"msg":"three"}\n']);
    t.same(await store.executions.log('exe_missing'), []);
  });

  t.test("executions: interrupt marks the node's running ones aborted; queued ones and other nodes' stay", async (t) => {
    const store = await withAccounts(open, t);
    await store.executions.insert(execution('exe_q', owner.id, 'p', '2026-05-01T00:00:00.000Z', 'queued'));
    await store.executions.insert(execution('exe_r', tenant.id, 'p', '2026-05-02T00:00:00.000Z', 'in-process'));
    await store.executions.insert({ ...execution('exe_b', owner.id, 'p', '2026-05-02T00:00:00.000Z', 'in-process'), owner: 'node-b' });
    await store.executions.insert(execution('exe_done', owner.id, 'p', '2026-05-03T00:00:00.000Z', 'complete'));
    const touched = await store.executions.interrupt('node-a', '2026-05-04T00:00:00.000Z', 'QUARK_ERR_EXECUTION_INTERRUPTED', 'the runtime stopped');
    t.same(touched, [{ id: 'exe_r', status: 'aborted' }]);
    const running = await store.executions.get(tenant.id, 'exe_r');
    t.match(running, { status: 'aborted', endedAt: '2026-05-04T00:00:00.000Z', errorCode: 'QUARK_ERR_EXECUTION_INTERRUPTED', errorMessage: 'the runtime stopped' });
    t.same(await store.executions.get(owner.id, 'exe_q'), execution('exe_q', owner.id, 'p', '2026-05-01T00:00:00.000Z', 'queued'), 'a queued one stays queued');
    t.equal((await store.executions.get(owner.id, 'exe_b'))?.status, 'in-process', "another node's is untouched");
    t.same(await store.executions.get(owner.id, 'exe_done'), execution('exe_done', owner.id, 'p', '2026-05-03T00:00:00.000Z', 'complete'), 'a finished one is untouched');
    t.same(await store.executions.interrupt('node-a', '2026-05-05T00:00:00.000Z', 'QUARK_ERR_EXECUTION_INTERRUPTED', 'again'), [], 'nothing left to interrupt');
  });

  t.test('executions: queued ones oldest first with their inputs, inline or by file, dropped once taken', async (t) => {
    const store = await withAccounts(open, t);
    const inputs: QueuedInputRecord[] = [
      { seq: 0, properties: { 'document.name': 'a.json' }, body: { kind: 'inline', base64: Buffer.from('{"a":1}').toString('base64') } },
      { seq: 1, properties: {}, body: { kind: 'file', path: '/home/work/queued/exe_2/1', size: 1048576 } },
    ];
    await store.executions.insert(execution('exe_2', tenant.id, 'p', '2026-05-02T00:00:00.000Z', 'queued'), inputs);
    await store.executions.insert(execution('exe_1', owner.id, 'p', '2026-05-01T00:00:00.000Z', 'queued'));
    await store.executions.insert(execution('exe_3', owner.id, 'p', '2026-05-03T00:00:00.000Z', 'in-process'));
    t.same((await store.executions.queued(10)).map((e) => e.id), ['exe_1', 'exe_2'], 'every account, oldest first, only queued');
    t.same((await store.executions.queued(1)).map((e) => e.id), ['exe_1'], 'limited');
    t.same(await store.executions.inputs('exe_2'), inputs, 'the inputs come back as they were given');
    t.same(await store.executions.inputs('exe_1'), [], 'none given: none');
    await store.executions.dropInputs('exe_2');
    t.same(await store.executions.inputs('exe_2'), [], 'dropped');
    await t.rejects(store.executions.insert(execution('exe_4', owner.id, 'p', '2026-05-04T00:00:00.000Z'), [inputs[0]!, inputs[0]!]), StoreConflictError, 'a bad input refuses the insert');
    t.equal(await store.executions.get(owner.id, 'exe_4'), undefined, 'and the record is not kept without its inputs');
  });

  t.test('executions: purge deletes finished ones that ended before, with their errors and logs', async (t) => {
    const store = await withAccounts(open, t);
    await store.executions.insert(execution('exe_old', owner.id, 'p', '2026-05-01T00:00:00.000Z', 'complete'));
    await store.executions.insert(execution('exe_new', owner.id, 'p', '2026-05-10T00:00:00.000Z', 'error'));
    await store.executions.insert(execution('exe_waiting', owner.id, 'p', '2026-05-01T00:00:00.000Z', 'queued'));
    await store.executions.insertErrors('exe_old', [{ step: 's', code: 'QUARK_ERR_X', message: 'x' }]);
    await store.executions.appendLog('exe_old', '{"msg":"old"}\n');
    t.same(await store.executions.purge('2026-05-05T00:00:00.000Z'), ['exe_old']);
    t.equal(await store.executions.get(owner.id, 'exe_old'), undefined);
    t.same(await store.executions.errors('exe_old', 10), [], 'its errors are gone');
    t.same(await store.executions.log('exe_old'), [], 'its log is gone');
    t.same((await store.executions.list(owner.id, { limit: 10 })).map((e) => e.id).sort(), ['exe_new', 'exe_waiting'], 'newer and unfinished ones stay');
  });
}

function lifecycleContract(t: Test, open: OpenStore): void {
  t.test('transaction: all or nothing, and it resolves to what the work resolves to', async (t) => {
    const store = await withAccounts(open, t);
    const value = await store.transaction(async (tx) => {
      await tx.tokens.insert(token('tok_1', owner.id, '2026-01-03T00:00:00.000Z'));
      t.ok(await tx.tokens.get('tok_1'), 'the transaction sees its own write');
      return 42;
    });
    t.equal(value, 42);
    t.ok(await store.tokens.get('tok_1'), 'committed');
    await t.rejects(
      store.transaction(async (tx) => {
        await tx.tokens.insert(token('tok_2', owner.id, '2026-01-04T00:00:00.000Z'));
        throw new Error('half-way');
      }),
      { message: 'half-way' },
    );
    t.equal(await store.tokens.get('tok_2'), undefined, 'rolled back');
    await t.rejects(
      store.transaction(async (tx) => {
        await tx.tokens.insert(token('tok_3', owner.id, '2026-01-05T00:00:00.000Z'));
        await tx.tokens.insert(token('tok_1', owner.id, '2026-01-05T00:00:00.000Z'));
      }),
      StoreConflictError,
      'a conflict inside rejects the transaction',
    );
    t.equal(await store.tokens.get('tok_3'), undefined, 'and rolls it back');
  });

  t.test("transaction: other callers' writes wait for it and never land inside it", async (t) => {
    const store = await withAccounts(open, t);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const transaction = store.transaction(async (tx) => {
      await tx.tokens.insert(token('tok_in', owner.id, '2026-01-03T00:00:00.000Z'));
      entered();
      await held;
      throw new Error('rolled back on purpose');
    });
    await inside;
    const outside = store.tokens.insert(token('tok_out', owner.id, '2026-01-04T00:00:00.000Z'));
    release();
    await t.rejects(transaction, { message: 'rolled back on purpose' });
    await outside;
    t.same((await store.tokens.list()).map((k) => k.id), ['tok_out'], "the outside write was not rolled back with the transaction's");
  });

  t.test('ping and healthy until closed; a closed store refuses with StoreUnavailableError', async (t) => {
    const store = await open(t);
    await store.ping();
    t.equal(store.healthy(), true);
    await store.close();
    t.equal(store.healthy(), false);
    await t.rejects(store.accounts.list(), StoreUnavailableError);
    await t.rejects(store.ping(), StoreUnavailableError);
  });
}

function stepDataContract(t: Test, open: OpenStore): void {
  const doc = (step: string, n: number) => ({ step, properties: { n: String(n) }, body: new Uint8Array([n, 0, 255]), size: 3 + n });

  t.test('step data: documents per step in order, paged, deleted with their execution', async (t) => {
    const store = await withAccounts(open, t);
    await store.executions.insert(execution('exe_1', owner.id, 'orders', '2026-05-01T00:00:00.000Z', 'complete'));
    await store.executions.insert(execution('exe_2', owner.id, 'orders', '2026-05-02T00:00:00.000Z'));
    await store.stepData.insert('exe_1', [doc('map', 0), doc('split', 1), doc('map', 2)]);
    await store.stepData.insert('exe_1', [doc('map', 3)]);
    await store.stepData.insert('exe_1', []);
    await store.stepData.insert('exe_2', [doc('map', 9)]);
    const page = await store.stepData.list('exe_1', 'map', { after: -1, limit: 2 });
    t.same(page.map((d) => [d.seq, d.properties.n]), [[0, '0'], [1, '2']], 'the first page, seq by step');
    t.same(page[0]!.body, new Uint8Array([0, 0, 255]), 'bytes as written');
    t.equal(page[1]!.size, 5);
    t.same((await store.stepData.list('exe_1', 'map', { after: 1, limit: 2 })).map((d) => [d.seq, d.properties.n]), [[2, '3']], 'the next page, after the cursor');
    t.same(await store.stepData.list('exe_1', 'nowhere', { after: -1, limit: 10 }), []);
    t.same(await store.stepData.steps('exe_1'), [{ step: 'map', count: 3 }, { step: 'split', count: 1 }]);
    t.same(await store.executions.purge('2026-06-01T00:00:00.000Z'), ['exe_1'], 'the ended one is purged, the queued one kept');
    t.same(await store.stepData.steps('exe_1'), [], 'purged with its execution');
    t.equal((await store.stepData.list('exe_2', 'map', { after: -1, limit: 10 })).length, 1, 'the other execution keeps its own');
  });

  t.test('step data: input properties, empty and large bodies, steps in byte order', async (t) => {
    const store = await withAccounts(open, t);
    await store.executions.insert(execution('exe_1', owner.id, 'orders', '2026-05-01T00:00:00.000Z', 'complete'));
    const big = new Uint8Array(70_000).map((_, i) => i % 251);
    await store.stepData.insert('exe_1', [
      { step: 'tag', properties: { 'order.kind': 'a', 'é': 'ü' }, input: { 'order.kind': 'b' }, body: new Uint8Array(), size: 0 },
      { step: 'call>inner', properties: {}, input: {}, body: big, size: 5_000_000_000 },
      { step: 'Tag', properties: { n: '1' }, body: new Uint8Array([1]), size: 1 },
    ]);
    const [tagged] = await store.stepData.list('exe_1', 'tag', { after: -1, limit: 10 });
    t.same(tagged, { seq: 0, step: 'tag', properties: { 'order.kind': 'a', 'é': 'ü' }, input: { 'order.kind': 'b' }, body: new Uint8Array(), size: 0 }, 'properties and the ones it entered with');
    await store.stepData.insert('exe_1', [{ step: 'order', properties: { 'z.last-set': '1', a: '2', 'mm.middle': '3' }, input: { zz: '1', a: '2' }, body: new Uint8Array(), size: 0 }]);
    const [ordered] = await store.stepData.list('exe_1', 'order', { after: -1, limit: 1 });
    t.same([Object.keys(ordered!.properties), Object.keys(ordered!.input ?? {})], [['z.last-set', 'a', 'mm.middle'], ['zz', 'a']], 'properties in the order they were set (the console lists them so)');
    const [inner] = await store.stepData.list('exe_1', 'call>inner', { after: -1, limit: 10 });
    t.same(inner!.input, {}, 'entered with none is kept as none, not as unknown');
    t.same(inner!.body, big, 'a 70 kB head as written');
    t.equal(inner!.size, 5_000_000_000, 'a size over 4 GiB');
    const [upper] = await store.stepData.list('exe_1', 'Tag', { after: -1, limit: 10 });
    t.equal(upper!.input, undefined, 'unknown input properties stay unknown');
    t.same((await store.stepData.steps('exe_1')).map((s) => s.step), ['Tag', 'call>inner', 'order', 'tag'], 'steps sorted byte-wise');
  });

  t.test('a test-mode run\'s definition: kept, replaced, read back, deleted with its execution', async (t) => {
    const store = await withAccounts(open, t);
    await store.executions.insert(execution('exe_1', owner.id, 'orders', '2026-05-01T00:00:00.000Z', 'complete'));
    await store.executions.insert(execution('exe_2', owner.id, 'orders', '2026-05-02T00:00:00.000Z', 'complete'));
    t.equal(await store.executions.definition('exe_1'), undefined, 'none kept');
    const definition = { id: 'orders', name: 'Orders', start: { kind: 'none', next: 'm' }, steps: [{ id: 'm', kind: 'map', expression: '$' }] };
    await store.executions.saveDefinition('exe_1', { ...definition, name: 'first' });
    await store.executions.saveDefinition('exe_1', definition);
    t.same(await store.executions.definition('exe_1'), definition, 'the last one kept');
    t.equal(await store.executions.definition('exe_2'), undefined, 'per execution');
    t.same(await store.executions.purge('2026-05-01T12:00:00.000Z'), ['exe_1']);
    t.equal(await store.executions.definition('exe_1'), undefined, 'purged with its execution');
  });

  t.test('step data: written in a transaction that rolls back leaves nothing', async (t) => {
    const store = await withAccounts(open, t);
    await store.executions.insert(execution('exe_1', owner.id, 'orders', '2026-05-01T00:00:00.000Z', 'complete'));
    await t.rejects(
      store.transaction(async (tx) => {
        await tx.stepData.insert('exe_1', [doc('map', 0)]);
        t.equal((await tx.stepData.steps('exe_1')).length, 1, 'the transaction sees its own write');
        throw new Error('rolled back on purpose');
      }),
      { message: 'rolled back on purpose' },
    );
    t.same(await store.stepData.steps('exe_1'), []);
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
  scheduledExecutionsContract(t, open);
  stepDataContract(t, open);
  lifecycleContract(t, open);
  concurrencyContract(t, open);
  textContract(t, open);
}
