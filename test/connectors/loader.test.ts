import t from 'tap';
import { cpSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConnectors, pluginFileLimits } from '../../runtime/connectors/loader.js';
import { createSchemaRegistry } from '../../runtime/schema/index.js';
import type { WorkerPool } from '../../runtime/engine/pool.js';
import { fixturePlugins, tempDir } from '../helpers/quark.js';

const schemas = createSchemaRegistry();
const logger = { warn: () => undefined, info: () => undefined } as never;
/** Distinctive bytes standing for a key file next to the plugins. */
const keyText = 'KEYMATERIAL-4f1c9e2ab7d3';

/** A pool whose probes all succeed, unless a probe never answers (its worker cannot be stopped). */
function fakePool(hang: (entry: string) => boolean = () => false): WorkerPool {
  return {
    run: (task) => (task.kind === 'probe' && hang(task.entry) ? new Promise(() => undefined) : Promise.resolve({ ok: true, value: { ok: true }, logs: [] })),
    stats: () => ({ threads: 0, idleThreads: 0, queueSize: 0, completed: 0, utilization: 0 }),
    close: async () => undefined,
  };
}

/** A copy of the secret-echo fixture under `<root>/plugins/<name>`, with the key file beside the plugins. */
function plugin(t: any, name: string) {
  const root = tempDir(t);
  const key = join(root, 'master.key');
  writeFileSync(key, keyText);
  const dir = join(root, 'plugins', name);
  cpSync(join(fixturePlugins, 'secret-echo'), dir, { recursive: true });
  const load = (hang?: (entry: string) => boolean) =>
    loadConnectors({ locations: [{ path: join(root, 'plugins'), source: 'home' }], schemas, pool: fakePool(hang), importTimeoutMs: 100, threads: 2, startAllowanceMs: 0, logger });
  return { dir, key, load };
}

function reasonOf(registry: Awaited<ReturnType<typeof loadConnectors>>) {
  const [q] = registry.quarantined();
  return q?.reason;
}

t.test('a schema linked to a file outside the plugin folder is refused, and its contents are not quoted', async (t) => {
  const { dir, key, load } = plugin(t, 'linked-schema');
  rmSync(join(dir, 'connection.schema.json'));
  symlinkSync(key, join(dir, 'connection.schema.json'));
  const reason = reasonOf(await load());
  t.equal(reason?.code, 'QUARK_ERR_PLUGIN_MANIFEST_INVALID');
  t.match(reason?.message, /\/connectionSchema: names connection\.schema\.json, a link that leads out of the plugin folder/);
  t.notMatch(JSON.stringify(reason), /KEYMATERIAL/, 'no byte of the key');
});

t.test('an entry linked outside the plugin folder is not imported', async (t) => {
  const { dir, load } = plugin(t, 'linked-entry');
  const outside = join(dir, '..', '..', 'elsewhere.js');
  writeFileSync(outside, readFileSync(join(dir, 'index.js')));
  rmSync(join(dir, 'index.js'));
  symlinkSync(outside, join(dir, 'index.js'));
  const probed: string[] = [];
  const registry = await load((entry) => (probed.push(entry), false));
  t.same(probed, [], 'nothing was probed (imported)');
  t.equal(reasonOf(registry)?.code, 'QUARK_ERR_PLUGIN_MANIFEST_INVALID');
  t.match(reasonOf(registry)?.details?.problems?.[0], { path: '/entry', message: /a link that leads out of the plugin folder/ });
});

t.test('a file that is not JSON is reported without quoting it', async (t) => {
  const { dir, load } = plugin(t, 'not-json');
  writeFileSync(join(dir, 'connection.schema.json'), keyText);
  const reason = reasonOf(await load());
  t.equal(reason?.code, 'QUARK_ERR_PLUGIN_UNREADABLE');
  t.match(reason?.message, /connection\.schema\.json is not valid JSON/);
  t.notMatch(JSON.stringify(reason), /KEYMATERIAL|KEYM|4f1c/, 'not even its first characters');
});

t.test('schemas beyond the limits are quarantined before they are compiled', async (t) => {
  const field = (i: number) => [`f${i}`, { title: `F${i}`, type: 'string' }];
  const cases = {
    bytes: { type: 'object', properties: Object.fromEntries(Array.from({ length: 95_000 }, (_, i) => field(i))) },
    values: { type: 'object', properties: Object.fromEntries(Array.from({ length: 700 }, (_, i) => field(i))) },
    depth: JSON.parse('{"type":"object","properties":{"a":'.repeat(40) + '{"title":"deep","type":"string"}' + '}}'.repeat(40)),
  };
  for (const [limit, schema] of Object.entries(cases)) {
    const { dir, load } = plugin(t, `too-many-${limit}`);
    writeFileSync(join(dir, 'connection.schema.json'), JSON.stringify(schema));
    const reason = reasonOf(await load());
    t.equal(reason?.code, 'QUARK_ERR_PLUGIN_FILE_TOO_LARGE', limit);
    t.match(reason?.details, { limits: pluginFileLimits, problems: [{ file: /connection\.schema\.json$/, path: '' }] });
  }
});

t.test('a probe that never ends is quarantined within the loading budget; the others load', async (t) => {
  const { dir, load } = plugin(t, 'stuck');
  const good = join(dir, '..', 'good');
  cpSync(dir, good, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(good, 'connector.json'), 'utf8'));
  writeFileSync(join(good, 'connector.json'), JSON.stringify({ ...manifest, id: 'good' }));
  const registry = await load((entry) => entry.includes('/stuck/'));
  t.same(registry.list().map((c) => c.id), ['good']);
  t.match(reasonOf(registry), { code: 'QUARK_ERR_PLUGIN_TIMEOUT', message: /did not finish within the loading budget of 200 ms/ });
});
