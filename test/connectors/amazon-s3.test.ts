import t from 'tap';
import { once } from 'node:events';
import { createServer } from 'node:net';
import S3rver from 's3rver';
import { Server as ProxyServer } from 'proxy-chain';
import { initHome, startRuntime, tempDir } from '../helpers/quark.js';

type Checks = { id: string; status: string; message: string; code?: string }[];
const byId = (checks: Checks) => Object.fromEntries(checks.map((c) => [c.id, c]));

async function startS3rver(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: tempDir(t, 'quark-s3rver-'), configureBuckets: [{ name: 'quark-test', configs: [] }] });
  const { port } = (await server.run()) as { port: number };
  t.teardown(() => server.close());
  return `http://127.0.0.1:${port}`;
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

const s3Config = (endpoint: string, extra: Record<string, unknown> = {}) => ({
  awsAccessKey: 'S3RVER',
  awsSecretKey: 'S3RVER',
  region: 'us-east-1',
  bucket: 'quark-test',
  endpoint,
  forcePathStyle: true,
  ...extra,
});

t.test('Amazon S3 against the embedded s3rver', async (t) => {
  const endpoint = await startS3rver(t);
  const { home, ownerToken } = await initHome(t);
  const rt = await startRuntime(t, home);
  const test = (config: Record<string, unknown>) => rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'amazon-s3', config });

  t.test('the connection schema has the documented fields, in order, with the secret marked', async (t) => {
    const { body } = await rt.api('GET', '/api/v1/connectors/amazon-s3', ownerToken);
    const fields = Object.entries(body.connectionSchema.properties as Record<string, any>).sort(([, a], [, b]) => a['x-order'] - b['x-order']).map(([, f]) => f.title);
    t.same(fields, ['AWS access key', 'AWS secret key', 'AWS region', 'Amazon S3 bucket', 'Multipart threshold', 'HTTP proxy user', 'HTTP proxy password', 'Endpoint URL', 'Path-style addressing']);
    t.same(body.secretFields, ['/awsSecretKey', '/proxyPassword']);
    t.equal(body.connectionSchema.properties.multipartThresholdMb.default, 100);
    t.equal(body.connectionSchema.properties.multipartThresholdMb['x-unit'], 'MB');
    t.match(body.connectionSchema.properties.region['x-enum-labels']['eu-west-1'], /Europe \(Ireland\)/);
  });

  t.test('a good configuration passes every check', async (t) => {
    const { body } = await test(s3Config(endpoint));
    t.equal(body.status, 'ok');
    t.same(body.checks.map((c: any) => [c.id, c.status]), [['endpoint', 'ok'], ['credentials', 'ok'], ['bucket', 'ok']]);
  });

  t.test('a missing bucket is a warning that names the bucket', async (t) => {
    const { body } = await test(s3Config(endpoint, { bucket: 'no-such-bucket' }));
    t.equal(body.status, 'warning');
    const checks = byId(body.checks);
    t.equal(checks.credentials!.status, 'ok', 'the keys still pass');
    t.equal(checks.bucket!.code, 'NoSuchBucket');
    t.match(checks.bucket!.message, /"no-such-bucket" does not exist/);
  });

  t.test('an unreachable endpoint fails the endpoint check and skips the rest', async (t) => {
    const { body } = await test(s3Config(`http://127.0.0.1:${await freePort()}`));
    t.equal(body.status, 'failed');
    const checks = byId(body.checks);
    t.equal(checks.endpoint!.code, 'ECONNREFUSED');
    t.match(checks.endpoint!.message, /cannot connect to http:\/\/127\.0\.0\.1:\d+/);
    t.equal(checks.credentials!.status, 'skipped');
  });

  t.test('a configuration error is reported by field before anything is contacted', async (t) => {
    const r = await test({ awsAccessKey: 'x', region: 'mars-1', bucket: 'Bad_Bucket', multipartThresholdMb: 1 });
    t.equal(r.status, 400);
    t.same(r.body.error.details.problems.map((p: any) => p.path).sort(), ['/awsAccessKey', '/awsSecretKey', '/bucket', '/multipartThresholdMb', '/region']);
  });
});

t.test('Amazon S3 through the runtime\'s authenticating HTTP proxy', async (t) => {
  const endpoint = await startS3rver(t);
  let tunnels = 0;
  const proxy = new ProxyServer({
    port: 0,
    host: '127.0.0.1',
    prepareRequestFunction: ({ username, password }) => {
      if (username !== 'proxy-user' || password !== 'proxy-Pa55') return { requestAuthentication: true, failMsg: 'bad proxy credentials' };
      tunnels++;
      return {};
    },
  });
  await proxy.listen();
  t.teardown(() => proxy.close(true));
  const { home, ownerToken } = await initHome(t, { config: { proxy: { host: '127.0.0.1', port: proxy.port } } });
  const rt = await startRuntime(t, home);
  const test = (config: Record<string, unknown>) => rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'amazon-s3', config });

  const good = await test(s3Config(endpoint, { proxyUser: 'proxy-user', proxyPassword: 'proxy-Pa55' }));
  t.equal(good.body.status, 'ok', JSON.stringify(good.body.checks));
  t.equal(byId(good.body.checks).proxy!.status, 'ok');
  t.ok(tunnels > 0, 'the traffic went through the proxy');

  const before = tunnels;
  const wrong = await test(s3Config(endpoint, { proxyUser: 'proxy-user', proxyPassword: 'not-the-password' }));
  t.equal(wrong.body.status, 'failed');
  const checks = byId(wrong.body.checks);
  t.equal(checks.proxy!.code, 'ProxyAuthenticationRequired', 'a 407 is a proxy authentication failure, not a cancel');
  t.match(checks.proxy!.message, /refused the credentials \(HTTP 407/);
  t.equal(checks.credentials!.status, 'skipped');
  t.equal(tunnels, before, 'nothing passed the proxy');
  t.notMatch(JSON.stringify(wrong.body), /not-the-password/);

  const anonymous = await test(s3Config(endpoint));
  t.equal(byId(anonymous.body.checks).proxy!.code, 'ProxyAuthenticationRequired', 'no proxy credentials at all: also 407');
  t.notMatch(rt.output(), /proxy-Pa55|not-the-password/, 'proxy passwords never reach the log');
});

t.test('Amazon S3 with the runtime\'s proxy down', async (t) => {
  const endpoint = await startS3rver(t);
  const { home, ownerToken } = await initHome(t, { config: { proxy: { host: '127.0.0.1', port: await freePort() } } });
  const rt = await startRuntime(t, home);
  const { body } = await rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'amazon-s3', config: s3Config(endpoint) });
  t.equal(body.status, 'failed');
  t.equal(byId(body.checks).proxy!.code, 'ECONNREFUSED');
  t.match(byId(body.checks).proxy!.message, /cannot connect to the runtime's HTTP proxy/);
});

t.test('Amazon S3 against an endpoint that accepts connections and never answers', async (t) => {
  const silent = createServer(() => undefined).listen(0, '127.0.0.1');
  await once(silent, 'listening');
  t.teardown(() => {
    silent.close();
  });
  const sockets = new Set<import('node:net').Socket>();
  silent.on('connection', (s) => sockets.add(s));
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  const { home, ownerToken } = await initHome(t, { config: { limits: { testConnectionTimeoutMs: 1500 } } });
  const rt = await startRuntime(t, home);
  const { body } = await rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'amazon-s3', config: s3Config(`http://127.0.0.1:${(silent.address() as { port: number }).port}`) });
  t.equal(body.status, 'failed');
  const endpoint = byId(body.checks).endpoint!;
  t.equal(endpoint.code, 'Timeout', 'a timeout is reported as a timeout');
  t.match(endpoint.message, /no answer from http:\/\/127\.0\.0\.1:\d+ within the time limit/);
});

// A real S3 server with SigV4 checking and two users: CI runs this against Ceph RGW;
// point it at MinIO or AWS with S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY,
// S3_ACCESS_KEY2, S3_SECRET_KEY2 (and S3_REGION, default us-east-1).
const real = process.env.S3_ENDPOINT && process.env.S3_ACCESS_KEY && process.env.S3_SECRET_KEY && process.env.S3_ACCESS_KEY2 && process.env.S3_SECRET_KEY2;
t.test('Amazon S3 against a real S3 server', { skip: !real && 'S3_ENDPOINT and the two users\' keys are not set (.ci/run sets them for Ceph RGW)' }, async (t) => {
  const env = process.env as Record<string, string>;
  const bucket = `quark-ci-${Date.now().toString(36)}`;
  const { S3Client, CreateBucketCommand, DeleteBucketCommand } = await import('@aws-sdk/client-s3');
  const admin = new S3Client({ region: env.S3_REGION ?? 'us-east-1', endpoint: env.S3_ENDPOINT, forcePathStyle: true, credentials: { accessKeyId: env.S3_ACCESS_KEY!, secretAccessKey: env.S3_SECRET_KEY! } });
  await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  t.teardown(async () => {
    await admin.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
    admin.destroy();
  });
  const { home, ownerToken } = await initHome(t);
  const rt = await startRuntime(t, home);
  const config = (extra: Record<string, unknown>) => ({ awsAccessKey: env.S3_ACCESS_KEY, awsSecretKey: env.S3_SECRET_KEY, region: env.S3_REGION ?? 'us-east-1', bucket, endpoint: env.S3_ENDPOINT, forcePathStyle: true, ...extra });
  const test = async (extra: Record<string, unknown>) => (await rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'amazon-s3', config: config(extra) })).body;

  const ok = await test({});
  t.equal(ok.status, 'ok', JSON.stringify(ok.checks));

  const wrongSecret = await test({ awsSecretKey: 'definitely-not-the-secret' });
  t.equal(wrongSecret.status, 'failed');
  t.equal(byId(wrongSecret.checks).credentials!.code, 'SignatureDoesNotMatch');
  t.match(byId(wrongSecret.checks).credentials!.message, /secret key does not match/);

  const unknownKey = await test({ awsAccessKey: 'AKIAQUARKUNKNOWN0000' });
  t.equal(unknownKey.status, 'failed');
  t.equal(byId(unknownKey.checks).credentials!.code, 'InvalidAccessKeyId');
  t.match(byId(unknownKey.checks).credentials!.message, /AKIAQUARKUNKNOWN0000 is not known/);

  const otherUser = await test({ awsAccessKey: env.S3_ACCESS_KEY2, awsSecretKey: env.S3_SECRET_KEY2 });
  t.equal(otherUser.status, 'warning', 'the second user\'s keys are valid, the first user\'s bucket is not theirs');
  t.equal(byId(otherUser.checks).credentials!.status, 'ok');
  t.equal(byId(otherUser.checks).bucket!.code, 'AccessDenied');

  const missing = await test({ bucket: `${bucket}-missing` });
  t.equal(missing.status, 'warning');
  t.equal(byId(missing.checks).bucket!.code, 'NoSuchBucket');
});
