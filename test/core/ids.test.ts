import t from 'tap';
import { newId } from '../../runtime/core/ids.js';

t.test('newId: the prefix, then 16 URL-safe characters; 10,000 ids (ids from many refills of the random pool) all differ', async (t) => {
  const ids = Array.from({ length: 10_000 }, () => newId('exe'));
  t.same(ids.filter((id) => !/^exe_[A-Za-z0-9_-]{16}$/.test(id)), [], 'every id is the prefix and 16 base64url characters');
  t.equal(new Set(ids).size, ids.length, 'no id repeats');
});
