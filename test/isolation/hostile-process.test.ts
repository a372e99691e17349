// Hostile plugins in isolation mode "process": plugin code runs in a plugin host process
// under Node's permission model. Each capability of issue 15 fails to do harm, and the
// runtime answers after each one; through the real CLI runtime as a child process. Runs on
// Node 20 (--experimental-permission) and Node 22 (--permission) in .ci/run.
import t, { type Test } from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fixturePlugins, initHome, startRuntime, until, type Running } from '../helpers/quark.js';

const signingKey = 'victim-signing-key-7f3a9c';

async function hostileRuntime(t: Test) {
  const { home, ownerToken } = await initHome(t, {
    kind: 'cloud',
    config: {
      plugins: { paths: [join(fixturePlugins, 'hostile'), join(fixturePlugins, 'hmac-signer')] },
      isolation: 'process',
      // a small heap, so that the single-allocation abort comes quickly
      limits: { workerThreads: 1, workerExternalMb: 64, workerHeapMb: 256 },
    },
  });
  const rt = await startRuntime(t, home);
  const created = await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'bad', connector: 'hostile', config: { token: 'hostile-token-1234' } });
  t.equal(created.status, 201, JSON.stringify(created.body));
  const run = async (operation: string, parameters: Record<string, unknown> = {}) => {
    const answer = await rt.api('POST', `/api/v1/connections/bad/operations/${operation}`, ownerToken, { parameters, documents: [{}] });
    t.equal(answer.status, 200, `${operation}: ${JSON.stringify(answer.body)}`);
    const outcome = answer.body.results[0];
    return { ...outcome, properties: outcome.documents?.[0]?.properties ?? {} };
  };
  return { home, ownerToken, rt, run };
}

/** The runtime answers its API (an authenticated read, not only /healthz). */
async function healthy(t: Test, rt: Running, token: string, what: string) {
  t.equal((await rt.api('GET', '/healthz')).status, 200, `the runtime answers /healthz after ${what}`);
  t.equal((await rt.api('GET', '/api/v1/connections', token)).status, 200, `the runtime answers its API after ${what}`);
  t.equal(rt.child.exitCode, null, `the runtime process is up after ${what}`);
}

/** The pid of the plugin host under a runtime: the descendant whose command line runs host-main.js. */
function hostPid(root: number): number {
  const children = (pid: number) => readdirSync(`/proc/${pid}/task`).flatMap((task) => readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
  const queue = [root];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    if (pid !== root && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('host-main.js')) return pid;
    queue.push(...children(pid));
  }
  throw new Error(`no plugin host process under ${root}`);
}

/** A runaway expression: each call copies the array into a larger one (issue 11, defect 8). */
const runaway = '($grow := function($a, $n){ $n = 0 ? $count($a) : $grow($append($a, [1..1000000]), $n - 1) }; $grow([], 200))';

t.test('a hostile plugin in the plugin host process (isolation "process", on a cloud runtime)', async (t) => {
  const { home, ownerToken, rt, run } = await hostileRuntime(t);

  for (const file of ['master.key', 'quark.db', 'config.json']) {
    t.test(`reading <home>/${file} is refused by the permission model`, async (t) => {
      const outcome = await run('read', { path: join(home, file) });
      t.match(outcome, { status: 'application-error', code: 'ERR_ACCESS_DENIED' });
      await healthy(t, rt, ownerToken, `reading ${file}`);
    });
  }

  t.test('starting a child process is refused', async (t) => {
    t.match(await run('spawn'), { status: 'application-error', code: 'ERR_ACCESS_DENIED' });
    await healthy(t, rt, ownerToken, 'the spawn');
  });

  t.test("the runtime's environment does not reach plugin code", async (t) => {
    t.equal((await run('env')).properties.names, '', 'an empty environment');
  });

  t.test("a patched crypto.createHmac does not see another connector's secret", async (t) => {
    const victim = await rt.api('POST', '/api/v1/connections', ownerToken, { name: 'victim', connector: 'hmac-signer', config: { signingKey } });
    t.equal(victim.status, 201, JSON.stringify(victim.body));
    t.equal((await run('patch')).properties.patched, 'yes');
    const tested = await rt.api('POST', '/api/v1/connections/victim/test', ownerToken, {});
    t.equal(tested.body.status, 'ok', JSON.stringify(tested.body));
    const seen = await run('captured');
    t.same(JSON.parse(seen.properties.captured), [], 'nothing captured: the victim signed in a worker of its own');
    t.notMatch(JSON.stringify(seen), signingKey);
    await healthy(t, rt, ownerToken, 'the patch');
  });

  for (const [operation, parameters, words] of [
    ['kill', { target: 'self' }, /cannot signal a process/],
    ['kill', { target: 'parent' }, /cannot signal a process/],
    ['exit', {}, /cannot end the process/],
    ['abort', {}, /cannot abort the process/],
  ] as const) {
    t.test(`process.${operation}(${JSON.stringify(parameters)}) fails the task; the runtime and the host go on`, async (t) => {
      t.match(await run(operation, parameters), { status: 'failure', code: 'QUARK_ERR_PLUGIN_THREW', message: words });
      await healthy(t, rt, ownerToken, operation);
    });
  }

  t.test("getting round the guard (process.binding('spawn_sync') to kill the runtime) is refused", async (t) => {
    t.match(await run('bypass'), { status: 'application-error', code: 'ERR_ACCESS_DENIED' });
    await healthy(t, rt, ownerToken, 'the bypass');
  });

  t.test('Buffers past limits.workerExternalMb stop the task with a code, not the runtime', async (t) => {
    t.match(await run('buffers', { mb: 512 }), { status: 'failure', code: 'QUARK_ERR_PLUGIN_RESOURCE_LIMIT', message: /MB of external memory, over its limit of 64 MB/ });
    await healthy(t, rt, ownerToken, 'the Buffers');
    t.equal((await run('captured')).status, 'success', 'the next task runs');
  });

  t.test('a late unhandled rejection does not fail the task running then; the worker is recycled', async (t) => {
    t.equal((await run('late')).properties.armed, 'yes');
    t.equal((await run('late', { fire: true })).status, 'success', 'the task running when the rejection fired is not failed');
    await until('the recycling to be logged', () => (/tainted by plugin code/.test(rt.output()) ? true : undefined));
    t.equal((await run('captured')).status, 'success', 'the next task runs in a fresh worker');
    await healthy(t, rt, ownerToken, 'the late rejection');
  });

  t.test('one allocation past the heap limit fails the task, never the runtime', async (t) => {
    // V8 either stops the worker (ERR_WORKER_OUT_OF_MEMORY) or aborts the whole host
    // (nodejs/node#47224); which one varies, both fail only the task
    const outcome = await run('allocate');
    t.equal(outcome.status, 'failure');
    t.ok(['QUARK_ERR_PLUGIN_HOST_DIED', 'QUARK_ERR_PLUGIN_WORKER_DIED'].includes(outcome.code), outcome.code);
    t.match(outcome.message, /out of memory/);
    await healthy(t, rt, ownerToken, 'the allocation');
    t.equal((await run('captured')).status, 'success', 'the next task runs');
  });

  t.test('a plugin host that ends under a task fails that task with QUARK_ERR_PLUGIN_HOST_DIED; a new host runs the next', async (t) => {
    const server = createServer();
    t.teardown(() => server.close());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    // the plugin's connection says its task runs in the host: then the host is killed
    server.once('connection', () => process.kill(hostPid(rt.child.pid!), 'SIGKILL'));
    const outcome = await run('hang', { port: (server.address() as AddressInfo).port });
    t.match(outcome, { status: 'failure', code: 'QUARK_ERR_PLUGIN_HOST_DIED', message: /ended \(signal SIGKILL\)/ });
    await healthy(t, rt, ownerToken, 'the host was killed');
    t.equal((await run('captured')).status, 'success', 'the next task starts a new host');
  });

  t.test('a runaway expression in a pure step fails its step with QUARK_ERR_STEP_MEMORY_LIMIT; the runtime goes on', async (t) => {
    const definition = { id: 'runaway', name: 'runaway', start: { kind: 'documents', next: 'grow' }, steps: [{ id: 'grow', kind: 'map', expression: runaway }] };
    const answer = await rt.api('POST', '/api/v1/executions', ownerToken, { definition, documents: [{ body: '{}' }], wait: true });
    t.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 400));
    t.equal(answer.body.status, 'error');
    t.same(answer.body.errors.map((e: any) => [e.step, e.code]), [['grow', 'QUARK_ERR_STEP_MEMORY_LIMIT']], JSON.stringify(answer.body.errors).slice(0, 400));
    // V8 aborts the host (the usual outcome of this expression) or stops the worker: both say memory
    t.match(answer.body.errors[0].message, /ran out of memory/);
    await healthy(t, rt, ownerToken, 'the runaway expression');
    const fine = { ...definition, id: 'fine', start: { kind: 'documents', next: 'small' }, steps: [{ id: 'small', kind: 'map', expression: '"small"' }] };
    const next = await rt.api('POST', '/api/v1/executions', ownerToken, { definition: fine, documents: [{ body: '{}' }], wait: true });
    t.equal(next.body.status, 'complete', `the next run of pure steps completes: ${JSON.stringify(next.body).slice(0, 600)}`);
  });
});
