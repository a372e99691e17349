// The container rule in a molecule: Test Connection is the owner's on every node and
// refused for anyone else on every node (a molecule has no tenants; a guest is the other
// caller there), before anything runs; it runs on the node that received the request.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fixturePlugins, tempDir, untilOutput } from '../helpers/quark.js';
import { moleculeSkip, startMolecule } from '../helpers/molecule.js';

t.test('three nodes: the owner may test a connection on each (run there), a guest is refused on each and nothing runs; no tenants', { skip: moleculeSkip }, async (t) => {
  const { nodes, ownerToken } = await startMolecule(t, 3, { config: () => ({ plugins: { paths: [join(fixturePlugins, 'counter-kit'), join(fixturePlugins, 'secret-echo')] } }) });
  const markers = tempDir(t);
  const config = (marker: string) => ({ username: 'ops', password: 'right-password', marker: join(markers, marker) });

  const guest = await nodes[0]!.api('POST', '/api/v1/accounts', ownerToken, { name: 'stranger-co', relation: 'guest' });
  t.equal(guest.status, 201, 'a guest made on the first node');
  const guestToken = (await nodes[0]!.api('POST', '/api/v1/tokens', ownerToken, { name: 'stranger', account: 'stranger-co' })).body.token as string;
  const tenant = await nodes[1]!.api('POST', '/api/v1/accounts', ownerToken, { name: 'tenant-co', relation: 'tenant' });
  t.match(tenant, { status: 409, body: { error: { code: 'QUARK_ERR_ACCOUNT_TENANTS_UNSUPPORTED' } } }, 'a molecule has no tenants, on any node');
  const saved = await nodes[2]!.api('POST', '/api/v1/connections', ownerToken, { name: 'echo', connector: 'secret-echo', config: config('saved') });
  t.equal(saved.status, 201);

  for (const [i, rt] of nodes.entries()) {
    const owner = await rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'secret-echo', config: config(`owner-${i}`) });
    t.match(owner, { status: 200, body: { status: 'ok' } }, `node ${i}: the owner's Test Connection runs`);
    t.ok(existsSync(join(markers, `owner-${i}`)), `node ${i}: the connector ran`);
    const ofSaved = await rt.api('POST', `/api/v1/connections/${saved.body.id}/test`, ownerToken, {});
    t.match(ofSaved, { status: 200, body: { status: 'ok' } }, `node ${i}: of the connection saved on another node too`);
    await untilOutput(rt, /test connection finished[\s\S]*test connection finished/);

    const refused = await rt.api('POST', '/api/v1/test-connection', guestToken, { connector: 'secret-echo', config: config(`guest-${i}`) });
    t.match(refused, { status: 403, body: { error: { code: 'QUARK_ERR_RUNTIME_NOT_ASSOCIATED' } } }, `node ${i}: the guest is refused`);
    const refusedSaved = await rt.api('POST', `/api/v1/connections/${saved.body.id}/test`, guestToken, {});
    t.equal(refusedSaved.status, 403, `node ${i}: also for a saved connection`);
    t.notOk(existsSync(join(markers, `guest-${i}`)), `node ${i}: nothing ran for the guest`);
    const info = await rt.api('GET', '/api/v1/runtime', guestToken);
    t.equal(info.body.testConnection.allowed, false, `node ${i}: the runtime says so to the guest`);
  }
  // each node ran the two tests it received, and only those
  const finished = nodes.map((rt) => (rt.output().match(/test connection finished/g) ?? []).length);
  t.same(finished, [2, 2, 2], 'every Test Connection ran on the node that received it');
});
