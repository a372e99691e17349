/** Unit tests of bodies across the thread boundary (engine/bodies.ts). */
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { inlineRef, packBodies, refOf, textSlices } from '../../runtime/engine/bodies.js';
import type { DocumentRef } from '../../runtime/engine/messages.js';
import type { PositionalBody } from '../../runtime/sdk/index.js';

const bytes = (ref: DocumentRef['body']) => (ref.kind === 'inline' ? Buffer.from(ref.bytes).toString('utf8') : readFileSync(ref.path, 'utf8'));

t.test('packBodies copies inline bodies into one buffer and leaves the originals alone', async (t) => {
  const slab = Buffer.from('xxHELLOyyWORLDzz');
  const documents: DocumentRef[] = [
    { properties: { n: '1' }, body: inlineRef(slab.subarray(2, 7)) },
    { properties: {}, body: { kind: 'file', path: '/tmp/somewhere', size: 9 } },
    { properties: {}, body: inlineRef(slab.subarray(9, 14)), origins: [3] },
  ];
  const { documents: packed, buffer } = packBodies(documents);
  t.equal(buffer.byteLength, 10, 'only the inline bytes, not the whole slab');
  t.same(packed.map((d) => (d.body.kind === 'inline' ? bytes(d.body) : d.body.path)), ['HELLO', '/tmp/somewhere', 'WORLD']);
  t.same(packed[2]!.origins, [3]);
  t.equal(bytes(documents[0]!.body), 'HELLO', 'the original still reads');
  t.not((packed[0]!.body as { bytes: Uint8Array }).bytes.buffer, slab.buffer);
});

t.test('refOf keeps small bodies in memory and spills large ones to the work directory', async (t) => {
  const workDir = mkdtempSync(join(tmpdir(), 'quark-bodies-'));
  t.teardown(() => rmSync(workDir, { recursive: true, force: true }));
  const signal = new AbortController().signal;
  const small = await refOf('small', join(workDir, 'exe'), 16, signal);
  t.equal(small.kind, 'inline');
  const large = await refOf('0123456789abcdefXYZ', join(workDir, 'exe'), 16, signal);
  t.equal(large.kind, 'file', 'past spillBytes: a file');
  t.equal(bytes(large), '0123456789abcdefXYZ');
  let seen = 0;
  const streamed = await refOf(Readable.from([Buffer.alloc(10, 1), Buffer.alloc(10, 2)]), join(workDir, 'exe'), 16, signal, (done) => (seen = done));
  t.equal(streamed.kind, 'file');
  t.equal(seen, 20, 'progress counts every byte');
  t.equal((await refOf(undefined, workDir, 16, signal)).kind, 'inline', 'no body: the empty body');
});

t.test('a large text spills in slices, none cutting a character in two', async (t) => {
  const workDir = mkdtempSync(join(tmpdir(), 'quark-bodies-'));
  t.teardown(() => rmSync(workDir, { recursive: true, force: true }));
  // a surrogate pair (😀) straddles each 1 Mi-character boundary, and multi-byte text all around
  const text = ('é'.repeat(1024 * 1024 - 1) + '😀').repeat(3) + 'end';
  const slices = [...textSlices(text)];
  t.ok(slices.length > 3, 'in slices');
  t.equal(Buffer.concat(slices).toString('utf8'), text, 'the bytes decode to the same text');
  const ref = await refOf(text, workDir, 1024, new AbortController().signal);
  t.equal(ref.kind, 'file');
  t.equal(ref.kind === 'file' && ref.size, Buffer.byteLength(text));
  t.equal(bytes(ref), text);
  t.same(await refOf('small é', workDir, 1024, new AbortController().signal), inlineRef('small é'), 'a small text stays in memory');
});

t.test('a PositionalBody writes its bytes at their offsets, in any order, into memory or the spill file', async (t) => {
  const workDir = mkdtempSync(join(tmpdir(), 'quark-bodies-'));
  t.teardown(() => rmSync(workDir, { recursive: true, force: true }));
  const signal = new AbortController().signal;
  const text = 'the quick brown fox jumps over the lazy dog';
  // three slices written back to front, from one buffer reused after each write
  const reused = Buffer.alloc(16);
  const body = (size = text.length, extra?: [number, number]): PositionalBody => ({
    size,
    async writeTo(sink) {
      for (const start of [32, 16, 0]) {
        const n = reused.write(text.slice(start, start + 16));
        await sink.write(reused.subarray(0, n), start);
        reused.fill(0x2a);
      }
      if (extra) await sink.write(Buffer.from(text.slice(extra[0], extra[1])), extra[0]);
    },
  });
  let seen = 0;
  const spilled = await refOf(body(), join(workDir, 'exe'), 16, signal, (done) => (seen = done));
  t.equal(spilled.kind, 'file', 'past spillBytes: straight into a file');
  t.equal(bytes(spilled), text);
  t.equal(seen, text.length, 'progress counts every byte written');
  const inline = await refOf(body(), join(workDir, 'exe'), 1024, signal);
  t.equal(inline.kind, 'inline', 'up to spillBytes: in memory');
  t.equal(bytes(inline), text);
  await t.rejects(refOf(body(text.length + 1), join(workDir, 'exe'), 16, signal), /a positional body of 44 bytes wrote 43/, 'a byte short fails the body');
  await t.rejects(refOf(body(text.length, [40, 43]), join(workDir, 'exe'), 16, signal), /wrote 46/, 'a byte written twice fails it');
  await t.rejects(refOf(body(40), join(workDir, 'exe'), 16, signal), /a positional body of 40 bytes got a write of 11 bytes at 32/, 'a write past the end fails it');
  t.same(readdirSync(join(workDir, 'exe')).length, 1, 'a failed body leaves no file behind');
});
