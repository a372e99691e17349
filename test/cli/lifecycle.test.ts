import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, fixturePlugins, initHome, startRuntime, tempDir, untilOutput } from '../helpers/quark.js';

t.test('init creates a home bound to its owner, with an owner-only master key', async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  const init = await cli(['init', '--home', home, '--name', 'edge-1', '--kind', 'molecule', '--owner', 'acme', '--proxy', 'proxy.internal:3128']);
  t.equal(init.code, 0, init.stderr);
  const token = /^\s+(qk_\S+)$/m.exec(init.stdout)?.[1];
  t.ok(token, 'the owner token is printed');
  t.match(init.stdout, /quark login --url http:\/\/127\.0\.0\.1:7420 --token qk_/);
  const config = JSON.parse(readFileSync(join(home, 'config.json'), 'utf8'));
  t.match(config, { name: 'edge-1', kind: 'molecule', owner: { name: 'acme' }, listen: { host: '127.0.0.1', port: 7420 }, proxy: { host: 'proxy.internal', port: 3128 } });
  t.equal(config.limits.testConnectionTimeoutMs, 30000, 'limits get their documented defaults');
  t.equal(statSync(join(home, 'master.key')).mode & 0o777, 0o600);
  t.equal(statSync(home).mode & 0o777, 0o700);
  t.notOk(readFileSync(join(home, 'quark.db')).includes(Buffer.from(token!)), 'the token is stored hashed only');

  const again = await cli(['init', '--home', home]);
  t.equal(again.code, 8, 'a second init on the same home is a conflict');
  t.match(again.stderr, /QUARK_ERR_HOME_EXISTS/);
  t.notMatch(again.stdout + again.stderr, /qk_/, 'and prints no token');

  const badKind = await cli(['init', '--home', join(dir, 'other'), '--kind', 'galaxy']);
  t.equal(badKind.code, 2);
  t.notOk(existsSync(join(dir, 'other')));
});

t.test('start refuses a broken or unsafe home with the offending field', async (t) => {
  const { home } = await initHome(t);
  const file = join(home, 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8'));
  writeFileSync(file, JSON.stringify({ ...config, kind: 'nebula', limits: { ...config.limits, workerThreads: 0 } }));
  const bad = await cli(['start', '--home', home, '--port', '0']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /QUARK_ERR_CONFIG_INVALID/);
  t.match(bad.stderr, /\/kind: "kind" must be one of: "atom", "molecule", "cloud"/);
  t.match(bad.stderr, /\/limits\/workerThreads: "[^"]+" must be at least 1/);
  writeFileSync(file, JSON.stringify(config));

  chmodSync(join(home, 'master.key'), 0o644);
  const unsafe = await cli(['start', '--home', home, '--port', '0']);
  t.not(unsafe.code, 0);
  t.match(unsafe.stderr, /QUARK_ERR_HOME_UNSAFE/);
  chmodSync(join(home, 'master.key'), 0o600);

  const missing = await cli(['start', '--home', join(home, 'nope'), '--port', '0']);
  t.equal(missing.code, 7);
  t.match(missing.stderr, /QUARK_ERR_HOME_NOT_FOUND.*quark init/);

  const exposed = await cli(['start', '--home', home, '--port', '0', '--host', '0.0.0.0']);
  t.equal(exposed.code, 2, 'a non-loopback address without TLS is refused before listening');
  t.match(exposed.stderr, /QUARK_ERR_CONFIG_INSECURE_LISTEN/);
  t.match(exposed.stderr, /\/listen\/host/);
});

t.test('start --init-if-missing creates a home, prints where and how to log in', async (t) => {
  const home = join(tempDir(t), 'fresh');
  const rt = await startRuntime(t, home, ['--init-if-missing']);
  const out = rt.output();
  t.match(out, new RegExp(`home: ${home}`));
  const token = /^\s+(qk_\S+)$/m.exec(out)?.[1];
  t.ok(token);
  t.match(out, /Log in: quark login --url http:\/\/127\.0\.0\.1:\d+ --token qk_/);
  t.equal((await rt.api('GET', '/api/v1/whoami', token)).status, 200);
  t.equal(await rt.stop('SIGINT'), 0, 'SIGINT stops it cleanly');
  t.match(rt.output(), /runtime stopped/);
});

t.test('SIGTERM lets a Test Connection in flight finish within the grace period', async (t) => {
  const { home, ownerToken } = await initHome(t, { config: { plugins: { paths: [join(fixturePlugins, 'secret-echo')] }, limits: { shutdownGraceMs: 60_000 } } });
  const rt = await startRuntime(t, home);
  const inFlight = rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'secret-echo', config: { username: 'u', password: 'right-password', delayMs: 5000 } });
  await untilOutput(rt, /test connection starting/);
  const exit = rt.stop('SIGTERM');
  const result = await inFlight;
  t.equal(result.status, 200, 'the request in flight was answered');
  t.equal(result.body.status, 'ok');
  t.equal(await exit, 0);
  t.match(rt.output(), /shutting down: finishing work in flight/);
});

t.test('TLS: a configured certificate serves HTTPS', { skip: !existsSync('/usr/bin/openssl') && 'openssl is not installed' }, async (t) => {
  const { home, ownerToken } = await initHome(t);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(home, 'tls.key'), '-out', join(home, 'tls.crt'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const file = join(home, 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8'));
  config.listen.tls = { cert: 'tls.crt', key: 'tls.key' };
  writeFileSync(file, JSON.stringify(config));
  const rt = await startRuntime(t, home);
  t.match(rt.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const { request } = await import('undici');
  const { Agent } = await import('undici');
  const response = await request(`${rt.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${ownerToken}` }, dispatcher: new Agent({ connect: { ca: readFileSync(join(home, 'tls.crt')) } }) });
  t.equal(response.statusCode, 200);
  t.equal(((await response.body.json()) as any).account.name, 'acme');
});
