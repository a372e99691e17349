// bench/engine: Node-RED 4 embedded in this process the way its docs describe (RED.init +
// RED.start), with no editor, no admin API, no HTTP nodes, logging off; a flow deployed
// through the runtime API (RED.runtime.flows.setFlows, a "full" deploy, as the editor's
// Deploy button does). Shared by node-red.mjs and integration-node-red.mjs.
// Needs Node-RED: npm ci --prefix bench/engine (without it, the process exits with code 3).
import http from 'node:http';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);

function loadNodeRed() {
  try {
    return require('node-red');
  } catch (error) {
    if (error.code !== 'MODULE_NOT_FOUND') throw error;
    console.error('node-red is not installed: npm ci --prefix bench/engine');
    process.exit(3);
  }
}

/** A function node: `func` is its code, `outputs` its number of outputs. */
export const functionNode = (z, id, func, outputs, wires, name = id) => ({ id, z, type: 'function', name, func, outputs, timeout: 0, noerr: 0, initialize: '', finalize: '', libs: [], x: 0, y: 0, wires });

/**
 * Starts Node-RED with `nodes` deployed on one tab `z` and `globals` as its global context
 * (functionGlobalContext); resolves when every node has started. Returns RED and a stop().
 */
export async function startFlow(z, label, nodes, globals) {
  const RED = loadNodeRed();
  const userDir = mkdtempSync(join(tmpdir(), 'quark-bench-node-red-'));
  process.on('exit', () => rmSync(userDir, { recursive: true, force: true }));
  const server = http.createServer(); // never listens: no editor, no admin API, no HTTP nodes
  RED.init(server, {
    userDir,
    flowFile: 'flows.json',
    credentialSecret: false,
    httpAdminRoot: false,
    httpNodeRoot: false,
    disableEditor: true,
    uiPort: 0,
    logging: { console: { level: 'off', metrics: false, audit: false } },
    functionGlobalContext: globals,
    functionExternalModules: false,
    externalModules: { autoInstall: false, palette: { allowInstall: false }, modules: { allowInstall: false } },
    editorTheme: { projects: { enabled: false } },
    telemetry: { enabled: false },
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
  });
  await RED.start();
  const flows = [{ id: z, type: 'tab', label, disabled: false, info: '' }, ...nodes];
  await RED.runtime.flows.setFlows({ flows: { flows }, deploymentType: 'full' });
  // the deploy returns before the new nodes have started
  for (let i = 0; !nodes.every((n) => RED.nodes.getNode(n.id)); i++) {
    if (i > 500) throw new Error('the flow did not start');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { RED, node: (id) => RED.nodes.getNode(id), stop: () => RED.stop() };
}
