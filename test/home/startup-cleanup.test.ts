import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initHome } from '../helpers/quark.js';
import { createRuntime } from '../../runtime/index.js';

// A start that fails part-way closes what it opened, the home's lock first among them: in
// the same process a later start would otherwise be refused with QUARK_ERR_HOME_LOCKED (an
// exclusive SQLite lock is held per connection, not per process).
t.test('a start that fails after taking the home lock releases it: the next start succeeds', async (t) => {
  const { home } = await initHome(t);
  const store = join(home, 'quark.db');
  const good = readFileSync(store);
  writeFileSync(store, Buffer.alloc(good.length, 'not a database '));
  await t.rejects(createRuntime({ home, logLevel: 'silent' }), { code: 'QUARK_ERR_HOME_STORE_UNREADABLE' }, 'a damaged store stops the start, with its code');
  writeFileSync(store, good);
  const runtime = await createRuntime({ home, logLevel: 'silent' });
  t.teardown(() => runtime.close());
  t.ok(runtime.ready(), 'the home was not left locked by the failed start');
});
