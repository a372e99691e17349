/**
 * The Store contract for awkward text: a string with U+0000 (NUL) — which PostgreSQL's
 * jsonb and text refuse — or with other control characters comes back out exactly as it
 * went in, wherever a document, a property, an error or a log can put one. Part of
 * storeContract (contract.ts); every implementation runs it.
 */
import type { Test } from 'tap';
import type { HeldResourceRecord, QueuedInputRecord, Store } from '../../runtime/store/types.js';
import { connection, deploying, execution, owner, type OpenStore } from './contract.js';

/** NUL alone, at the ends, twice in a row, beside U+0001 (what an escape scheme might use) and a literal backslash-u0000. */
const awkward = ['\u0000', 'a\u0000b', '\u0000\u0000', '\u0001\u0000\u00010', 'tab\tand\\u0000 literal', 'end\u0000'];

/** A JSON object with every awkward string as a value, and as a key. */
function awkwardObject(): Record<string, unknown> {
  const values = Object.fromEntries(awkward.map((s, i) => [`v${i}`, s]));
  const keys = Object.fromEntries(awkward.map((s, i) => [`k${s}`, i]));
  return { ...values, ...keys, nested: { list: [...awkward, { deep: awkward[1] }] } };
}

async function withOwner(open: OpenStore, t: Test): Promise<Store> {
  const store = await open(t);
  await store.accounts.insert(owner);
  return store;
}

export function textContract(t: Test, open: OpenStore): void {
  // property names are letters, digits, '_', '.', '-' (schemas/process.schema.json); their values are anything
  t.test('text with NUL: persisted property values merge and come back as they went in', async (t) => {
    const store = await withOwner(open, t);
    await store.processes.deploy(deploying(owner.id, 'orders', 1));
    const updates = new Map<string, unknown>([...awkward.map((s, i): [string, unknown] => [`p${i}`, s]), ['object', awkwardObject()]]);
    await store.processes.mergeProperties(owner.id, 'orders', updates);
    t.same((await store.processes.get(owner.id, 'orders'))?.properties, Object.fromEntries(updates), 'every value as given');
    await store.processes.mergeProperties(owner.id, 'orders', new Map<string, unknown>([['p1', undefined], ['p2', `again ${awkward[3]}`]]));
    const after = await store.processes.get(owner.id, 'orders');
    t.notOk('p1' in (after?.properties ?? {}), 'one removed');
    t.equal(after?.properties.p2, `again ${awkward[3]}`, 'one replaced');
    t.same(after?.properties.object, awkwardObject(), 'the others untouched');
    t.notOk(after?.propertiesUnreadable, 'not mistaken for damage');
  });

  t.test('text with NUL: queued input documents, execution errors and end messages, log lines', async (t) => {
    const store = await withOwner(open, t);
    const inputs: QueuedInputRecord[] = [{ seq: 0, properties: { 'document.name': 'a\u0000b.json', [`x${awkward[3]}`]: awkward[0] }, body: { kind: 'inline', base64: Buffer.from('a\u0000b').toString('base64') } }];
    const queued = execution('exe_1', owner.id, 'orders', '2026-05-01T00:00:00.000Z');
    await store.executions.insert(queued, inputs);
    t.same(await store.executions.inputs('exe_1'), inputs, 'input properties as given');
    const ended = { ...queued, status: 'error' as const, endedAt: '2026-05-01T00:00:01.000Z', errorCode: 'QUARK_ERR_X', errorMessage: `failed on "${awkward[1]}"`, steps: { read: { in: 1, out: 0, errors: 1 } } };
    await store.executions.update(ended);
    t.same(await store.executions.get(owner.id, 'exe_1'), ended, 'the end message and step counts as given');
    const errors = awkward.map((s, i) => ({ step: 'read', code: 'QUARK_ERR_X', message: `document ${i}: ${s}` }));
    await store.executions.insertErrors('exe_1', errors);
    t.same(await store.executions.errors('exe_1', 100), errors, 'error messages as given');
    const lines = [`${JSON.stringify({ msg: awkward[1] })}\n`, `raw ${awkward.join('|')}\n`];
    for (const chunk of lines) await store.executions.appendLog('exe_1', chunk);
    t.same(await store.executions.log('exe_1'), lines, 'log lines as given, escaped or raw');
  });

  t.test('text with NUL: connection configuration and secrets, held resources, deployments', async (t) => {
    const store = await withOwner(open, t);
    const record = { ...connection('conn_1', owner.id, 'files'), config: awkwardObject(), secrets: { '/pass\u0000word': 'sealed\u0000value' } };
    await store.connections.insert(record);
    t.same(await store.connections.get(owner.id, 'conn_1'), record, 'configuration and secrets as given');
    t.same(await store.connections.list(owner.id), [record]);
    const held: HeldResourceRecord = { id: 'res_1', accountId: owner.id, connectionId: 'conn_1', connectorId: 'amazon-s3', kind: 'multipart-upload', data: awkwardObject(), createdAt: '2026-05-01T00:00:00.000Z', attempts: 0, lastError: null };
    await store.resources.insert(held);
    await store.resources.failed('res_1', `refused: ${awkward[1]}`);
    t.same(await store.resources.get('res_1'), { ...held, attempts: 1, lastError: `refused: ${awkward[1]}` }, 'data and the last error as given');
    const version = await store.processes.deploy({ ...deploying(owner.id, 'orders', 1), definition: awkwardObject(), note: `note ${awkward[2]}` });
    t.match(await store.processes.version(owner.id, 'orders', version), { definition: awkwardObject(), note: `note ${awkward[2]}` }, 'a definition and note as given');
  });
}
