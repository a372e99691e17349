import t from 'tap';
import { readdirSync } from 'node:fs';
import { createOperations } from '../../runtime/connections/operations.js';
import { createLogger } from '../../runtime/core/logger.js';
import { tempDir } from '../helpers/quark.js';

const connector = { id: 'kit', entry: '/nowhere/index.js', secretPointers: [], localPaths: [], operations: [{ id: 'echo', parametersSchema: {}, validateParameters: () => [], localPaths: [] }] };
const caller = { account: { id: 'acc_1', name: 'acme', relation: 'owner' }, tokenId: 'tok_1' } as never;

/** The operations service over one connection of `connector`, a given pool and no held resources. */
function operationsOver(workRoot: string, of: unknown, pool: unknown, more: object = {}) {
  return createOperations({
    access: { requireMember: () => undefined } as never,
    connections: { resolve: () => ({ connector: of, config: {}, record: { id: 'con_1' } }) } as never,
    pool: pool as never,
    logger: createLogger({ level: 'silent' }),
    runtime: {},
    workRoot,
    spillBytes: 1024,
    timeoutMs: 1000,
    recovery: { handlerFor: () => () => undefined, settle: () => undefined } as never,
    ...more,
  });
}

t.test('an operation run that fails with an error of no plugin removes its work folder', async (t) => {
  const workRoot = tempDir(t);
  // no resource is held: the task never reaches a worker
  const operations = operationsOver(workRoot, connector, { run: () => Promise.reject(new TypeError('a bug of the runtime')) });
  await t.rejects(operations.run(caller, { connection: 'kit', operation: 'echo', documents: [{}] }), { message: 'a bug of the runtime' });
  t.same(readdirSync(workRoot), [], 'no work folder is left behind');
});

t.test('isolation process: a local-path parameter computed per document fails its documents; a literal one comes with the task', async (t) => {
  const workRoot = tempDir(t);
  const withPath = { ...connector, operations: [{ id: 'echo', parametersSchema: {}, validateParameters: () => [], localPaths: [{ pointer: '/path', write: false }] }] };
  const given: unknown[] = [];
  const operations = operationsOver(workRoot, withPath, { run: (_task: unknown, options: { folders: unknown }) => (given.push(options.folders), Promise.resolve({ ok: true, value: [{ status: 'success', documents: [] }], logs: [] })) }, { checkFolders: () => undefined });
  const prepared = await operations.prepare(caller, { connection: 'kit', operation: 'echo' });
  const documents = [{ properties: {}, body: { kind: 'inline' as const, bytes: new Uint8Array() } }];
  const computed = await operations.execute(prepared, documents, { path: { $expr: '$.folder' } }, { workDir: workRoot, dynamic: { process: {}, execution: {} as never } });
  t.match(computed, [{ status: 'failure', code: 'QUARK_ERR_CONNECTION_FOLDER_REFUSED', message: /\/parameters\/path .*computed per document/ }]);
  t.same(given, [], 'no task ran');
  await operations.execute(prepared, documents, { path: '/data/in/a.csv' }, { workDir: workRoot });
  t.same(given, [[{ path: '/data/in/a.csv', write: false, field: '/parameters/path' }]], 'the literal path is granted with its pointer');
});
