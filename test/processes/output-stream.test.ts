/** The queue between the walker and a streamed answer's writer (runtime/processes/output-stream.ts). */
import t from 'tap';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOutputStream } from '../../runtime/processes/output-stream.js';
import { inlineRef } from '../../runtime/engine/bodies.js';
import type { DocumentRef } from '../../runtime/engine/messages.js';

const doc = (body: string, properties: Record<string, string> = {}): DocumentRef => ({ properties, body: inlineRef(body) });
const settledNow = async (p: Promise<unknown> | undefined) => {
  let done = false;
  void p?.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return p === undefined || done;
};

t.test('past its mark the stream holds the producer until the reader took enough; a document mark and a byte mark', async (t) => {
  const byCount = createOutputStream({ maxDocuments: 2 });
  t.equal(byCount.ready(), undefined, 'empty: ready at once');
  byCount.push([doc('a'), doc('b')]);
  const held = byCount.ready();
  t.notOk(await settledNow(held), 'two waiting: the producer waits');
  t.equal(Buffer.from((await byCount.next())!.bytes!).toString(), 'a');
  t.ok(await settledNow(held), 'one taken: it goes on');
  const byBytes = createOutputStream({ maxBytes: 10 });
  byBytes.push([doc('0123456789')]);
  t.notOk(await settledNow(byBytes.ready()), 'ten bytes waiting');
});

t.test('a reader that leaves drops what waits and what comes; the producer is never held again', async (t) => {
  const outputs = createOutputStream({ maxDocuments: 1 });
  outputs.push([doc('a'), doc('b')]);
  const held = outputs.ready();
  const reading = outputs.next();
  outputs.abandon();
  t.ok(await settledNow(held), 'let go');
  t.ok(await reading, 'the document already taken is still handed over');
  t.equal(await outputs.next(), undefined, 'nothing more for a reader that left');
  outputs.push([doc('c')]);
  t.equal(outputs.ready(), undefined);
  t.same(outputs.counts, { pushed: 3, taken: 1, dropped: 2 });
  t.ok(await settledNow(outputs.settled()));
});

t.test('an execution that stops (its signal) lets the producer go and ends the reader', async (t) => {
  const controller = new AbortController();
  const outputs = createOutputStream({ maxDocuments: 1, signal: controller.signal });
  outputs.push([doc('a')]);
  const held = outputs.ready();
  controller.abort();
  t.ok(await settledNow(held));
  t.equal(await outputs.next(), undefined);
  t.same(outputs.counts, { pushed: 1, taken: 0, dropped: 1 });
});

t.test('a spilled body is opened when taken: it stays readable after its file is removed; settled waits for the take', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quark-output-stream-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'body');
  writeFileSync(path, 'spilled body');
  const outputs = createOutputStream({ secrets: () => ['hunter22'] });
  outputs.push([{ properties: { note: 'pw hunter22', hunter22: 'x' }, body: { kind: 'file', path, size: 12 } }]);
  const settled = outputs.settled();
  t.notOk(await settledNow(settled), 'one document not yet taken');
  const taken = (await outputs.next())!;
  t.ok(await settledNow(settled), 'taken: its file may go');
  unlinkSync(path);
  const buffer = Buffer.alloc(12);
  await taken.file!.read(buffer, 0, 12, 0);
  await taken.file!.close();
  t.equal(buffer.toString(), 'spilled body', 'read from the open file');
  t.same(taken.properties, { note: 'pw [redacted]', '[redacted]': 'x' }, 'secret values scrubbed from names and values');
  t.equal(outputs.scrub('refused hunter22'), 'refused [redacted]');
  outputs.end();
  t.equal(await outputs.next(), undefined, 'ended: the reader is done');
});
