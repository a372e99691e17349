import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import semver from 'semver';
import { QuarkError, quarkError, messageOf, toPlainError, type FieldProblem } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { schemaIds, type SchemaRegistry } from '../schema/index.js';
import { RUNTIME_API_VERSION } from '../sdk/index.js';
import { secretPointers } from '../secrets/secret-fields.js';
import { localPathFields } from './local-paths.js';
import type { WorkerPool } from '../engine/pool.js';
import { createConnectorRegistry, type ConnectorRegistry, type LoadedConnector, type LoadedOperation, type PluginSource, type QuarantinedPlugin } from './registry.js';

export interface PluginLocation {
  path: string;
  source: PluginSource;
}

export interface LoaderOptions {
  locations: readonly PluginLocation[];
  schemas: SchemaRegistry;
  pool: WorkerPool;
  importTimeoutMs: number;
  /** Probes that run at once (the pool's threads): the others wait their turn. */
  threads: number;
  /** Replaces probeStartAllowanceMs (tests). */
  startAllowanceMs?: number;
  logger: Logger;
}

const manifestFile = 'connector.json';

/**
 * Limits on every JSON file of a plugin (manifest, connection and parameter schemas),
 * checked before a schema is compiled: a 10 MB schema took a minute to load and blocked
 * each validation for seconds. docs/connectors.md documents them.
 */
export const pluginFileLimits = { bytes: 64 * 1024, depth: 32, values: 2000 } as const;

/** Plugin folders under a location: the location itself if it is one, else its sub-folders. */
function discover(location: PluginLocation): { dir: string; source: PluginSource }[] {
  if (!existsSync(location.path)) return [];
  // real paths: the folder a plugin's files must stay inside is the one they are really in
  const root = realpathSync(resolve(location.path));
  if (existsSync(join(root, manifestFile))) return [{ dir: root, source: location.source }];
  return readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.') && entry.name !== 'node_modules')
    .map((entry) => ({ dir: realpathSync(join(root, entry.name)), source: location.source }))
    .sort((a, b) => a.dir.localeCompare(b.dir));
}

/**
 * Reads one JSON file of a plugin, by its real path (resolved by pluginFile). A reason
 * never quotes the file's contents: a file can be a link to a key somewhere else.
 */
function readJson(path: string): unknown {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > pluginFileLimits.bytes) tooLarge(path, `is ${size} bytes; the limit is ${pluginFileLimits.bytes}`);
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof QuarkError) throw error;
    const code = (error as { code?: unknown }).code;
    const why = typeof code === 'string' ? code : 'unreadable';
    throw quarkError('QUARK_ERR_PLUGIN_UNREADABLE', `${path} cannot be read (${why})`, { problems: [{ file: path, path: '', message: `cannot be read (${why})` }] }, error);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const at = /position (\d+)/.exec(messageOf(error))?.[1];
    const message = `is not valid JSON${at === undefined ? '' : ` (at character ${at})`}`;
    throw quarkError('QUARK_ERR_PLUGIN_UNREADABLE', `${path} ${message}`, { problems: [{ file: path, path: '', message }] });
  }
  checkShape(value, path);
  return value;
}

function tooLarge(file: string, message: string): never {
  throw quarkError('QUARK_ERR_PLUGIN_FILE_TOO_LARGE', `${file} ${message}`, { problems: [{ file, path: '', message }], limits: pluginFileLimits });
}

/** Depth and number of values, counted without recursion (a deep file cannot overflow the stack). */
function checkShape(value: unknown, file: string): void {
  const stack: [unknown, number][] = [[value, 0]];
  let values = 0;
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    values += 1;
    if (values > pluginFileLimits.values) tooLarge(file, `holds more than ${pluginFileLimits.values} JSON values`);
    if (depth > pluginFileLimits.depth) tooLarge(file, `nests deeper than ${pluginFileLimits.depth} levels`);
    if (node !== null && typeof node === 'object') {
      for (const child of Object.values(node)) stack.push([child, depth + 1]);
    }
  }
}

function fail(code: 'QUARK_ERR_PLUGIN_MANIFEST_INVALID' | 'QUARK_ERR_PLUGIN_SCHEMA_INVALID' | 'QUARK_ERR_PLUGIN_INCOMPATIBLE', file: string, problems: FieldProblem[]): never {
  const located = problems.map((p) => ({ ...p, file }));
  const first = located[0]!;
  const more = located.length > 1 ? ` (and ${located.length - 1} more)` : '';
  throw quarkError(code, `${file}${first.path ? ` at ${first.path}` : ''}: ${first.message}${more}`, { problems: located });
}

/**
 * A file named by the manifest, by its real path, which must be inside the plugin
 * folder's real path: a link that leads out of the folder is refused.
 */
function pluginFile(dir: string, relative: string, pointer: string): string {
  const path = resolve(dir, relative);
  const file = join(dir, manifestFile);
  if (!path.startsWith(dir + sep)) fail('QUARK_ERR_PLUGIN_MANIFEST_INVALID', file, [{ path: pointer, message: 'must stay inside the plugin folder' }]);
  if (!existsSync(path) || !statSync(path).isFile()) fail('QUARK_ERR_PLUGIN_MANIFEST_INVALID', file, [{ path: pointer, message: `names ${relative}, which does not exist` }]);
  const real = realpathSync(path);
  if (!real.startsWith(dir + sep)) fail('QUARK_ERR_PLUGIN_MANIFEST_INVALID', file, [{ path: pointer, message: `names ${relative}, a link that leads out of the plugin folder` }]);
  return real;
}

/** The manifest, by its real path, which must be inside the plugin folder too. */
function manifestOf(dir: string): string {
  const path = join(dir, manifestFile);
  if (!existsSync(path)) {
    throw quarkError('QUARK_ERR_PLUGIN_UNREADABLE', `${dir} has no ${manifestFile}`, { problems: [{ file: path, path: '', message: 'file not found' }] });
  }
  if (!realpathSync(path).startsWith(dir + sep)) {
    throw quarkError('QUARK_ERR_PLUGIN_UNREADABLE', `${path} is a link that leads out of the plugin folder`, { problems: [{ file: path, path: '', message: 'a link that leads out of the plugin folder' }] });
  }
  return path;
}

interface Manifest {
  id: string;
  name: string;
  version: string;
  description?: string;
  runtimeApi: string;
  entry: string;
  connectionSchema: string;
  testConnection: boolean;
  operations: { id: string; name: string; kind: string; description?: string; parameters: string }[];
}

/** Validates one plugin folder without running any of its code. */
export function readPlugin(dir: string, source: PluginSource, schemas: SchemaRegistry, partial: Partial<QuarantinedPlugin>): LoadedConnector {
  const manifestPath = manifestOf(dir);
  const raw = readJson(manifestPath);
  if (raw !== null && typeof raw === 'object') {
    const named = raw as Record<string, unknown>;
    if (typeof named.id === 'string') partial.id = named.id;
    if (typeof named.version === 'string') partial.version = named.version;
  }
  const problems = schemas.validator(schemaIds.manifest)(raw);
  if (problems.length > 0) fail('QUARK_ERR_PLUGIN_MANIFEST_INVALID', manifestPath, problems);
  const manifest = raw as Manifest;

  if (semver.validRange(manifest.runtimeApi) === null) {
    fail('QUARK_ERR_PLUGIN_MANIFEST_INVALID', manifestPath, [{ path: '/runtimeApi', message: `"${manifest.runtimeApi}" is not a semver range` }]);
  }
  if (!semver.satisfies(RUNTIME_API_VERSION, manifest.runtimeApi)) {
    fail('QUARK_ERR_PLUGIN_INCOMPATIBLE', manifestPath, [
      { path: '/runtimeApi', message: `the plugin needs runtime API ${manifest.runtimeApi}; this runtime offers ${RUNTIME_API_VERSION}` },
    ]);
  }
  const entry = pluginFile(dir, manifest.entry, '/entry');

  const schemaPath = pluginFile(dir, manifest.connectionSchema, '/connectionSchema');
  const connectionSchema = readJson(schemaPath) as Record<string, unknown>;
  const shapeProblems = schemas.validator(schemaIds.connectionSchema)(connectionSchema);
  if (shapeProblems.length > 0) fail('QUARK_ERR_PLUGIN_SCHEMA_INVALID', schemaPath, shapeProblems);
  const groups = new Set(((connectionSchema['x-groups'] as { id: string }[] | undefined) ?? []).map((g) => g.id));
  const groupProblems = Object.entries(connectionSchema.properties as Record<string, Record<string, unknown>>)
    .filter(([, field]) => typeof field['x-group'] === 'string' && !groups.has(field['x-group']))
    .map(([name, field]) => ({ path: `/properties/${name}/x-group`, message: `names group "${String(field['x-group'])}", which x-groups does not declare` }));
  if (groupProblems.length > 0) fail('QUARK_ERR_PLUGIN_SCHEMA_INVALID', schemaPath, groupProblems);
  const validateConnection = schemas.compile(connectionSchema, schemaPath);

  const seen = new Set<string>();
  const operations: LoadedOperation[] = manifest.operations.map((op, index) => {
    if (seen.has(op.id)) fail('QUARK_ERR_PLUGIN_MANIFEST_INVALID', manifestPath, [{ path: `/operations/${index}/id`, message: `duplicate operation id "${op.id}"` }]);
    seen.add(op.id);
    const parametersPath = pluginFile(dir, op.parameters, `/operations/${index}/parameters`);
    const parametersSchema = readJson(parametersPath) as Record<string, unknown>;
    return {
      id: op.id,
      name: op.name,
      kind: op.kind,
      ...(op.description !== undefined ? { description: op.description } : {}),
      parametersSchema,
      validateParameters: schemas.compile(parametersSchema, parametersPath),
      localPaths: localPathFields(parametersSchema),
    };
  });

  return {
    id: manifest.id,
    name: manifest.name,
    version: manifest.version,
    ...(manifest.description !== undefined ? { description: manifest.description } : {}),
    runtimeApi: manifest.runtimeApi,
    source,
    dir,
    entry,
    testConnection: manifest.testConnection,
    connectionSchema,
    validateConnection,
    secretPointers: secretPointers(connectionSchema),
    localPaths: localPathFields(connectionSchema),
    operations,
  };
}

type Quarantine = (entry: QuarantinedPlugin) => void;

/** Allowance for starting workers (a stopped one is replaced), which no probe's limit counts. */
export const probeStartAllowanceMs = 30_000;

/**
 * The probe phase as a whole ends this long after it starts: every probe's time limit in
 * turn on each thread, one more, and the allowance for starting workers. A backstop for
 * a probe that never ends (its worker cannot be stopped); each probe has its own limit.
 */
export function probeBudgetMs(importTimeoutMs: number, probes: number, threads: number, allowanceMs = probeStartAllowanceMs): number {
  return importTimeoutMs * (Math.ceil(probes / Math.max(1, threads)) + 1) + allowanceMs;
}

type QuarantineReason = QuarantinedPlugin['reason'];

function quarantineProbe(connector: LoadedConnector, reason: QuarantineReason, quarantine: Quarantine): undefined {
  quarantine({ dir: connector.dir, source: connector.source, id: connector.id, version: connector.version, reason });
  return undefined;
}

/**
 * The import probe: imports the plugin's entry in a worker (never here) within the time
 * limit and checks that it is a connector with a handler for every declared operation
 * (and testConnection when declared). Resolves to why the plugin would be quarantined, or
 * undefined when it loads. `signal` cancels it.
 */
export async function probePlugin(connector: LoadedConnector, pool: WorkerPool, importTimeoutMs: number, signal?: AbortSignal): Promise<QuarantineReason | undefined> {
  const located = (reason: { code: QuarantineReason['code']; message: string }): QuarantineReason => ({ ...reason, details: { problems: [{ file: connector.entry, path: '', message: reason.message }] } });
  try {
    const reply = await pool.run(
      { kind: 'probe', entry: connector.entry, operations: connector.operations.map((o) => o.id), testConnection: connector.testConnection },
      { timeoutMs: importTimeoutMs, graceMs: 0, what: `importing connector ${connector.id}`, ...(signal ? { signal } : {}) },
    );
    return reply.ok ? undefined : located(reply.error);
  } catch (error) {
    return located(error instanceof QuarkError ? toPlainError(error) : { code: 'QUARK_ERR_PLUGIN_IMPORT_FAILED', message: messageOf(error) });
  }
}

/**
 * What the loader would do with one plugin folder, for `quark connector validate`: read,
 * validate and version-gate it (readPlugin), then probe it (probePlugin). Resolves to why
 * it would be quarantined, or undefined when a runtime would load it.
 */
export async function checkPlugin(dir: string, options: Pick<LoaderOptions, 'schemas' | 'pool' | 'importTimeoutMs'>): Promise<QuarantineReason | undefined> {
  let connector: LoadedConnector;
  try {
    // the real path, as discover() gives the loader: files must stay inside it
    connector = readPlugin(realpathSync(resolve(dir)), 'config', options.schemas, {});
  } catch (error) {
    return error instanceof QuarkError ? toPlainError(error) : { code: 'QUARK_ERR_PLUGIN_UNREADABLE', message: messageOf(error) };
  }
  return probePlugin(connector, options.pool, options.importTimeoutMs);
}

async function probeOne(connector: LoadedConnector, options: LoaderOptions, signal: AbortSignal, quarantine: Quarantine): Promise<LoadedConnector | undefined> {
  const reason = await probePlugin(connector, options.pool, options.importTimeoutMs, signal);
  return reason === undefined ? connector : quarantineProbe(connector, reason, quarantine);
}

/**
 * Probes every candidate in parallel (as many at once as there are threads), all within probeBudgetMs: a probe still waiting or
 * running then is cancelled and its plugin quarantined without waiting for its worker to
 * stop, so no plugin can keep the runtime from starting.
 */
async function probeAll(candidates: readonly LoadedConnector[], options: LoaderOptions, quarantine: Quarantine): Promise<(LoadedConnector | undefined)[]> {
  const budgetMs = probeBudgetMs(options.importTimeoutMs, candidates.length, options.threads, options.startAllowanceMs);
  const over = new AbortController();
  const timer = setTimeout(() => over.abort(), budgetMs);
  const outOfTime = new Promise<'over'>((resolve) => over.signal.addEventListener('abort', () => resolve('over'), { once: true }));
  const silent: Quarantine = () => undefined;
  try {
    return await Promise.all(candidates.map(async (connector) => {
      let settled = false;
      const probe = probeOne(connector, options, over.signal, (entry) => (settled ? silent : quarantine)(entry));
      const first = await Promise.race([probe, outOfTime]);
      settled = true;
      if (first !== 'over') return first;
      const message = `importing connector ${connector.id} did not finish within the loading budget of ${budgetMs} ms (limits.pluginImportTimeoutMs for each turn of the worker threads and one more, plus 30 s to start workers)`;
      const details = { problems: [{ file: connector.entry, path: '', message }] };
      return quarantineProbe(connector, { code: 'QUARK_ERR_PLUGIN_TIMEOUT', message, details }, quarantine);
    }));
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Finds, validates, version-gates and probes every plugin. The probe imports each module
 * in a worker (never here) with a time limit. Whatever is wrong with a plugin quarantines
 * that plugin alone, with the file, JSON pointer and message.
 */
export async function loadConnectors(options: LoaderOptions): Promise<ConnectorRegistry> {
  const { schemas, logger } = options;
  const candidates: LoadedConnector[] = [];
  const quarantined: QuarantinedPlugin[] = [];
  const quarantine = (entry: QuarantinedPlugin) => {
    quarantined.push(entry);
    logger.warn({ plugin: entry.dir, connector: entry.id, code: entry.reason.code, reason: entry.reason.message }, 'connector plugin quarantined');
  };

  for (const location of options.locations) {
    for (const { dir, source } of discover(location)) {
      const partial: Partial<QuarantinedPlugin> = {};
      try {
        const connector = readPlugin(dir, source, schemas, partial);
        const first = candidates.find((c) => c.id === connector.id);
        if (first) {
          throw quarkError('QUARK_ERR_PLUGIN_DUPLICATE', `connector id "${connector.id}" is already provided by ${first.dir} (${first.source})`, {
            problems: [{ file: join(dir, manifestFile), path: '/id', message: `duplicate of ${first.dir}` }],
          });
        }
        candidates.push(connector);
      } catch (error) {
        const reason = error instanceof QuarkError ? toPlainError(error) : { code: 'QUARK_ERR_PLUGIN_UNREADABLE' as const, message: messageOf(error) };
        quarantine({ dir, source, ...partial, reason });
      }
    }
  }

  const probed = await probeAll(candidates, options, quarantine);
  const loaded = probed.filter((c): c is LoadedConnector => c !== undefined);
  for (const c of loaded) logger.info({ connector: c.id, version: c.version, source: c.source }, 'connector loaded');
  return createConnectorRegistry(loaded, quarantined);
}
