import t, { type Test } from 'tap';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { createHash } from 'node:crypto';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import S3rver from 's3rver';
import { RequestError, Server as ProxyServer } from 'proxy-chain';
import { initHome, startRuntime, tempDir } from '../helpers/quark.js';
import { startTinyproxy, tinyproxyAvailable } from '../helpers/tinyproxy.js';

type Checks = { id: string; status: string; message: string; code?: string }[];
const byId = (checks: Checks) => Object.fromEntries(checks.map((c) => [c.id, c]));

async function startS3rver(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: tempDir(t, 'quark-s3rver-'), configureBuckets: [{ name: 'quark-test', configs: [] }] });
  const { port } = (await server.run()) as { port: number };
  t.teardown(() => server.close());
  return `http://127.0.0.1:${port}`;
}

/** A copy of a home for a second, in-process runtime (the first one holds the original). */
function tempHomeCopy(t: { teardown(fn: () => unknown): void }, home: string): string {
  const copy = join(tempDir(t), 'home');
  cpSync(home, copy, { recursive: true });
  return copy;
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

/** Runs an operation through the HTTP API on a saved connection. */
async function operate(rt: { api: (m: string, p: string, tk?: string, b?: unknown) => Promise<{ status: number; body: any }> }, token: string, connection: string, operation: string, parameters: Record<string, unknown>, documents: { properties?: Record<string, string>; body?: Buffer | string }[] = [{}]) {
  const r = await rt.api('POST', `/api/v1/connections/${connection}/operations/${operation}`, token, {
    parameters,
    documents: documents.map((d) => ({ ...(d.properties ? { properties: d.properties } : {}), ...(d.body !== undefined ? { body: Buffer.from(d.body).toString('base64'), encoding: 'base64' } : {}) })),
  });
  return r;
}
const bodyOf = (doc: any) => Buffer.from(doc.body, 'base64');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('Amazon S3 operations against the embedded s3rver', async (t) => {
  const endpoint = await startS3rver(t);
  const { home, ownerToken } = await initHome(t);
  const rt = await startRuntime(t, home);
  const created = await rt.api('POST', '/api/v1/connections', ownerToken, { name: 's3', connector: 'amazon-s3', config: s3Config(endpoint, { multipartThresholdMb: 5 }) });
  t.equal(created.status, 201);
  const op = (operation: string, parameters: Record<string, unknown>, documents?: { properties?: Record<string, string>; body?: Buffer | string }[]) => operate(rt, ownerToken, 's3', operation, parameters, documents);

  t.test('Upsert then Get round-trips body, content type and metadata, with result properties', async (t) => {
    const up = await op('upsert', { key: 'in/hello.txt', contentType: 'text/plain', metadata: { origin: 'test' } }, [{ body: 'hello, quark', properties: { 's3.meta.batch': '42' } }]);
    t.equal(up.status, 200);
    const props = up.body.results[0].documents[0].properties;
    t.match(props, { 's3.bucket': 'quark-test', 's3.key': 'in/hello.txt', 's3.size': '12', 's3.contentType': 'text/plain', 's3.multipart': 'false' });
    t.match(props['s3.etag'], /^[0-9a-f]{32}$/);
    const got = await op('get', {}, [{ properties: { 's3.key': 'in/hello.txt' } }]);
    const doc = got.body.results[0].documents[0];
    t.equal(bodyOf(doc).toString(), 'hello, quark');
    t.match(doc.properties, { 's3.key': 'in/hello.txt', 's3.size': '12', 's3.contentType': 'text/plain', 's3.meta.origin': 'test', 's3.meta.batch': '42' });
    t.ok(doc.properties['s3.lastModified']);
  });

  t.test('every input document gets exactly one result; a missing key is an application error naming it', async (t) => {
    const got = await op('get', {}, [{ properties: { 's3.key': 'in/hello.txt' } }, { properties: { 's3.key': 'in/nope.txt' } }, {}]);
    t.same(got.body.results.map((r: any) => r.status), ['success', 'application-error', 'application-error']);
    t.equal(got.body.results[1].code, 'NoSuchKey');
    t.match(got.body.results[1].message, /in\/nope\.txt/);
    t.equal(got.body.results[2].code, 'MissingKey');
  });

  t.test('metadata or a content type with non-ASCII text is an application error naming it; the other documents go', async (t) => {
    const up = await op('upsert', {}, [
      { body: 'one', properties: { 's3.meta.author': 'Zoë Ångström', 's3.key': 'in/accents.txt' } },
      { body: 'two', properties: { 's3.meta.author': 'Zoe Angstrom', 's3.key': 'in/plain.txt' } },
      { body: 'three', properties: { 's3.contentType': 'text/plain; title=café', 's3.key': 'in/typed.txt' } },
      { body: 'four', properties: { 's3.meta.two words': 'x', 's3.key': 'in/named.txt' } },
    ]);
    t.equal(up.status, 200, JSON.stringify(up.body));
    const [accents, plain, typed, named] = up.body.results;
    t.match(accents, { status: 'application-error', code: 'InvalidMetadata' }, 'not a TypeError failure from the HTTP layer');
    t.match(accents.message, /^Upsert in\/accents\.txt: the metadata "author" has a character S3 cannot take in a header \(U\+00EB at character 3\)/);
    t.equal(plain.status, 'success', 'an ASCII value still goes');
    t.match(typed, { status: 'application-error', code: 'InvalidContentType', message: /the content type has a character .*U\+00E9/ });
    t.match(named, { status: 'application-error', code: 'InvalidMetadata', message: /the metadata name "two words" is not valid/ });
    const created = await op('create', { keyPrefix: 'in/', metadata: { note: '日本' } }, [{ body: 'x' }]);
    t.match(created.body.results[0], { status: 'application-error', code: 'InvalidMetadata', message: /the metadata "note" .*U\+65E5 at character 1/ }, 'the metadata parameter too');
    const missing = await op('get', {}, [{ properties: { 's3.key': 'in/accents.txt' } }, { properties: { 's3.key': 'in/plain.txt' } }]);
    t.same(missing.body.results.map((r: any) => r.code ?? r.status), ['NoSuchKey', 'success'], 'nothing was written for the refused document');
  });

  t.test('Create refuses to overwrite; Upsert overwrites; a missing key gets a generated one', async (t) => {
    const refused = await op('create', { key: 'in/hello.txt' }, [{ body: 'other' }]);
    t.equal(refused.body.results[0].status, 'application-error');
    t.equal(refused.body.results[0].code, 'ObjectExists');
    const generated = await op('create', { keyPrefix: 'gen/' }, [{ body: 'one' }, { body: 'two' }]);
    const keys = generated.body.results.map((r: any) => r.documents[0].properties['s3.key']);
    t.match(keys[0], /^gen\/[0-9a-f-]{36}$/);
    t.not(keys[0], keys[1]);
    const over = await op('upsert', { key: 'in/hello.txt' }, [{ body: 'replaced' }]);
    t.equal(over.body.results[0].status, 'success');
    t.equal(bodyOf((await op('get', { key: 'in/hello.txt' })).body.results[0].documents[0]).toString(), 'replaced');
  });

  t.test('at the threshold the upload is multipart and the bytes come back intact', async (t) => {
    const big = Buffer.alloc(12 * 1024 * 1024 + 123);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i);
    const up = await op('upsert', { key: 'big/blob.bin', concurrency: 2, partSizeMb: 5 }, [{ body: big }]);
    t.equal(up.body.results[0].status, 'success', JSON.stringify(up.body.results[0]));
    t.equal(up.body.results[0].documents[0].properties['s3.multipart'], 'true');
    t.equal(up.body.results[0].documents[0].properties['s3.size'], String(big.length));
    const got = await op('get', { key: 'big/blob.bin' });
    const doc = got.body.results[0].documents[0];
    t.equal(doc.size, big.length);
    t.equal(sha(bodyOf(doc)), sha(big), 'same bytes');
    // in ranged GETs of 1 MiB, 3 at once: 13 parts handed on in order
    const ranged = await op('get', { key: 'big/blob.bin', partSizeMb: 1, concurrency: 3 });
    const rangedDoc = ranged.body.results[0].documents[0];
    t.equal(rangedDoc.properties['s3.size'], String(big.length), 'the size of the whole object, not of the first part');
    t.equal(sha(bodyOf(rangedDoc)), sha(big), 'same bytes in ranged parts');
  });

  t.test('Copy: the store copies the object given by s3.key; a missing source is NoSuchKey; no target key is refused', async (t) => {
    const copied = await op('copy', { key: 'copies/blob.bin' }, [{ properties: { 's3.key': 'big/blob.bin' } }]);
    const result = copied.body.results[0];
    t.equal(result.status, 'success', JSON.stringify(result));
    t.match(result.documents[0].properties, { 's3.key': 'copies/blob.bin', 's3.sourceKey': 'big/blob.bin', 's3.size': String(12 * 1024 * 1024 + 123), 's3.multipart': 'false' });
    const back = (await op('get', { key: 'copies/blob.bin' })).body.results[0].documents[0];
    const original = (await op('get', { key: 'big/blob.bin' })).body.results[0].documents[0];
    t.equal(sha(bodyOf(back)), sha(bodyOf(original)), 'same bytes');
    const missing = await op('copy', { key: 'copies/none.bin', sourceKey: 'big/none.bin' });
    t.match(missing.body.results[0], { status: 'application-error', code: 'NoSuchKey', message: /^Copy big\/none\.bin to copies\/none\.bin: no such object \(key "big\/none\.bin"\)$/ });
    const noTarget = await op('copy', { sourceKey: 'big/blob.bin' });
    t.equal(noTarget.status, 400);
    t.match(noTarget.body.error, { code: 'QUARK_ERR_OPERATION_INVALID_PARAMETERS', details: { problems: [{ path: '/key' }] } });
    t.equal((await op('delete', { key: 'copies/blob.bin' })).body.results[0].status, 'success');
  });

  t.test('Query lists by prefix as documents or as a summary', async (t) => {
    const listed = await op('query', { prefix: 'gen/' });
    const docs = listed.body.results[0].documents;
    t.equal(docs.length, 2);
    t.match(JSON.parse(bodyOf(docs[0]).toString()), { key: /^gen\//, size: 3, storageClass: 'STANDARD' });
    const summary = await op('query', { prefix: '', delimiter: '/', output: 'summary' });
    const body = JSON.parse(bodyOf(summary.body.results[0].documents[0]).toString());
    t.same(body.commonPrefixes.sort(), ['big/', 'gen/', 'in/']);
  });

  t.test('Delete: one key, a missing key (not an error), and many from the body', async (t) => {
    t.equal((await op('delete', { key: 'in/hello.txt' })).body.results[0].status, 'success');
    t.equal((await op('delete', { key: 'in/never-was.txt' })).body.results[0].status, 'success', 'S3 semantics: deleting a missing key succeeds');
    const keys = (await op('query', { prefix: 'gen/' })).body.results[0].documents.map((d: any) => d.properties['s3.key']);
    const many = await op('delete', { keysInBody: true }, [{ body: keys.join('\n') }]);
    t.equal(many.body.results[0].documents[0].properties['s3.deleted'], '2');
    t.same((await op('query', { prefix: 'gen/' })).body.results[0].documents, []);
  });

  t.test('bad parameters are refused by path before anything runs', async (t) => {
    const r = await op('query', { output: 'everything', pageSize: 5000 });
    t.equal(r.status, 400);
    t.equal(r.body.error.code, 'QUARK_ERR_OPERATION_INVALID_PARAMETERS');
    t.same(r.body.error.details.problems.map((p: any) => p.path).sort(), ['/output', '/pageSize']);
    const unknown = await op('teleport', {});
    t.equal(unknown.status, 404);
    t.equal(unknown.body.error.code, 'QUARK_ERR_OPERATION_NOT_FOUND');
  });

  t.test('progress is reported to whoever runs the operation', async (t) => {
    const { createRuntime } = await import('../../runtime/index.js');
    const runtime = await createRuntime({ home: tempHomeCopy(t, home), logLevel: 'silent' });
    t.teardown(() => runtime.close());
    const caller = await runtime.authenticate(ownerToken);
    const events: { bytesDone: number; bytesTotal?: number }[] = [];
    const run = await runtime.runOperation(caller, { connection: 's3', operation: 'upsert', parameters: { key: 'big/progress.bin', partSizeMb: 5 }, documents: [{ body: Buffer.alloc(11 * 1024 * 1024, 7) }] }, { onProgress: (p) => events.push(p) });
    t.equal(run.results[0]!.status, 'success');
    await run.dispose();
    t.ok(events.length >= 2, `progress events: ${events.length}`);
    t.equal(events.at(-1)!.bytesDone, 11 * 1024 * 1024);
    t.equal(events.at(-1)!.bytesTotal, 11 * 1024 * 1024);

    // a download: the runtime counts the streamed body against the size the connector gives
    const downloads: { bytesDone: number; bytesTotal?: number }[] = [];
    const got = await runtime.runOperation(caller, { connection: 's3', operation: 'get', parameters: { key: 'big/progress.bin' }, documents: [{}] }, { onProgress: (p) => downloads.push(p) });
    t.equal(got.results[0]!.documents![0]!.body.kind, 'file', 'a body above spillBytes is spilled to the work directory');
    await got.dispose();
    t.same(downloads.at(-1), { document: 0, bytesDone: 11 * 1024 * 1024, bytesTotal: 11 * 1024 * 1024 });
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

  await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'via-proxy', connector: 'amazon-s3', config: s3Config(endpoint, { proxyUser: 'proxy-user', proxyPassword: 'proxy-Pa55' }) });
  const beforeOps = tunnels;
  const up = await operate(rt, ownerToken, 'via-proxy', 'upsert', { key: 'proxied.txt' }, [{ body: 'through the proxy' }]);
  t.equal(up.body.results[0].status, 'success');
  t.equal(bodyOf((await operate(rt, ownerToken, 'via-proxy', 'get', { key: 'proxied.txt' })).body.results[0].documents[0]).toString(), 'through the proxy');
  t.ok(tunnels > beforeOps, 'operations go through the proxy too');

  const anonymous = await test(s3Config(endpoint));
  t.equal(byId(anonymous.body.checks).proxy!.code, 'ProxyAuthenticationRequired', 'no proxy credentials at all: also 407');
  t.notMatch(rt.output(), /proxy-Pa55|not-the-password/, 'proxy passwords never reach the log');
});

/** What a user reads when the runtime's proxy refuses the connection's proxy credentials: Test Connection and operations. */
async function proxyRefusals(t: Test, proxy: { host: string; port: number }) {
  const endpoint = await startS3rver(t);
  const { home, ownerToken } = await initHome(t, { config: { proxy } });
  const rt = await startRuntime(t, home);
  const test = (config: Record<string, unknown>) => rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'amazon-s3', config });
  const credentials = { proxyUser: 'proxy-user', proxyPassword: 'proxy-Pa55' };
  const good = await test(s3Config(endpoint, credentials));
  t.equal(good.body.status, 'ok', JSON.stringify(good.body.checks));

  const wrong = byId((await test(s3Config(endpoint, { ...credentials, proxyPassword: 'not-the-password' }))).body.checks);
  t.match(wrong.proxy, { status: 'failed', code: 'ProxyAuthenticationRequired' }, 'wrong credentials: the proxy check fails');
  t.match(wrong.proxy!.message, new RegExp(`the proxy http://127\\.0\\.0\\.1:${proxy.port} refused the credentials \\(HTTP 401 Unauthorized\\): check "HTTP proxy user" and "HTTP proxy password"`));
  t.notMatch(wrong.proxy!.message, /administrator/, 'not taken for a destination the proxy refuses');
  t.equal(wrong.endpoint!.status, 'skipped');
  const missing = byId((await test(s3Config(endpoint))).body.checks);
  t.match(missing.proxy!.message, /requires credentials \(HTTP 407 Proxy Authentication Required\): enter "HTTP proxy user" and "HTTP proxy password"/);

  await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'wrong-proxy', connector: 'amazon-s3', config: s3Config(endpoint, { ...credentials, proxyPassword: 'not-the-password' }) });
  const results = (await operate(rt, ownerToken, 'wrong-proxy', 'upsert', { key: 'never.txt' }, [{ body: 'x' }])).body.results;
  t.match(results[0], { status: 'failure', code: 'ProxyAuthenticationRequired' });
  t.match(results[0].message, /^Upsert never\.txt: the proxy http:\/\/127\.0\.0\.1:\d+ refused the credentials \(HTTP 401 Unauthorized\): check "HTTP proxy user"/, 'an operation says it was the proxy');
  const got = (await operate(rt, ownerToken, 'wrong-proxy', 'get', { key: 'never.txt' })).body.results[0];
  t.match(got, { status: 'failure', code: 'ProxyAuthenticationRequired', message: /^Get never\.txt: the proxy .* refused the credentials/ });
  t.notMatch(rt.output(), /proxy-Pa55|not-the-password/, 'proxy passwords never reach the log');
}

t.test('Amazon S3 through a proxy that answers 401 to CONNECT with wrong credentials (proxy-chain)', async (t) => {
  const proxy = new ProxyServer({
    port: 0,
    host: '127.0.0.1',
    prepareRequestFunction: ({ username, password }) => {
      if (!username) return { requestAuthentication: true, failMsg: 'proxy credentials required' };
      // as tinyproxy does: credentials that are there but wrong get 401
      if (username !== 'proxy-user' || password !== 'proxy-Pa55') throw new RequestError('wrong proxy credentials', 401);
      return {};
    },
  });
  await proxy.listen();
  t.teardown(() => proxy.close(true));
  await proxyRefusals(t, { host: '127.0.0.1', port: proxy.port });
});

t.test('Amazon S3 through tinyproxy with Basic authentication', tinyproxyAvailable, async (t) => {
  const proxy = await startTinyproxy(t, { user: 'proxy-user', password: 'proxy-Pa55' });
  await proxyRefusals(t, proxy);
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
  // the endpoint never answers, so the limit is met whatever the load; 10 s leaves a busy
  // machine time to start the worker and import the AWS SDK before it
  const { home, ownerToken } = await initHome(t, { config: { limits: { testConnectionTimeoutMs: 10_000 } } });
  const rt = await startRuntime(t, home);
  const { body } = await rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'amazon-s3', config: s3Config(`http://127.0.0.1:${(silent.address() as { port: number }).port}`) });
  t.equal(body.status, 'failed');
  const endpoint = byId(body.checks).endpoint!;
  t.equal(endpoint.code, 'Timeout', 'a timeout is reported as a timeout');
  t.match(endpoint.message, /no answer from http:\/\/127\.0\.0\.1:\d+ within the time limit/);
});

// Two AWS behaviours that neither s3rver nor Ceph RGW reproduce (RGW ignores the region
// and keeps no clock-skew window here): a stand-in endpoint answers exactly as AWS
// documents them, and the connector must name them.
t.test('Amazon S3: clock skew and a bucket in another region, as AWS answers them', async (t) => {
  const { createServer: createHttpServer } = await import('node:http');
  const skewed = new Date(Date.now() + 20 * 60 * 1000).toUTCString();
  const fake = createHttpServer((request, response) => {
    const mode = request.headers.host?.startsWith('127.0.0.1') ? 'skew' : 'region';
    request.resume();
    if (mode === 'skew') {
      response.writeHead(403, { 'content-type': 'application/xml', date: skewed });
      response.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message></Error>');
    } else if (request.method === 'HEAD') {
      response.writeHead(301, { 'x-amz-bucket-region': 'eu-central-1' });
      response.end();
    } else {
      response.writeHead(200, { 'content-type': 'application/xml' });
      response.end('<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult><Buckets></Buckets></ListAllMyBucketsResult>');
    }
  }).listen(0, '127.0.0.1');
  await once(fake, 'listening');
  t.teardown(() => fake.close());
  const port = (fake.address() as { port: number }).port;
  const { home, ownerToken } = await initHome(t);
  const rt = await startRuntime(t, home);
  const test = async (endpoint: string) => (await rt.api('POST', '/api/v1/test-connection', ownerToken, { connector: 'amazon-s3', config: s3Config(endpoint) })).body;

  const skew = await test(`http://127.0.0.1:${port}`);
  t.equal(skew.status, 'failed');
  const credentials = byId(skew.checks).credentials!;
  t.equal(credentials.code, 'RequestTimeTooSkewed', 'reported as clock skew, not hidden by a retry');
  t.match(credentials.message, /clock differs from the server's by about 1[12]\d\d s \(this machine is behind\)/);

  const region = await test(`http://localhost:${port}`);
  t.equal(region.status, 'warning');
  t.equal(byId(region.checks).credentials!.status, 'ok');
  t.equal(byId(region.checks).bucket!.code, 'WrongRegion');
  t.match(byId(region.checks).bucket!.message, /is in region eu-central-1, not us-east-1: set "AWS region" to eu-central-1/);
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

  await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'user1', connector: 'amazon-s3', config: config({ multipartThresholdMb: 5 }) });
  await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'user2', connector: 'amazon-s3', config: config({ awsAccessKey: env.S3_ACCESS_KEY2, awsSecretKey: env.S3_SECRET_KEY2 }) });
  const op = (connection: string, operation: string, parameters: Record<string, unknown>, documents?: { properties?: Record<string, string>; body?: Buffer | string }[]) => operate(rt, ownerToken, connection, operation, parameters, documents);

  t.test('Query follows every page: more than 1,000 keys', async (t) => {
    const documents = Array.from({ length: 1100 }, (_, i) => ({ properties: { 's3.key': `many/${String(i).padStart(5, '0')}` }, body: `#${i}` }));
    const up = await op('user1', 'upsert', {}, documents);
    t.equal(up.body.results.filter((r: any) => r.status === 'success').length, 1100);
    const all = await op('user1', 'query', { prefix: 'many/' });
    t.equal(all.body.results[0].documents.length, 1100, 'two pages of 1,000');
    const small = await op('user1', 'query', { prefix: 'many/', pageSize: 250, output: 'summary' });
    t.match(small.body.results[0].documents[0].properties, { 's3.count': '1100', 's3.totalBytes': String(documents.reduce((n, d) => n + d.body.length, 0)) });
    const removed = await op('user1', 'delete', { keysInBody: true }, [{ body: documents.map((d) => d.properties['s3.key']).join('\n') }]);
    t.equal(removed.body.results[0].documents[0].properties['s3.deleted'], '1100', 'deleted in batches of up to 1,000');
  });

  t.test('the other user\'s Get of this bucket is an application error: access denied', async (t) => {
    await op('user1', 'upsert', { key: 'private.txt' }, [{ body: 'mine' }]);
    const got = await op('user2', 'get', { key: 'private.txt' });
    t.equal(got.body.results[0].status, 'application-error');
    t.equal(got.body.results[0].code, 'AccessDenied');
    const del = await op('user2', 'delete', { key: 'private.txt' });
    t.equal(del.body.results[0].status, 'application-error', 'a denied delete is an error, unlike a missing key');
    await op('user1', 'delete', { key: 'private.txt' });
  });

  t.test('two concurrent Creates of one key: exactly one wins', async (t) => {
    const [a, b] = await Promise.all([op('user1', 'create', { key: 'race.txt' }, [{ body: 'a' }]), op('user1', 'create', { key: 'race.txt' }, [{ body: 'b' }])]);
    const statuses = [a.body.results[0].status, b.body.results[0].status].sort();
    t.same(statuses, ['application-error', 'success']);
    t.equal([a, b].find((r) => r.body.results[0].status !== 'success')!.body.results[0].code, 'ObjectExists');
    await op('user1', 'delete', { key: 'race.txt' });
  });

  // RGW ignores If-None-Match on CompleteMultipartUpload (both completions succeed there):
  // the connector claims the key with a placeholder put with If-None-Match first
  t.test('two concurrent multipart Creates of one key: exactly one wins, and nothing is left behind', async (t) => {
    const { GetObjectCommand, ListMultipartUploadsCommand } = await import('@aws-sdk/client-s3');
    const bodies = [Buffer.alloc(12 * 1024 * 1024, 'a'), Buffer.alloc(12 * 1024 * 1024, 'b')];
    const answers = await Promise.all(bodies.map((body) => op('user1', 'create', { key: 'race.bin', partSizeMb: 5 }, [{ body }])));
    const results = answers.map((a) => a.body.results[0]);
    t.same(results.map((r) => r.status).sort(), ['application-error', 'success'], JSON.stringify(results.map((r) => r.message ?? r.status)));
    const winner = results.findIndex((r) => r.status === 'success');
    t.equal(results[1 - winner].code, 'ObjectExists');
    t.equal(results[winner].documents[0].properties['s3.multipart'], 'true', 'a multipart upload');
    const stored = await admin.send(new GetObjectCommand({ Bucket: bucket, Key: 'race.bin' }));
    t.equal(sha(Buffer.from(await stored.Body!.transformToByteArray())), sha(bodies[winner]!), 'the object is the winner\'s');
    t.equal(stored.Metadata?.['quark-create'], undefined, 'the placeholder was replaced');
    const uploads = (await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
    t.same(uploads.filter((u) => u.Key === 'race.bin'), [], 'no incomplete upload');
    await op('user1', 'delete', { key: 'race.bin' });
  });

  t.test('a cancelled multipart Create removes its placeholder: the key is free again', async (t) => {
    const { HeadObjectCommand, ListMultipartUploadsCommand } = await import('@aws-sdk/client-s3');
    const { createRuntime } = await import('../../runtime/index.js');
    const runtime = await createRuntime({ home: tempHomeCopy(t, home), logLevel: 'silent' });
    t.teardown(() => runtime.close());
    const controller = new AbortController();
    const run = await runtime.runOperation(
      await runtime.authenticate(ownerToken),
      { connection: 'user1', operation: 'create', parameters: { key: 'cancelled-create.bin', partSizeMb: 5, concurrency: 1 }, documents: [{ body: Buffer.alloc(30 * 1024 * 1024, 'c') }] },
      { signal: controller.signal, onProgress: (p) => { if (p.bytesDone > 0) controller.abort(); } },
    );
    await run.dispose();
    t.equal(run.results[0]!.code, 'QUARK_ERR_OPERATION_CANCELLED');
    const status = await admin.send(new HeadObjectCommand({ Bucket: bucket, Key: 'cancelled-create.bin' })).then(() => 200, (error: { $metadata?: { httpStatusCode?: number } }) => error.$metadata?.httpStatusCode);
    t.equal(status, 404, 'no placeholder left at the key');
    const uploads = (await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
    t.same(uploads.filter((u) => u.Key === 'cancelled-create.bin'), [], 'no incomplete upload');
  });

  t.test('a cancelled multipart upload leaves no incomplete upload behind', async (t) => {
    const { ListMultipartUploadsCommand } = await import('@aws-sdk/client-s3');
    const { createRuntime } = await import('../../runtime/index.js');
    const runtime = await createRuntime({ home: tempHomeCopy(t, home), logLevel: 'silent' });
    t.teardown(() => runtime.close());
    const caller = await runtime.authenticate(ownerToken);
    const controller = new AbortController();
    const run = await runtime.runOperation(
      caller,
      { connection: 'user1', operation: 'upsert', parameters: { key: 'cancelled.bin', concurrency: 1 }, documents: [{ body: Buffer.alloc(64 * 1024 * 1024, 1) }] },
      { signal: controller.signal, onProgress: (p) => { if (p.bytesDone > 0) controller.abort(); } },
    );
    await run.dispose();
    t.equal(run.results[0]!.status, 'failure');
    t.equal(run.results[0]!.code, 'QUARK_ERR_OPERATION_CANCELLED');
    let uploads: unknown[] = [];
    for (let i = 0; i < 20; i++) {
      uploads = (await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
      if (uploads.length === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    t.same(uploads, [], 'no incomplete multipart upload');
  });
});
