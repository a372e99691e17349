/**
 * Writes that race are decided by the store, not by a read before the write: parallel
 * creates of one name get one success and 409s with the catalogued code, parallel
 * updates of one revision one success and a revision conflict, parallel deploys of one
 * process distinct versions, and parallel account adds of one name one account.
 */
import t from 'tap';
import { initHome, tempDir } from '../helpers/quark.js';
import { createRuntime } from '../../runtime/index.js';

async function runtimeFor(t: any, kind: 'atom' | 'cloud' = 'atom') {
  const { home, ownerToken } = await initHome(t, { kind });
  const runtime = await createRuntime({ home, logLevel: 'silent' });
  t.teardown(() => runtime.close());
  return { runtime, caller: await runtime.authenticate(ownerToken) };
}

const codes = (results: PromiseSettledResult<unknown>[]) =>
  results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as { code?: string }).code)).sort();

t.test('five creates of one connection name at once: one is created, four are refused with QUARK_ERR_CONNECTION_NAME_TAKEN (409)', async (t) => {
  const { runtime, caller } = await runtimeFor(t);
  const folder = tempDir(t, 'quark-files-');
  const create = () => runtime.connections.create(caller, { name: 'files', connector: 'local-files', config: { folder } });
  const results = await Promise.allSettled([create(), create(), create(), create(), create()]);
  t.same(codes(results), ['QUARK_ERR_CONNECTION_NAME_TAKEN', 'QUARK_ERR_CONNECTION_NAME_TAKEN', 'QUARK_ERR_CONNECTION_NAME_TAKEN', 'QUARK_ERR_CONNECTION_NAME_TAKEN', 'ok']);
  const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  t.match(refused.reason, { status: 409, message: 'you already have a connection named "files"', details: { problems: [{ path: '/name', message: 'is taken' }] } });
  t.equal((await runtime.connections.list(caller)).length, 1, 'one connection');
});

t.test('two updates of the same revision at once: one is saved, the other is QUARK_ERR_CONNECTION_REVISION_CONFLICT (409) and changes nothing', async (t) => {
  const { runtime, caller } = await runtimeFor(t);
  const folder = tempDir(t, 'quark-files-');
  const created = await runtime.connections.create(caller, { name: 'files', connector: 'local-files', config: { folder } });
  const update = (minFreeSpace: number) => runtime.connections.update(caller, created.id, { config: { folder, minFreeSpace } });
  const results = await Promise.allSettled([update(1), update(2)]);
  t.same(codes(results), ['QUARK_ERR_CONNECTION_REVISION_CONFLICT', 'ok']);
  const saved = results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ config: Record<string, unknown> }>;
  const now = await runtime.connections.get(caller, created.id);
  t.equal(now.revision, 2, 'one new revision');
  t.same(now.config.minFreeSpace, saved.value.config.minFreeSpace, 'the saved one is what is stored');
  t.match((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason, { status: 409, message: /was changed by someone else since it was read; read it again and retry/ });
});

t.test('ten deploys of one process at once get versions 1 to 10, none refused', async (t) => {
  const { runtime, caller } = await runtimeFor(t);
  const definition = { id: 'busy', name: 'busy', start: { kind: 'none', next: 'm' }, steps: [{ id: 'm', kind: 'map', expression: '1' }] };
  const views = await Promise.all(Array.from({ length: 10 }, () => runtime.deployments.deploy(caller, definition)));
  t.same(views.map((v) => v.version).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  t.equal((await runtime.deployments.get(caller, 'busy')).activeVersion, 10);
});

t.test('two adds of one account name at once: one account, and QUARK_ERR_ACCOUNT_EXISTS (409) for the other', async (t) => {
  const { runtime, caller } = await runtimeFor(t, 'cloud');
  const add = () => runtime.accounts.add(caller, { name: 'globex', relation: 'tenant' });
  t.same(codes(await Promise.allSettled([add(), add()])), ['QUARK_ERR_ACCOUNT_EXISTS', 'ok']);
  t.equal((await runtime.accounts.list(caller)).filter((a) => a.name === 'globex').length, 1);
});
