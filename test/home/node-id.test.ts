import t from 'tap';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { homePaths, nodeIdOf } from '../../runtime/home/index.js';
import { tempDir } from '../helpers/quark.js';

t.test('the node id is made once in <home>/node-id, owner-only, and is the same on every start', async (t) => {
  const paths = homePaths(tempDir(t, 'quark-home-'));
  const first = nodeIdOf(paths);
  t.match(first, /^node_[A-Za-z0-9_-]+$/);
  t.equal(statSync(paths.nodeId).mode & 0o777, 0o600);
  t.equal(nodeIdOf(paths), first, 'read back, not made again');
  t.equal(readFileSync(paths.nodeId, 'utf8').trim(), first);
});

t.test('a node-id file that does not hold one is refused, naming the file', async (t) => {
  const paths = homePaths(tempDir(t, 'quark-home-'));
  writeFileSync(paths.nodeId, 'not a node id\n', { mode: 0o600 });
  t.throws(() => nodeIdOf(paths), { code: 'QUARK_ERR_CONFIG_INVALID', message: `${paths.nodeId} does not hold a node id (node_…); remove it to make a new one` });
});
