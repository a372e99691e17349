import t from 'tap';
import { readdirSync } from 'node:fs';
import { createOperations } from '../../runtime/connections/operations.js';
import { createLogger } from '../../runtime/core/logger.js';
import { tempDir } from '../helpers/quark.js';

const connector = { id: 'kit', entry: '/nowhere/index.js', secretPointers: [], localPaths: [], operations: [{ id: 'echo', parametersSchema: {}, validateParameters: () => [] }] };
const caller = { account: { id: 'acc_1', name: 'acme', relation: 'owner' }, tokenId: 'tok_1' } as never;

t.test('an operation run that fails with an error of no plugin removes its work folder', async (t) => {
  const workRoot = tempDir(t);
  const operations = createOperations({
    access: { requireMember: () => undefined } as never,
    connections: { resolve: () => ({ connector, config: {}, record: { id: 'con_1' } }) } as never,
    pool: { run: () => Promise.reject(new TypeError('a bug of the runtime')) } as never,
    logger: createLogger({ level: 'silent' }),
    runtime: {},
    workRoot,
    spillBytes: 1024,
    timeoutMs: 1000,
    // no resource is held: the task never reaches a worker
    recovery: { handlerFor: () => () => undefined, settle: () => undefined } as never,
  });
  await t.rejects(operations.run(caller, { connection: 'kit', operation: 'echo', documents: [{}] }), { message: 'a bug of the runtime' });
  t.same(readdirSync(workRoot), [], 'no work folder is left behind');
});
