import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cli, fixturePlugins, initHome, startRuntime, tempDir } from '../helpers/quark.js';

const kinds = ['atom', 'molecule', 'cloud'] as const;

for (const kind of kinds) {
  t.test(`container rule on a ${kind} runtime`, async (t) => {
    const { home, ownerToken, ownerId } = await initHome(t, { kind, ownerName: 'acme-owner', config: { plugins: { paths: [join(fixturePlugins, 'secret-echo')] } } });
    const rt = await startRuntime(t, home);
    const markers = tempDir(t);
    const config = (marker: string) => ({ username: 'ops', password: 'right-password', marker: join(markers, marker) });

    // a guest account: known to the runtime, not associated with it (possible on every kind)
    const guest = await rt.api('POST', '/api/v1/accounts', ownerToken, { name: 'stranger-co', relation: 'guest' });
    t.equal(guest.status, 201);
    const guestToken = (await rt.api('POST', '/api/v1/tokens', ownerToken, { name: 'stranger', account: 'stranger-co' })).body.token;

    const refusedAs: [string, string][] = [['guest', guestToken]];
    const tenant = await rt.api('POST', '/api/v1/accounts', ownerToken, { name: 'tenant-co', relation: 'tenant' });
    if (kind === 'cloud') {
      t.equal(tenant.status, 201, 'a cloud runtime attaches tenants');
      const tenantToken = (await rt.api('POST', '/api/v1/tokens', ownerToken, { name: 'tenant', account: 'tenant-co' })).body.token;
      refusedAs.push(['tenant', tenantToken]);
    } else {
      t.equal(tenant.status, 409, `a ${kind} has no tenants`);
      t.equal(tenant.body.error.code, 'QUARK_ERR_ACCOUNT_TENANTS_UNSUPPORTED');
    }

    t.test('the owner may run Test Connection (API and CLI)', async (t) => {
      const result = await rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'secret-echo', config: config('owner-api') });
      t.equal(result.status, 200);
      t.equal(result.body.status, 'ok');
      t.ok(existsSync(join(markers, 'owner-api')), 'the connector ran');
      const who = await cli(['--json', 'whoami'], rt.as(ownerToken));
      t.equal(who.json().associated, true);
      t.equal(who.json().account.id, ownerId);
      const run = await cli(['test-connection', '--connector', 'secret-echo', '--set', 'username=ops', '--set', 'password=right-password', '--set', `marker=${join(markers, 'owner-cli')}`], rt.as(ownerToken));
      t.equal(run.code, 0, run.stderr);
      t.match(run.stdout, /Test Connection OK/);
      t.ok(existsSync(join(markers, 'owner-cli')));
    });

    for (const [who, token] of refusedAs) {
      t.test(`a ${who} is refused and nothing runs`, async (t) => {
        const api = await rt.api('POST', '/api/v1/test-connection', token, { connector: 'secret-echo', config: config(`${who}-api`) });
        t.equal(api.status, 403);
        t.equal(api.body.error.code, 'QUARK_ERR_RUNTIME_NOT_ASSOCIATED');
        t.match(api.body.error.message, /not associated with your account/);
        t.notMatch(JSON.stringify(api.body), /acme-owner/, 'the owner is not named');
        t.notMatch(JSON.stringify(api.body), new RegExp(ownerId), 'the owner id is not revealed');
        t.notOk(existsSync(join(markers, `${who}-api`)), 'no connector code ran');

        // refused before the request is even looked at: a malformed body still gets the 403
        const garbage = await rt.api('POST', '/api/v1/test-connection', token, { nonsense: true });
        t.equal(garbage.status, 403);
        t.equal(garbage.body.error.code, 'QUARK_ERR_RUNTIME_NOT_ASSOCIATED');

        const run = await cli(['test-connection', '--connector', 'secret-echo', '--set', 'username=ops', '--set', 'password=right-password', '--set', `marker=${join(markers, `${who}-cli`)}`], rt.as(token));
        t.equal(run.code, 6, 'the CLI exits with the not-associated code');
        t.match(run.stderr, /QUARK_ERR_RUNTIME_NOT_ASSOCIATED/);
        t.notOk(existsSync(join(markers, `${who}-cli`)));

        const who_ = await cli(['--json', 'whoami'], rt.as(token));
        t.equal(who_.json().associated, false);
        const info = await rt.api('GET', '/api/v1/runtime', token);
        t.equal(info.body.testConnection.allowed, false);
        t.equal(info.body.owner, undefined, 'the owner is shown only to the owner');
      });
    }

    if (kind === 'cloud') {
      t.test('a tenant keeps its own connections, and cannot test even those', async (t) => {
        const tenantToken = refusedAs.find(([w]) => w === 'tenant')![1];
        const created = await rt.api('POST', '/api/v1/connections', tenantToken, { name: 'mine', connector: 'secret-echo', config: config('tenant-saved') });
        t.equal(created.status, 201);
        const owners = await rt.api('GET', '/api/v1/connections', ownerToken);
        t.same(owners.body.connections, [], 'the owner does not see the tenant\'s connection');
        const test = await rt.api('POST', `/api/v1/connections/${created.body.id}/test`, tenantToken, {});
        t.equal(test.status, 403);
        t.equal(test.body.error.code, 'QUARK_ERR_RUNTIME_NOT_ASSOCIATED');
        t.notOk(existsSync(join(markers, 'tenant-saved')));
        const cliRun = await cli(['test-connection', 'mine'], rt.as(tenantToken));
        t.equal(cliRun.code, 6);
      });
    } else {
      t.test('a guest may not manage connections', async (t) => {
        const created = await rt.api('POST', '/api/v1/connections', guestToken, { name: 'x', connector: 'secret-echo', config: config('guest-saved') });
        t.equal(created.status, 403);
        t.equal(created.body.error.code, 'QUARK_ERR_AUTH_FORBIDDEN');
      });
    }

    t.test('refusals are counted in /metrics', async (t) => {
      const metrics = await rt.api('GET', '/metrics');
      t.match(metrics.body, /quark_test_connection_total\{connector="[^"]*",outcome="refused"\} [1-9]/);
    });
  });
}
