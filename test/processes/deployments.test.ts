/**
 * Unit tests of deployments with the embedded store: the parsed-definition cache stays
 * bounded (one per deployed process, whatever the number of versions that ran), and a
 * definition nested too deep is a deploy problem with its pointer.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../runtime/store/sqlite-store.js';
import { createAccessControl } from '../../runtime/accounts/access.js';
import { createDeployments } from '../../runtime/processes/deployments.js';
import { createSchemaRegistry, schemaIds } from '../../runtime/schema/index.js';
import { type QuarkError } from '../../runtime/core/errors.js';
import type { Caller } from '../../runtime/accounts/access.js';

async function setup(t: { teardown(fn: () => unknown): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'quark-deployments-'));
  const store = openSqliteStore(join(dir, 'quark.db'));
  t.teardown(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const account = { id: 'acc_owner0001', name: 'owner', relation: 'owner' as const, createdAt: new Date().toISOString() };
  await store.accounts.insert(account);
  const access = createAccessControl({ store, kind: 'atom', ownerId: account.id });
  const deployments = createDeployments({
    store,
    access,
    validateSchema: createSchemaRegistry().validator(schemaIds.process),
    operation: () => {
      throw new Error('no operations in these tests');
    },
    onChange: async () => {},
    maxNestingDepth: 64,
  });
  const caller: Caller = { account, tokenId: 'tok_test' };
  return { deployments, caller, store };
}

const definition = (id: string, version: number) => ({ id, name: id, start: { kind: 'none', next: 'm' }, steps: [{ id: 'm', kind: 'map', expression: `${version}` }] });

t.test('the definition cache keeps one parsed definition per process, not one per version', async (t) => {
  const { deployments, caller } = await setup(t);
  for (let version = 1; version <= 40; version++) {
    await deployments.deploy(caller, definition('busy', version));
    const active = await deployments.requireActive(caller.account.id, 'busy');
    t.equal(active.version, version);
    t.equal((active.definition.steps[0] as { expression: string }).expression, String(version), `version ${version} is the one that runs`);
  }
  t.equal(deployments.cachedDefinitions(), 1, '40 versions ran, one definition is kept');
  await deployments.deploy(caller, definition('other', 1));
  await deployments.requireActive(caller.account.id, 'other');
  t.equal(deployments.cachedDefinitions(), 2, 'one per process');
  await deployments.rollback(caller, 'busy', 3);
  t.equal(((await deployments.requireActive(caller.account.id, 'busy')).definition.steps[0] as { expression: string }).expression, '3', 'a rollback runs the earlier definition');
  t.equal(deployments.cachedDefinitions(), 2);
  await deployments.undeploy(caller, 'other');
  t.equal(await deployments.active(caller.account.id, 'other'), undefined);
  t.equal(deployments.cachedDefinitions(), 1, 'an undeployed process leaves the cache');
});

t.test('a definition nested deeper than limits.maxNestingDepth is a deploy problem with its pointer', async (t) => {
  const { deployments, caller } = await setup(t);
  let deep: unknown = 'x';
  for (let i = 0; i < 100; i++) deep = [deep];
  const input = { ...definition('deep', 1), properties: { 'odd/name': { default: deep } } };
  const error = (await deployments.deploy(caller, input).then(() => undefined, (e: unknown) => e)) as QuarkError;
  t.ok(error, 'refused');
  t.equal(error.code, 'QUARK_ERR_PROCESS_INVALID');
  const problem = error.details!.problems![0]!;
  t.ok(problem.path.startsWith('/properties/odd~1name/default/0/0/0'), 'the pointer escapes the name and leads into the value');
  t.equal(problem.path.split('/').length - 1, 64, 'it points at the 65th level (the root object is the first)');
  t.match(problem.message, /nests deeper than 64 levels/);
  t.same(await deployments.list(caller), [], 'nothing was deployed');
});
