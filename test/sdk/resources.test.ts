// The check of a resource description (sdk/operations.ts resourceProblems), shared by the
// runtime's recovery and the kit's memoryResources.
import t from 'tap';
import { resourceProblems, maxResourceDataBytes } from '../../runtime/sdk/operations.js';
import { memoryResources } from '../../runtime/sdk/testing/index.js';

t.test('a description is refused by JSON pointer: kind, data shape, size, secrets', async (t) => {
  t.same(resourceProblems({ kind: 'multipart-upload', data: { bucket: 'b', key: 'k', uploadId: 'u' } }, ['s3cr3t-value']), []);
  t.same(resourceProblems({ kind: 'Multipart Upload', data: {} }, []).map((p) => p.path), ['/kind']);
  t.same(resourceProblems({ kind: 'x', data: ['a'] }, []).map((p) => p.path), ['/data']);
  t.same(resourceProblems(null, []).map((p) => p.path), ['']);
  t.match(resourceProblems({ kind: 'x', data: { blob: 'a'.repeat(maxResourceDataBytes) } }, []), [{ path: '/data', message: /at most 16384 bytes/ }]);
  t.match(resourceProblems({ kind: 'x', data: { token: 'the s3cr3t-value here' } }, ['s3cr3t-value']), [{ path: '/data', message: /holds a secret of the connection/ }]);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  t.match(resourceProblems({ kind: 'x', data: cyclic }, []), [{ path: '/data', message: /must be JSON/ }]);
});

t.test('memoryResources holds, releases, and refuses as the runtime does', async (t) => {
  const resources = memoryResources([], ['s3cr3t-value']);
  const held = await resources.hold({ kind: 'lock', data: { name: 'a' } });
  t.match(resources.held, [{ id: held.id, kind: 'lock', data: { name: 'a' }, released: false }]);
  await held.release();
  t.equal(resources.held[0]!.released, true);
  await t.rejects(resources.hold({ kind: 'lock', data: { password: 's3cr3t-value' } }), { code: 'QUARK_ERR_RESOURCE_INVALID', message: /\/data holds a secret/ });
  t.equal(resources.held.length, 1, 'nothing recorded for the refused one');
});
