/**
 * The Store contract under concurrency: transactions (commit, rollback, nothing half-seen
 * by other callers), parallel writers (deploys get distinct versions, property merges
 * never lose each other's updates), typed unique violations and revision races, durable
 * queued inputs. Part of storeContract (contract.ts); every implementation runs it.
 */
import type { Test } from 'tap';
import { StoreConflictError, StoreRaceError, StoreUnavailableError } from '../../runtime/store/errors.js';
import type { QueuedInputRecord, Store } from '../../runtime/store/types.js';
import { connection, deploying as deployingVersion, execution, owner, tenant, token, type OpenStore } from './contract.js';

type OpenAsync = OpenStore;

async function withAccounts(open: OpenAsync, t: Test): Promise<Store> {
  const store = await open(t);
  await store.accounts.insert(owner);
  await store.accounts.insert(tenant);
  return store;
}

/** A promise and its resolver, to hold a transaction open at a known point. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

const deploying = (processId: string, n: number) => ({ ...deployingVersion(owner.id, processId, 1), name: `${processId} deploy ${n}` });

function transactionsContract(t: Test, open: OpenAsync): void {
  t.test('transaction: commits what the work wrote and returns its value; a rejection rolls every write back', async (t) => {
    const store = await withAccounts(open, t);
    const value = await store.transaction(async (tx) => {
      await tx.tokens.insert(token('tok_1', owner.id, '2026-01-03T00:00:00.000Z'));
      await tx.connections.insert(connection('conn_1', owner.id, 'files'));
      t.ok(await tx.tokens.get('tok_1'), 'the transaction reads its own writes');
      return 42;
    });
    t.equal(value, 42);
    t.ok(await store.tokens.get('tok_1'), 'committed');
    t.ok(await store.connections.get(owner.id, 'conn_1'), 'committed');
    await t.rejects(
      store.transaction(async (tx) => {
        await tx.tokens.insert(token('tok_2', owner.id, '2026-01-04T00:00:00.000Z'));
        await tx.processes.deploy(deploying('orders', 1));
        throw new Error('half-way');
      }),
      { message: 'half-way' },
    );
    t.equal(await store.tokens.get('tok_2'), undefined, 'the token was rolled back');
    t.equal(await store.processes.latestVersion(owner.id, 'orders'), 0, 'so was the deploy');
    await t.rejects(
      store.transaction(async (tx) => {
        await tx.tokens.insert(token('tok_3', owner.id, '2026-01-05T00:00:00.000Z'));
        await tx.tokens.insert({ ...token('tok_4', owner.id, '2026-01-05T00:00:00.000Z'), hash: 'hash-of-tok_1' });
      }),
      { name: 'StoreConflictError', constraint: 'token-hash' },
      'a refused write inside rejects the transaction with the typed error',
    );
    t.equal(await store.tokens.get('tok_3'), undefined, 'and what came before it in the transaction is gone');
  });

  t.test('transaction: other callers never see it half-done', async (t) => {
    const store = await withAccounts(open, t);
    const halfway = gate();
    const resume = gate();
    const done = store.transaction(async (tx) => {
      await tx.tokens.insert(token('tok_a', owner.id, '2026-01-03T00:00:00.000Z'));
      halfway.open();
      await resume.opened;
      await tx.tokens.insert(token('tok_b', owner.id, '2026-01-04T00:00:00.000Z'));
    });
    await halfway.opened;
    // started while the transaction holds one write of two; it may wait for the transaction, never see half of it
    const seen = store.tokens.list(owner.id);
    resume.open();
    await done;
    const ids = (await seen).map((k) => k.id);
    t.ok(ids.length === 0 || ids.length === 2, `a concurrent reader saw none or both of the writes (saw ${JSON.stringify(ids)})`);
    t.same((await store.tokens.list(owner.id)).map((k) => k.id), ['tok_a', 'tok_b'], 'both committed');
  });

  t.test('transaction: two at once both commit, each whole', async (t) => {
    const store = await withAccounts(open, t);
    await Promise.all(
      [1, 2].map((n) =>
        store.transaction(async (tx) => {
          await tx.tokens.insert(token(`tok_${n}a`, owner.id, `2026-01-0${n}T00:00:00.000Z`));
          await tx.tokens.insert(token(`tok_${n}b`, owner.id, `2026-01-0${n}T00:00:01.000Z`));
        }),
      ),
    );
    t.same((await store.tokens.list(owner.id)).map((k) => k.id), ['tok_1a', 'tok_1b', 'tok_2a', 'tok_2b']);
  });
}

function concurrentWritersContract(t: Test, open: OpenAsync): void {
  t.test('processes: 10 parallel deploys of one process get 10 distinct versions, the last one active', async (t) => {
    const store = await withAccounts(open, t);
    const versions = await Promise.all(Array.from({ length: 10 }, (_, n) => store.processes.deploy(deploying('orders', n))));
    t.same([...versions].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'each deploy its own version, none skipped');
    t.equal(await store.processes.latestVersion(owner.id, 'orders'), 10);
    const stored = await store.processes.versions(owner.id, 'orders');
    t.equal(stored.length, 10, 'every version recorded');
    for (const [n, version] of versions.entries()) t.equal(stored[version - 1]?.name, `orders deploy ${n}`, `deploy ${n} recorded as version ${version}`);
    t.ok(versions.includes((await store.processes.get(owner.id, 'orders'))!.activeVersion!), 'one of them is active');
    t.equal(await store.processes.deploy(deploying('other', 0)), 1, 'another process counts from 1');
  });

  t.test('processes: parallel property merges never lose each other; undefined removes one', async (t) => {
    const store = await withAccounts(open, t);
    await store.processes.deploy(deploying('orders', 0));
    await store.processes.mergeProperties(owner.id, 'orders', new Map<string, unknown>([['keep', { nested: [1, 2] }], ['drop', 'x']]));
    await Promise.all(Array.from({ length: 20 }, (_, n) => store.processes.mergeProperties(owner.id, 'orders', new Map<string, unknown>([[`p${n}`, n]]))));
    await store.processes.mergeProperties(owner.id, 'orders', new Map<string, unknown>([['drop', undefined], ['p0', 'last writer wins']]));
    const expected: Record<string, unknown> = { keep: { nested: [1, 2] }, p0: 'last writer wins' };
    for (let n = 1; n < 20; n++) expected[`p${n}`] = n;
    t.same((await store.processes.get(owner.id, 'orders'))?.properties, expected);
  });
  t.test('writes made together, some refused: each caller hears its own outcome, the others are kept whole', async (t) => {
    const store = await withAccounts(open, t);
    await store.executions.insert(execution('exe_taken', owner.id, 'p', '2026-05-01T00:00:00.000Z'));
    const inputs: QueuedInputRecord[] = [{ seq: 0, properties: {}, body: { kind: 'inline', base64: Buffer.from('{"n":1}').toString('base64') } }];
    const running = { ...execution('exe_taken', owner.id, 'p', '2026-05-01T00:00:00.000Z', 'in-process') };
    // issued in one turn, none awaited before the next: 20 executions, a duplicate among them, a fenced update, an update that lands, a log line.
    // Calls issued together are not ordered against each other (PostgreSQL runs them on different pool connections), so the log line
    // goes to an execution stored before them: one for exe_1 could reach the server before exe_1's insert commits and be refused.
    const calls = [
      ...Array.from({ length: 20 }, (_, n) => store.executions.insert(execution(`exe_${n}`, owner.id, 'p', `2026-05-02T00:00:${String(n).padStart(2, '0')}.000Z`), inputs)),
      store.executions.insert(execution('exe_taken', owner.id, 'p', '2026-05-03T00:00:00.000Z'), inputs),
      store.executions.update({ ...execution('exe_missing', owner.id, 'p', '2026-05-03T00:00:00.000Z'), status: 'complete' }),
      store.executions.update({ ...running, leaseEpoch: 0 }),
      store.executions.appendLog('exe_taken', '{"msg":"one"}\n'),
    ];
    const results = await Promise.allSettled(calls);
    t.same(results.slice(0, 20).map((r) => r.status), Array(20).fill('fulfilled'), 'every new execution was inserted');
    t.match(results[20], { status: 'rejected', reason: { name: 'StoreConflictError', constraint: 'id' } }, 'the duplicate id is refused, typed');
    t.match(results[21], { status: 'rejected', reason: { name: 'StoreFencedError' } }, 'the update of a missing record is refused as fenced');
    t.same(results.slice(22).map((r) => r.status), ['fulfilled', 'fulfilled'], 'the update and the log line went through');
    t.same(await store.executions.inputs('exe_taken'), [], 'the refused insert of a taken id left none of its inputs');
    t.same(await store.executions.inputs('exe_7'), inputs, 'the others kept theirs');
    t.equal((await store.executions.get(owner.id, 'exe_taken'))?.status, 'in-process', 'the update landed');
    t.same(await store.executions.log('exe_taken'), ['{"msg":"one"}\n'], 'the log line is kept');
    t.same((await store.executions.queued(100)).map((e) => e.id), Array.from({ length: 20 }, (_, n) => `exe_${n}`), 'the 20 new ones are queued, exe_taken runs');
  });
}

function conflictsContract(t: Test, open: OpenAsync): void {
  t.test('unique violations are typed, with the constraint', async (t) => {
    const store = await withAccounts(open, t);
    const alpha = connection('conn_a', owner.id, 'alpha');
    await store.connections.insert(alpha);
    await store.connections.insert(connection('conn_b', owner.id, 'beta'));
    await store.tokens.insert(token('tok_1', owner.id, '2026-01-03T00:00:00.000Z'));
    const conflict = (constraint: string) => ({ name: 'StoreConflictError', constraint });
    await t.rejects(store.accounts.insert({ ...owner, id: 'acc_2' }), conflict('account-name'));
    await t.rejects(store.connections.insert({ ...alpha, id: 'conn_c' }), conflict('connection-name'));
    await t.rejects(store.connections.update({ ...alpha, name: 'beta', revision: 2 }, 1), conflict('connection-name'), 'a rename onto a taken name');
    await t.rejects(store.tokens.insert({ ...token('tok_1', owner.id, 'x'), hash: 'another' }), conflict('id'));
    await t.rejects(store.tokens.insert({ ...token('tok_2', owner.id, 'x'), hash: 'hash-of-tok_1' }), conflict('token-hash'));
    const error = await store.accounts.insert({ ...owner, id: 'acc_3' }).catch((e: unknown) => e);
    t.ok(error instanceof StoreConflictError, 'an instance of StoreConflictError');
    t.equal((await store.connections.get(owner.id, 'conn_a'))?.name, 'alpha', 'a refused rename changed nothing');
  });

  t.test('connections: two updates at one revision: one wins, the other is a StoreRaceError', async (t) => {
    const store = await withAccounts(open, t);
    const original = connection('conn_1', owner.id, 'files');
    await store.connections.insert(original);
    const results = await Promise.allSettled(['first', 'second'].map((who) => store.connections.update({ ...original, config: { who }, revision: 2 }, 1)));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    t.equal(won.length, 1, 'one update won');
    t.equal(lost.length, 1, 'one lost');
    t.ok(lost[0]?.reason instanceof StoreRaceError, 'the loser is told with a StoreRaceError');
    const stored = await store.connections.get(owner.id, 'conn_1');
    t.equal(stored?.revision, 2);
    t.equal(await store.connections.update({ ...original, id: 'conn_missing', revision: 2 }, 1), false, 'no such connection: false, not a race');
  });
}

function queuedInputsContract(t: Test, open: OpenAsync): void {
  t.test('executions: a queued one with its inputs, queued() oldest first, dropInputs, interrupt by owner', async (t) => {
    const store = await withAccounts(open, t);
    const inputs: QueuedInputRecord[] = [
      { seq: 0, properties: { 'document.dynamic.name': 'a.json' }, body: { kind: 'inline', base64: Buffer.from('{"n":1}\u0000\xff').toString('base64') } },
      { seq: 1, properties: {}, body: { kind: 'file', path: '/home/work/queued/exe_2/1', size: 5_000_000 } },
    ];
    await store.executions.insert(execution('exe_2', owner.id, 'p', '2026-05-02T00:00:00.000Z'), inputs);
    await store.executions.insert(execution('exe_1', tenant.id, 'p', '2026-05-01T00:00:00.000Z'));
    await store.executions.insert({ ...execution('exe_run', owner.id, 'p', '2026-05-01T00:00:00.000Z', 'in-process'), owner: 'node-a' });
    await store.executions.insert({ ...execution('exe_other', owner.id, 'p', '2026-05-01T00:00:00.000Z', 'in-process'), owner: 'node-b' });
    t.same(await store.executions.inputs('exe_2'), inputs, 'inputs come back as stored, bytes and all');
    t.same((await store.executions.queued(10)).map((e) => e.id), ['exe_1', 'exe_2'], 'every account, oldest first');
    t.same((await store.executions.queued(1)).map((e) => e.id), ['exe_1'], 'limited');
    await t.rejects(store.executions.insert(execution('exe_2', owner.id, 'p', '2026-05-03T00:00:00.000Z'), inputs), { name: 'StoreConflictError', constraint: 'id' });
    t.same(await store.executions.inputs('exe_2'), inputs, 'a refused insert leaves the first one whole');
    await store.executions.dropInputs('exe_2');
    t.same(await store.executions.inputs('exe_2'), []);
    const touched = await store.executions.interrupt('node-a', '2026-05-04T00:00:00.000Z', 'QUARK_ERR_EXECUTION_INTERRUPTED', 'node-a stopped');
    t.same(touched, [{ id: 'exe_run', status: 'aborted' }], "only node-a's running execution");
    t.equal((await store.executions.get(owner.id, 'exe_other'))?.status, 'in-process', "node-b's is untouched");
    t.equal((await store.executions.get(owner.id, 'exe_2'))?.status, 'queued', 'queued ones stay queued');
  });
}

function availabilityContract(t: Test, open: OpenAsync): void {
  t.test('ping answers while open; after close it rejects with StoreUnavailableError', async (t) => {
    const store = await open(t);
    await store.ping();
    t.equal(store.healthy(), true);
    await store.close();
    t.equal(store.healthy(), false);
    const error = await store.ping().catch((e: unknown) => e);
    t.ok(error instanceof StoreUnavailableError, 'a closed store is unavailable');
  });
}

/** Runs the concurrency part of the contract against stores made by `open`. */
export function concurrencyContract(t: Test, open: OpenAsync): void {
  transactionsContract(t, open);
  concurrentWritersContract(t, open);
  conflictsContract(t, open);
  queuedInputsContract(t, open);
  availabilityContract(t, open);
}
