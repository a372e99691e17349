// Body.read(target, position), as a plugin gets it: the runtime's bodies in memory and
// spilled to a file (engine/bodies.ts), and the kit's memoryBody.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bodyOf, inlineRef } from '../../runtime/engine/bodies.js';
import { memoryBody } from '../../runtime/sdk/testing/index.js';
import type { Body } from '../../runtime/sdk/index.js';
import { tempDir } from '../helpers/quark.js';

const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

function bodies(t: { teardown(fn: () => unknown): void }): [string, Body][] {
  const file = join(tempDir(t), 'body.bin');
  writeFileSync(file, bytes);
  return [
    ['in memory', bodyOf(inlineRef(bytes))],
    ['spilled to a file', bodyOf({ kind: 'file', path: file, size: bytes.length })],
    ['the kit\'s memoryBody', memoryBody(bytes)],
  ];
}

t.test('read copies from a position into the caller\'s buffer', async (t) => {
  for (const [name, body] of bodies(t)) {
    t.test(name, async (t) => {
      const target = Buffer.alloc(300);
      t.equal(await body.read(target, 0), 300, 'a full buffer');
      t.same(target, bytes.subarray(0, 300));
      t.equal(await body.read(target, 600), 300, 'from the middle');
      t.same(target, bytes.subarray(600, 900));
      t.equal(await body.read(target, 900), 100, 'short only at the end');
      t.same(target.subarray(0, 100), bytes.subarray(900));
      t.equal(await body.read(target, 1000), 0, 'nothing at the end');
      t.equal(await body.read(target, 5000), 0, 'nothing past it');
      const view = Buffer.alloc(50);
      t.equal(await body.read(view.subarray(10, 20), 995), 5, 'into a view, at its offset');
      t.same(view.subarray(10, 15), bytes.subarray(995));
      await t.rejects(body.read(target, -1), RangeError, 'a negative position is refused');
      await t.rejects(body.read(target, 1.5), RangeError, 'so is a fraction');
      t.same(await body.buffer(), bytes, 'the body is unchanged');
    });
  }
});
