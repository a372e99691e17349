/**
 * Unit tests of the plugin host pool (isolation "process") under the graph walker: pure
 * steps run in the host's workers, and their failures keep the words of steps. No runtime,
 * no store, no HTTP: a host process under Node's permission model, started by the test.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { confinedReply, createHostPool, folderRefusal, hostArgs, hostDied } from '../../runtime/engine/host.js';
import { createWalker, type WalkContext } from '../../runtime/engine/walker.js';
import { inlineRef } from '../../runtime/engine/bodies.js';
import { createLogger } from '../../runtime/core/logger.js';
import { quarkError } from '../../runtime/core/errors.js';
import type { ProcessDefinition, Step } from '../../runtime/processes/definition.js';
import { fixturePlugins } from '../helpers/quark.js';
import type { WorkerPool } from '../../runtime/engine/pool.js';
import type { StepsOutcome, WorkerReply, WorkerTask } from '../../runtime/engine/messages.js';

const quiet = createLogger({ level: 'silent' });

function hostWalker(t: { teardown(fn: () => unknown): void }, heapMb: number, seen?: (reply: WorkerReply) => void) {
  const work = mkdtempSync(join(tmpdir(), 'quark-host-work-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  const host = createHostPool({ threads: 2, heapMb, logger: quiet, reads: [], work, protect: [] });
  t.teardown(() => host.close());
  // the host's replies as the walker gets them
  const pool: WorkerPool = seen ? { ...host, run: async (task, options) => { const reply = await host.run(task, options); seen(reply); return reply; } } : host;
  const walker = createWalker({ pool, threads: 2, spillBytes: 8 * 1024 * 1024, stepTimeoutMs: 600_000, maxNestingDepth: 500 });
  const context = (): WalkContext => ({
    info: { id: 'exe_host', process: 'p', version: 1, trigger: 'manual' },
    workDir: mkdtempSync(join(work, 'exe-')),
    signal: new AbortController().signal,
    process: {},
    operations: { run: async () => { throw new Error('no operations in these tests'); } },
    callee: () => { throw quarkError('QUARK_ERR_PROCESS_NOT_FOUND', 'no callees in these tests'); },
    counts: {},
    log: quiet,
    warnings: 0,
  });
  return { walker, context };
}

const definition = (steps: Step[]): ProcessDefinition => ({ id: 'p', name: 'p', start: { kind: 'documents', next: steps[0]!.id }, steps });
const doc = (body: string) => ({ properties: {}, body: inlineRef(body) });

t.test('a pure step that fills its worker heap in the host fails with QUARK_ERR_STEP_MEMORY_LIMIT (not "worker died")', async (t) => {
  const { walker, context } = hostWalker(t, 64);
  // many small objects: V8 stops the worker gracefully; the host relays the failure with its details
  const steps: Step[] = [{ id: 'hog', kind: 'map', expression: '[1..2000000].{"n": $, "s": $string($) & "xxxxxxxxxxxxxxxxxxxxxxxx"}' }];
  const result = await walker.walk(definition(steps), [doc('{}'), doc('{}')], context());
  t.same(result.failures.map((f) => f.code), ['QUARK_ERR_STEP_MEMORY_LIMIT', 'QUARK_ERR_STEP_MEMORY_LIMIT']);
  const after = await walker.walk(definition([{ id: 'small', kind: 'map', expression: '"small"' }]), [doc('{}')], context());
  t.equal(after.outputs.length, 1, 'the next run of pure steps completes');
});

t.test('documents cross the host packed and come back whole: properties, exits, large bodies, try origins', async (t) => {
  const { walker, context } = hostWalker(t, 256);
  const steps: Step[] = [
    { id: 'try', kind: 'try', try: 'map', catch: 'caught' },
    { id: 'map', kind: 'map', expression: '$merge([$, {"total": n * 2}])', next: 'props' },
    { id: 'props', kind: 'set-properties', document: { total: { $expr: '$string(total)' } }, next: 'big' },
    { id: 'big', kind: 'decision', condition: 'n > 2', ifTrue: 'large' },
    { id: 'large', kind: 'map', expression: '{"n": n, "pad": $pad("", 100000, "x")}' },
    { id: 'caught', kind: 'set-properties', document: { caught: 'yes' } },
  ];
  const inputs = [...[1, 2, 3, 4].map((n) => ({ properties: { id: `d${n}` }, body: inlineRef(JSON.stringify({ n })) })), { properties: { id: 'bad' }, body: inlineRef('not json') }];
  const result = await walker.walk(definition(steps), inputs, context());
  t.equal(result.failures.length, 0);
  const seen = Object.fromEntries(result.outputs.map((d) => {
    const body = d.body.kind === 'inline' ? Buffer.from(d.body.bytes).toString('utf8') : `file ${d.body.size}`;
    return [d.properties.id, { properties: d.properties, body: body.length > 200 ? `${body.slice(0, 16)}… ${body.length}` : body }];
  }));
  const pad = 'x'.repeat(100000);
  t.same(seen, {
    d1: { properties: { id: 'd1', total: '2' }, body: '{"n":1,"total":2}' },
    d2: { properties: { id: 'd2', total: '4' }, body: '{"n":2,"total":4}' },
    d3: { properties: { id: 'd3', total: '6' }, body: `{"n":3,"pad":"xx… ${JSON.stringify({ n: 3, pad }).length}` },
    d4: { properties: { id: 'd4', total: '8' }, body: `{"n":4,"pad":"xx… ${JSON.stringify({ n: 4, pad }).length}` },
    bad: { properties: { id: 'bad', 'quark.error.step': 'map', 'quark.error.code': 'QUARK_ERR_EXPRESSION_FAILED', 'quark.error.message': seen.bad?.properties['quark.error.message'] ?? '', caught: 'yes' }, body: 'not json' },
  });
  t.match(seen.bad?.properties['quark.error.message'], /JSON|json/, 'the failure\'s message came back with its document\'s origin');
});

t.test('a large body crosses to the plugin host and back in a file of the work directory, not in the IPC message; each document fails alone', async (t) => {
  const replies: WorkerReply[] = [];
  const { walker, context } = hostWalker(t, 256, (reply) => replies.push(reply));
  const orders = Array.from({ length: 40_000 }, (_, i) => ({ id: i, name: `order ${i} é😀` }));
  const large = JSON.stringify({ orders });
  t.ok(large.length > 1024 * 1024, 'over the 1 MiB at which a body crosses in a file');
  const steps: Step[] = [
    { id: 'count', kind: 'map', expression: '$merge([$, {"count": $count(orders)}])', next: 'check' },
    { id: 'check', kind: 'decision', condition: 'count > 2', ifTrue: 'big', ifFalse: 'bad' },
    { id: 'big', kind: 'set-properties', document: { size: 'big' } },
    { id: 'bad', kind: 'map', expression: '$error("too few orders")' },
  ];
  const ctx = context();
  const result = await walker.walk(definition(steps), [doc(large), doc('{"orders": [1]}'), doc(large)], ctx);
  t.same(result.failures.map((f) => [f.step, f.code]), [['bad', 'QUARK_ERR_EXPRESSION_FAILED']], 'the small one fails alone');
  t.equal(result.outputs.length, 2);
  for (const out of result.outputs) {
    t.equal(out.body.kind, 'inline', 'a body in memory again once back');
    t.equal(Buffer.from((out.body as { bytes: Uint8Array }).bytes).toString('utf8'), JSON.stringify({ orders, count: 40_000 }), 'JSON.stringify\'s text, byte for byte');
    t.same(out.properties, { size: 'big' });
  }
  const crossed = replies.flatMap((r) => (r.ok ? (r.value as StepsOutcome).exits.flatMap((e) => e.documents) : []));
  t.same(crossed.map((d) => d.body.kind === 'file' && d.body.crossing === true), [true, true], 'the two large outputs came back as crossing files');
  for (const d of crossed) t.notOk(existsSync((d.body as { path: string }).path), 'each crossing file removed once read');
  t.same(existsSync(ctx.workDir) ? readdirSync(ctx.workDir) : [], [], 'no file left in the work directory');
});

t.test('hostDied: the host\'s last words tell an abort for memory from another end', async (t) => {
  t.match(hostDied('step m', null, 'SIGABRT', '<--- JS stacktrace --->\nFATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory'), { code: 'QUARK_ERR_PLUGIN_HOST_DIED', details: { outOfMemory: true, signal: 'SIGABRT' } });
  t.match(hostDied('step m', null, 'SIGTRAP', '#\n# Fatal JavaScript invalid size error 169220804\n#'), { details: { outOfMemory: true } });
  t.notOk(hostDied('step m', null, 'SIGKILL', '').details?.outOfMemory, 'killed from outside: not memory');
  t.match(hostDied('step m', 1, null, '').message, /ended \(exit code 1\)/);
});

t.test('grants of local folders: <folder>/* on the command line, never beside the plain path (Node 20 aborts on both)', async (t) => {
  const args = hostArgs({ reads: ['/plugins/a'], work: '/home/q/work' }, new Map([['/data/in', true], ['/plugins/a', false], ['/data/ro', false]]));
  t.ok(args.includes('--allow-fs-read=/data/in/*') && args.includes('--allow-fs-write=/data/in/*'), 'a read-write folder: read and write');
  t.ok(args.includes('--allow-fs-read=/data/ro/*') && !args.some((a) => a.startsWith('--allow-fs-write=/data/ro')), 'a read folder: read only');
  t.ok(args.includes('--allow-fs-read=/plugins/a') && !args.includes('--allow-fs-read=/plugins/a/*'), 'a folder readable already is not given twice');
});

t.test('folderRefusal: the master key, the store and code the runtime loads are never given to the host', async (t) => {
  const rules = { reads: ['/plugins/a'], protect: ['/home/q/master.key', '/home/q/quark.db'] };
  const folder = (path: string, write = true) => ({ path, write, field: '/folder' });
  t.match(folderRefusal(folder('/home/q'), rules), { code: 'QUARK_ERR_CONNECTION_FOLDER_REFUSED', details: { problems: [{ path: '/folder', message: /holds master\.key/ }] } });
  t.match(folderRefusal(folder('/', false), rules), { code: 'QUARK_ERR_CONNECTION_FOLDER_REFUSED' }, 'read-only too');
  t.match(folderRefusal(folder('/plugins'), rules), { message: /plugin code could change/ }, 'a read-write folder holding a plugin folder');
  t.match(folderRefusal(folder('/plugins/a/data'), rules), { message: /plugin code could change/ }, 'a read-write folder inside one');
  t.equal(folderRefusal(folder('/plugins/a/data', false), rules), undefined, 'reading inside a plugin folder is allowed');
  t.equal(folderRefusal(folder('/home/q/files'), rules), undefined, 'a folder of its own in the home');
  t.equal(folderRefusal(folder('/data/in'), rules), undefined);
  t.match(folderRefusal(folder('/data/*', false), rules), { message: /wildcard/ }, 'a * would grant more than the folder');
});

t.test('hosts are keyed by their tasks\' exact folders: bounded (least recently used retired), revoked folders retire their host', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'quark-host-work-'));
  const data = mkdtempSync(join(tmpdir(), 'quark-host-data-'));
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  t.teardown(() => rmSync(data, { recursive: true, force: true }));
  const plugin = join(fixturePlugins, 'hostile');
  const pool = createHostPool({ threads: 2, heapMb: 256, logger: quiet, reads: [plugin], work, protect: [], maxHosts: 2 });
  t.teardown(() => pool.close());
  const probe = (folders: { path: string; write: boolean; field: string }[]) =>
    pool.run({ kind: 'probe', entry: join(plugin, 'index.js'), operations: ['read'], testConnection: true }, { timeoutMs: 60_000, what: 'probe', folders });
  const live = () => pool.hosts().filter((h) => !h.retired).map((h) => h.folders.join(',')).sort();
  const [x, y] = [join(data, 'x'), join(data, 'y')];

  await probe([]);
  await probe([{ path: x, write: true, field: '/folder' }]);
  t.same(live(), ['', x], 'a task with no folder and one with a folder run in two hosts');
  await probe([{ path: x, write: false, field: '/in' }, { path: x, write: true, field: '/folder' }]);
  t.same(live(), ['', x], 'the same folder set (written by one field) is the same host');
  const first = pool.hosts().find((h) => h.folders.length === 0)!.pid;
  await probe([{ path: y, write: false, field: '/folder' }]);
  t.same(live(), [x, y], 'past maxHosts the least recently used host is retired');
  t.notOk(pool.hosts().some((h) => h.pid === first && !h.retired));

  await pool.revoke([{ path: y, write: false, field: '/folder' }]);
  t.same(live(), [x], 'a revoked folder\'s host has ended');
  t.notOk(pool.hosts().some((h) => h.folders.includes(y)), 'and is gone');
  await probe([]);
  t.same(live(), ['', x], 'a task with no folder starts a host with none again');
});

t.test('confinedReply: a body file the host answers must be one the task brought or lie in its work folder (by real path)', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'quark-confine-'));
  const outside = mkdtempSync(join(tmpdir(), 'quark-confine-outside-'));
  t.teardown(() => { rmSync(work, { recursive: true, force: true }); rmSync(outside, { recursive: true, force: true }); });
  const secret = join(outside, 'master.key');
  writeFileSync(secret, 'not for plugins');
  const inWork = join(work, 'body-1');
  writeFileSync(inWork, 'spilled');
  const link = join(work, 'body-2');
  symlinkSync(secret, link);
  const file = (path: string) => ({ properties: {}, body: { kind: 'file' as const, path, size: 1 } });
  const steps = (brought: string[] = []): WorkerTask => ({ kind: 'steps', steps: [], first: 'a', documents: brought.map(file), process: {}, execution: { id: 'exe_1', process: 'p', version: 1, trigger: 'manual' }, workDir: work, spillBytes: 1024, maxNestingDepth: 100 }) as unknown as WorkerTask;
  const outcome = (path: string): WorkerReply => ({ ok: true, value: { exits: [{ next: null, documents: [file(path)] }], failed: [], counts: {}, processUpdates: [], notes: [] }, logs: [] });
  t.ok(confinedReply(steps(), outcome(inWork)).ok, 'a spill file of its work folder passes');
  const refused = confinedReply(steps(), outcome(secret));
  t.match(refused, { ok: false, error: { code: 'QUARK_ERR_PLUGIN_RESULT_INVALID', message: /outside the task's work folder/ } }, 'a file elsewhere is refused');
  t.notMatch(JSON.stringify(refused), /master\.key/, 'the refusal does not name the file');
  t.match(confinedReply(steps(), outcome(link)), { ok: false }, 'a link in the work folder to a file elsewhere is refused');
  t.ok(confinedReply(steps([secret]), outcome(secret)).ok, 'a file the task brought may pass through');
  const operation = { kind: 'operation', entry: 'x', operation: 'get', config: {}, parameters: {}, runtime: {}, documents: [], workDir: work, spillBytes: 1024 } as unknown as WorkerTask;
  t.match(confinedReply(operation, { ok: true, value: [{ status: 'success', documents: [file(secret)] }], logs: [] }), { ok: false }, 'an operation result too');
});
