import t from 'tap';
import { cli, initHome, startRuntime } from '../helpers/quark.js';

t.test('tokens: 401 without or with a bad token, 403 for owner-only actions, revocation', async (t) => {
  const { home, ownerToken } = await initHome(t, { kind: 'cloud' });
  const rt = await startRuntime(t, home);

  const none = await rt.api('GET', '/api/v1/whoami');
  t.equal(none.status, 401);
  t.equal(none.body.error.code, 'QUARK_ERR_AUTH_MISSING_TOKEN');
  const bad = await rt.api('GET', '/api/v1/whoami', 'qk_not-a-real-token-at-all-xxxxxxxx');
  t.equal(bad.status, 401);
  t.equal(bad.body.error.code, 'QUARK_ERR_AUTH_INVALID_TOKEN');
  const malformed = await fetch(`${rt.url}/api/v1/whoami`, { headers: { authorization: 'Basic abc' } });
  t.equal(malformed.status, 401);

  t.equal((await rt.api('GET', '/healthz')).status, 200, 'health needs no token');
  t.equal((await rt.api('GET', '/readyz')).status, 200);
  const metrics = await rt.api('GET', '/metrics');
  t.equal(metrics.status, 200);
  t.match(metrics.body, /quark_http_requests_total\{method="GET",route="\/api\/v1\/whoami",status="401"\} 3/);

  const cliNoToken = await cli(['whoami'], { QUARK_URL: rt.url });
  t.equal(cliNoToken.code, 4, 'not logged in is an authentication exit code');
  t.match(cliNoToken.stderr, /QUARK_ERR_CLI_NOT_LOGGED_IN/);
  const cliBad = await cli(['whoami'], rt.as('qk_wrong-token-wrong-token-wrong-token'));
  t.equal(cliBad.code, 4);
  t.match(cliBad.stderr, /QUARK_ERR_AUTH_INVALID_TOKEN/);

  // tenant accounts and their tokens
  await rt.api('POST', '/api/v1/accounts', ownerToken, { name: 'tenant-a', relation: 'tenant' });
  const created = await cli(['--json', 'tokens', 'create', 'ci', '--account', 'tenant-a'], rt.as(ownerToken));
  t.equal(created.code, 0, created.stderr);
  const tenantToken = created.json().token;
  t.match(tenantToken, /^qk_/);

  const forbidden = await rt.api('POST', '/api/v1/accounts', tenantToken, { name: 'evil', relation: 'tenant' });
  t.equal(forbidden.status, 403);
  t.equal(forbidden.body.error.code, 'QUARK_ERR_AUTH_FORBIDDEN');
  const forOthers = await cli(['tokens', 'create', 'x', '--account', 'acme'], rt.as(tenantToken));
  t.equal(forOthers.code, 5, 'forbidden has its own exit code');

  const tenantList = await rt.api('GET', '/api/v1/tokens', tenantToken);
  t.equal(tenantList.body.tokens.length, 1, 'a tenant sees only its own tokens');
  t.notMatch(JSON.stringify(tenantList.body), /hash|qk_/, 'listed tokens show neither the token nor its hash');

  const revoke = await cli(['tokens', 'revoke', created.json().id], rt.as(ownerToken));
  t.equal(revoke.code, 0, revoke.stderr);
  const afterRevoke = await rt.api('GET', '/api/v1/whoami', tenantToken);
  t.equal(afterRevoke.status, 401, 'a revoked token no longer works');

  const ownerTokens = await rt.api('GET', '/api/v1/tokens', ownerToken);
  const ownerTokenId = ownerTokens.body.tokens.find((tk: any) => tk.name.startsWith('owner')).id;
  const last = await rt.api('DELETE', `/api/v1/tokens/${ownerTokenId}`, ownerToken);
  t.equal(last.status, 409);
  t.equal(last.body.error.code, 'QUARK_ERR_TOKEN_LAST_OWNER');

  const notFound = await rt.api('GET', '/api/v1/nothing-here', ownerToken);
  t.equal(notFound.status, 404);
  t.equal(notFound.body.error.code, 'QUARK_ERR_API_ROUTE_NOT_FOUND');
  const badBody = await rt.api('POST', '/api/v1/accounts', ownerToken, { name: '', relation: 'king' });
  t.equal(badBody.status, 400);
  t.equal(badBody.body.error.code, 'QUARK_ERR_API_INVALID_REQUEST');
  t.same([...new Set(badBody.body.error.details.problems.map((p: any) => p.path))].sort(), ['/body/name', '/body/relation']);
  const badJson = await fetch(`${rt.url}/api/v1/accounts`, { method: 'POST', headers: { authorization: `Bearer ${ownerToken}`, 'content-type': 'application/json' }, body: '{"name":' });
  t.equal(badJson.status, 400);
  t.equal(((await badJson.json()) as any).error.code, 'QUARK_ERR_API_INVALID_REQUEST');
});

t.test('login saves a profile readable only by its owner; QUARK_URL/QUARK_TOKEN override it', async (t) => {
  const { home, ownerToken } = await initHome(t);
  const rt = await startRuntime(t, home);
  const { tempDir } = await import('../helpers/quark.js');
  const { statSync, readFileSync } = await import('node:fs');
  const profile = `${tempDir(t)}/profile.json`;
  const bad = await cli(['login', '--url', rt.url, '--token', 'qk_bad-bad-bad-bad-bad-bad-bad-bad'], { QUARK_PROFILE: profile });
  t.equal(bad.code, 4, 'a bad token is not saved');
  const login = await cli(['login', '--url', rt.url, '--token-stdin'], { QUARK_PROFILE: profile }, ownerToken + '\n');
  t.equal(login.code, 0, login.stderr);
  t.equal(statSync(profile).mode & 0o777, 0o600);
  t.equal(JSON.parse(readFileSync(profile, 'utf8')).url, rt.url);
  const who = await cli(['--json', 'whoami'], { QUARK_PROFILE: profile });
  t.equal(who.json().account.name, 'acme');
  const overridden = await cli(['whoami'], { QUARK_PROFILE: profile, QUARK_TOKEN: 'qk_override-override-override-xx' });
  t.equal(overridden.code, 4, 'QUARK_TOKEN wins over the saved token');
});
