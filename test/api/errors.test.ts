import { connect } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { fixturePlugins, initHome, startRuntime } from '../helpers/quark.js';

/** Sends one request byte for byte (no client re-encodes the path) and reads the answer. */
function rawRequest(url: string, method: string, path: string, token: string): Promise<{ status: number; body: any }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head, ...rest] = text.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head ?? '')?.[1]);
      const body = rest.join('\r\n\r\n');
      try {
        resolve({ status, body: JSON.parse(body) });
      } catch {
        resolve({ status, body });
      }
    });
    socket.write(`${method} ${path} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
  });
}

/** A JSON text nesting `depth` objects under `key`, built as text (a recursive JSON.stringify would overflow). */
function nested(key: string, depth: number): string {
  return `${`{"${key}":`.repeat(depth)}{}${'}'.repeat(depth)}`;
}

async function postText(url: string, path: string, token: string, text: string) {
  const response = await fetch(url + path, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: text });
  return { status: response.status, body: (await response.json()) as any };
}

t.test('fastify routing errors answer 400 in the documented {error: {code, message}} format', async (t) => {
  const { home, ownerToken } = await initHome(t);
  const rt = await startRuntime(t, home);
  const cases = [
    ['a percent-escape that is not hex (%ZZ)', '/api/v1/connections/%ZZ', '/url'],
    ['an encoded lone surrogate', '/api/v1/connections/%ED%A0%80', '/url'],
    ['a path parameter of 5000 characters', `/api/v1/connections/${'x'.repeat(5000)}`, '/params'],
  ] as const;
  for (const [what, path, pointer] of cases) {
    const answer = await rawRequest(rt.url, 'GET', path, ownerToken);
    t.equal(answer.status, 400, what);
    t.equal(answer.body.error?.code, 'QUARK_ERR_API_INVALID_REQUEST', what);
    t.match(answer.body.error?.message, /^the request is not valid: /, what);
    t.equal(answer.body.error?.details?.problems?.[0]?.path, pointer, what);
    t.notOk(JSON.stringify(answer.body).includes('FST_ERR'), `${what}: no fastify code`);
  }
  const long = 'n'.repeat(200);
  const created = await rt.api('POST', '/api/v1/connections', ownerToken, { name: long, connector: 'local-files', config: { folder: '/tmp' } });
  t.equal(created.status, 201, created.body?.error?.message);
  t.equal((await rt.api('GET', `/api/v1/connections/${encodeURIComponent(long)}`, ownerToken)).status, 200, 'a connection with the longest allowed name is addressed by name');
  t.equal((await rt.api('GET', '/healthz')).status, 200, 'the runtime still answers');
});

t.test('configurations nested too deep are refused with 400, not a 500 from a stack overflow', async (t) => {
  const { home, ownerToken } = await initHome(t, { config: { plugins: { paths: [join(fixturePlugins, 'recursive-tree')] } } });
  const rt = await startRuntime(t, home);

  const deep = await postText(rt.url, '/api/v1/connections', ownerToken, `{"name":"deep","connector":"local-files","config":${nested('a', 10_000)}}`);
  t.equal(deep.status, 400);
  t.equal(deep.body.error.code, 'QUARK_ERR_API_NESTING_TOO_DEEP');
  t.equal(deep.body.error.details.problems[0].path, `/body/config${'/a'.repeat(499)}`, 'the pointer names the first level too deep');

  const tested = await postText(rt.url, '/api/v1/test-connection', ownerToken, `{"connector":"local-files","config":${nested('a', 10_000)}}`);
  t.equal(tested.status, 400, 'Test Connection of an unsaved configuration too');
  t.equal(tested.body.error.code, 'QUARK_ERR_API_NESTING_TOO_DEEP');

  // a schema whose $ref refers to itself: a deep tree would overflow the compiled validator
  const tree = await postText(rt.url, '/api/v1/connections', ownerToken, `{"name":"tree","connector":"recursive-tree","config":{"name":"t","tree":${nested('child', 5_000)}}}`);
  t.equal(tree.status, 400);
  t.equal(tree.body.error.code, 'QUARK_ERR_API_NESTING_TOO_DEEP');
  const within = await postText(rt.url, '/api/v1/connections', ownerToken, `{"name":"tree","connector":"recursive-tree","config":{"name":"t","tree":${nested('child', 480)}}}`);
  t.equal(within.status, 201, 'a tree just within the limit is validated through its recursive $ref and saved');
  const bad = await postText(rt.url, '/api/v1/connections', ownerToken, `{"name":"tree2","connector":"recursive-tree","config":{"name":"t","tree":${nested('child', 480).replace('{}', '{"leaf":1}')}}}`);
  t.equal(bad.status, 400, 'and a wrong field at the bottom of it is found');
  t.equal(bad.body.error.details.problems[0].path, `/tree${'/child'.repeat(480)}/leaf`);
  const saved = await rt.api('GET', '/api/v1/connections/tree', ownerToken);
  const update = await postText(rt.url, '/api/v1/connections/tree/test', ownerToken, `{"config":{"name":"t","tree":${nested('child', 5_000)}}}`);
  t.equal(update.status, 400, 'Test Connection with unsaved changes too');
  t.equal((await rt.api('GET', '/api/v1/connections/tree', ownerToken)).body.revision, saved.body.revision);
  t.equal((await rt.api('GET', '/healthz')).status, 200, 'the runtime still answers');
});

t.test('validation messages name the field by its title; the pointer and keyword stay in details', async (t) => {
  const { home, ownerToken } = await initHome(t);
  const rt = await startRuntime(t, home);

  const s3 = await rt.api('POST', '/api/v1/connections', ownerToken, { name: 's3', connector: 'amazon-s3', config: { awsSecretKey: 'secret-value-xyz', region: 'eu-wset-1', bucket: 'my-bucket' } });
  t.equal(s3.status, 400);
  const problems = s3.body.error.details.problems;
  t.same(problems.find((p: any) => p.path === '/awsAccessKey'), { path: '/awsAccessKey', message: '"AWS access key" is required', keyword: 'required' });
  const region = problems.find((p: any) => p.path === '/region');
  t.equal(region.keyword, 'enum');
  t.equal(region.message, '"AWS region" must be one of the 37 allowed values, such as "us-east-1", "us-east-2", "us-west-1"');
  t.equal(s3.body.error.message, `the configuration is not valid for connector "amazon-s3": "AWS access key" is required (/awsAccessKey); ${region.message} (/region)`);
  t.notOk(JSON.stringify(s3.body).includes('secret-value-xyz'), 'no value of the request is echoed');

  const files = await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'f', connector: 'local-files', config: { folder: 'relative/dir', minFreeSpace: -1 } });
  t.equal(files.status, 400);
  t.same(files.body.error.details.problems, [
    { path: '/folder', message: '"Folder" must be an absolute path', keyword: 'pattern' },
    { path: '/minFreeSpace', message: '"Minimum free space" must be at least 0 MB', keyword: 'minimum' },
  ]);

  const request = await rt.api('POST', '/api/v1/connections', ownerToken, { name: '', connector: 'local-files', config: {}, colour: 'red' });
  t.equal(request.status, 400);
  t.equal(request.body.error.code, 'QUARK_ERR_API_INVALID_REQUEST');
  t.same(request.body.error.details.problems, [
    { path: '/body/colour', message: '"colour" is not a known field', keyword: 'additionalProperties' },
    { path: '/body/name', message: '"name" must not be empty', keyword: 'minLength' },
  ]);
});

t.test('a store that cannot be reached answers 503 QUARK_ERR_STORE_UNAVAILABLE, its own message (which may name its address) only in the log', async (t) => {
  const { errorHandler } = await import('../../runtime/api/errors.js');
  const { StoreUnavailableError } = await import('../../runtime/index.js');
  const sent: { status?: number; body?: any } = {};
  const reply = {
    status(code: number) {
      sent.status = code;
      return reply;
    },
    send(body: unknown) {
      sent.body = body;
      return reply;
    },
  };
  const logged: unknown[] = [];
  const error = new StoreUnavailableError('connect ECONNREFUSED postgres://quark:s3cret@127.0.0.1:5432/quark');
  errorHandler(error, { log: { error: (fields: unknown) => logged.push(fields) } } as never, reply as never);
  t.equal(sent.status, 503);
  t.equal(sent.body.error.code, 'QUARK_ERR_STORE_UNAVAILABLE');
  t.match(sent.body.error.message, /the store cannot be reached; nothing was changed by this request; retry later/);
  t.notMatch(JSON.stringify(sent.body), /s3cret|5432/, 'nothing of the address in the answer');
  t.same(logged, [{ err: error }], 'the cause is logged');
});
