/**
 * The engine's limits seen from outside, through the HTTP API of a runtime started as a
 * child process: deep nesting is refused with its pointer (never a 500, never a
 * "worker died"), and overlapping executions do not lose each other's persisted
 * process properties.
 */
import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixturePlugins, initHome, startRuntime, tempDir, until } from '../helpers/quark.js';

/** The JSON text of a value nested `levels` objects deep: {"a":{"a":…1…}} (JSON.stringify overflows past ~5,000). */
const nested = (levels: number) => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);

/** POSTs a JSON text as it is. */
async function postText(url: string, token: string, text: string) {
  const response = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: text });
  return { status: response.status, body: (await response.json()) as any };
}


async function kitRuntime(t: any) {
  const { home, ownerToken } = await initHome(t, { config: { plugins: { paths: [join(fixturePlugins, 'process-kit')] } } });
  const rt = await startRuntime(t, home);
  const api = (method: string, path: string, body?: unknown) => rt.api(method, `/api/v1${path}`, ownerToken, body);
  t.equal((await api('POST', '/connections', { name: 'kit', connector: 'process-kit', config: {} })).status, 201);
  return { rt, api, ownerToken };
}

const bodies = (view: any) => (view.output ?? []).map((d: any) => Buffer.from(d.body, 'base64').toString('utf8'));

t.test('a literal nested 6,000 levels deep is refused with 400 and its pointer, at deploy and in test mode', async (t) => {
  const { rt, api, ownerToken } = await kitRuntime(t);
  const deep = nested(6000);
  const definitions = {
    'a property default': `{"id":"deep","name":"deep","start":{"kind":"none","next":"m"},"steps":[{"id":"m","kind":"map","expression":"1"}],"properties":{"big":{"default":${deep}}}}`,
    'a set-properties value': `{"id":"deep","name":"deep","start":{"kind":"none","next":"s"},"steps":[{"id":"s","kind":"set-properties","process":{"big":${deep}}}]}`,
    'a notify message': `{"id":"deep","name":"deep","start":{"kind":"none","next":"n"},"steps":[{"id":"n","kind":"notify","message":${deep}}]}`,
  };
  const pointers = { 'a property default': '/properties/big/default/a/a/', 'a set-properties value': '/steps/0/process/big/a/a/', 'a notify message': '/steps/0/message/a/a/' };
  for (const [where, definition] of Object.entries(definitions)) {
    const modes = [['deploy', '/deployments', definition, '/body'], ['test mode', '/executions', `{"wait":true,"definition":${definition}}`, '/body/definition']];
    for (const [mode, path, body, base] of modes) {
      const answer = await postText(`${rt.url}/api/v1${path}`, ownerToken, body!);
      t.equal(answer.status, 400, `${where}, ${mode}: 400, not 500`);
      t.equal(answer.body.error.code, 'QUARK_ERR_API_NESTING_TOO_DEEP', `${where}, ${mode}: the code says what is wrong`);
      const problem = answer.body.error.details.problems[0];
      t.ok(problem.path.startsWith(base! + pointers[where as keyof typeof pointers]), `${where}, ${mode}: the pointer leads to the value (${problem.path.slice(0, 40)}…)`);
      t.match(problem.message, /nests deeper than 500 levels/);
      t.ok(answer.body.error.message.length < 400, 'the message stays readable');
    }
  }
  t.equal((await api('GET', '/deployments')).body.deployments.length, 0, 'nothing was deployed');
  const fine = await api('POST', '/executions', { definition: { ...JSON.parse(definitions['a property default']), properties: { big: { default: JSON.parse(nested(400)) } } }, wait: true });
  t.equal(fine.body.status, 'complete', 'a value under the limit runs');
  t.equal(rt.child.exitCode, null, 'the runtime is still up');
});

t.test('a value computed too deep fails its own document with QUARK_ERR_STEP_NESTING_TOO_DEEP', async (t) => {
  const { api } = await kitRuntime(t);
  const definition = { id: 'echo', name: 'echo', start: { kind: 'documents', next: 'same' }, steps: [{ id: 'same', kind: 'map', expression: '$' }] };
  const documents = Array.from({ length: 100 }, (_, i) => ({ body: i === 10 ? nested(20_000) : JSON.stringify({ i }) }));
  const view = (await api('POST', '/executions', { definition, documents, wait: true })).body;
  t.equal(view.status, 'error');
  t.equal(view.documentsOut, 99, 'the other 99 documents of the chunk made it');
  t.equal(view.documentsFailed, 1);
  t.same(view.errors.map((e: any) => [e.step, e.code]), [['same', 'QUARK_ERR_STEP_NESTING_TOO_DEEP']]);
});

t.test('overlapping executions keep each other\'s persisted properties (last writer per property wins)', async (t) => {
  const { api } = await kitRuntime(t);
  const dir = tempDir(t, 'quark-persist-');
  const sleeping = join(dir, 'sleeping');
  const release = join(dir, 'release');
  // which=a: sets a, then sleeps until released; which=b: sets b and ends; which=show: shows both
  const definition = {
    id: 'counter',
    name: 'counter',
    start: { kind: 'documents', next: 'which' },
    properties: { a: { default: 0, persist: true }, b: { default: 0, persist: true } },
    steps: [
      { id: 'which', kind: 'route', value: '$properties.which', routes: [{ equals: 'a', next: 'set-a' }, { equals: 'b', next: 'set-b' }], default: 'show' },
      { id: 'set-a', kind: 'set-properties', process: { a: { $expr: '$process.a + 1' } }, next: 'hold' },
      { id: 'hold', kind: 'operation', connection: 'kit', operation: 'sleep', parameters: { ms: 600_000, marker: sleeping, release } },
      { id: 'set-b', kind: 'set-properties', process: { b: { $expr: '$process.b + 1' } } },
      { id: 'show', kind: 'map', expression: '"a=" & $process.a & " b=" & $process.b' },
    ],
  };
  t.equal((await api('POST', '/deployments', definition)).status, 201);
  const run = (which: string, wait: boolean) => api('POST', '/executions', { process: 'counter', documents: [{ properties: { which } }], wait });
  const first = (await run('a', false)).body;
  await until('the first execution to hold', () => (existsSync(sleeping) ? true : undefined));
  const second = (await run('b', true)).body;
  t.equal(second.status, 'complete', 'the second ran while the first was holding');
  writeFileSync(release, 'go');
  const ended = await until('the first execution to end', async () => {
    const view = (await api('GET', `/executions/${first.id}`)).body;
    return ['queued', 'in-process'].includes(view.status) ? undefined : view;
  });
  t.equal(ended.status, 'complete');
  t.same(bodies((await run('show', true)).body), ['a=1 b=1'], 'neither update was lost');
  t.equal((await run('b', true)).body.status, 'complete', 'b again');
  t.same(bodies((await run('show', true)).body), ['a=1 b=2'], 'each property keeps its own last value');
});
