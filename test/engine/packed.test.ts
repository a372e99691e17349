/** Unit tests of documents packed for the plugin host's IPC channel (engine/packed.ts). */
import t from 'tap';
import { serialize, deserialize } from 'node:v8';
import { inlineRef, packBodies } from '../../runtime/engine/bodies.js';
import { ownedTask, packDocuments, packExits, packTask, unpackDocuments, unpackExits, unpackTask } from '../../runtime/engine/packed.js';
import type { DocumentRef, StepsOutcome, StepsTask } from '../../runtime/engine/messages.js';

const text = (d: DocumentRef) => (d.body.kind === 'inline' ? Buffer.from(d.body.bytes).toString('utf8') : `file:${d.body.path}:${d.body.size}`);
const large = () => {
  const bytes = Buffer.alloc(100 * 1024, 'L');
  return Buffer.from(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
};

function documents(): DocumentRef[] {
  const slab = Buffer.from('..{"a":1}..{"b":2}..');
  return [
    { properties: { customerId: 'c-1', 'quark.error.code': 'X' }, body: inlineRef(slab.subarray(2, 9)) },
    { properties: {}, body: { kind: 'file', path: '/work/exe/body-1', size: 123 }, origins: [0, 4] },
    { properties: { n: 'ü ✓ "quoted"' }, body: inlineRef(Buffer.alloc(0)) },
    { properties: {}, body: inlineRef(large()), origins: [2] },
    { properties: {}, body: inlineRef(slab.subarray(11, 18)) },
  ];
}

t.test('packed documents read back the same: properties, inline, empty, large and spilled bodies, origins, order', async (t) => {
  const before = documents();
  const packed = packDocuments(before, false);
  t.equal(packed.own.length, 1, 'the large body that owns its buffer travels as it is');
  t.equal(packed.bytes.byteLength, 14, 'the small bodies back to back, not the slab they were cut from');
  const after = unpackDocuments(packed);
  t.same(after.map((d) => d.properties), before.map((d) => d.properties));
  t.same(after.map(text), before.map(text));
  t.same(after.map((d) => d.origins), before.map((d) => d.origins));
  t.notOk('origins' in after[0]!, 'no origins where there were none');
});

t.test('through the channel\'s serializer and the host\'s copy, a packed chunk is a few values, not one per document', async (t) => {
  const chunk = packBodies(Array.from({ length: 2000 }, (_, i) => ({ properties: { i: String(i) }, body: inlineRef(`{"n":${i}}`) }))).documents;
  const task: StepsTask = { kind: 'steps', steps: {}, first: 'map', documents: chunk, process: { p: 1 }, execution: { id: 'exe_x', process: 'p', version: 1, trigger: 'api' }, workDir: '/w', spillBytes: 1024, maxNestingDepth: 100 };
  const sent = packTask(task) as StepsTask;
  t.equal(sent.documents.length, 0, 'the documents go packed');
  t.equal(sent.packed!.bytes.buffer, (chunk[0]!.body as { bytes: Uint8Array }).bytes.buffer, 'the walker\'s chunk buffer is used as it is, not copied again');
  // what the host receives: views into the message buffer (Node's advanced IPC uses the v8 serializer)
  const received = deserialize(serialize(sent)) as StepsTask;
  const { task: posted, transfer } = ownedTask(received);
  t.equal(transfer.length, 1, 'one buffer moves to the worker');
  t.not((posted as StepsTask).packed!.bytes.buffer, received.packed!.bytes.buffer, 'copied out of the message buffer, which may hold the next message');
  const inWorker = unpackTask(structuredClone(posted, { transfer }) as StepsTask);
  t.equal(inWorker.documents.length, 2000);
  t.equal(text(inWorker.documents[1999]!), '{"n":1999}');
  t.same(inWorker.documents[7]!.properties, { i: '7' });
  t.same(inWorker.process, { p: 1 });
  t.equal(packTask({ kind: 'probe', entry: '/x', operations: [], testConnection: false }).kind, 'probe', 'other tasks go as they are');
});

t.test('a packed outcome\'s exits come back with their documents, in order, each exit its own', async (t) => {
  const [a, b, c, d, e] = documents();
  const shared = large();
  const outcome: StepsOutcome = {
    exits: [
      { next: 'high', documents: [a!, d!, { properties: { twin: '1' }, body: inlineRef(shared) }] },
      { next: null, documents: [b!, c!, e!, { properties: { twin: '2' }, body: inlineRef(shared) }] },
    ],
    failed: [{ step: 'map', code: 'QUARK_ERR_STEP_FAILED', message: 'no' }],
    counts: { map: { in: 8, out: 7, errors: 1 } },
    processUpdates: [['seen', 7]],
    notes: [],
  };
  const expected = outcome.exits.map((exit) => ({ next: exit.next, documents: exit.documents.map(text) }));
  const { outcome: packed, buffers } = packExits(outcome);
  t.equal(buffers.length, 3, 'the small bodies\' buffer and each large buffer once (two documents share one)');
  t.same(packed.exits.map((exit) => exit.documents.length), [0, 0]);
  const back = unpackExits(deserialize(serialize(structuredClone(packed, { transfer: buffers }))) as StepsOutcome);
  t.same(back.exits.map((exit) => ({ next: exit.next, documents: exit.documents.map(text) })), expected);
  t.same(back.exits[1]!.documents[3]!.properties, { twin: '2' });
  t.notOk('packed' in back);
  t.same([back.failed, back.counts, back.processUpdates], [outcome.failed, outcome.counts, outcome.processUpdates]);
  const plain = { ...outcome, exits: [] };
  t.equal(unpackExits(plain), plain, 'an outcome that was not packed is left as it is');
});
