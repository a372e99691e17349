/**
 * The store-backed execution queue: what it commits before start answers (the record and
 * its input documents, small bodies inline, large ones as files), what a restart finds,
 * and what a run takes and releases.
 */
import t from 'tap';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSqliteStore } from '../../runtime/store/sqlite-store.js';
import { createStoreQueue, inlineInputBytes, queuedDir } from '../../runtime/processes/queue.js';
import { inlineRef } from '../../runtime/engine/bodies.js';
import type { DocumentRef } from '../../runtime/engine/messages.js';
import type { ExecutionRecord } from '../../runtime/store/types.js';
import { tempDir } from '../helpers/quark.js';
import { execution, owner } from '../store/contract.js';

async function setup(t: any) {
  const dir = tempDir(t, 'quark-queue-');
  const file = join(dir, 'quark.db');
  const store = openSqliteStore(file);
  t.teardown(() => store.close());
  await store.accounts.insert(owner);
  return { dir, file, store, workRoot: join(dir, 'work') };
}

const bytesOf = (d: DocumentRef) => (d.body.kind === 'inline' ? Buffer.from(d.body.bytes) : readFileSync(d.body.path));
const queuedAt = (n: number) => `2026-05-0${n}T00:00:00.000Z`;

t.test('enqueue commits the record with its inputs: small bodies inline, large and file bodies as files; a run takes them back whole', async (t) => {
  const { dir, store, workRoot } = await setup(t);
  const source = join(dir, 'upload.bin');
  writeFileSync(source, Buffer.alloc(10, 'f'));
  const documents: DocumentRef[] = [
    { properties: { name: 'small' }, body: inlineRef('{"a":1}') },
    { properties: {}, body: inlineRef(Buffer.alloc(inlineInputBytes + 1, 'L')) },
    { properties: { from: 'file' }, body: { kind: 'file', path: source, size: 10 } },
  ];
  const queue = createStoreQueue({ store, workRoot });
  await queue.enqueue(execution('exe_1', owner.id, 'p', queuedAt(1)), documents);
  t.equal(queue.size(), 1);
  const stored = await store.executions.inputs('exe_1');
  t.same(stored.map((i) => i.body.kind), ['inline', 'file', 'file'], 'inline up to the limit, files above it and for file bodies');
  t.same(readdirSync(queuedDir(workRoot, 'exe_1')).sort(), ['1', '2'], 'the files are under work/queued/<id>/');

  const taken = await queue.take();
  t.equal(taken?.id, 'exe_1');
  t.equal(queue.size(), 0);
  const workDir = join(workRoot, 'exe_1');
  const back = await queue.documents('exe_1', workDir);
  t.same(back.map((d) => d.properties), documents.map((d) => d.properties), 'properties as given');
  t.same(back.map(bytesOf), documents.map(bytesOf), 'bodies byte for byte');
  t.ok(back.slice(1).every((d) => d.body.kind === 'file' && d.body.path.startsWith(workDir)), 'the files moved into the execution folder');
  await queue.release('exe_1');
  t.same(await store.executions.inputs('exe_1'), [], 'released: the stored inputs are gone');
  t.notOk(existsSync(queuedDir(workRoot, 'exe_1')), 'and their folder');
});

t.test('a queue over the same store after a restart finds what waited, oldest first; withdraw takes one out', async (t) => {
  const { store, workRoot } = await setup(t);
  const first = createStoreQueue({ store, workRoot });
  for (const [n, id] of [[2, 'exe_b'], [1, 'exe_a'], [3, 'exe_c']] as const) await first.enqueue(execution(id, owner.id, 'p', queuedAt(n)), []);
  await store.executions.insert(execution('exe_running', owner.id, 'p', queuedAt(4), 'in-process'));
  const again = createStoreQueue({ store, workRoot });
  t.equal(await again.restore(), 3, 'the queued ones, not the running one');
  t.equal(again.withdraw('exe_b'), true);
  t.equal(again.withdraw('exe_b'), false, 'once');
  const order: (ExecutionRecord | undefined)[] = [await again.take(), await again.take(), await again.take()];
  t.same(order.map((e) => e?.id), ['exe_a', 'exe_c', undefined], 'oldest first, then none');
});

t.test('a record the store refuses leaves no input files behind', async (t) => {
  const { store, workRoot } = await setup(t);
  const queue = createStoreQueue({ store, workRoot });
  await store.executions.insert(execution('exe_dup', owner.id, 'p', queuedAt(1)));
  await t.rejects(queue.enqueue(execution('exe_dup', owner.id, 'p', queuedAt(2)), [{ properties: {}, body: inlineRef(Buffer.alloc(inlineInputBytes * 2)) }]), { name: 'StoreConflictError' });
  t.notOk(existsSync(queuedDir(workRoot, 'exe_dup')), 'the file written for it is removed');
  t.equal(queue.size(), 0, 'and nothing waits');
});

