// The bench home set-up shared by bench/engine/quark.mjs and bench/isolation.mjs: bench/engine's
// flow, and a runtime created in the calling process (the in-process facade of
// dist/runtime/index.js, what the API calls, minus HTTP) on a fresh home in /tmp (removed at
// exit), log level silent, with config.json changed before the start, the flow deployed.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

//   start (documents) → map → props → big ─┬─ total > 100 → high (set-properties: path=high)
//                                          └─ otherwise   → low  (set-properties: path=low)
export const definition = {
  id: 'bench-engine',
  name: 'bench/engine',
  start: { kind: 'documents', next: 'map' },
  steps: [
    { id: 'map', kind: 'map', expression: '$merge([$, {"total": $sum(items.price)}])', next: 'props' },
    { id: 'props', kind: 'set-properties', document: { customerId: { $expr: 'customer.id' } }, next: 'big' },
    { id: 'big', kind: 'decision', condition: 'total > 100', ifTrue: 'high', ifFalse: 'low' },
    { id: 'high', kind: 'set-properties', document: { path: 'high' } },
    { id: 'low', kind: 'set-properties', document: { path: 'low' } },
  ],
};

/** The runtime module of a quark package folder (its dist/); exits 3 when it is not built. */
export async function loadRuntime(dist) {
  try {
    return await import(pathToFileURL(join(dist, 'dist/runtime/index.js')).href);
  } catch (error) {
    console.error(`cannot load dist/runtime/index.js (run npm run build): ${error.message}`);
    process.exit(3);
  }
}

/**
 * A fresh home (`prefix` names its folder), its config.json passed through `configure`,
 * a runtime on it, the owner signed in and `flow` (default: bench/engine's) deployed.
 * `init` is passed to initHome (a store other than SQLite).
 */
export async function benchRuntime(runtimeModule, { prefix = 'quark-bench-engine-', init = {}, configure = (config) => config, flow = definition } = {}) {
  const { createRuntime, initHome, createSchemaRegistry } = runtimeModule;
  const home = mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => rmSync(home, { recursive: true, force: true }));
  const { ownerToken, paths } = await initHome({ home, ...init }, createSchemaRegistry());
  // initHome takes no limits or isolation: they live in config.json, defaults filled; edit it before start
  const config = JSON.parse(readFileSync(paths.config, 'utf8'));
  writeFileSync(paths.config, JSON.stringify(configure(config), null, 2) + '\n', { mode: 0o600 });
  const rt = await createRuntime({ home, logLevel: 'silent' });
  const caller = await rt.authenticate(ownerToken);
  await rt.deployments.deploy(caller, flow);
  return { home, rt, caller };
}

/** The plugin host processes under this one: CPU seconds used so far and peak RSS (Linux /proc). */
export function hostUsage() {
  const children = (pid) => readdirSync(`/proc/${pid}/task`).flatMap((task) => readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
  const all = (pid) => children(pid).flatMap((child) => [child, ...all(child)]);
  const hosts = all(process.pid).filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('host-main.js'));
  const ticks = (pid) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ').slice(11, 13).map(Number).reduce((a, b) => a + b, 0);
  const hwm = (pid) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  // USER_HZ is 100 on Linux
  return { cpuSeconds: hosts.reduce((sum, pid) => sum + ticks(pid) / 100, 0), peakRssMb: hosts.reduce((sum, pid) => sum + hwm(pid), 0) };
}
