/**
 * The HTTP client connector, loaded from its external plugin folder (dist/plugins/http-client,
 * through plugins.paths, never built in), against local HTTP and HTTPS servers.
 */
import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { RequestError, Server as ProxyServer } from 'proxy-chain';
import { assertConformance } from 'quark/sdk/testing';
import { initHome, root, startRuntime, tempDir } from '../helpers/quark.js';
import { startTinyproxy, tinyproxyAvailable } from '../helpers/tinyproxy.js';

const pluginPath = join(root, 'dist', 'plugins', 'http-client');

type Teardown = { teardown(fn: () => unknown): void };
type Checks = { id: string; status: string; message: string; code?: string }[];
const byId = (checks: Checks) => Object.fromEntries(checks.map((c) => [c.id, c]));
const statuses = (checks: Checks) => checks.map((c) => [c.id, c.status]);

const secrets = { password: 'basic-Pa55-secret', bearer: 'bearer-T0ken-secret', apiKey: 'api-K3y-secret', proxy: 'proxy-Pa55-secret' };

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** What the test server does: records every request, then answers by path. */
function handler(seen: Seen[], pending: Set<ServerResponse>) {
  return (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: request.method!, url: request.url!, headers: request.headers, body });
      const url = new URL(request.url!, 'http://x');
      const json = (status: number, value: unknown, headers: Record<string, string | string[]> = {}) => {
        response.writeHead(status, { 'content-type': 'application/json', ...headers });
        response.end(JSON.stringify(value));
      };
      const authorization = request.headers.authorization;
      const authorised =
        authorization === `Basic ${Buffer.from(`ada:${secrets.password}`).toString('base64')}` ||
        authorization === `Bearer ${secrets.bearer}` ||
        request.headers['x-custom-key'] === secrets.apiKey;
      switch (url.pathname) {
        case '/open':
          return json(200, { open: true });
        case '/me':
          return authorised ? json(200, { user: 'ada' }) : json(401, { error: 'who are you?' }, { 'www-authenticate': 'Bearer' });
        case '/redirect':
          response.writeHead(302, { location: '/login' });
          return response.end();
        case '/forbidden':
          return json(403, { error: 'not for you' });
        case '/items':
          return json(200, { method: request.method, query: Object.fromEntries(url.searchParams) }, { 'x-total-count': '2', 'set-cookie': ['session=abc; HttpOnly', 'other=1'] });
        case '/echo':
          response.writeHead(200, { 'content-type': request.headers['content-type'] ?? 'application/octet-stream', 'x-method': request.method!, 'x-length': String(request.headers['content-length']) });
          return response.end(body);
        case '/fail':
          return json(500, { error: 'database exploded', detail: 'x'.repeat(2000) });
        case '/slow':
          pending.add(response);
          response.on('close', () => pending.delete(response));
          return; // never answers
        default:
          return json(404, { error: 'no such path' });
      }
    });
  };
}

async function listen(t: Teardown, server: import('node:net').Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => sockets.add(s));
  server.on('secureConnection', (s: Socket) => sockets.add(s));
  t.teardown(() => {
    sockets.forEach((s) => s.destroy());
    server.close();
  });
  return (server.address() as { port: number }).port;
}

async function startServer(t: Teardown) {
  const seen: Seen[] = [];
  const pending = new Set<ServerResponse>();
  const port = await listen(t, createHttpServer(handler(seen, pending)));
  return { url: `http://127.0.0.1:${port}`, seen, pending };
}

/** The TLS tests need the openssl command to make their certificate; they are skipped, saying so, without it. */
const openssl = spawnSync('openssl', ['version']).status === 0 ? {} : { skip: 'the openssl command is not installed: no certificate for the HTTPS server' };

/** An HTTPS server with a self-signed certificate made now by openssl (nothing committed). */
async function startTlsServer(t: Teardown) {
  const dir = tempDir(t, 'quark-tls-');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  const seen: Seen[] = [];
  const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  const server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert }, handler(seen, new Set()));
  const port = await listen(t, server);
  return { url: `https://127.0.0.1:${port}`, seen, cert };
}

async function freePort(): Promise<number> {
  const server = createNetServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

async function runtimeWithPlugin(t: Teardown, config: Record<string, any> = {}) {
  const { home, ownerToken } = await initHome(t, { config: { plugins: { paths: [pluginPath] }, ...config } });
  const rt = await startRuntime(t, home);
  const api = (method: string, path: string, body?: unknown) => rt.api(method, `/api/v1${path}`, ownerToken, body);
  const test = (config: Record<string, unknown>) => api('POST', '/test-connection', { connector: 'http-client', config });
  const operate = (connection: string, operation: string, parameters: Record<string, unknown>, documents: { properties?: Record<string, string>; body?: string }[] = [{}]) =>
    api('POST', `/connections/${connection}/operations/${operation}`, {
      parameters,
      documents: documents.map((d) => ({ ...(d.properties ? { properties: d.properties } : {}), ...(d.body !== undefined ? { body: Buffer.from(d.body).toString('base64'), encoding: 'base64' } : {}) })),
    });
  return { rt, api, test, operate, home, ownerToken };
}

const bodyOf = (doc: any) => Buffer.from(doc.body, 'base64').toString('utf8');

t.test('HTTP client: loaded from an external plugin folder; Test Connection outcomes; secrets', async (t) => {
  const server = await startServer(t);
  const tls = openssl.skip ? { url: '', seen: [], cert: '' } : await startTlsServer(t);
  const { rt, api, test } = await runtimeWithPlugin(t);

  t.test('it loads from plugins.paths, with its schema annotations and secrets marked', async (t) => {
    const { body } = await api('GET', '/connectors/http-client');
    t.equal(body.source, 'config', 'loaded from plugins.paths, not built in');
    const fields = Object.entries(body.connectionSchema.properties as Record<string, any>).sort(([, a], [, b]) => a['x-order'] - b['x-order']).map(([name]) => name);
    t.same(fields, ['baseUrl', 'testPath', 'authKind', 'username', 'password', 'bearerToken', 'apiKeyHeader', 'apiKeyValue', 'timeoutMs', 'caCertificate', 'proxyUser', 'proxyPassword']);
    t.same(body.secretFields, ['/password', '/bearerToken', '/apiKeyValue', '/proxyPassword']);
    t.equal(body.connectionSchema.properties.timeoutMs['x-unit'], 'ms');
    t.equal(body.connectionSchema.properties.authKind['x-enum-labels'].apiKey, 'API key in a header');
  });

  t.test('ok without credentials on an open path', async (t) => {
    const { body } = await test({ baseUrl: server.url, authKind: 'none', testPath: '/open' });
    t.equal(body.status, 'ok', JSON.stringify(body.checks));
    t.same(statuses(body.checks), [['dns', 'ok'], ['connection', 'ok'], ['authentication', 'ok']]);
  });

  t.test('each auth kind sends its header, and the server accepts it', async (t) => {
    const kinds = [
      { config: { authKind: 'basic', username: 'ada', password: secrets.password }, header: 'authorization', value: `Basic ${Buffer.from(`ada:${secrets.password}`).toString('base64')}` },
      { config: { authKind: 'bearer', bearerToken: secrets.bearer }, header: 'authorization', value: `Bearer ${secrets.bearer}` },
      { config: { authKind: 'apiKey', apiKeyHeader: 'X-Custom-Key', apiKeyValue: secrets.apiKey }, header: 'x-custom-key', value: secrets.apiKey },
    ];
    for (const kind of kinds) {
      const before = server.seen.length;
      const { body } = await test({ baseUrl: server.url, testPath: '/me', ...kind.config });
      t.equal(body.status, 'ok', `${kind.config.authKind}: ${JSON.stringify(body.checks)}`);
      const request = server.seen.slice(before).find((s) => s.url === '/me');
      t.equal(request?.headers[kind.header], kind.value, `${kind.config.authKind} sends ${kind.header}`);
      t.notMatch(JSON.stringify(body), new RegExp(Object.values(secrets).join('|')), 'no secret in the answer');
    }
  });

  t.test('401: the credentials were refused, named by auth kind', async (t) => {
    const { body } = await test({ baseUrl: server.url, testPath: '/me', authKind: 'bearer', bearerToken: 'wrong-token-value' });
    t.equal(body.status, 'failed');
    const auth = byId(body.checks).authentication!;
    t.equal(auth.code, 'Unauthorized');
    t.match(auth.message, /refused the bearer token/);
    const none = await test({ baseUrl: server.url, testPath: '/me', authKind: 'none' });
    t.match(byId(none.body.checks).authentication!.message, /requires authentication/);
  });

  t.test('403: failed as refused credentials', async (t) => {
    const { body } = await test({ baseUrl: server.url, testPath: '/forbidden', authKind: 'basic', username: 'ada', password: secrets.password });
    t.equal(body.status, 'failed');
    t.equal(byId(body.checks).authentication!.code, 'Forbidden');
  });

  t.test('404 on the probe path: a warning, not a credentials failure', async (t) => {
    const { body } = await test({ baseUrl: server.url, testPath: '/nowhere', authKind: 'none' });
    t.equal(body.status, 'warning');
    t.equal(byId(body.checks).authentication!.code, 'ProbeNotFound');
    t.match(byId(body.checks).authentication!.message, /Test Connection path/);
  });

  t.test('a redirect on the probe path: a warning naming where it goes', async (t) => {
    const { body } = await test({ baseUrl: server.url, testPath: '/redirect', authKind: 'none' });
    t.equal(body.status, 'warning');
    t.equal(byId(body.checks).authentication!.code, 'Redirect');
    t.match(byId(body.checks).authentication!.message, /answered 302, a redirect to \/login/);
  });

  t.test('a host name that does not resolve fails the DNS check', async (t) => {
    const { body } = await test({ baseUrl: 'http://no-such-host.invalid/api', authKind: 'none' });
    t.equal(body.status, 'failed');
    t.same(statuses(body.checks), [['dns', 'failed'], ['connection', 'skipped'], ['authentication', 'skipped']]);
    t.equal(byId(body.checks).dns!.code, 'ENOTFOUND');
    t.match(byId(body.checks).dns!.message, /"no-such-host\.invalid" does not resolve/);
  });

  t.test('a closed port fails the connection check', async (t) => {
    const { body } = await test({ baseUrl: `http://127.0.0.1:${await freePort()}`, authKind: 'none' });
    t.equal(body.status, 'failed');
    t.equal(byId(body.checks).dns!.status, 'ok');
    t.equal(byId(body.checks).connection!.code, 'ECONNREFUSED');
    t.match(byId(body.checks).connection!.message, /cannot connect to 127\.0\.0\.1:\d+/);
  });

  t.test('a self-signed certificate fails the TLS check, with the reason', openssl, async (t) => {
    const { body } = await test({ baseUrl: tls.url, testPath: '/open', authKind: 'none' });
    t.equal(body.status, 'failed');
    t.same(statuses(body.checks), [['dns', 'ok'], ['connection', 'ok'], ['tls', 'failed'], ['authentication', 'skipped']]);
    const check = byId(body.checks).tls!;
    t.equal(check.code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
    t.match(check.message, /self-signed certificate/);
    t.equal(tls.seen.length, 0, 'no request was sent over an untrusted TLS session');
  });

  t.test('with its certificate as the trusted CA, TLS passes and operations run over HTTPS', openssl, async (t) => {
    const config = { baseUrl: tls.url, testPath: '/open', authKind: 'none', caCertificate: tls.cert };
    const { body } = await test(config);
    t.equal(body.status, 'ok', JSON.stringify(body.checks));
    t.same(statuses(body.checks), [['dns', 'ok'], ['connection', 'ok'], ['tls', 'ok'], ['authentication', 'ok']]);
    t.equal((await api('POST', '/connections', { name: 'tls', connector: 'http-client', config })).status, 201);
    const got = await api('POST', '/connections/tls/operations/get', { parameters: { path: '/items' }, documents: [{}] });
    t.equal(got.body.results[0].status, 'success', JSON.stringify(got.body));
    const untrusted = await api('POST', '/connections', { name: 'untrusted', connector: 'http-client', config: { baseUrl: tls.url, authKind: 'none' } });
    t.equal(untrusted.status, 201);
    const refused = await api('POST', '/connections/untrusted/operations/get', { parameters: { path: '/items' }, documents: [{}] });
    t.equal(refused.body.results[0].status, 'failure');
    t.equal(refused.body.results[0].code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
    t.match(refused.body.results[0].message, /TLS failed/);
  });

  t.test('a server that never answers: a timeout', async (t) => {
    const { body } = await test({ baseUrl: server.url, testPath: '/slow', authKind: 'none', timeoutMs: 500 });
    t.equal(body.status, 'failed');
    const check = byId(body.checks).connection!;
    t.equal(check.code, 'Timeout');
    t.match(check.message, /did not answer .* within 500 ms \(timeout\)/);
  });

  t.test('an incomplete connection: the missing field is named', async (t) => {
    const { body } = await test({ baseUrl: server.url, testPath: '/open', authKind: 'bearer' });
    t.equal(byId(body.checks).authentication!.code, 'ConnectionIncomplete');
    t.match(byId(body.checks).authentication!.message, /"Bearer token"/);
  });

  t.test('saved connections never show a secret; the debug log never has one', async (t) => {
    const created = await api('POST', '/connections', { name: 'secretive', connector: 'http-client', config: { baseUrl: server.url, authKind: 'basic', username: 'ada', password: secrets.password, bearerToken: secrets.bearer, apiKeyValue: secrets.apiKey } });
    t.equal(created.status, 201);
    const listed = await api('GET', '/connections');
    const shown = await api('GET', '/connections/secretive');
    const tested = await api('POST', '/connections/secretive/test');
    for (const answer of [created, listed, shown, tested]) t.notMatch(JSON.stringify(answer.body), new RegExp(Object.values(secrets).join('|')));
    t.notMatch(rt.output(), new RegExp(Object.values(secrets).join('|')), 'no secret in the runtime log');
    t.match(rt.output(), /http-client/, 'the log did record the plugin');
  });
});

t.test('HTTP client operations and a process', async (t) => {
  const server = await startServer(t);
  // the operation time limit holds every operation below: generous for a loaded machine;
  // the one that meets it waits on a server that never answers
  const { rt, api, operate, home, ownerToken } = await runtimeWithPlugin(t, { limits: { operationTimeoutMs: 10_000 } });
  t.equal((await api('POST', '/connections', { name: 'api', connector: 'http-client', config: { baseUrl: `${server.url}/`, authKind: 'bearer', bearerToken: secrets.bearer } })).status, 201);
  t.equal((await api('POST', '/connections', { name: 'impatient', connector: 'http-client', config: { baseUrl: server.url, authKind: 'none', timeoutMs: 300 } })).status, 201);
  t.equal((await api('POST', '/connections', { name: 'patient', connector: 'http-client', config: { baseUrl: server.url, authKind: 'none', timeoutMs: 60000 } })).status, 201);

  t.test('GET with a query: the body, status, headers and URL as properties (no set-cookie)', async (t) => {
    const before = server.seen.length;
    const { status, body } = await operate('api', 'get', { path: '/items', query: { q: 'a b', n: 2 } });
    t.equal(status, 200, JSON.stringify(body));
    const result = body.results[0];
    t.equal(result.status, 'success', JSON.stringify(result));
    const doc = result.documents[0];
    t.same(JSON.parse(bodyOf(doc)), { method: 'GET', query: { q: 'a b', n: '2' } });
    t.match(doc.properties, { 'http.status': '200', 'http.statusText': 'OK', 'http.header.content-type': 'application/json', 'http.header.x-total-count': '2', 'http.url': `${server.url}/items?q=a+b&n=2` });
    t.notOk('http.header.set-cookie' in doc.properties, 'cookies are not turned into properties');
    t.notOk('http.header.connection' in doc.properties || 'http.header.transfer-encoding' in doc.properties, 'nor hop-by-hop headers');
    t.equal(server.seen[before]!.headers.authorization, `Bearer ${secrets.bearer}`);
  });

  t.test('header parameters are sent; they cannot replace the connection\'s authentication', async (t) => {
    const before = server.seen.length;
    const { body } = await operate('api', 'get', { path: '/items', headers: { 'X-Request-Id': 'r-1', Authorization: 'Bearer forged' } });
    t.equal(body.results[0].status, 'success');
    t.equal(server.seen[before]!.headers['x-request-id'], 'r-1');
    t.equal(server.seen[before]!.headers.authorization, `Bearer ${secrets.bearer}`);
  });

  t.test('a header HTTP cannot carry (non-ASCII user text) is an application error naming it; nothing is sent', async (t) => {
    const before = server.seen.length;
    const { status, body } = await operate('api', 'get', { path: '/items', headers: { 'X-Note': 'café ☕' } }, [{}, {}]);
    t.equal(status, 200, JSON.stringify(body));
    t.same(body.results.map((r: any) => [r.status, r.code]), [['application-error', 'InvalidHeader'], ['application-error', 'InvalidHeader']], 'one result per document');
    t.match(body.results[0].message, /the value of header "x-note" has a character HTTP headers cannot carry \(U\+00E9 at character 4\)/);
    const typed = await operate('api', 'post', { path: '/echo' }, [{ body: 'x', properties: { 'http.contentType': 'text/plain; name=Zoë' } }, { body: 'y', properties: { 'http.contentType': 'text/plain' } }]);
    t.same(typed.body.results.map((r: any) => r.status), ['application-error', 'success'], 'the content type from a property too; the other document still goes');
    t.match(typed.body.results[0].message, /header "content-type" .*U\+00EB/);
    const named = await operate('api', 'get', { path: '/items', headers: { 'x bad': '1' } });
    t.match(named.body.results[0], { status: 'application-error', code: 'InvalidHeader', message: /"x bad" is not an HTTP header name/ });
    t.equal(server.seen.length, before + 1, 'only the valid document reached the server');
  });

  t.test('path and query from document properties when the parameters are absent', async (t) => {
    const { body } = await operate('api', 'get', {}, [{ properties: { 'http.path': 'items', 'http.query.city': 'Zürich' } }]);
    t.same(JSON.parse(bodyOf(body.results[0].documents[0])), { method: 'GET', query: { city: 'Zürich' } });
  });

  t.test('POST, PUT and PATCH send the document body with its length and content type', async (t) => {
    const post = await operate('api', 'post', { path: '/echo', contentType: 'text/plain' }, [{ body: 'hello, quark' }]);
    const doc = post.body.results[0].documents[0];
    t.equal(bodyOf(doc), 'hello, quark');
    t.match(doc.properties, { 'http.header.x-method': 'POST', 'http.header.x-length': '12', 'http.header.content-type': 'text/plain' });
    const put = await operate('api', 'put', { path: '/echo' }, [{ body: '{"a":1}', properties: { 'http.contentType': 'application/json' } }]);
    t.match(put.body.results[0].documents[0].properties, { 'http.header.x-method': 'PUT', 'http.header.content-type': 'application/json' });
    const patch = await operate('api', 'patch', { path: '/echo' }, [{ body: 'x' }]);
    t.match(patch.body.results[0].documents[0].properties, { 'http.header.x-method': 'PATCH', 'http.header.content-type': 'application/octet-stream' });
    const big = 'z'.repeat(300_000);
    const large = await operate('api', 'post', { path: '/echo' }, [{ body: big }]);
    t.equal(bodyOf(large.body.results[0].documents[0]).length, big.length, 'a large body round-trips');
  });

  t.test('DELETE; non-2xx is an application error with the status and a short excerpt', async (t) => {
    const removed = await operate('api', 'delete', { path: '/items' });
    t.equal(removed.body.results[0].status, 'success');
    const { body } = await operate('api', 'get', {}, [{ properties: { 'http.path': '/fail' } }, { properties: { 'http.path': '/nope' } }]);
    const [failed, missing] = body.results;
    t.equal(failed.status, 'application-error');
    t.equal(failed.code, 'HTTP500');
    t.equal(failed.properties['http.status'], '500');
    t.match(failed.message, /GET http:\/\/127\.0\.0\.1:\d+\/fail answered 500 Internal Server Error: \{"error":"database exploded"/);
    t.ok(failed.message.length < 500, 'only an excerpt of the body');
    t.notMatch(failed.message, new RegExp(secrets.bearer), 'no request header echoed');
    t.equal(missing.code, 'HTTP404');
  });

  t.test('the connection timeout: a failure coded Timeout', async (t) => {
    const { body } = await operate('impatient', 'get', { path: '/slow' });
    t.equal(body.results[0].status, 'failure');
    t.equal(body.results[0].code, 'Timeout');
    t.match(body.results[0].message, /no answer within 300 ms/);
  });

  t.test('the operation time limit aborts the request (the server sees it closed)', async (t) => {
    const { body } = await operate('patient', 'get', { path: '/slow' });
    t.equal(body.results[0].status, 'failure', JSON.stringify(body));
    t.match(body.results[0].message, /stopped before the answer/, 'stopped at the time limit, not by the 60 s connection timeout');
    // each request still open on the server closes when the runtime aborts it (never: the test times out)
    await Promise.all([...server.pending].map((response) => once(response, 'close')));
    t.equal(server.pending.size, 0, 'the request was aborted, not left hanging');
  });

  t.test('upload progress reaches whoever runs the operation', async (t) => {
    // an in-process runtime on a copy of the home (the child runtime holds the original)
    const copy = join(tempDir(t), 'home');
    cpSync(home, copy, { recursive: true });
    const { createRuntime } = await import('../../runtime/index.js');
    const runtime = await createRuntime({ home: copy, logLevel: 'silent' });
    t.teardown(() => runtime.close());
    const caller = await runtime.authenticate(ownerToken);
    const size = 3 * 1024 * 1024;
    const events: { bytesDone: number; bytesTotal?: number }[] = [];
    // PUT /items answers a small JSON document: the events at the body's size are the upload's
    const run = await runtime.runOperation(caller, { connection: 'api', operation: 'put', parameters: { path: '/items' }, documents: [{ body: Buffer.alloc(size, 7) }] }, { onProgress: (p) => events.push(p) });
    t.equal(run.results[0]!.status, 'success');
    await run.dispose();
    t.ok(events.some((e) => e.bytesTotal === size && e.bytesDone === size), `the upload reports its bytes against the body's size: ${JSON.stringify(events)}`);
  });

  t.test('a deployed process: start none → GET → map', async (t) => {
    const deployed = await api('POST', '/deployments', {
      id: 'fetch-items',
      name: 'Fetch items',
      start: { kind: 'none', next: 'fetch' },
      steps: [
        { id: 'fetch', kind: 'operation', connection: 'api', operation: 'get', parameters: { path: '/items', query: { from: 'process' } }, next: 'shape' },
        { id: 'shape', kind: 'map', expression: '{"got": query.from, "status": $properties.`http.status`}' },
      ],
    });
    t.equal(deployed.status, 201, JSON.stringify(deployed.body));
    const { status, body } = await api('POST', '/executions', { process: 'fetch-items', wait: true });
    t.equal(status, 200);
    t.equal(body.status, 'complete', JSON.stringify(body));
    t.same(body.output.map((d: any) => JSON.parse(bodyOf(d))), [{ got: 'process', status: '200' }]);
  });

  t.test('no secret in the log', async (t) => {
    t.notMatch(rt.output(), new RegExp(secrets.bearer));
  });
});

t.test('HTTP client through the runtime\'s authenticating HTTP proxy', async (t) => {
  const server = await startServer(t);
  let tunnels = 0;
  const proxy = new ProxyServer({
    port: 0,
    host: '127.0.0.1',
    prepareRequestFunction: ({ username, password }) => {
      if (username !== 'proxy-user' || password !== secrets.proxy) return { requestAuthentication: true, failMsg: 'bad proxy credentials' };
      tunnels++;
      return {};
    },
  });
  await proxy.listen();
  t.teardown(() => proxy.close(true));
  const { rt, api, test, operate } = await runtimeWithPlugin(t, { proxy: { host: '127.0.0.1', port: proxy.port } });
  const config = { baseUrl: server.url, testPath: '/open', authKind: 'none', proxyUser: 'proxy-user', proxyPassword: secrets.proxy };

  const good = await test(config);
  t.equal(good.body.status, 'ok', JSON.stringify(good.body.checks));
  t.same(statuses(good.body.checks), [['proxy', 'ok'], ['connection', 'ok'], ['authentication', 'ok']]);
  t.ok(tunnels > 0, 'the traffic went through the proxy');

  const before = tunnels;
  const wrong = await test({ ...config, proxyPassword: 'not-the-password' });
  t.equal(wrong.body.status, 'failed');
  t.equal(byId(wrong.body.checks).proxy!.code, 'ProxyAuthenticationRequired');
  t.match(byId(wrong.body.checks).proxy!.message, /refused the credentials \(HTTP 407\)/);
  t.equal(byId(wrong.body.checks).connection!.status, 'skipped');
  t.equal(tunnels, before, 'nothing passed the proxy');

  if (openssl.skip) t.comment(`HTTPS through the proxy not checked: ${openssl.skip}`);
  else {
    await t.test('HTTPS through the proxy', async (t) => {
      const tls = await startTlsServer(t);
      const overTls = await test({ ...config, baseUrl: tls.url, caCertificate: tls.cert });
      t.same(statuses(overTls.body.checks), [['proxy', 'ok'], ['connection', 'ok'], ['tls', 'ok'], ['authentication', 'ok']], 'HTTPS through the tunnel, with the trusted CA');
      const untrusted = await test({ ...config, baseUrl: tls.url });
      t.equal(byId(untrusted.body.checks).tls!.code, 'DEPTH_ZERO_SELF_SIGNED_CERT', 'an untrusted certificate behind the proxy is still a TLS failure');
    });
  }

  // proxy-chain closes the socket instead of answering CONNECT for a host it cannot reach
  const unreachable = await test({ ...config, baseUrl: `http://127.0.0.1:${await freePort()}`, timeoutMs: 500 });
  t.equal(unreachable.body.status, 'failed', JSON.stringify(unreachable.body));
  t.equal(byId(unreachable.body.checks).proxy!.code, 'Timeout', JSON.stringify(unreachable.body.checks));
  t.match(byId(unreachable.body.checks).proxy!.message, /the proxy cannot reach the host/);

  t.equal((await api('POST', '/connections', { name: 'via-proxy', connector: 'http-client', config })).status, 201);
  const got = await operate('via-proxy', 'get', { path: '/items' });
  t.equal(got.body.results[0].status, 'success', JSON.stringify(got.body));
  t.ok(tunnels > before, 'operations go through the proxy too');
  t.equal((await api('POST', '/connections', { name: 'wrong-proxy', connector: 'http-client', config: { ...config, proxyPassword: 'not-the-password' } })).status, 201);
  const refused = await operate('wrong-proxy', 'get', { path: '/items' });
  t.equal(refused.body.results[0].status, 'failure');
  t.equal(refused.body.results[0].code, 'ProxyAuthenticationRequired', 'an operation names the refused proxy credentials too');
  t.notMatch(rt.output(), new RegExp(`${secrets.proxy}|not-the-password`), 'proxy passwords never reach the log');
});

/** What a user reads when the runtime's proxy refuses the connection's proxy credentials: Test Connection and an operation. */
async function proxyRefusals(t: Test, proxy: { host: string; port: number }, server: { url: string; seen: Seen[] }) {
  const { api, test, operate, rt } = await runtimeWithPlugin(t, { proxy });
  const config = { baseUrl: server.url, testPath: '/open', authKind: 'none', proxyUser: 'proxy-user', proxyPassword: secrets.proxy };
  const good = await test(config);
  t.same(statuses(good.body.checks), [['proxy', 'ok'], ['connection', 'ok'], ['authentication', 'ok']], JSON.stringify(good.body.checks));

  const wrong = byId((await test({ ...config, proxyPassword: 'not-the-password' })).body.checks);
  t.match(wrong.proxy, { status: 'failed', code: 'ProxyAuthenticationRequired' }, 'wrong credentials: the proxy check fails');
  t.match(wrong.proxy!.message, new RegExp(`the runtime's HTTP proxy http://127\\.0\\.0\\.1:${proxy.port} refused the credentials \\(HTTP 401\\): check "HTTP proxy user" and "HTTP proxy password"`));
  t.notMatch(wrong.proxy!.message, /administrator/, 'not taken for a destination the proxy refuses');
  t.equal(wrong.connection!.status, 'skipped');

  const { proxyUser: _user, proxyPassword: _password, ...anonymous } = config;
  const missing = byId((await test(anonymous)).body.checks);
  t.match(missing.proxy, { status: 'failed', code: 'ProxyAuthenticationRequired' });
  t.match(missing.proxy!.message, /requires credentials \(HTTP 407\): enter "HTTP proxy user" and "HTTP proxy password"/, 'no credentials: 407, asked for');

  t.equal((await api('POST', '/connections', { name: 'wrong-proxy', connector: 'http-client', config: { ...config, proxyPassword: 'not-the-password' } })).status, 201);
  const before = server.seen.length;
  const refused = (await operate('wrong-proxy', 'get', { path: '/items' })).body.results[0];
  t.match(refused, { status: 'failure', code: 'ProxyAuthenticationRequired' });
  t.match(refused.message, /^GET http:\/\/127\.0\.0\.1:\d+\/items: the runtime's HTTP proxy http:\/\/127\.0\.0\.1:\d+ refused the credentials \(HTTP 401\): check "HTTP proxy user"/, 'an operation says it was the proxy');
  t.equal(server.seen.length, before, 'nothing reached the server');
  t.notMatch(rt.output(), new RegExp(`${secrets.proxy}|not-the-password`), 'proxy passwords never reach the log');
}

t.test('HTTP client through a proxy that answers 401 to CONNECT with wrong credentials (proxy-chain)', async (t) => {
  const server = await startServer(t);
  const proxy = new ProxyServer({
    port: 0,
    host: '127.0.0.1',
    prepareRequestFunction: ({ username, password }) => {
      if (!username) return { requestAuthentication: true, failMsg: 'proxy credentials required' };
      // as tinyproxy does: credentials that are there but wrong get 401
      if (username !== 'proxy-user' || password !== secrets.proxy) throw new RequestError('wrong proxy credentials', 401);
      return {};
    },
  });
  await proxy.listen();
  t.teardown(() => proxy.close(true));
  await proxyRefusals(t, { host: '127.0.0.1', port: proxy.port }, server);
});

t.test('HTTP client through tinyproxy with Basic authentication', tinyproxyAvailable, async (t) => {
  const server = await startServer(t);
  const proxy = await startTinyproxy(t, { user: 'proxy-user', password: secrets.proxy });
  await proxyRefusals(t, proxy, server);
});

t.test('HTTP client: Test Connection stopped by the runtime\'s time limit is a timeout', async (t) => {
  const server = await startServer(t);
  // the server never answers: the limit is met whatever the load
  const { test } = await runtimeWithPlugin(t, { limits: { testConnectionTimeoutMs: 10_000 } });
  const { body } = await test({ baseUrl: server.url, testPath: '/slow', authKind: 'none', timeoutMs: 60000 });
  t.equal(body.status, 'failed');
  const check = byId(body.checks).connection!;
  t.equal(check.code, 'Timeout', JSON.stringify(body.checks));
  t.match(check.message, /did not answer .* within the time limit \(timeout\)/);
});

t.test('HTTP client with the runtime\'s proxy down', async (t) => {
  const server = await startServer(t);
  const { test } = await runtimeWithPlugin(t, { proxy: { host: '127.0.0.1', port: await freePort() } });
  const { body } = await test({ baseUrl: server.url, authKind: 'none' });
  t.equal(body.status, 'failed');
  t.equal(byId(body.checks).proxy!.code, 'ECONNREFUSED');
  t.match(byId(body.checks).proxy!.message, /cannot connect to the runtime's HTTP proxy/);
});

t.test('HTTP client passes the conformance kit (in process, from its dist folder)', async (t) => {
  const server = await startServer(t);
  const withBody = { parameters: { path: '/echo', contentType: 'text/plain' } };
  await assertConformance(t, {
    dir: pluginPath,
    config: { baseUrl: server.url, testPath: '/me', authKind: 'bearer', bearerToken: secrets.bearer, timeoutMs: 2000 },
    operations: { get: { parameters: { path: '/items' } }, post: withBody, put: withBody, patch: withBody, delete: { parameters: { path: '/items' } } },
  });
});
